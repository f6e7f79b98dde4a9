package controller

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// TestDecidedLogLineSaysWhy: the "decided" log line gives decide's reason
// in words, or, for an action that has none, its status message.
func TestDecidedLogLineSaysWhy(t *testing.T) {
	h := newHarness(t)
	var buf bytes.Buffer
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now },
		Log: slog.New(slog.NewTextHandler(&buf, nil))})
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	if err := h.st.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	h.reconcile("web")
	for _, want := range []string{
		`action=Start reason="container created but not started"`, // Why
		`action=Stop reason="spec deleted"`,                       // no Why: the message
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestDecideExitEventTypes: a run that completed is a Normal event; a
// zero exit that was the agent's stop is a Warning under its own reason.
func TestDecideExitEventTypes(t *testing.T) {
	never := testSpec(spec.RestartNever)
	always := testSpec(spec.RestartAlways)
	stopped := model.History{SpecHash: always.Hash,
		Stop: &model.StopIntent{ContainerID: "c1", Cause: model.StopUnhealthy, Grace: time.Second}}
	for _, tc := range []struct {
		name string
		d    Desired
		h    model.History
		typ  model.EventType
		rsn  string
	}{
		{"completed", never, model.History{SpecHash: never.Hash}, model.EventNormal, "Completed"},
		{"stopped by the agent with code 0", always, stopped, model.EventWarning, string(model.ReasonStoppedByAgent)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, Observed{Container: ctr(tc.d, "exited", exited(0, time.Second))}, tc.h, t0)
			if a.Kind == ActStart { // restarted first, recorded after
				a = decide(tc.d, Observed{Container: ctr(tc.d, "running")}, a.History, t0)
			}
			if a.Kind != ActRecordExit || len(a.Events) == 0 {
				t.Fatalf("decide = %v %+v, want the exit recorded", a.Kind, a.Events)
			}
			if e := a.Events[0]; e.Type != tc.typ || e.Reason != tc.rsn {
				t.Fatalf("event %s/%s (%s), want %s/%s", e.Type, e.Reason, e.Message, tc.typ, tc.rsn)
			}
		})
	}
}

// TestRefusedFailedJobStaysFailed: a job that failed for good keeps its
// Failed phase when the policy refuses its spec, as a succeeded one keeps
// Succeeded; one that has not finished shows Refused.
func TestRefusedFailedJobStaysFailed(t *testing.T) {
	d := testSpec(spec.RestartNever)
	d.Refused = spec.ErrorList{{Path: "spec.privileged", Rule: "allowPrivileged", Msg: "privileged containers are refused by policy"}}
	failed := model.History{SpecHash: d.Hash, Done: true, FinishedAt: t0}
	if a := decide(d, Observed{}, failed, t0); a.Kind != ActNone || a.Phase != model.PhaseFailed {
		t.Fatalf("failed job: %v/%s (%s), want None/Failed", a.Kind, a.Phase, a.Message)
	}
	if a := decide(d, Observed{}, model.History{SpecHash: d.Hash}, t0); a.Kind != ActNone || a.Phase != model.PhaseRefused {
		t.Fatalf("unfinished job: %v/%s, want None/Refused", a.Kind, a.Phase)
	}
}

// TestCreatedContainerOfARecordedRunWaitsOutItsBackoff: a container left
// "created" by a refused start, whose run is recorded, is restarted under
// its back-off like any exited one, not started at once as a fresh
// container is.
func TestCreatedContainerOfARecordedRunWaitsOutItsBackoff(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	created := ctr(d, "created")
	recorded := model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: t0.Add(-time.Second),
		ExitRecorded: true, Attempts: 1, Restarts: 1, NextTryAt: t0.Add(time.Minute)}
	if a := decide(d, Observed{Container: created}, recorded, t0); a.Kind != ActNone || a.Phase != model.PhaseBackoff {
		t.Fatalf("in back-off: %v/%s, want None/Backoff", a.Kind, a.Phase)
	}
	if a := decide(d, Observed{Container: created}, recorded, t0.Add(time.Minute)); a.Kind != ActStart {
		t.Fatalf("back-off over: %v/%s, want Start", a.Kind, a.Phase)
	}
	// A fresh container, of a run not recorded, starts at once.
	fresh := recorded
	fresh.LastContainerID = "c0"
	if a := decide(d, Observed{Container: created}, fresh, t0); a.Kind != ActStart {
		t.Fatalf("fresh created container: %v/%s, want Start", a.Kind, a.Phase)
	}
}

