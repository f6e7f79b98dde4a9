package controller

import (
	"sync"
	"time"
)

// Queue is a de-duplicating work queue of spec names with client-go's
// guarantees: a name is queued at most once, a name is never handed to two
// workers at once, and a name added while it is being processed is handed
// out again after Done.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	items      []string
	dirty      map[string]struct{}
	processing map[string]struct{}
	waiting    map[string]time.Time // earliest pending AddAfter per name
	addedAt    map[string]time.Time // when each queued name was added
	failures   map[string]int       // consecutive AddRateLimited per name since its Forget
	shutdown   bool
	now        func() time.Time
	afterFunc  func(time.Duration, func()) // time.AfterFunc; replaced in tests

	// OnAdd, when set, is called for every name that enters the queue
	// (not for duplicates); metrics count adds with it. OnGet is called
	// with how long a name waited before a worker took it.
	OnAdd func(name string)
	OnGet func(wait time.Duration)
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	q := &Queue{
		dirty:      map[string]struct{}{},
		processing: map[string]struct{}{},
		waiting:    map[string]time.Time{},
		addedAt:    map[string]time.Time{},
		failures:   map[string]int{},
		now:        time.Now,
		afterFunc:  func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues name unless it is already queued.
func (q *Queue) Add(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(name)
}

func (q *Queue) addLocked(name string) {
	if q.shutdown {
		return
	}
	if _, ok := q.dirty[name]; ok {
		return
	}
	q.dirty[name] = struct{}{}
	q.addedAt[name] = q.now()
	if q.OnAdd != nil {
		q.OnAdd(name)
	}
	if _, ok := q.processing[name]; ok {
		// Done queues it again; handing it out now would put it on two workers.
		return
	}
	q.items = append(q.items, name)
	q.cond.Signal()
}

// AddAfter queues name after d. A later AddAfter for a name that is already
// due earlier is dropped.
func (q *Queue) AddAfter(name string, d time.Duration) {
	if d <= 0 {
		q.Add(name)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := q.now().Add(d)
	if prev, ok := q.waiting[name]; ok && !prev.After(at) {
		return
	}
	q.waiting[name] = at
	q.afterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if cur, ok := q.waiting[name]; ok && cur.Equal(at) {
			delete(q.waiting, name)
		}
		q.addLocked(name)
	})
}

// The per-name back-off of failed reconciles, as client-go's default
// item limiter: 5ms doubling on each failure. Its cap suits this agent
// better than client-go's 1000s: a failure here is most often a daemon
// that is briefly away or a state file that is full, and the resync
// retries everything anyway.
const (
	RateLimitBase = 5 * time.Millisecond
	RateLimitMax  = 30 * time.Second
)

// AddRateLimited queues name after its back-off: RateLimitBase doubling
// with each call since its last Forget, capped at RateLimitMax.
func (q *Queue) AddRateLimited(name string) {
	q.mu.Lock()
	n := q.failures[name]
	q.failures[name] = n + 1
	q.mu.Unlock()
	q.AddAfter(name, rateLimitDelay(n))
}

// rateLimitDelay is the back-off after n earlier failures.
func rateLimitDelay(n int) time.Duration {
	d := RateLimitBase
	for i := 0; i < n && d < RateLimitMax; i++ {
		d *= 2
	}
	return min(d, RateLimitMax)
}

// Forget ends name's back-off: its next failure waits RateLimitBase
// again. It does not take name out of the queue.
func (q *Queue) Forget(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, name)
}

// NumRequeues is how many times name was rate-limited since its Forget.
func (q *Queue) NumRequeues(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[name]
}

// Get blocks until a name is available or the queue is shut down.
func (q *Queue) Get() (name string, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return "", true
	}
	name = q.items[0]
	q.items[0] = ""
	q.items = q.items[1:]
	q.processing[name] = struct{}{}
	delete(q.dirty, name)
	if at, ok := q.addedAt[name]; ok {
		delete(q.addedAt, name)
		if q.OnGet != nil {
			q.OnGet(q.now().Sub(at))
		}
	}
	return name, false
}

// Done marks name as processed; if it was added meanwhile it is queued again.
func (q *Queue) Done(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, name)
	if _, ok := q.dirty[name]; ok {
		q.items = append(q.items, name)
		q.cond.Signal()
	}
}

// Busy is the number of names handed out and not yet Done.
func (q *Queue) Busy() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.processing)
}

// Len is the number of names waiting to be handed out.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// ShutDown makes Get return shutdown to every worker once the queue is
// empty; names added afterwards are dropped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.items = nil
	q.cond.Broadcast()
}
