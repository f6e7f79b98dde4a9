package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// commitCountWrites gives h a controller over a store that counts its
// commits, as an agent (re)started on h's state file would be.
func commitCountWrites(h *harness) *countingStore {
	cs := &countingStore{Store: h.st}
	h.c = New(h.rt, cs, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	return cs
}

// TestASettledSpecIsNotWrittenAgain: a pass over a spec whose container
// runs as desired writes nothing to the state file, in the agent that
// started it and in one restarted on the same file (which reads the stored
// status first).
func TestASettledSpecIsNotWrittenAgain(t *testing.T) {
	h := newHarness(t)
	cs := commitCountWrites(h)
	h.put("web", spec.RestartAlways, "tick")

	// Positive control: bringing the spec up is written.
	h.reconcile("web")
	if cs.commits.Load() == 0 || h.status("web").Phase != model.PhaseRunning {
		t.Fatalf("first pass: %d commits, status %+v; want it written and Running", cs.commits.Load(), h.status("web"))
	}

	h.now = h.now.Add(time.Minute)
	before := cs.commits.Load()
	h.reconcile("web")
	if n := cs.commits.Load() - before; n != 0 {
		t.Fatalf("a pass over a settled spec made %d commits, want none", n)
	}

	// A restarted agent: nothing cached, the status is read from the file.
	cs = commitCountWrites(h)
	h.reconcile("web")
	if cs.commits.Load() != 0 || h.rt.count("create") != 1 || h.rt.count("start") != 1 {
		t.Fatalf("restarted agent: %d commits, calls %v; want none and the container kept", cs.commits.Load(), h.rt.calls())
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning {
		t.Fatalf("status after the restarted agent's pass = %+v", st)
	}
}

// TestHistoryIsWrittenBeforeADockerCallOnlyWhenItChanged: the history that
// a stop, start or removal depends on is written first unless the file
// holds it already; a change to any part of a stop intent, a pull back-off
// or a pending exit is a change to write.
func TestHistoryIsWrittenBeforeADockerCallOnlyWhenItChanged(t *testing.T) {
	base := func() model.History {
		return model.History{SpecHash: "h1", Attempts: 1,
			Stop: &model.StopIntent{ContainerID: "c1", Cause: model.StopDeleted, At: t0, Grace: time.Second},
			Pull: &model.PullBackoff{Image: "reconciler/box:1", Failures: 2, Delay: 20 * time.Second,
				NextTryAt: t0.Add(20 * time.Second), Message: "manifest unknown"},
			PendingExit: &model.ContainerExit{ContainerID: "c1", StartedAt: t0, Reason: model.ReasonError, ExitCode: 2},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*model.History)
	}{
		{"stop intent's grace", func(h *model.History) { h.Stop.Grace = 2 * time.Second }},
		{"pulled image", func(h *model.History) { h.Pull.Image = "reconciler/box:2" }},
		{"pull failures", func(h *model.History) { h.Pull.Failures = 3 }},
		{"pull delay", func(h *model.History) { h.Pull.Delay = 40 * time.Second }},
		{"pull message", func(h *model.History) { h.Pull.Message = "unauthorized" }},
		{"pending exit's container", func(h *model.History) { h.PendingExit.ContainerID = "c2" }},
		{"pending exit's reason", func(h *model.History) { h.PendingExit.Reason = model.ReasonSignaled }},
		{"pending exit's oom kill", func(h *model.History) { h.PendingExit.OOMKilled = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			cs := commitCountWrites(h)
			if err := h.c.commitHistory("web", base()); err != nil || cs.commits.Load() != 1 {
				t.Fatalf("first history: err %v, %d commits; want it written", err, cs.commits.Load())
			}
			// The same history, in fresh values: the file holds it already.
			if err := h.c.commitHistory("web", base()); err != nil || cs.commits.Load() != 1 {
				t.Fatalf("same history again: err %v, %d commits; want no write", err, cs.commits.Load())
			}
			changed := base()
			tc.change(&changed)
			if err := h.c.commitHistory("web", changed); err != nil || cs.commits.Load() != 2 {
				t.Fatalf("changed history: err %v, %d commits; want one more write", err, cs.commits.Load())
			}
			stored, err := h.st.GetHistory("web")
			if err != nil {
				t.Fatal(err)
			}
			if !historyEqual(stored, changed) || historyEqual(stored, base()) {
				t.Fatalf("stored history = %+v; want the changed one", stored)
			}
		})
	}
}

// commitConvergence is the convergence histogram's sample count and sum.
func commitConvergence(t *testing.T, h *harness) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.c.m.Convergence.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// commitWantConverged reconciles name into phase and wants one convergence
// sample of secs.
func commitWantConverged(t *testing.T, h *harness, name string, phase model.Phase, secs float64) {
	t.Helper()
	h.reconcile(name)
	if st := h.status(name); st.Phase != phase {
		t.Fatalf("status %+v; want %s", st, phase)
	}
	if n, sum := commitConvergence(t, h); n != 1 || sum != secs {
		t.Fatalf("convergence: %d samples, sum %gs; want one of %gs", n, sum, secs)
	}
}

// TestConvergenceIsMeasuredWhenTheSpecRunsOrSucceeds: the time from a
// desired-state change is observed once, when the spec first runs as
// desired (a service) or has succeeded (a job that ends at once), not
// while it backs off.
func TestConvergenceIsMeasuredWhenTheSpecRunsOrSucceeds(t *testing.T) {
	t.Run("service after a back-off", func(t *testing.T) {
		h := newHarness(t)
		h.rt.StartFunc = func(string) error { return errors.New("exec: not found") }
		h.putSpec("web", func(c *spec.ContainerSpec) {
			c.Backoff = spec.Backoff{Initial: spec.Duration{Duration: time.Second}}
		})
		h.c.DesiredChanged("web")
		h.reconcile("web")
		if st := h.status("web"); st.Phase != model.PhaseBackoff {
			t.Fatalf("status %+v; want Backoff", st)
		}
		if n, _ := commitConvergence(t, h); n != 0 {
			t.Fatalf("%d convergence samples while backing off, want none", n)
		}
		h.rt.StartFunc = nil
		h.now = h.now.Add(1500 * time.Millisecond)
		commitWantConverged(t, h, "web", model.PhaseRunning, 1.5)
	})
	t.Run("job that finished before the change was seen", func(t *testing.T) {
		h := newHarness(t)
		h.put("job", spec.RestartNever, "exit")
		h.reconcile("job")
		h.rt.exit("reconciler-job", 0)
		// The spec is written again (unchanged) after the job ended: the
		// next pass finds it Succeeded, which is the desired state.
		h.c.DesiredChanged("job")
		h.now = h.now.Add(2 * time.Second)
		commitWantConverged(t, h, "job", model.PhaseSucceeded, 2)
	})
}

// commitBlockedStop holds every Stop until release is closed, as a
// container that takes its grace period to exit.
type commitBlockedStop struct {
	*fakeRuntime
	release chan struct{}
}

func (r *commitBlockedStop) Stop(ctx context.Context, id string, grace time.Duration) error {
	<-r.release
	return r.fakeRuntime.Stop(ctx, id, grace)
}

// TestADeletedSpecShowsItsContainerStopping: while the container of a
// deleted spec takes its grace period, a pass over the spec says so in its
// status; the state goes when the container does.
func TestADeletedSpecShowsItsContainerStopping(t *testing.T) {
	h := newHarness(t)
	rt := &commitBlockedStop{fakeRuntime: h.rt, release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(rt.release) })
	defer release() // a failed check must not leave the stop blocked
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	if err := h.st.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(time.Second)
	if _, err := h.c.Reconcile(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if st := h.status("web"); st.Message != "spec deleted" {
		t.Fatalf("status after the stop was issued = %+v", st)
	}
	h.now = h.now.Add(time.Second)
	h.c.cache.dirty("web")
	if _, err := h.c.Reconcile(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	stopping := h.status("web")
	release()
	h.c.wg.Wait()
	if st := stopping; st.Phase != model.PhaseRunning || st.Message != "stopping" {
		t.Fatalf("status while the container stops = %+v; want Running, stopping", st)
	}
	h.reconcile("web")
	if _, err := h.st.GetStatus("web"); !errors.Is(err, store.ErrNotFound) || h.rt.byName("reconciler-web") != nil {
		t.Fatalf("after the stop: status err %v, container %v; want both gone", err, h.rt.byName("reconciler-web"))
	}
}

// TestStatusShowsTheLatestExit: the status's last exit is the latest run's,
// and a status change that records no exit keeps it.
func TestStatusShowsTheLatestExit(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "crash")
	h.reconcile("web")
	for _, code := range []int{2, 3} {
		h.now = h.now.Add(time.Minute)
		h.rt.exit("reconciler-web", code)
		h.reconcile("web")
		if st := h.status("web"); st.LastExit == nil || st.LastExit.ExitCode != code {
			t.Fatalf("after exit %d: status %+v, last exit %+v", code, st, st.LastExit)
		}
	}
	// The second crash backs off; the restart after it changes the status
	// and records no exit.
	if st := h.status("web"); st.Phase != model.PhaseBackoff {
		t.Fatalf("after the second crash: %+v; want Backoff", st)
	}
	h.now = h.now.Add(time.Second)
	h.reconcile("web")
	st := h.status("web")
	if st.Phase != model.PhaseRunning || st.LastExit == nil || st.LastExit.ExitCode != 3 {
		t.Fatalf("status after the restart = %+v, last exit %+v; want Running, the exit 3 kept", st, st.LastExit)
	}
}

// TestFollowersSeeTheEventsOfAReconcile: what a reconcile commits reaches
// the event followers (the API's watch) when the commit is done.
func TestFollowersSeeTheEventsOfAReconcile(t *testing.T) {
	h := newHarness(t)
	rec := events.NewRecorder(h.st, slog.New(slog.DiscardHandler))
	h.c = New(h.rt, h.st, rec, Options{Instance: "test", Now: func() time.Time { return h.now }})
	ch, cancel := rec.Subscribe("web", 0)
	defer cancel()
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	stored := h.events("web", "Started")
	if len(stored) != 1 {
		t.Fatalf("stored Started events = %+v, want one", stored)
	}
	for {
		select {
		case ev := <-ch:
			if ev.Reason == "Started" {
				if ev.Seq != stored[0].Seq {
					t.Fatalf("followed %+v, stored %+v", ev, stored[0])
				}
				return
			}
		default:
			t.Fatal("the Started event was committed but no follower saw it")
		}
	}
}

// TestBackoffStatusAndPhaseGauge: a spec in back-off says in its status
// when it tries next, and the specs-by-phase gauge moves with the phase.
func TestBackoffStatusAndPhaseGauge(t *testing.T) {
	h := newHarness(t)
	gauge := func(p model.Phase) float64 { return testutil.ToFloat64(h.c.m.Specs.WithLabelValues(string(p))) }
	h.rt.StartFunc = func(string) error { return errors.New("exec: not found") }
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Backoff = spec.Backoff{Initial: spec.Duration{Duration: time.Second}}
	})
	h.reconcile("web")
	st := h.status("web")
	if st.Phase != model.PhaseBackoff || !st.NextTryAt.Equal(h.now.Add(time.Second)) {
		t.Fatalf("status %+v; want Backoff with the next try in 1s", st)
	}
	if gauge(model.PhaseBackoff) != 1 || gauge(model.PhaseRunning) != 0 || gauge(model.PhasePending) != 0 {
		t.Fatalf("gauge: Backoff %g, Running %g, Pending %g; want 1, 0, 0",
			gauge(model.PhaseBackoff), gauge(model.PhaseRunning), gauge(model.PhasePending))
	}

	h.rt.StartFunc = nil
	h.now = h.now.Add(time.Second)
	h.reconcile("web")
	if st := h.status("web"); st.Phase != model.PhaseRunning || !st.NextTryAt.IsZero() {
		t.Fatalf("status %+v; want Running with no next try", st)
	}
	if gauge(model.PhaseBackoff) != 0 || gauge(model.PhaseRunning) != 1 || gauge(model.PhasePending) != 0 {
		t.Fatalf("gauge: Backoff %g, Running %g, Pending %g; want 0, 1, 0",
			gauge(model.PhaseBackoff), gauge(model.PhaseRunning), gauge(model.PhasePending))
	}
}

var _ docker.Runtime = (*commitBlockedStop)(nil)