// TestRestartCommittedButNotMadeIsNotRecordedTwice: an agent killed between
// committing a restart in place (ExitRecorded=false) and the start call
// finds the container exited from the run it already recorded; it starts
// it without a second record or a second restart counted.
func TestRestartCommittedButNotMadeIsNotRecordedTwice(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	ran := t0.Add(-time.Minute)
	h := model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: ran, Attempts: 1, Restarts: 1}
	same := ctr(d, "exited", exited(1, time.Second, func(c *docker.Container) { c.StartedAt = ran }))
	a := decide(d, Observed{Container: same}, h, t0)
	if a.Kind != ActStart || a.History.PendingExit != nil || a.History.Restarts != 1 {
		t.Fatalf("same run: %v pending %+v restarts %d, want a Start, no record, restarts 1",
			a.Kind, a.History.PendingExit, a.History.Restarts)
	}
	// Positive control: a run after it is recorded and counted.
	next := ctr(d, "exited", exited(1, time.Second))
	if a := decide(d, Observed{Container: next}, h, t0); recordOf(t, a) == nil || a.History.Restarts != 2 {
		t.Fatalf("new run: %v restarts %d, want it recorded and counted", a.Kind, a.History.Restarts)
	}
}

// TestRunStartedOutsideTheAgentHasItsExitRecorded: a container whose exit
// was recorded runs again (someone started it by hand); its next exit is a
// new run, inspected and recorded, not taken for the recorded one.
func TestRunStartedOutsideTheAgentHasItsExitRecorded(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	h := model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: t0.Add(-time.Hour), ExitRecorded: true}
	running := ctr(d, "running", func(c *docker.Container) { c.StartedAt = t0.Add(-time.Minute) })
	a := decide(d, Observed{Container: running}, h, t0)
	if a.Kind != ActNone || a.History.ExitRecorded {
		t.Fatalf("running again: %v, ExitRecorded %v, want None with the record flag cleared", a.Kind, a.History.ExitRecorded)
	}
	if a := decide(d, Observed{Container: ctr(d, "exited")}, a.History, t0); a.Kind != ActInspect {
		t.Fatalf("its exit: %v, want Inspect, to record it", a.Kind)
	}
}

// TestDecideRunningWithAReplacementOrAStopIntent: a start-first replacement
// of the very definition that runs is removed; a stop the agent issued for
// the running container is finished; a stop intent of another container
// stops nothing.
func TestDecideRunningWithAReplacementOrAStopIntent(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	running := ctr(d, "running")
	intent := func(id string) model.History {
		return model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: id, Cause: model.StopUnhealthy, At: t0, Grace: time.Second}}
	}
	next := ctr(d, "running", func(c *docker.Container) { c.ID = "c2" })
	for _, tc := range []struct {
		name  string
		o     Observed
		h     model.History
		kind  ActionKind
		id    string
		cause model.StopCause
	}{
		{"replacement of the same definition", Observed{Container: running, Next: next}, model.History{SpecHash: d.Hash}, ActRemoveNext, "c2", ""},
		{"interrupted stop of it", Observed{Container: running}, intent("c1"), ActStop, "c1", model.StopUnhealthy},
		{"stop intent of another container", Observed{Container: running}, intent("c0"), ActNone, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(d, tc.o, tc.h, t0)
			if a.Kind != tc.kind || a.ContainerID != tc.id || a.Cause != tc.cause || a.Phase != model.PhaseRunning {
				t.Fatalf("decide = %v %s %s/%s (%s), want %v %s %s/Running", a.Kind, a.ContainerID, a.Cause, a.Phase, a.Message, tc.kind, tc.id, tc.cause)
			}
		})
	}
}

