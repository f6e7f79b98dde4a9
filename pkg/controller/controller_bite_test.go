package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// count is how many records say msg.
func (l *logRecords) count(msg string) int { return len(l.retries(msg)) }

// retries is the retry_in of every record that says msg, in turn (zero
// where a record has none).
func (l *logRecords) retries(msg string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		var d time.Duration
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "retry_in" {
				d = a.Value.Duration()
				return false
			}
			return true
		})
		out = append(out, d)
	}
	return out
}

// TestNewGivesZeroOptionsTheirDefaults: Options' zero values get the
// documented defaults, and values set pass through. The resync period is
// read from the options: a 30s ticker cannot be waited for in a unit test.
func TestNewGivesZeroOptionsTheirDefaults(t *testing.T) {
	h := newHarness(t)
	c := New(h.rt, h.st, nil, Options{})
	if c.opts.Resync != 30*time.Second || c.opts.Workers != 8 || c.opts.Pulls != 2 || c.opts.PullBackoff != 10*time.Second {
		t.Fatalf("defaults: resync %s, workers %d, pulls %d, pull backoff %s; want 30s, 8, 2, 10s",
			c.opts.Resync, c.opts.Workers, c.opts.Pulls, c.opts.PullBackoff)
	}
	c = New(h.rt, h.st, nil, Options{Resync: time.Second})
	if c.opts.Resync != time.Second {
		t.Fatalf("resync set to 1s became %s", c.opts.Resync)
	}
}

// TestExitRecordAsksForTheConfiguredLogTail: the output kept with an exit
// is the last LogTailLines lines the daemon gives, 50 unless set.
func TestExitRecordAsksForTheConfiguredLogTail(t *testing.T) {
	for _, tc := range []struct {
		lines int
		want  string
	}{{0, "50"}, {7, "7"}} {
		t.Run(fmt.Sprint(tc.lines), func(t *testing.T) {
			h := newHarness(t)
			h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, LogTailLines: tc.lines})
			h.put("web", spec.RestartAlways, "tick")
			h.reconcile("web")
			h.now = h.now.Add(time.Minute)
			h.rt.exit("reconciler-web", 2)
			h.reconcile("web")
			h.reconcile("web")
			var tails []string
			for _, o := range h.rt.logOpts() {
				if !o.Follow {
					tails = append(tails, o.Tail)
				}
			}
			if exits, _ := h.st.Exits("web", 0); len(exits) != 1 || len(tails) == 0 {
				t.Fatalf("exits %+v, log reads %v; want one exit recorded with its log tail", exits, tails)
			}
			for _, tail := range tails {
				if tail != tc.want {
					t.Fatalf("log tails asked: %v; want %s lines", tails, tc.want)
				}
			}
		})
	}
}

// TestSecretKeyKeepsContainersWithSecretsAcrossRestarts: an agent that
// restarts with the same SecretKey finds the spec-hash label of a
// container with secrets unchanged and keeps the container; with another
// key (the positive control) the label differs and it is replaced.
func TestSecretKeyKeepsContainersWithSecretsAcrossRestarts(t *testing.T) {
	h := newHarness(t)
	src := t.TempDir()
	policy := &spec.Policy{AllowedSecretPaths: []string{src}}
	key := filepath.Join(src, "api-key")
	if err := os.WriteFile(key, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := func(secretKey string) *Controller {
		return New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now },
			ReadSecret: policy.ReadSecret, Policy: spec.NewCurrentPolicy(policy),
			SecretsDir: filepath.Join(h.t.TempDir(), "secrets"), SecretKey: []byte(secretKey)})
	}
	h.putSpec("web", func(s *spec.ContainerSpec) { s.Secrets = []spec.SecretFile{{File: key}} })
	h.c = agent("key-kept-in-the-state-file")
	h.reconcile("web")
	first := h.rt.lastCreate().Labels[docker.LabelSpecHash]

	h.c = agent("key-kept-in-the-state-file")
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	if h.rt.count("create") != 1 || h.rt.count("stop") != 0 {
		t.Fatalf("restarted with the same key: %v; want the container kept", h.rt.calls())
	}

	h.c = agent("another-key")
	for i := 0; i < 3 && h.rt.count("create") < 2; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("web")
	}
	if h.rt.count("create") != 2 || h.rt.lastCreate().Labels[docker.LabelSpecHash] == first {
		t.Fatalf("restarted with another key: %v; want the container replaced with a new label", h.rt.calls())
	}
}

// biteFailingSpecs is a state file whose spec listing fails.
type biteFailingSpecs struct{ *store.Store }

