// Package controller converges Docker containers towards the specs in the
// store. Docker events, file changes and API writes only enqueue a spec
// name; Reconcile reads desired and actual state afresh, decide picks one
// step, and apply carries it out. A periodic resync enqueues every name.
package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/output"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// Store is what the controller needs of the state file.
type Store interface {
	// ViewSpec's record may be shared with other readers: the controller
	// reads the specs it is given and never changes them.
	ViewSpec(name string) (store.Record, error)
	ListSpecs() ([]store.Record, error)
	GetStatus(name string) (model.Status, error)
	GetHistory(name string) (model.History, error)
	Commit(c store.Change) ([]model.Event, bool, error)
	DeleteSpec(name string) error
	DeleteState(name string) error
	// WriteErr is set while the file refuses commits (a full disk).
	WriteErr() error
}

// Publisher fans committed events out to followers.
type Publisher interface {
	Publish(evs ...model.Event)
}

// DefaultWorkers is the number of concurrent reconciles. Each worker runs
// one create and one start at a time, so it is also the most starts in
// flight. A start is CPU-bound in the daemon: measured with `make bench`
// on 2 cores (Docker 20.10), direct create+start calls gave 4.1/s at
// concurrency 1, 6.4/s at 2, 7.3/s at 4 and 7.8/s at 8. Past 4 each start
// gets slower, but the daemon's throughput still grows a little, and a
// cold start of many specs is bound by throughput.
const DefaultWorkers = 8

// Options configure a Controller; zero values get defaults.
type Options struct {
	Instance string        // agent instance id, put on every container
	Workers  int           // concurrent reconciles; default 8 (DefaultWorkers)
	Resync   time.Duration // full resync period; default 30s
	// StopOnExit stops every managed container with its grace period when
	// Run returns. By default they keep running, as with kubelet.
	StopOnExit   bool
	LogTailLines int // lines of output kept with each exit; default 50
	Log          *slog.Logger
	Metrics      *metrics.Metrics
	Now          func() time.Time
	// Policy is the policy in force, checked at every reconcile and again
	// right before every create; nil is the default policy.
	Policy *spec.CurrentPolicy
	// ReadSecret reads a file a spec names as a secret (env valueFrom.file,
	// secrets[].file), refusing what the current policy does not allow.
	ReadSecret func(path string) ([]byte, error)
	// SecretsDir holds the agent's copies of the specs' secrets[] files,
	// bind-mounted into their containers.
	SecretsDir string
	// SecretKey keys the HMAC that puts secret content into the spec-hash
	// label; it must stay the same across restarts (it is kept in the
	// state file), or every container with secrets is replaced. Default: a
	// random key for this process.
	SecretKey []byte
	// Pulls is how many image pulls run at once, beside the workers;
	// default 2.
	Pulls int
	// PullBackoff is the delay after a first failed pull, doubling to 5m;
	// default 10s (kubelet's).
	PullBackoff time.Duration
	// Output, when set, keeps each run's complete output (see output.go).
	Output *output.Store
	// Workspace says where and how runs' workspace copies are made.
	Workspace WorkspaceOptions
	// Images asks registries and keeps images for autoUpdate specs; nil
	// leaves every container on the image it was created with.
	Images ImageRegistry
	// Egress runs the networks and proxies of specs with egress.allow; nil
	// fails such specs with EgressUnavailable.
	Egress Egress
	// Budget is what running containers may take (admission.go); zero
	// admits everything at once.
	Budget Budget
}

// Controller owns the reconcile loop.
type Controller struct {
	// startLag is how long the daemon took over the agent's last
	// container start, in nanoseconds (see Observed.DaemonLag).
	startLag atomic.Int64
	// starts holds back a second start of a created container (starthold.go).
	starts starts

	rt      docker.Runtime
	st      Store
	pub     Publisher
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	queue   *Queue
	cache   *cache
	notes   *notes
	pulls   *pulls
	ledger  *ledger
	images  ImageRegistry
	updates *updates
	adm     *admission
	deps    *dependents

	mu        sync.Mutex
	waiters   map[string]context.CancelFunc // container id -> its Wait
	stopping  map[string]bool               // container ids being stopped
	changedAt map[string]time.Time          // when a spec's desired state last changed
	phases    map[string]model.Phase
	firstSync map[string]bool // names of the first full sync not yet reconciled

	synced       atomic.Bool
	dockerUp     atomic.Bool
	lastProgress atomic.Int64 // unix nanos of the last finished loop iteration
	wg           sync.WaitGroup
	runCtx       context.Context
}

