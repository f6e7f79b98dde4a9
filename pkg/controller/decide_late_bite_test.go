package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// TestBackoffResetsAfterARunOfExactlyResetAfter: a run that lasted
// resetAfter, to the nanosecond, counts as healthy and starts the crash
// loop's back-off again; one a millisecond shorter does not.
func TestBackoffResetsAfterARunOfExactlyResetAfter(t *testing.T) {
	d := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) {
		c.Backoff = spec.Backoff{ResetAfter: spec.Duration{Duration: time.Minute}}
	})
	// Three restarts so far: the next delay would be 4s.
	h := model.History{SpecHash: d.Hash, Attempts: 3, Restarts: 3, LastContainerID: "c0"}
	for _, tc := range []struct {
		ran      time.Duration
		delay    time.Duration
		attempts int
	}{
		{time.Minute - time.Millisecond, 4 * time.Second, 4},
		{time.Minute, 0, 1},
	} {
		got, delay := crash(t, d, h, t0, tc.ran)
		if delay != tc.delay || got.Attempts != tc.attempts || got.Restarts != 4 {
			t.Errorf("a run of %s: delay %s, attempts %d, restarts %d; want %s, %d, 4",
				tc.ran, delay, got.Attempts, got.Restarts, tc.delay, tc.attempts)
		}
	}
}

// TestFirstFailureIsRetriedAtOnceWithoutBackOff: the first restart of a
// crash loop is immediate, so the spec is Pending, with no back-off
// status or BackOff event; the second failure is what backs off.
func TestFirstFailureIsRetriedAtOnceWithoutBackOff(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	// A start the daemon refused: recorded first, then a fresh container.
	refusedStart := ctr(d, "exited", exited(128, 0, func(c *docker.Container) { c.Error = "failed to create endpoint" }))
	for _, tc := range []struct {
		name     string
		c        *docker.Container
		attempts int
		kind     ActionKind
		phase    model.Phase
		message  string
		events   string
	}{
		{"first crash: started again at once", ctr(d, "exited", exited(1, time.Second)), 0, ActStart, model.PhasePending, "", ""},
		{"first refused start: recorded, retried at once", refusedStart, 0, ActRecordExit, model.PhasePending, "",
			"Error"},
		{"second refused start: backs off", refusedStart, 1, ActRecordExit, model.PhaseBackoff, "back-off 1s restarting failed container",
			"Error,BackOff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := model.History{SpecHash: d.Hash, Attempts: tc.attempts, Restarts: tc.attempts}
			a := decide(d, Observed{Container: tc.c}, h, t0)
			var evs []string
			for _, n := range a.Events {
				evs = append(evs, n.Reason)
			}
			if a.Kind != tc.kind || a.Phase != tc.phase || a.Message != tc.message || strings.Join(evs, ",") != tc.events {
				t.Fatalf("decide = %v/%s %q events %v; want %v/%s %q events %s",
					a.Kind, a.Phase, a.Message, evs, tc.kind, tc.phase, tc.message, tc.events)
			}
		})
	}
}

// TestRemovalOfAnExitedContainerSaysWhy: the log line of the removal of a
// container whose run is recorded tells a deleted spec from a changed one.
func TestRemovalOfAnExitedContainerSaysWhy(t *testing.T) {
	old := testSpec(spec.RestartNever)
	changed := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.Args = []string{"tick"} })
	h := model.History{LastContainerID: "c1", LastStartedAt: t0.Add(-time.Second), ExitRecorded: true}
	for _, tc := range []struct {
		d   Desired
		why string
	}{{Desired{}, "spec deleted"}, {changed, "spec changed"}} {
		a := decide(tc.d, Observed{Container: ctr(old, "exited", exited(0, time.Second))}, h, t0)
		if a.Kind != ActRemove || a.why() != tc.why {
			t.Errorf("decide = %v (%q), want a removal because %q", a.Kind, a.why(), tc.why)
		}
	}
}

// TestClassifyExitAtTheHighestSignal: 128+64 (SIGRTMAX) is still a
// signal; 193 is the process's own code.
func TestClassifyExitAtTheHighestSignal(t *testing.T) {
	d := testSpec(spec.RestartNever)
	for code, want := range map[int]model.ExitReason{192: model.ReasonSignaled, 193: model.ReasonError} {
		a := decide(d, Observed{Container: ctr(d, "exited", exited(code, time.Second))}, model.History{SpecHash: d.Hash}, t0)
		if rec := recordOf(t, a); rec.Reason != want {
			t.Errorf("exit %d: reason %s, want %s", code, rec.Reason, want)
		}
	}
}

// TestStopOfADeletedSpecUsesTheGraceOnTheContainer: with the spec gone,
// the stop grace is the one the container was created with (its label),
// or the default when the label is missing or unreadable.
func TestStopOfADeletedSpecUsesTheGraceOnTheContainer(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	for _, tc := range []struct {
		label string
		want  time.Duration
	}{{"3s", 3 * time.Second}, {"", defaultGrace}, {"soon", defaultGrace}} {
		c := ctr(d, "running", func(c *docker.Container) {
			if tc.label != "" {
				c.Labels[labelGrace] = tc.label
			}
		})
		a := decide(Desired{}, Observed{Container: c}, model.History{}, t0)
		if a.Kind != ActStop || a.Grace != tc.want || a.History.Stop == nil || a.History.Stop.Grace != tc.want {
			t.Errorf("label %q: %v with grace %s (intent %+v), want a stop with grace %s", tc.label, a.Kind, a.Grace, a.History.Stop, tc.want)
		}
	}
}

// TestUnhealthyStopIsNamedInTheExitError: the record of a run the agent
// stopped as unhealthy says so, after the daemon's own error if it gave
// one, and with nothing before it if it did not.
func TestUnhealthyStopIsNamedInTheExitError(t *testing.T) {
	d := testSpec(spec.RestartNever)
	const stopped = "stopped by the agent: container was unhealthy"
	h := model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: "c1", Cause: model.StopUnhealthy, Grace: time.Second}}
	for daemon, want := range map[string]string{"": stopped, "io error": "io error; " + stopped} {
		c := ctr(d, "exited", exited(143, time.Second, func(c *docker.Container) { c.Error = daemon }))
		if rec := recordOf(t, decide(d, Observed{Container: c}, h, t0)); rec.Error != want {
			t.Errorf("daemon error %q: recorded error %q, want %q", daemon, rec.Error, want)
		}
	}
}