func (biteFailingSpecs) ListSpecs() ([]store.Record, error) {
	return nil, errors.New("state file unreadable")
}

// TestEnqueueAllAsksForEveryStoredSpec: after a policy reload every stored
// spec is queued once; a store that cannot list is an error, not a
// silent no-op.
func TestEnqueueAllAsksForEveryStoredSpec(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "tick")
	h.put("db", spec.RestartAlways, "tick")
	if err := h.c.EnqueueAll(); err != nil {
		t.Fatalf("EnqueueAll: %v", err)
	}
	var got []string
	for h.c.queue.Len() > 0 {
		n, _ := h.c.queue.Get()
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"db", "web"}) || testutil.ToFloat64(h.c.m.QueueDepth) != 2 {
		t.Fatalf("queued %v (depth metric %v); want db and web", got, testutil.ToFloat64(h.c.m.QueueDepth))
	}

	c := New(h.rt, biteFailingSpecs{h.st}, nil, Options{Instance: "test"})
	if err := c.EnqueueAll(); err == nil || c.queue.Len() != 0 {
		t.Fatalf("EnqueueAll on an unreadable store: %v, %d queued; want an error", err, c.queue.Len())
	}
}

// TestProcessNextRequeuePolicy: one reconcile's outcome decides what the
// queue does next and which result is counted: success forgets the name,
// an error comes back after the rate limit, a RequeueAfter comes back
// when asked, and a reconcile cut by shutdown counts and schedules
// nothing.
func TestProcessNextRequeuePolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(h *harness) // leaves "job" to be reconciled
		cancel   bool
		result   string // counted result; "" for none
		after    []time.Duration
		requeues int
	}{
		{name: "success", setup: func(h *harness) {}, result: metrics.ResultSuccess},
		{name: "error", setup: func(h *harness) { h.rt.SetDown(true) }, result: metrics.ResultError,
			after: []time.Duration{RateLimitBase}, requeues: 1},
		{name: "requeue", setup: func(h *harness) {
			h.reconcile("job")
			h.rt.exit("reconciler-job", 0) // at t0: its TTL ends at t0+1h
			h.now = h.now.Add(time.Second)
			h.reconcile("job")
			h.now = h.now.Add(time.Minute)
		}, result: metrics.ResultRequeue, after: []time.Duration{time.Hour - time.Minute - time.Second}},
		{name: "shutdown", setup: func(h *harness) {}, cancel: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
				Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"exit"}, RestartPolicy: spec.RestartNever,
					TTLAfterFinished: spec.Duration{Duration: time.Hour}}}
			s.Default()
			if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
				t.Fatal(err)
			}
			tc.setup(h)
			var after []time.Duration
			h.c.queue.afterFunc = func(d time.Duration, _ func()) { after = append(after, d) }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			h.c.Enqueue("job")
			if !h.c.processNext(ctx) {
				t.Fatal("processNext reported a shut-down queue")
			}
			h.c.wg.Wait()
			for _, r := range []string{metrics.ResultSuccess, metrics.ResultError, metrics.ResultRequeue} {
				want := 0.0
				if r == tc.result {
					want = 1
				}
				if got := counterValue(t, h.c.m, "reconciler_reconcile_total", r); got != want {
					t.Errorf("reconcile_total{result=%s} = %v, want %v", r, got, want)
				}
			}
			if !slices.Equal(after, tc.after) || h.c.queue.Len() != 0 || h.c.queue.NumRequeues("job") != tc.requeues {
				t.Errorf("scheduled after %v, %d queued now, %d requeues; want after %v, none queued, %d requeues",
					after, h.c.queue.Len(), h.c.queue.NumRequeues("job"), tc.after, tc.requeues)
			}
		})
	}
}

// biteListRuntime fails every full listing while fail is set, with the
// daemon otherwise answering; stuckRuntime counts the listings.
type biteListRuntime struct {
	*stuckRuntime
	fail bool
}

func (r *biteListRuntime) List(ctx context.Context, sel map[string]string) ([]docker.Container, error) {
	cs, err := r.stuckRuntime.List(ctx, sel)
	if _, one := sel[docker.LabelSpec]; !one && r.fail {
		return nil, fmt.Errorf("list containers: %w", docker.ErrUnavailable)
	}
	return cs, err
}

// biteListings is a runtime over h's fake daemon that counts full
// listings and fails them when fail is set; nothing holds its creates.
func biteListings(h *harness, fail bool) *biteListRuntime {
	release := make(chan struct{})
	close(release)
	return &biteListRuntime{stuckRuntime: &stuckRuntime{fakeRuntime: h.rt, entered: make(chan struct{}, 1), release: release}, fail: fail}
}

