package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// waitsRuntime is the fake daemon with a Stop that answers stopErr, and a
// record of what each stop and full listing was given. As the daemon's
// client does, a call whose context is already over fails at once.
type waitsRuntime struct {
	*fakeRuntime
	stopErr error
	waitErr error // when set, every Wait fails with it at once

	mu       sync.Mutex
	stops    []waitsStop
	listLeft []time.Duration // time left on each full listing's context
}

type waitsStop struct {
	id          string
	grace, left time.Duration // left: time left on the stop's context
}

// waitsLeft is how long ctx has before its deadline; -1 when it has none.
func waitsLeft(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	return time.Until(dl)
}

func (r *waitsRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	r.stops = append(r.stops, waitsStop{id: id, grace: grace, left: waitsLeft(ctx)})
	err := r.stopErr
	r.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	return r.fakeRuntime.Stop(ctx, id, grace)
}

func (r *waitsRuntime) Wait(ctx context.Context, id string) (model.ContainerExit, error) {
	r.mu.Lock()
	err := r.waitErr
	r.mu.Unlock()
	if err != nil {
		return model.ContainerExit{}, err
	}
	return r.fakeRuntime.Wait(ctx, id)
}

func (r *waitsRuntime) List(ctx context.Context, sel map[string]string) ([]docker.Container, error) {
	if _, one := sel[docker.LabelSpec]; !one {
		r.mu.Lock()
		r.listLeft = append(r.listLeft, waitsLeft(ctx))
		r.mu.Unlock()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r.fakeRuntime.List(ctx, sel)
}

func (r *waitsRuntime) recorded() ([]waitsStop, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]waitsStop(nil), r.stops...), append([]time.Duration(nil), r.listLeft...)
}

// waitsHarness is a harness whose controller talks to a waitsRuntime and
// logs into a logBuffer.
func waitsHarness(t *testing.T) (*harness, *waitsRuntime, *logBuffer) {
	h := newHarness(t)
	rt := &waitsRuntime{fakeRuntime: h.rt}
	lg := &logBuffer{}
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now },
		Log: slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return h, rt, lg
}

// While the agent runs, each running container has a Wait open: its exit
// queues the spec without any event, and the Wait's word that the process
// died is what tells a crash with code 255 from a container lost with the
// daemon. Without the Wait (and without the event) that exit reads Lost;
// a Wait cut short by the agent stopping queues nothing.
func TestAnExitSeenByItsWaitIsQueuedAndNotReadAsLost(t *testing.T) {
	for _, tc := range []struct {
		name       string
		watching   bool
		cut        bool // the agent stops before the exit
		wantQueued int
		wantReason model.ExitReason
	}{
		{"the agent runs: the Wait sees the exit", true, false, 1, model.ReasonError},
		{"the agent stopped: the Wait was cut", true, true, 0, model.ReasonLost},
		{"nothing watches: no die was seen", false, false, 0, model.ReasonLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("job", spec.RestartNever, "crash")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.watching {
				h.c.runCtx = ctx // as Run sets it
			}
			h.c.cache.dirty("job")
			if _, err := h.c.Reconcile(ctx, "job"); err != nil {
				t.Fatal(err)
			}
			if h.rt.state(ContainerName("job")) != "running" || h.c.queue.Len() != 0 {
				t.Fatalf("after the create: state %q, %d queued; want it running and nothing queued",
					h.rt.state(ContainerName("job")), h.c.queue.Len())
			}
			if tc.cut {
				cancel()
				h.c.wg.Wait()
			}
			h.rt.exit(ContainerName("job"), 255)
			h.c.wg.Wait() // the Wait, if one is open, has answered
			if got := h.c.queue.Len(); got != tc.wantQueued {
				t.Fatalf("after the exit %d names queued, want %d", got, tc.wantQueued)
			}
			if tc.wantQueued > 0 {
				if name, _ := h.c.queue.Get(); name != "job" {
					t.Fatalf("queued %q, want job", name)
				}
			}
			h.now = h.now.Add(time.Second)
			h.reconcile("job")
			exits, err := h.st.Exits("job", 0)
			if err != nil || len(exits) != 1 || exits[0].Reason != tc.wantReason {
				t.Fatalf("exits %+v (%v); want one exit read as %s", exits, err, tc.wantReason)
			}
		})
	}
}

// A Wait that ends in an error other than the container being gone is
// logged (at debug) and still queues the spec, so that a re-list finds
// what happened; an exit, or a container already gone, logs nothing.
func TestOnlyAWaitThatFailsIsLogged(t *testing.T) {
	const msg = "wait ended with an error"
	for _, tc := range []struct {
		name    string
		waitErr error
		logged  bool
	}{
		{"the daemon fails the wait", errors.New("wait for container: connection reset"), true},
		{"the container is gone", fmt.Errorf("wait for container: %w", docker.ErrNotFound), false},
		{"the container exits", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rt, lg := waitsHarness(t)
			h.put("job", spec.RestartNever, "crash")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h.c.runCtx = ctx
			rt.mu.Lock()
			rt.waitErr = tc.waitErr
			rt.mu.Unlock()
			h.c.cache.dirty("job")
			if _, err := h.c.Reconcile(ctx, "job"); err != nil {
				t.Fatal(err)
			}
			if tc.waitErr == nil {
				h.rt.exit(ContainerName("job"), 1)
			}
			h.c.wg.Wait()
			if got := h.c.queue.Len(); got != 1 {
				t.Fatalf("%d names queued after the Wait ended, want 1", got)
			}
			if got := strings.Contains(lg.String(), msg); got != tc.logged {
				t.Fatalf("log has %q: %v, want %v; log:\n%s", msg, got, tc.logged, lg.String())
			}
		})
	}
}

