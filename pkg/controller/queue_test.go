package controller

import (
	"sync"
	"testing"
	"time"
)

func TestQueueCollapsesDuplicates(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if got := q.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	for _, want := range []string{"a", "b"} {
		got, _ := q.Get()
		if got != want {
			t.Fatalf("Get = %q, want %q", got, want)
		}
		q.Done(got)
	}
	if q.Len() != 0 {
		t.Fatalf("queue not empty")
	}
}

func TestQueueAddWhileProcessingRunsAgainAfterDone(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	name, _ := q.Get()
	q.Add("a") // re-added while a worker holds it
	if q.Len() != 0 {
		t.Fatalf("an item in progress was handed out again before Done")
	}
	q.Done(name)
	if q.Len() != 1 {
		t.Fatalf("re-added item not queued after Done")
	}
	again, _ := q.Get()
	if again != "a" {
		t.Fatalf("Get = %q", again)
	}
	q.Done(again)
	if q.Len() != 0 {
		t.Fatalf("item ran more than twice")
	}
}

func TestQueueNeverOnTwoWorkers(t *testing.T) {
	q := NewQueue()
	var mu sync.Mutex
	active := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				name, shut := q.Get()
				if shut {
					return
				}
				mu.Lock()
				if active[name] {
					t.Errorf("%s on two workers", name)
				}
				active[name] = true
				mu.Unlock()
				q.Add(name) // churn: re-add while processing
				mu.Lock()
				active[name] = false
				mu.Unlock()
				q.Done(name)
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	q.ShutDown()
	wg.Wait()
}

func TestQueueShutdownReleasesWorkers(t *testing.T) {
	q := NewQueue()
	done := make(chan bool)
	go func() {
		_, shut := q.Get()
		done <- shut
	}()
	q.ShutDown()
	if !<-done {
		t.Fatal("Get did not report shutdown")
	}
	q.Add("x")
	if q.Len() != 0 {
		t.Fatal("add after shutdown was queued")
	}
}

func TestQueueAddAfterKeepsEarliest(t *testing.T) {
	q := NewQueue()
	var fired []func()
	var delays []time.Duration
	q.afterFunc = func(d time.Duration, f func()) { delays = append(delays, d); fired = append(fired, f) }
	q.AddAfter("a", 10*time.Second)
	q.AddAfter("a", 20*time.Second) // later than the pending one: dropped
	q.AddAfter("a", 5*time.Second)  // earlier: scheduled
	if len(delays) != 2 || delays[0] != 10*time.Second || delays[1] != 5*time.Second {
		t.Fatalf("scheduled %v", delays)
	}
	fired[1]()
	fired[0]()
	if q.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (timers collapse)", q.Len())
	}
	q.AddAfter("b", 0)
	if q.Len() != 2 {
		t.Fatalf("AddAfter(0) did not add at once")
	}
}

func TestQueueReportsHowLongANameWaited(t *testing.T) {
	q := NewQueue()
	now := time.Unix(100, 0)
	q.now = func() time.Time { return now }
	var waits []time.Duration
	q.OnGet = func(d time.Duration) { waits = append(waits, d) }
	q.Add("a")
	now = now.Add(3 * time.Second)
	q.Add("a") // a duplicate does not restart the clock
	now = now.Add(2 * time.Second)
	name, _ := q.Get()
	q.Done(name)
	if len(waits) != 1 || waits[0] != 5*time.Second {
		t.Fatalf("waits = %v, want [5s]", waits)
	}
}

// TestQueueRateLimitedBacksOffPerNameUntilForget: client-go's
// AddRateLimited and Forget. Each failure of a name doubles its delay from
// RateLimitBase up to RateLimitMax; another name keeps its own count;
// Forget starts a name over.
func TestQueueRateLimitedBacksOffPerNameUntilForget(t *testing.T) {
	q := NewQueue()
	var delays []time.Duration
	var fire func()
	q.afterFunc = func(d time.Duration, f func()) { delays, fire = append(delays, d), f }
	next := func(name string) time.Duration {
		t.Helper()
		q.AddRateLimited(name)
		fire()
		got, _ := q.Get()
		q.Done(got)
		if got != name {
			t.Fatalf("Get = %q, want %q", got, name)
		}
		return delays[len(delays)-1]
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	for i, w := range want {
		if d := next("a"); d != w {
			t.Fatalf("failure %d of a: delay %s, want %s", i+1, d, w)
		}
	}
	if d := next("b"); d != RateLimitBase || q.NumRequeues("a") != 4 {
		t.Fatalf("b's first failure waits %s (want %s); a has %d requeues (want 4)", d, RateLimitBase, q.NumRequeues("a"))
	}
	q.Forget("a")
	if d := next("a"); d != RateLimitBase {
		t.Fatalf("after Forget: %s, want %s", d, RateLimitBase)
	}
	for range 20 {
		next("c")
	}
	if d := next("c"); d != RateLimitMax {
		t.Fatalf("after many failures: %s, want the cap %s", d, RateLimitMax)
	}
}