// TestFailedRelistsAreLoggedAndHealthyOnesAreNot: a listing that fails,
// on the resync ticker or right after subscribing to events, is a warning
// in the log; one that works says nothing.
func TestFailedRelistsAreLoggedAndHealthyOnesAreNot(t *testing.T) {
	const tick, subscribe = "resync failed", "re-list after subscribe failed"
	t.Run("failing", func(t *testing.T) {
		h := newHarness(t)
		logs := &logRecords{}
		rt := biteListings(h, true)
		runController(t, New(rt, h.st, nil, Options{Instance: "test", Log: slog.New(logs), Resync: 5 * time.Millisecond}))
		waitFor(t, "both warnings", func() bool { return logs.count(tick) > 0 && logs.count(subscribe) > 0 })
	})
	t.Run("healthy", func(t *testing.T) {
		h := newHarness(t)
		logs := &logRecords{}
		rt := biteListings(h, false)
		stop := runController(t, New(rt, h.st, nil, Options{Instance: "test", Log: slog.New(logs), Resync: 5 * time.Millisecond}))
		// One listing follows the subscription, the others are ticks: the
		// first tick has finished once a later one lists.
		waitFor(t, "three listings", func() bool { return rt.fullLists() >= 3 })
		stop()
		if n, m := logs.count(tick), logs.count(subscribe); n != 0 || m != 0 {
			t.Fatalf("healthy listings logged %q %d times and %q %d times", tick, n, subscribe, m)
		}
	})
}

// TestIdleAgentStillMarksProgress: with nothing to reconcile the resync
// ticker is the loop's sign of life for /healthz and the watchdog.
func TestIdleAgentStillMarksProgress(t *testing.T) {
	h := newHarness(t)
	c := New(h.rt, h.st, nil, Options{Instance: "test", Resync: 5 * time.Millisecond})
	since := c.LastProgress()
	runController(t, c)
	waitFor(t, "progress while idle", func() bool { return c.LastProgress().After(since) })
	if c.queue.Len() != 0 || c.queue.Busy() != 0 {
		t.Fatalf("%d queued, %d busy; the agent was meant to be idle", c.queue.Len(), c.queue.Busy())
	}
}

// TestWorkersBoundConcurrentReconciles: Workers is how many reconciles
// run at once. With more specs than workers and every create held, as
// many creates as workers are under way, and through several resyncs
// that queue the rest again no more start; once released, every spec
// runs.
func TestWorkersBoundConcurrentReconciles(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			h := newHarness(t)
			// Every create is held; entered has room for each, so its
			// length is how many are under way.
			rt := &stuckRuntime{fakeRuntime: h.rt, entered: make(chan struct{}, 3), release: make(chan struct{})}
			for _, n := range []string{"a", "b", "c"} {
				h.put(n, spec.RestartAlways, "tick")
			}
			c := New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Workers: workers, Resync: 5 * time.Millisecond})
			runController(t, c)
			var once sync.Once
			release := func() { once.Do(func() { close(rt.release) }) }
			t.Cleanup(release) // before Run is stopped: it waits for its workers
			waitFor(t, "a create per worker", func() bool { return len(rt.entered) >= workers })
			lists := rt.fullLists()
			waitFor(t, "three resyncs", func() bool { return rt.fullLists() >= lists+3 })
			if e := len(rt.entered); e != workers || c.queue.Busy() != workers {
				t.Fatalf("%d creates under way, %d names busy, with %d workers", e, c.queue.Busy(), workers)
			}
			release()
			waitFor(t, "every spec running", func() bool {
				return h.rt.state("reconciler-a") == "running" && h.rt.state("reconciler-b") == "running" && h.rt.state("reconciler-c") == "running"
			})
		})
	}
}

// TestDockerUnreachableRetriesAfterADoublingDelay: while the daemon does
// not answer, the agent pings again after 100ms, then twice as long each
// time (up to 10s), and says so in the log.
func TestDockerUnreachableRetriesAfterADoublingDelay(t *testing.T) {
	h := newHarness(t)
	h.rt.SetDown(true)
	logs := &logRecords{}
	c := New(h.rt, h.st, nil, Options{Instance: "test", Log: slog.New(logs), Resync: time.Hour})
	runController(t, c)
	const msg = "docker unreachable"
	waitFor(t, "two failed pings", func() bool { return logs.count(msg) >= 2 })
	if got := logs.retries(msg)[:2]; !slices.Equal(got, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}) {
		t.Fatalf("retry delays %v; want 100ms then 200ms", got)
	}
	if c.Ready() == nil {
		t.Fatal("ready while the daemon is unreachable")
	}
}