// New returns a controller; Run starts it.
func New(rt docker.Runtime, st Store, pub Publisher, opts Options) *Controller {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.LogTailLines <= 0 {
		opts.LogTailLines = 50
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New("", "")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SecretKey == nil {
		opts.SecretKey = make([]byte, 32)
		_, _ = rand.Read(opts.SecretKey)
	}
	if opts.Pulls <= 0 {
		opts.Pulls = 2
	}
	if opts.PullBackoff <= 0 {
		opts.PullBackoff = 10 * time.Second
	}
	c := &Controller{
		rt: rt, st: st, pub: pub, opts: opts,
		log:       opts.Log.With("component", "controller"),
		m:         opts.Metrics,
		queue:     NewQueue(),
		cache:     newCache(),
		notes:     newNotes(),
		ledger:    newLedger(st),
		waiters:   map[string]context.CancelFunc{},
		stopping:  map[string]bool{},
		changedAt: map[string]time.Time{},
		phases:    map[string]model.Phase{},
	}
	c.adm = newAdmission(opts.Budget, c.m.Admission, c.Enqueue)
	c.deps = newDependents(c.Enqueue)
	c.pulls = newPulls(rt, opts.Pulls, c.m, c.log, &c.wg, c.Enqueue)
	if opts.Images != nil {
		c.images = opts.Images
		c.updates = newUpdates(opts.Images, c.m, c.log, &c.wg, c.Enqueue)
	}
	c.queue.OnAdd = func(string) { c.m.QueueAdds.Inc() }
	c.queue.OnGet = func(wait time.Duration) { c.m.QueueWait.Observe(wait.Seconds()) }
	c.lastProgress.Store(time.Now().UnixNano())
	return c
}

// selector matches every container of this agent instance.
func (c *Controller) selector() map[string]string {
	return map[string]string{docker.LabelManaged: "true", docker.LabelInstance: c.opts.Instance}
}

// Enqueue asks for name to be reconciled.
func (c *Controller) Enqueue(name string) {
	c.queue.Add(name)
	c.m.QueueDepth.Set(float64(c.queue.Len()))
}

// EnqueueAll asks for every stored spec to be reconciled, as after a
// policy reload: each is checked against the policy in force.
func (c *Controller) EnqueueAll() error {
	recs, err := c.st.ListSpecs()
	if err != nil {
		return fmt.Errorf("list specs: %w", err)
	}
	for _, r := range recs {
		c.queue.Add(r.Spec.Metadata.Name)
	}
	c.m.QueueDepth.Set(float64(c.queue.Len()))
	return nil
}

// DesiredChanged is called when a spec was added, changed or deleted: it
// starts the convergence clock and enqueues the name.
func (c *Controller) DesiredChanged(name string) {
	c.mu.Lock()
	if _, ok := c.changedAt[name]; !ok {
		c.changedAt[name] = c.opts.Now()
	}
	c.mu.Unlock()
	c.Enqueue(name)
}

// Ready reports whether the first full sync is done and Docker answers.
func (c *Controller) Ready() error {
	switch {
	case !c.dockerUp.Load():
		return errors.New("docker daemon unreachable")
	case !c.synced.Load():
		return errors.New("first full sync not finished")
	}
	return nil
}

// LastProgress is when the loop last made progress (for /healthz and the
// systemd watchdog).
func (c *Controller) LastProgress() time.Time {
	return time.Unix(0, c.lastProgress.Load())
}

// Run reconciles until ctx is cancelled, then waits for its workers.
func (c *Controller) Run(ctx context.Context) error {
	c.runCtx = ctx
	var wg sync.WaitGroup
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); c.watchEvents(ctx) }()
	go func() { defer wg.Done(); c.resyncLoop(ctx) }()
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	if c.updates != nil {
		c.updates.close()
	}
	c.wg.Wait()
	if c.opts.StopOnExit {
		c.stopAll()
	}
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	name, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(name)
	c.m.QueueDepth.Set(float64(c.queue.Len()))
	start := time.Now()
	res, err := c.reconcileSafely(ctx, name)
	c.m.ReconcileDuration.Observe(time.Since(start).Seconds())
	c.lastProgress.Store(time.Now().UnixNano())
	c.firstSyncDone(name)
	// The whole requeue policy: an error backs off per name, exponentially
	// (Queue.AddRateLimited); any success ends that back-off (Forget), and
	// a RequeueAfter comes back when it asks.
	switch {
	case ctx.Err() != nil:
	case err != nil:
		c.m.ReconcileTotal.WithLabelValues(metrics.ResultError).Inc()
		c.log.Warn("reconcile failed", "spec", name, "err", err, "retries", c.queue.NumRequeues(name))
		c.queue.AddRateLimited(name)
	case res.RequeueAfter > 0:
		c.m.ReconcileTotal.WithLabelValues(metrics.ResultRequeue).Inc()
		c.queue.Forget(name)
		c.queue.AddAfter(name, res.RequeueAfter)
	default:
		c.m.ReconcileTotal.WithLabelValues(metrics.ResultSuccess).Inc()
		c.queue.Forget(name)
	}
	return true
}