// TestAgentKillAfterGraceNeedsNoOOMNotice: a memory-limited container the
// agent stopped and killed after its grace exits 137 without the daemon's
// OOM notice; that exit is recorded at once, while one nobody stopped
// waits for the notice.
func TestAgentKillAfterGraceNeedsNoOOMNotice(t *testing.T) {
	d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.Resources.Memory = "16Mi" })
	killed := ctr(d, "exited", exited(137, time.Second))
	now := t0.Add(200 * time.Millisecond)
	stop := func(id string) model.History {
		return model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: id, Cause: model.StopUnhealthy, At: t0.Add(-time.Second), Grace: time.Second}}
	}
	for _, tc := range []struct {
		name string
		h    model.History
		kind ActionKind
	}{
		{"stopped by the agent", stop("c1"), ActRecordExit},
		{"a stop intent of another container", stop("c0"), ActNone},
		{"nobody stopped it", model.History{SpecHash: d.Hash}, ActNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(d, Observed{Container: killed}, tc.h, now)
			if a.Kind != tc.kind {
				t.Fatalf("decide = %v (%s) after %s, want %v", a.Kind, a.Message, a.RequeueAfter, tc.kind)
			}
			if want := oomNoticeWindow - 200*time.Millisecond; a.Kind == ActNone && a.RequeueAfter != want {
				t.Fatalf("waits %s for the OOM notice, want %s", a.RequeueAfter, want)
			}
		})
	}
}

// dec1Pending is the history of c1 restarted in place before the record of
// its run p: run from start for ran, exited code with reason.
func dec1Pending(d Desired, start time.Time, ran time.Duration, code int, reason model.ExitReason) model.History {
	p := model.ContainerExit{ContainerID: "c1", SpecName: "web", ExitCode: code, Reason: reason,
		StartedAt: start, FinishedAt: start.Add(ran)}
	return model.History{SpecHash: d.generation(), LastContainerID: "c1", LastStartedAt: start, PendingExit: &p, Attempts: 1, Restarts: 1}
}

// TestPendingRecordOfASIGKILLUnderAMemoryLimit: the record of a 137 exit
// completed after the restart takes an OOM notice that arrived for that
// run (even one that ran under a second) as an OOM kill, whether its
// reason was a signal or a kill from outside; without a notice it waits
// for one, while the restarted run goes on, until the window closes.
func TestPendingRecordOfASIGKILLUnderAMemoryLimit(t *testing.T) {
	d := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.Resources.Memory = "16Mi" })
	start := t0.Add(-time.Minute)
	finish := start.Add(500 * time.Millisecond)
	again := ctr(d, "running", func(c *docker.Container) { c.StartedAt = finish.Add(10 * time.Millisecond) })
	for _, tc := range []struct {
		name   string
		reason model.ExitReason
		oomAt  time.Time
		now    time.Time
		kind   ActionKind
		want   model.ExitReason
	}{
		{"signaled, notice during a short run", model.ReasonSignaled, finish, finish.Add(oomNoticeWindow + time.Second), ActRecordExit, model.ReasonOOMKilled},
		{"external kill, notice", model.ReasonExternal, finish, finish.Add(oomNoticeWindow + time.Second), ActRecordExit, model.ReasonOOMKilled},
		{"external kill, no notice yet", model.ReasonExternal, time.Time{}, finish.Add(200 * time.Millisecond), ActNone, ""},
		{"external kill, no notice in the window", model.ReasonExternal, time.Time{}, finish.Add(oomNoticeWindow + time.Second), ActRecordExit, model.ReasonExternal},
		{"grace expired, notice", model.ReasonGraceExpired, finish, finish.Add(oomNoticeWindow + time.Second), ActRecordExit, model.ReasonGraceExpired},
		{"grace expired, no notice yet", model.ReasonGraceExpired, time.Time{}, finish.Add(200 * time.Millisecond), ActRecordExit, model.ReasonGraceExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dec1Pending(d, start, 500*time.Millisecond, 137, tc.reason)
			a := decide(d, Observed{Container: again, OOMAt: tc.oomAt}, h, tc.now)
			if a.Kind != tc.kind {
				t.Fatalf("decide = %v/%s (%s), want %v", a.Kind, a.Phase, a.Message, tc.kind)
			}
			if a.Kind == ActNone {
				if want := oomNoticeWindow - 200*time.Millisecond; a.History.PendingExit == nil || a.RequeueAfter != want || a.Phase != model.PhaseRunning {
					t.Fatalf("waiting: pending %v, requeue %s, phase %s; want the record kept, %s, Running",
						a.History.PendingExit, a.RequeueAfter, a.Phase, want)
				}
				return
			}
			if a.Exit.Reason != tc.want || a.Exit.OOMKilled != (tc.oomAt != time.Time{}) {
				t.Fatalf("record %s OOMKilled %v, want %s", a.Exit.Reason, a.Exit.OOMKilled, tc.want)
			}
		})
	}
}