// biteCutStreams ends every event subscription at once; the second one
// first delivers an event.
type biteCutStreams struct {
	*fakeRuntime
	mu   sync.Mutex
	subs int
}

func (r *biteCutStreams) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	r.mu.Lock()
	r.subs++
	withEvent := r.subs == 2
	r.mu.Unlock()
	evs, errs := make(chan docker.Event), make(chan error, 1)
	go func() {
		if withEvent {
			select {
			case evs <- docker.Event{Action: "start", ContainerID: "c9", Time: t0}:
			case <-ctx.Done():
			}
		}
		errs <- errors.New("stream cut")
	}()
	return evs, errs
}

// TestEventStreamResubscribeDelayDoublesAndEventsResetIt: a stream that
// ends is subscribed to again after 100ms, doubling while streams end
// with nothing received; a stream that delivered an event starts the
// delay over.
func TestEventStreamResubscribeDelayDoublesAndEventsResetIt(t *testing.T) {
	h := newHarness(t)
	logs := &logRecords{}
	rt := &biteCutStreams{fakeRuntime: h.rt}
	runController(t, New(rt, h.st, nil, Options{Instance: "test", Log: slog.New(logs), Resync: time.Hour}))
	const msg = "docker event stream ended; resubscribing"
	waitFor(t, "three ended streams", func() bool { return logs.count(msg) >= 3 })
	want := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if got := logs.retries(msg)[:3]; !slices.Equal(got, want) {
		t.Fatalf("resubscribe delays %v; want %v (the second stream had an event)", got, want)
	}
}

// TestDockerEventsQueueTheirSpec: an event about a container with a spec
// label queues that spec and marks its listing stale; one about any other
// container queues nothing. Any event starts the reconnect delay over.
func TestDockerEventsQueueTheirSpec(t *testing.T) {
	h := newHarness(t)
	h.c.cache.putAll(h.c.cache.beginAll(), map[string]struct{}{"web": {}}, nil)
	evs, errs := make(chan docker.Event, 2), make(chan error, 1)
	evs <- docker.Event{Action: "die", ContainerID: "c1", Time: t0.Add(time.Second), Labels: map[string]string{docker.LabelSpec: "web"}}
	evs <- docker.Event{Action: "die", ContainerID: "x1", Time: t0.Add(2 * time.Second)}
	var since time.Time
	delay := 5 * time.Second
	done := make(chan error, 1)
	go func() { done <- h.c.readEvents(context.Background(), evs, errs, &since, &delay) }()
	waitFor(t, "both events read", func() bool { return len(evs) == 0 })
	errs <- errors.New("stream cut")
	if err := <-done; err == nil {
		t.Fatal("readEvents ended without the stream's error")
	}
	var got []string
	for h.c.queue.Len() > 0 {
		n, _ := h.c.queue.Get()
		got = append(got, n)
	}
	if !slices.Equal(got, []string{"web"}) || delay != 100*time.Millisecond || !since.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("queued %q, delay %s, since %v; want web alone, 100ms, the last event's time", got, delay, since)
	}
	if _, fresh := h.c.cache.get("web"); fresh {
		t.Fatal("web's cached listing still taken as fresh after an event about its container")
	}
}

// /readyz waits for the first full sync: every spec the first listing
// found is reconciled once, and no later resync takes readiness back. An
// agent with nothing to sync is ready at its first listing.
func TestReadyOnlyOnceEverySpecOfTheFirstSyncIsReconciled(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.put("a", spec.RestartAlways, "sleep")
	h.put("b", spec.RestartAlways, "sleep")
	if err := h.c.resync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Ready(); err == nil || !strings.Contains(err.Error(), "first full sync not finished") {
		t.Fatalf("ready before any spec was reconciled: %v", err)
	}
	h.c.processNext(ctx)
	if err := h.c.Ready(); err == nil {
		t.Fatal("ready with one of the two specs not yet reconciled")
	}
	h.c.processNext(ctx)
	if err := h.c.Ready(); err != nil {
		t.Fatalf("both specs reconciled: %v", err)
	}
	h.put("c", spec.RestartAlways, "sleep")
	if err := h.c.resync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Ready(); err != nil {
		t.Fatalf("a later resync took readiness back: %v", err)
	}

	empty := newHarness(t)
	if err := empty.c.resync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := empty.c.Ready(); err != nil {
		t.Fatalf("nothing to sync, yet not ready: %v", err)
	}
}