func (c *Controller) reconcileSafely(ctx context.Context, name string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in reconcile of %q: %v\n%s", name, r, debug.Stack())
		}
	}()
	return c.Reconcile(ctx, name)
}

func (c *Controller) resyncLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.resync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("resync failed", "err", err)
			}
			// The loop is alive even when Docker is not (/readyz says that),
			// but not when names wait and no worker finishes any, nor while a
			// worker is in a reconcile: that one marks progress itself when
			// it finishes, and must not be covered for by the ticker when it
			// never does.
			if c.queue.Len() == 0 && c.queue.Busy() == 0 {
				c.lastProgress.Store(time.Now().UnixNano())
			}
		}
	}
}

// resync lists every container of this agent once, refreshes the cache and
// enqueues every spec name known to the store or to Docker.
func (c *Controller) resync(ctx context.Context) error {
	stored, err := specNames(c.st)
	if err != nil {
		return fmt.Errorf("list specs: %w", err)
	}
	vers := c.cache.beginAll()
	cs, err := c.rt.List(ctx, c.selector())
	if err != nil {
		c.dockerUp.Store(false)
		return fmt.Errorf("list containers: %w", err)
	}
	c.dockerUp.Store(true)
	if !c.adm.isReady() {
		// Only the first listing seeds admission, and it needs the specs
		// themselves; every later resync lists names alone.
		recs, err := c.st.ListSpecs()
		if err != nil {
			return fmt.Errorf("list specs: %w", err)
		}
		c.seedAdmission(recs, cs)
	}
	names := make(map[string]struct{}, len(stored))
	for _, n := range stored {
		names[n] = struct{}{}
	}
	by := make(map[string][]docker.Container, len(stored))
	for _, ct := range cs {
		n := ct.Labels[docker.LabelSpec]
		if n == "" {
			continue
		}
		by[n] = append(by[n], ct)
		names[n] = struct{}{}
	}
	c.mu.Lock()
	for n := range c.phases {
		names[n] = struct{}{} // deleted specs whose state is still to be dropped
	}
	if c.firstSync == nil && !c.synced.Load() {
		c.firstSync = map[string]bool{}
		for n := range names {
			c.firstSync[n] = true
		}
		if len(names) == 0 {
			c.synced.Store(true)
		}
	}
	c.mu.Unlock()
	c.cache.putAll(vers, names, by)
	for n := range names {
		c.queue.Add(n)
	}
	c.m.QueueDepth.Set(float64(c.queue.Len()))
	return nil
}

func (c *Controller) firstSyncDone(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstSync == nil || c.synced.Load() {
		return
	}
	delete(c.firstSync, name)
	if len(c.firstSync) == 0 {
		c.synced.Store(true)
		c.log.Info("first full sync done")
	}
}

// watchEvents keeps one event subscription open. Every (re)subscription is
// followed by a full re-list, since events may have been missed in the gap.
func (c *Controller) watchEvents(ctx context.Context) {
	var since time.Time
	delay := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		if err := c.rt.Ping(ctx); err != nil {
			c.dockerUp.Store(false)
			c.log.Warn("docker unreachable", "err", err, "retry_in", delay)
			sleep(ctx, delay)
			delay = min(delay*2, 10*time.Second)
			continue
		}
		c.dockerUp.Store(true)
		if !first {
			c.m.StreamReconnects.Inc()
		}
		first = false
		subCtx, cancel := context.WithCancel(ctx)
		evs, errs := c.rt.Events(subCtx, since, c.selector())
		if err := c.resync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("re-list after subscribe failed", "err", err)
		}
		err := c.readEvents(subCtx, evs, errs, &since, &delay)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("docker event stream ended; resubscribing", "err", err, "retry_in", delay)
		sleep(ctx, delay)
		delay = min(delay*2, 10*time.Second)
	}
}

func (c *Controller) readEvents(ctx context.Context, evs <-chan docker.Event, errs <-chan error, since *time.Time, delay *time.Duration) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case ev, ok := <-evs:
			if !ok {
				return errors.New("event channel closed")
			}
			*delay = 100 * time.Millisecond
			if ev.Time.After(*since) {
				*since = ev.Time
			}
			c.m.DockerEvent(ev.Action)
			c.notes.record(ev)
			name := ev.Labels[docker.LabelSpec]
			if name == "" {
				continue
			}
			c.cache.dirty(name)
			c.queue.Add(name)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