// TestPendingRecordWaitComesBeforeTheDeadline: while the record of the run
// before waits for its OOM notice, the spec comes back when the notice
// window closes, not only at the restarted run's activeDeadline.
func TestPendingRecordWaitComesBeforeTheDeadline(t *testing.T) {
	d := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) {
		c.Resources.Memory = "16Mi"
		c.ActiveDeadline = spec.Duration{Duration: time.Minute}
	})
	finish := t0.Add(-200 * time.Millisecond)
	again := ctr(d, "running", func(c *docker.Container) { c.StartedAt = finish.Add(10 * time.Millisecond) })
	h := dec1Pending(d, finish.Add(-time.Second), time.Second, 137, model.ReasonSignaled)
	a := decide(d, Observed{Container: again}, h, t0)
	if want := oomNoticeWindow - 200*time.Millisecond; a.Kind != ActNone || a.History.PendingExit == nil || a.RequeueAfter != want {
		t.Fatalf("decide = %v after %s, pending %v; want None after %s with the record pending", a.Kind, a.RequeueAfter, a.History.PendingExit, want)
	}
	// Without a record pending, the deadline sets when it comes back.
	if a := decide(d, Observed{Container: again}, model.History{SpecHash: d.generation()}, t0); a.RequeueAfter <= time.Minute-time.Second {
		t.Fatalf("no record pending: back after %s, want about a minute", a.RequeueAfter)
	}
}

// TestUnhealthyStopIsWrittenOnItsExit: the exit of a container the agent
// stopped for being unhealthy says so in its record; another stop, or an
// unhealthy stop of another container, adds nothing.
func TestUnhealthyStopIsWrittenOnItsExit(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	const note = "stopped by the agent: container was unhealthy"
	stop := func(id string, cause model.StopCause) model.History {
		return model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: id, Cause: cause, At: t0, Grace: time.Second}}
	}
	for _, tc := range []struct {
		name string
		h    model.History
		want bool
	}{
		{"unhealthy stop of it", stop("c1", model.StopUnhealthy), true},
		{"deadline stop of it", stop("c1", model.StopDeadline), false},
		{"unhealthy stop of another container", stop("c0", model.StopUnhealthy), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(d, Observed{Container: ctr(d, "exited", exited(143, time.Second))}, tc.h, t0)
			if got := strings.Contains(recordOf(t, a).Error, note); got != tc.want {
				t.Fatalf("record error %q: note %v, want %v", recordOf(t, a).Error, got, tc.want)
			}
		})
	}
}

// TestJobStoppedByTheAgentsShutdownRunsAgain: a job the agent stopped as it
// shut down has not finished: its exit is recorded and it starts again
// when the agent is back. Its exit after a shutdown stop of another
// container is its own end.
func TestJobStoppedByTheAgentsShutdownRunsAgain(t *testing.T) {
	d := testSpec(spec.RestartNever)
	stop := func(id string) model.History {
		return model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: id, Cause: model.StopShutdown, At: t0, Grace: time.Second}}
	}
	for _, tc := range []struct {
		name string
		h    model.History
		kind ActionKind
		done bool
	}{
		{"its own shutdown stop", stop("c1"), ActStart, false},
		{"a shutdown stop of another container", stop("c0"), ActRecordExit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(d, Observed{Container: ctr(d, "exited", exited(143, time.Second))}, tc.h, t0)
			if recordOf(t, a); a.Kind != tc.kind || a.History.Done != tc.done {
				t.Fatalf("decide = %v/%s done %v, want %v done %v", a.Kind, a.Phase, a.History.Done, tc.kind, tc.done)
			}
		})
	}
}
