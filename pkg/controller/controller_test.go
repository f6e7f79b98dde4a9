package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// runController runs c until the test ends.
func runController(t *testing.T, c *Controller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestStopOnExitStopsAsTheAgentsOwnStop: with StopOnExit, Run stops the
// running containers when it returns, and the next agent records that
// exit as the agent's stop, not as a failed run: no restart counted, no
// back-off, started again at once.
func TestStopOnExitStopsAsTheAgentsOwnStop(t *testing.T) {
	h := newHarness(t)
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, StopOnExit: true, Resync: time.Hour})
	h.put("web", spec.RestartAlways, "sleep")
	stop := runController(t, h.c)
	waitFor(t, "web running", func() bool { return h.rt.state("reconciler-web") == "running" })
	stop()
	if h.rt.count("stop") != 1 || h.rt.state("reconciler-web") != "exited" {
		t.Fatalf("after Run returned: calls %v, state %q; want the container stopped", h.rt.calls(), h.rt.state("reconciler-web"))
	}

	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].Reason != model.ReasonStoppedByAgent {
		t.Fatalf("exits = %+v; want the shutdown stop recorded as the agent's", exits)
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.Restarts != 0 || h.rt.count("start") != 2 {
		t.Fatalf("status %+v, calls %v; want it running again with no restart counted", st, h.rt.calls())
	}
}

// TestExpiredFileJobKeepsItsStatus: at ttlAfterFinished a job from the API
// is deleted (spec and status), a job from a spec file only loses its
// container: the file still asks for the spec.
func TestExpiredFileJobKeepsItsStatus(t *testing.T) {
	for _, kind := range []store.SourceKind{store.SourceAPI, store.SourceFile} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t)
			s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
				Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"exit"}, RestartPolicy: spec.RestartNever,
					TTLAfterFinished: spec.Duration{Duration: time.Hour}}}
			s.Default()
			if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: kind, Path: "/specs/job.yaml"}}); err != nil {
				t.Fatal(err)
			}
			h.reconcile("job")
			h.rt.exit("reconciler-job", 0)
			h.now = h.now.Add(time.Second)
			h.reconcile("job")
			if st := h.status("job"); st.Phase != model.PhaseSucceeded || h.rt.state("reconciler-job") != "exited" {
				t.Fatalf("before the TTL: %+v", st)
			}
			h.now = h.now.Add(time.Hour)
			h.reconcile("job")
			if h.rt.state("reconciler-job") != "" {
				t.Fatal("container kept after the TTL")
			}
			_, specErr := h.st.GetSpec("job")
			st, statusErr := h.st.GetStatus("job")
			if kind == store.SourceAPI {
				if !errors.Is(specErr, store.ErrNotFound) || !errors.Is(statusErr, store.ErrNotFound) {
					t.Fatalf("API job after TTL: spec %v, status %v; want both gone", specErr, statusErr)
				}
				return
			}
			if specErr != nil || statusErr != nil || st.Phase != model.PhaseSucceeded || st.ContainerID != "" {
				t.Fatalf("file job after TTL: spec %v, status %+v (%v); want the spec and its Succeeded status kept", specErr, st, statusErr)
			}
		})
	}
}

// streamRuntime cuts the first event subscription after one event and
// records, in order, every subscription (with its since) and every full
// listing.
type streamRuntime struct {
	*fakeRuntime
	eventAt time.Time
	mu      sync.Mutex
	log     []string
	since   []time.Time
}

func (r *streamRuntime) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *streamRuntime) List(ctx context.Context, sel map[string]string) ([]docker.Container, error) {
	if _, one := sel[docker.LabelSpec]; !one {
		r.note("list")
	}
	return r.fakeRuntime.List(ctx, sel)
}

func (r *streamRuntime) Events(ctx context.Context, since time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	r.mu.Lock()
	r.log = append(r.log, "subscribe")
	r.since = append(r.since, since)
	first := len(r.since) == 1
	r.mu.Unlock()
	evs, errs := make(chan docker.Event), make(chan error, 1)
	go func() {
		if first {
			select {
			case evs <- docker.Event{Action: "start", ContainerID: "c9", Time: r.eventAt}:
			case <-ctx.Done():
			}
			errs <- errors.New("stream cut")
			return
		}
		<-ctx.Done()
		errs <- ctx.Err()
	}()
	return evs, errs
}

// TestEventStreamResubscribesWithSinceAndRelists: a cut stream is
// subscribed to again from the last event's time, and every subscription
// is followed by a full listing (events in the gap are lost otherwise).
func TestEventStreamResubscribesWithSinceAndRelists(t *testing.T) {
	h := newHarness(t)
	rt := &streamRuntime{fakeRuntime: h.rt, eventAt: t0.Add(42 * time.Second)}
	c := New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Resync: time.Hour})
	runController(t, c)
	waitFor(t, "a second subscription and a listing after it", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return len(rt.since) == 2 && rt.log[len(rt.log)-1] == "list"
	})
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.since[0].IsZero() || !rt.since[1].Equal(rt.eventAt) {
		t.Fatalf("subscribed since %v; want now, then the last event's time %v", rt.since, rt.eventAt)
	}
	for i, op := range rt.log {
		if op == "subscribe" && (i+1 == len(rt.log) || rt.log[i+1] != "list") {
			t.Fatalf("calls %v: a subscription not followed by a full listing", rt.log)
		}
	}
}

// stuckRuntime holds every create until released.
type stuckRuntime struct {
	*fakeRuntime
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	lists   int
}

func (r *stuckRuntime) Create(ctx context.Context, req docker.CreateRequest) (string, error) {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	<-r.release
	return r.fakeRuntime.Create(ctx, req)
}

func (r *stuckRuntime) List(ctx context.Context, sel map[string]string) ([]docker.Container, error) {
	if _, one := sel[docker.LabelSpec]; !one {
		r.mu.Lock()
		r.lists++
		r.mu.Unlock()
	}
	return r.fakeRuntime.List(ctx, sel)
}

func (r *stuckRuntime) fullLists() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lists
}

// TestStuckWorkersMakeNoProgress: while every worker is stuck in a
// reconcile, the resync ticker goes on but is no progress (/healthz and
// the watchdog read LastProgress); once the worker is free, it is.
func TestStuckWorkersMakeNoProgress(t *testing.T) {
	h := newHarness(t)
	rt := &stuckRuntime{fakeRuntime: h.rt, entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Workers: 1, Resync: 5 * time.Millisecond})
	h.put("web", spec.RestartAlways, "sleep")
	runController(t, c)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(rt.release) }) }
	t.Cleanup(release) // before Run is stopped: it waits for its workers
	<-rt.entered
	stuckSince := c.LastProgress()
	lists := rt.fullLists()
	// Positive control of the ticker: resyncs do happen meanwhile.
	waitFor(t, "three resyncs", func() bool { return rt.fullLists() >= lists+3 })
	if got := c.LastProgress(); !got.Equal(stuckSince) {
		t.Fatalf("progress moved to %v while the only worker was stuck (since %v)", got, stuckSince)
	}
	release()
	waitFor(t, "progress once the worker is free", func() bool { return c.LastProgress().After(stuckSince) })
}