// A container stopped off the worker (here: its spec was deleted) is
// given its whole grace period and a margin before the stop is abandoned;
// the stop counts as a container operation unless it failed (a container
// already gone is stopped), and a failure is logged.
func TestAStopOffTheWorkerHasItsGraceAndIsCountedUnlessItFailed(t *testing.T) {
	const grace = 10 * time.Second
	for _, tc := range []struct {
		name      string
		stopErr   error
		wantCount float64
		wantWarn  bool
	}{
		{"stopped", nil, 1, false},
		{"already gone", fmt.Errorf("stop container: %w", docker.ErrNotFound), 1, false},
		{"the daemon failed", errors.New("stop container: driver failed"), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rt, lg := waitsHarness(t)
			h.putSpec("web", func(c *spec.ContainerSpec) { c.TerminationGracePeriod = spec.Duration{Duration: grace} })
			h.reconcile("web")
			if h.rt.state(ContainerName("web")) != "running" {
				t.Fatalf("web is %q, want running", h.rt.state(ContainerName("web")))
			}
			rt.stopErr = tc.stopErr
			if err := h.st.DeleteSpec("web"); err != nil {
				t.Fatal(err)
			}
			h.now = h.now.Add(time.Second)
			h.reconcile("web") // waits for the stop it started

			stops, _ := rt.recorded()
			if len(stops) != 1 || stops[0].grace != grace {
				t.Fatalf("stops %+v; want one with the grace %s", stops, grace)
			}
			// Measured on the wall clock the stop's deadline is set from:
			// grace + 30s, less the moments between setting and reading it.
			if left := stops[0].left; left <= grace+20*time.Second || left > grace+30*time.Second {
				t.Fatalf("the stop had %s before it was abandoned, want the grace %s and 30s", left, grace)
			}
			if got := testutil.ToFloat64(h.c.m.ContainerOperations.WithLabelValues("stop")); got != tc.wantCount {
				t.Fatalf("stop operations counted %v, want %v", got, tc.wantCount)
			}
			if warned := strings.Contains(lg.String(), "stop failed"); warned != tc.wantWarn {
				t.Fatalf("logged a failed stop: %v, want %v; log:\n%s", warned, tc.wantWarn, lg)
			}
		})
	}
}

// On shutdown with StopOnExit (Run calls stopAll) every running container
// is stopped with its spec's grace period as it is now, not the one it was
// created with, with minutes for the listing and the stops; a stop that
// fails is logged, one that succeeds is not.
func TestShutdownStopsWithTheSpecsGraceAndLogsOnlyAFailedStop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stopErr  error
		wantWarn bool
	}{
		{"stopped", nil, false},
		{"the daemon failed", errors.New("stop container: driver failed"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rt, lg := waitsHarness(t)
			h.putSpec("web", func(c *spec.ContainerSpec) { c.TerminationGracePeriod = spec.Duration{Duration: 10 * time.Second} })
			h.reconcile("web")
			id := h.rt.byName(ContainerName("web")).ID
			// The spec's grace changed since the container was created.
			h.putSpec("web", func(c *spec.ContainerSpec) { c.TerminationGracePeriod = spec.Duration{Duration: 45 * time.Second} })
			rt.stopErr = tc.stopErr

			h.c.stopAll()

			stops, lists := rt.recorded()
			if len(lists) != 1 || lists[0] <= 4*time.Minute || lists[0] > 5*time.Minute {
				t.Fatalf("full listings had %v left; want one, with 5 minutes", lists)
			}
			if len(stops) != 1 || stops[0].id != id || stops[0].grace != 45*time.Second {
				t.Fatalf("stops %+v; want %s stopped with the spec's grace 45s", stops, id)
			}
			if left := stops[0].left; left <= 4*time.Minute || left > 5*time.Minute {
				t.Fatalf("the shutdown stop had %s before it was abandoned, want 5 minutes", left)
			}
			if want := "exited"; tc.stopErr == nil && h.rt.state(id) != want {
				t.Fatalf("web is %q after the shutdown, want %s", h.rt.state(id), want)
			}
			if warned := strings.Contains(lg.String(), "stop on shutdown failed"); warned != tc.wantWarn {
				t.Fatalf("logged a failed shutdown stop: %v, want %v; log:\n%s", warned, tc.wantWarn, lg)
			}
		})
	}
}
