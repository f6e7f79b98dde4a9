package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testSpec(policy spec.RestartPolicy, mod ...func(*spec.ContainerSpec)) Desired {
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer,
		Metadata: spec.Metadata{Name: "web"},
		Spec:     spec.ContainerSpec{Image: "reconciler/box:latest", RestartPolicy: policy}}
	for _, m := range mod {
		m(&s.Spec)
	}
	s.Default()
	return Desired{Spec: s, Hash: s.Hash()}
}

func ctr(d Desired, state string, mod ...func(*docker.Container)) *docker.Container {
	c := &docker.Container{ID: "c1", Name: ContainerName("web"), State: state,
		Labels: map[string]string{docker.LabelSpec: "web", docker.LabelSpecHash: d.Hash}}
	for _, m := range mod {
		m(c)
	}
	return c
}

// exited is an inspected container that ran for ran and exited with code.
func exited(code int, ran time.Duration, mod ...func(*docker.Container)) func(*docker.Container) {
	return func(c *docker.Container) {
		c.Inspected, c.ExitCode = true, code
		c.StartedAt, c.FinishedAt = t0.Add(-ran), t0
		for _, m := range mod {
			m(c)
		}
	}
}

func TestDecideConverges(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	cases := []struct {
		name  string
		d     Desired
		o     Observed
		h     model.History
		want  ActionKind
		phase model.Phase
	}{
		{"new spec is created", d, Observed{}, model.History{}, ActCreate, model.PhasePending},
		{"created container is started", d, Observed{Container: ctr(d, "created")}, model.History{}, ActStart, model.PhasePending},
		{"running as desired: nothing", d, Observed{Container: ctr(d, "running")}, model.History{SpecHash: d.Hash}, ActNone, model.PhaseRunning},
		{"changed spec: stop", testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.Args = []string{"tick"} }),
			Observed{Container: ctr(d, "running")}, model.History{}, ActStop, model.PhaseRunning},
		{"deleted spec: stop", Desired{}, Observed{Container: ctr(d, "running")}, model.History{}, ActStop, model.PhaseRunning},
		{"deleted spec, exited and recorded: remove", Desired{},
			Observed{Container: ctr(d, "exited", exited(0, time.Second))},
			model.History{LastContainerID: "c1", LastStartedAt: t0.Add(-time.Second), ExitRecorded: true}, ActRemove, model.PhasePending},
		{"deleted spec, no container: forget", Desired{}, Observed{}, model.History{}, ActForget, ""},
		{"exited, not inspected: inspect", d, Observed{Container: ctr(d, "exited")}, model.History{}, ActInspect, ""},
		{"exited, inspected, restarted at once: start first, record after", d, Observed{Container: ctr(d, "exited", exited(1, time.Second))}, model.History{}, ActStart, model.PhasePending},
		{"exited, inspected, not restarted: record", testSpec(spec.RestartNever), Observed{Container: ctr(testSpec(spec.RestartNever), "exited", exited(1, time.Second))}, model.History{}, ActRecordExit, model.PhaseFailed},
		{"start refused, recorded: replaced, not restarted in place", d,
			Observed{Container: ctr(d, "exited", exited(128, 0, func(c *docker.Container) { c.Error = "task c1: already exists" }))},
			model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: t0, ExitRecorded: true, NextTryAt: t0.Add(time.Second)}, ActRemove, model.PhasePending},
		{"stray container: removed first", d, Observed{Container: ctr(d, "running"), Strays: []docker.Container{{ID: "c2"}}}, model.History{}, ActRemoveStray, ""},
		{"stop under way: wait", d, Observed{Container: ctr(d, "running"), Stopping: true}, model.History{}, ActNone, model.PhaseRunning},
		{"unhealthy under Always: stop", d, Observed{Container: ctr(d, "running", func(c *docker.Container) { c.Health = "unhealthy" })}, model.History{}, ActStop, model.PhaseRunning},
		{"unhealthy under Never: left alone", testSpec(spec.RestartNever),
			Observed{Container: ctr(testSpec(spec.RestartNever), "running", func(c *docker.Container) { c.Health = "unhealthy" })}, model.History{}, ActNone, model.PhaseRunning},
		{"in backoff, container gone: wait", d, Observed{}, model.History{SpecHash: d.Hash, NextTryAt: t0.Add(time.Minute)}, ActNone, model.PhaseBackoff},
		{"backoff of an older spec does not hold a new one", d, Observed{}, model.History{SpecHash: "old", NextTryAt: t0.Add(time.Minute), Done: true}, ActCreate, model.PhasePending},
		{"finished job stays finished", d, Observed{}, model.History{SpecHash: d.Hash, Done: true, Succeeded: true}, ActNone, model.PhaseSucceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, tc.o, tc.h, t0)
			if a.Kind != tc.want || (tc.phase != "" && a.Phase != tc.phase) {
				t.Fatalf("decide = %v/%s (%s), want %v/%s", a.Kind, a.Phase, a.Message, tc.want, tc.phase)
			}
		})
	}
}

func TestDecideRefused(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	d.Refused = spec.ErrorList{{Path: "spec.privileged", Rule: "allowPrivileged", Msg: "privileged containers are refused by policy"}}
	changed := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.Args = []string{"tick"} })
	changed.Refused = d.Refused
	recorded := model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: t0.Add(-time.Second), ExitRecorded: true}
	cases := []struct {
		name string
		d    Desired
		o    Observed
		h    model.History
		want ActionKind
		msg  string
	}{
		{"no container: not created", d, Observed{}, model.History{}, ActNone, "refused by policy: spec.privileged: "},
		{"running: left running and reported", d, Observed{Container: ctr(d, "running")}, model.History{SpecHash: d.Hash}, ActNone,
			"container c1 runs under a spec the policy now refuses; it is left running"},
		{"running an older definition: not replaced", changed, Observed{Container: ctr(d, "running")}, model.History{}, ActNone,
			"runs under a spec the policy now refuses"},
		{"unhealthy: not stopped, since nothing could replace it", d,
			Observed{Container: ctr(d, "running", func(c *docker.Container) { c.Health = "unhealthy" })}, model.History{}, ActNone, "left running"},
		{"created: not started", d, Observed{Container: ctr(d, "created")}, model.History{}, ActNone, "refused by policy"},
		{"exited: the exit is still recorded", d, Observed{Container: ctr(d, "exited", exited(1, time.Second))}, model.History{}, ActRecordExit, "refused by policy"},
		{"exited and recorded: not restarted in place", d, Observed{Container: ctr(d, "exited", exited(1, time.Second))}, recorded, ActNone, "refused by policy"},
		{"exited older definition: not removed", changed, Observed{Container: ctr(d, "exited", exited(1, time.Second))},
			model.History{SpecHash: changed.Hash, LastContainerID: "c1", LastStartedAt: t0.Add(-time.Second), ExitRecorded: true}, ActNone, "refused by policy"},
		{"stray: still removed", d, Observed{Strays: []docker.Container{{ID: "c2"}}}, model.History{}, ActRemoveStray, ""},
	}
	finished := testSpec(spec.RestartNever)
	finished.Refused = d.Refused
	if a := decide(finished, Observed{}, model.History{SpecHash: finished.Hash, Done: true, Succeeded: true}, t0); a.Kind != ActNone || a.Phase != model.PhaseSucceeded {
		t.Errorf("finished job: %v/%s, want it to stay Succeeded", a.Kind, a.Phase)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, tc.o, tc.h, t0)
			if a.Kind != tc.want || (tc.msg != "" && (a.Phase != model.PhaseRefused || !strings.Contains(a.Message, tc.msg))) {
				t.Fatalf("decide = %v/%s (%s), want %v/Refused with %q", a.Kind, a.Phase, a.Message, tc.want, tc.msg)
			}
			if a.Kind == ActNone && a.History.Stop != nil {
				t.Fatalf("a stop intent was recorded: %+v", a.History.Stop)
			}
		})
	}

	t.Run("a job's deadline still ends it", func(t *testing.T) {
		d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.ActiveDeadline.Duration = time.Minute })
		d.Refused = changed.Refused
		o := Observed{Container: ctr(d, "running", func(c *docker.Container) { c.StartedAt = t0.Add(-time.Hour) })}
		if a := decide(d, o, model.History{}, t0); a.Kind != ActStop || a.Cause != model.StopDeadline {
			t.Fatalf("decide = %v (%s), want a deadline stop", a.Kind, a.Message)
		}
	})
}

func TestRestartPolicyTable(t *testing.T) {
	oom := func(c *docker.Container) { c.OOMKilled = true }
	outcomes := []struct {
		name   string
		mod    func(*docker.Container)
		reason model.ExitReason
	}{
		{"exit 0", exited(0, time.Second), model.ReasonCompleted},
		{"exit 1", exited(1, time.Second), model.ReasonError},
		{"killed by signal", exited(137, time.Second), model.ReasonSignaled},
		{"OOM-killed", exited(137, time.Second, oom), model.ReasonOOMKilled},
	}
	// want[policy][outcome]: the phase after the exit is recorded.
	want := map[spec.RestartPolicy][]model.Phase{
		spec.RestartAlways:    {model.PhasePending, model.PhasePending, model.PhasePending, model.PhasePending},
		spec.RestartOnFailure: {model.PhaseSucceeded, model.PhasePending, model.PhasePending, model.PhasePending},
		spec.RestartNever:     {model.PhaseSucceeded, model.PhaseFailed, model.PhaseFailed, model.PhaseFailed},
	}
	for policy, phases := range want {
		for i, oc := range outcomes {
			t.Run(string(policy)+"/"+oc.name, func(t *testing.T) {
				d := testSpec(policy)
				a := decide(d, Observed{Container: ctr(d, "exited", oc.mod)}, model.History{SpecHash: d.Hash}, t0)
				if rec := recordOf(t, a); rec.Reason != oc.reason {
					t.Errorf("reason = %s, want %s", rec.Reason, oc.reason)
				}
				if a.Phase != phases[i] {
					t.Errorf("phase = %s, want %s", a.Phase, phases[i])
				}
				restarted := phases[i] == model.PhasePending
				if a.History.Done == restarted {
					t.Errorf("done = %v, want %v", a.History.Done, !restarted)
				}
				// The first restart is immediate: it comes before the record.
				// Otherwise the very next step leaves it finished.
				if restarted != (a.Kind == ActStart) {
					t.Errorf("kind = %v, want a start (restarted %v)", a.Kind, restarted)
				}
				next := decide(d, Observed{Container: ctr(d, "exited", oc.mod)}, a.History, t0)
				if !restarted && (next.Kind != ActNone || next.Phase != phases[i]) {
					t.Errorf("after record: %v/%s, want None/%s", next.Kind, next.Phase, phases[i])
				}
			})
		}
	}
}

// crash runs one crash-loop iteration: the container ran for ran and
// exited 1 at now; it returns the history after the exit and the delay.
func crash(t *testing.T, d Desired, h model.History, now time.Time, ran time.Duration) (model.History, time.Duration) {
	t.Helper()
	h.ExitRecorded = false // the agent started it again
	c := ctr(d, "exited", func(c *docker.Container) {
		c.Inspected, c.ExitCode, c.StartedAt, c.FinishedAt = true, 1, now.Add(-ran), now
	})
	a := decide(d, Observed{Container: c}, h, now)
	recordOf(t, a)
	a.History.PendingExit = nil // its record completed after the restart
	return a.History, a.History.NextTryAt.Sub(now)
}

// recordOf is the record decide made of an exit: committed before anything
// is done about it (RecordExit), or carried, pending, by the restart that
// comes first (Start).
func recordOf(t *testing.T, a Action) *model.ContainerExit {
	t.Helper()
	switch {
	case a.Kind == ActRecordExit:
		return a.Exit
	case a.Kind == ActStart && a.History.PendingExit != nil:
		return a.History.PendingExit
	}
	t.Fatalf("decide = %v (%s), want the exit recorded", a.Kind, a.Message)
	return nil
}

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	d := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) {
		c.Backoff = spec.Backoff{Max: spec.Duration{Duration: 8 * time.Second}, ResetAfter: spec.Duration{Duration: time.Minute}}
	})
	h := model.History{SpecHash: d.Hash}
	now := t0
	var got []time.Duration
	for i := 0; i < 6; i++ {
		var delay time.Duration
		h, delay = crash(t, d, h, now, time.Second)
		got = append(got, delay)
		// While waiting, the spec is in Backoff and comes back when due.
		if delay > 0 {
			same := ctr(d, "exited", exited(1, time.Second), func(c *docker.Container) { c.StartedAt = h.LastStartedAt })
			w := decide(d, Observed{Container: same}, h, now)
			if w.Kind != ActNone || w.Phase != model.PhaseBackoff || w.RequeueAfter != delay {
				t.Fatalf("waiting: %v/%s after %s", w.Kind, w.Phase, w.RequeueAfter)
			}
		}
		now = now.Add(delay + time.Second)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	// A run that lasted resetAfter starts the sequence again.
	h, delay := crash(t, d, h, now, 2*time.Minute)
	if delay != 0 || h.Attempts != 1 {
		t.Fatalf("after a healthy run: delay %s attempts %d, want 0 and 1", delay, h.Attempts)
	}
	if h.Restarts != 7 {
		t.Fatalf("restarts = %d, want 7", h.Restarts)
	}
}

func TestMaxRestartsFailsUntilSpecChanges(t *testing.T) {
	two := 2
	d := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.MaxRestarts = &two })
	h := model.History{SpecHash: d.Hash}
	for i := 0; i < 2; i++ {
		h, _ = crash(t, d, h, t0.Add(time.Duration(i)*time.Minute), time.Second)
		if h.Done {
			t.Fatalf("done after %d restarts", i+1)
		}
	}
	h, _ = crash(t, d, h, t0.Add(time.Hour), time.Second)
	if !h.Done {
		t.Fatal("not Failed after maxRestarts")
	}
	a := decide(d, Observed{}, h, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseFailed {
		t.Fatalf("after maxRestarts: %v/%s", a.Kind, a.Phase)
	}
	changed := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.MaxRestarts = &two; c.Args = []string{"sleep"} })
	if a := decide(changed, Observed{}, h, t0); a.Kind != ActCreate || a.History.Restarts != 0 {
		t.Fatalf("changed spec: %v restarts %d, want Create with a fresh history", a.Kind, a.History.Restarts)
	}
}

func TestClassifyExit(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	stop := func(cause model.StopCause) model.History {
		return model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: "c1", Cause: cause, Grace: time.Second}}
	}
	cases := []struct {
		name string
		o    Observed
		h    model.History
		want model.ExitReason
	}{
		{"agent stop, exits on SIGTERM", Observed{Container: ctr(d, "exited", exited(0, time.Second))}, stop(model.StopReplaced), model.ReasonStoppedByAgent},
		{"agent stop, grace expired", Observed{Container: ctr(d, "exited", exited(137, time.Second))}, stop(model.StopReplaced), model.ReasonGraceExpired},
		{"deadline", Observed{Container: ctr(d, "exited", exited(143, time.Second))}, stop(model.StopDeadline), model.ReasonDeadlineExceeded},
		{"someone else stopped it", Observed{Container: ctr(d, "exited", exited(143, time.Second)), KillSeen: true}, model.History{}, model.ReasonExternal},
		{"died while the daemon was down", Observed{Container: ctr(d, "exited", exited(255, time.Second))}, model.History{}, model.ReasonLost},
		{"255 seen dying", Observed{Container: ctr(d, "exited", exited(255, time.Second)), DieSeen: true}, model.History{}, model.ReasonError},
		{"OOM beats a kill seen", Observed{Container: ctr(d, "exited", exited(137, time.Second, func(c *docker.Container) { c.OOMKilled = true })), KillSeen: true}, model.History{}, model.ReasonOOMKilled},
		// stopSignal SIGKILL: the 137 is the stop itself, no grace ran out.
		{"agent stop with stopSignal SIGKILL", Observed{Container: ctr(d, "exited", exited(137, time.Second, func(c *docker.Container) { c.Labels[labelStopSignal] = "SIGKILL" }))}, stop(model.StopReplaced), model.ReasonStoppedByAgent},
		// The kernel killed it during the stop: no grace ran out either.
		{"OOM kill during an agent stop", Observed{Container: ctr(d, "exited", exited(137, time.Second, func(c *docker.Container) { c.OOMKilled = true }))}, stop(model.StopReplaced), model.ReasonStoppedByAgent},
		{"exit 128, a refused start, is no signal", Observed{Container: ctr(d, "exited", exited(128, 0))}, model.History{}, model.ReasonError},
		{"exit 129 is SIGHUP", Observed{Container: ctr(d, "exited", exited(129, time.Second))}, model.History{}, model.ReasonSignaled},
		{"an oom event does not make exit 1 an OOM kill", Observed{Container: ctr(d, "exited", exited(1, time.Second)), OOMSeen: true}, model.History{}, model.ReasonError},
		{"an oom event makes a SIGKILL an OOM kill", Observed{Container: ctr(d, "exited", exited(137, time.Second)), OOMSeen: true}, model.History{}, model.ReasonOOMKilled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(d, tc.o, tc.h, t0)
			if rec := recordOf(t, a); rec.Reason != tc.want {
				t.Fatalf("got %v %+v, want reason %s", a.Kind, rec, tc.want)
			}
			if a.History.Stop != nil {
				t.Fatal("stop intent kept after its exit was recorded")
			}
		})
	}
}

// TestOOMFlagOnlyForSIGKILL: the record's OOMKilled follows the one OOM
// heuristic: the daemon's flag, or an oom event with a 137.
func TestOOMFlagOnlyForSIGKILL(t *testing.T) {
	d := testSpec(spec.RestartNever)
	for _, tc := range []struct {
		code    int
		oomSeen bool
		want    bool
	}{{137, true, true}, {137, false, false}, {1, true, false}, {143, true, false}} {
		a := decide(d, Observed{Container: ctr(d, "exited", exited(tc.code, time.Second)), OOMSeen: tc.oomSeen}, model.History{SpecHash: d.Hash}, t0)
		if rec := recordOf(t, a); rec.OOMKilled != tc.want {
			t.Errorf("exit %d, oom event %v: OOMKilled %v, want %v", tc.code, tc.oomSeen, rec.OOMKilled, tc.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.ActiveDeadline = spec.Duration{Duration: time.Minute} })
	running := ctr(d, "running", func(c *docker.Container) { c.StartedAt = t0.Add(-20 * time.Second) })
	if a := decide(d, Observed{Container: running}, model.History{SpecHash: d.Hash}, t0); a.Kind != ActNone || a.RequeueAfter != 40*time.Second {
		t.Fatalf("before the deadline: %v after %s, want None after 40s", a.Kind, a.RequeueAfter)
	}
	a := decide(d, Observed{Container: running}, model.History{SpecHash: d.Hash}, t0.Add(40*time.Second))
	if a.Kind != ActStop || a.Cause != model.StopDeadline {
		t.Fatalf("at the deadline: %v %s", a.Kind, a.Cause)
	}
	c := ctr(d, "exited", exited(143, time.Minute))
	r := decide(d, Observed{Container: c}, a.History, t0.Add(41*time.Second))
	if r.Exit.Reason != model.ReasonDeadlineExceeded || r.Phase != model.PhaseFailed || !r.History.Done {
		t.Fatalf("recorded %s phase %s done %v", r.Exit.Reason, r.Phase, r.History.Done)
	}
}

func TestFinishedJobRemovalAndTTL(t *testing.T) {
	d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) {
		c.RemoveOnExit = true
		c.TTLAfterFinished = spec.Duration{Duration: time.Hour}
	})
	h := model.History{SpecHash: d.Hash, Done: true, Succeeded: true, FinishedAt: t0, LastContainerID: "c1",
		LastStartedAt: t0.Add(-time.Second), ExitRecorded: true}
	c := ctr(d, "exited", exited(0, time.Second))
	if a := decide(d, Observed{Container: c}, h, t0); a.Kind != ActRemove {
		t.Fatalf("removeOnExit: %v", a.Kind)
	}
	if a := decide(d, Observed{}, h, t0.Add(time.Minute)); a.Kind != ActNone || a.RequeueAfter != 59*time.Minute || a.Phase != model.PhaseSucceeded {
		t.Fatalf("before TTL: %v %s %s", a.Kind, a.RequeueAfter, a.Phase)
	}
	if a := decide(d, Observed{}, h, t0.Add(time.Hour)); a.Kind != ActExpire {
		t.Fatalf("after TTL: %v", a.Kind)
	}
}

func TestFailedStartIsRecordedAndBacksOff(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	// The run before was recorded; then a start failed (the daemon could
	// not set up the container) and left the same container behind.
	h := model.History{SpecHash: d.Hash, LastContainerID: "c1", LastStartedAt: t0.Add(-time.Minute), ExitRecorded: true, Attempts: 1, Restarts: 1}
	failed := ctr(d, "exited", exited(128, 0, func(c *docker.Container) { c.Error = "failed to create endpoint" }))
	a := decide(d, Observed{Container: failed}, h, t0)
	if a.Kind != ActRecordExit || a.Exit.Error == "" {
		t.Fatalf("failed start: %v %+v, want its exit recorded with the error", a.Kind, a.Exit)
	}
	if a.Phase != model.PhaseBackoff || a.RequeueAfter != time.Second {
		t.Fatalf("failed start: phase %s after %s, want Backoff after 1s", a.Phase, a.RequeueAfter)
	}
}

func TestOOMNoticeAfterExit(t *testing.T) {
	d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.Resources.Memory = "16Mi" })
	killed := ctr(d, "exited", exited(137, time.Second))
	if a := decide(d, Observed{Container: killed}, model.History{SpecHash: d.Hash}, t0.Add(200*time.Millisecond)); a.Kind != ActNone || a.RequeueAfter != oomNoticeWindow-200*time.Millisecond {
		t.Fatalf("137 without an oom notice yet: %v after %s, want to wait the rest of %s for it", a.Kind, a.RequeueAfter, oomNoticeWindow)
	}
	a := decide(d, Observed{Container: killed, OOMSeen: true}, model.History{SpecHash: d.Hash}, t0.Add(300*time.Millisecond))
	if a.Kind != ActRecordExit || a.Exit.Reason != model.ReasonOOMKilled || !a.Exit.OOMKilled {
		t.Fatalf("oom event seen: %v %+v", a.Kind, a.Exit)
	}
	if a := decide(d, Observed{Container: killed}, model.History{SpecHash: d.Hash}, t0.Add(oomNoticeWindow)); a.Kind != ActRecordExit || a.Exit.Reason != model.ReasonSignaled {
		t.Fatalf("no notice within the window: %v", a.Kind)
	}
}

// TestForwardNeverWipesHistory: an action that leaves History unset keeps
// the history it was decided from; only forgetting a spec drops it.
func TestForwardNeverWipesHistory(t *testing.T) {
	h := model.History{SpecHash: "x", Restarts: 3, LastContainerID: "c1"}
	if a := forward(Action{Kind: ActNone, Phase: model.PhaseRunning}, h); a.History != h {
		t.Fatalf("unset history became %+v, want %+v", a.History, h)
	}
	set := model.History{SpecHash: "x", Restarts: 4}
	if a := forward(Action{Kind: ActRecordExit, History: set}, h); a.History != set {
		t.Fatalf("a set history was replaced: %+v", a.History)
	}
	if a := forward(Action{Kind: ActForget}, h); a.History != (model.History{}) {
		t.Fatalf("forget kept %+v", a.History)
	}
	// Through decide: a refused spec whose container is gone keeps its
	// counters.
	d := testSpec(spec.RestartAlways)
	d.Refused = spec.ErrorList{{Path: "spec.privileged", Rule: "allowPrivileged", Msg: "privileged containers are refused by policy"}}
	kept := model.History{SpecHash: d.Hash, Restarts: 2, Attempts: 2}
	if a := decide(d, Observed{}, kept, t0); a.History.Restarts != 2 {
		t.Fatalf("refused: history %+v, want the restart count kept", a.History)
	}
}

// TestDecideReportsCreateFailures: what apply learned of a create that
// cannot succeed soon is a fact; decide chooses to report it, with the
// event reason and the conflicting name.
func TestDecideReportsCreateFailures(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	h := model.History{SpecHash: d.Hash}
	a := decide(d, Observed{NameHeld: "reconciler-web"}, h, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseError || a.Conflict != "reconciler-web" || a.Failed == nil || a.Failed.Reason != "NameConflict" {
		t.Fatalf("name held: %+v", a)
	}
	a = decide(d, Observed{CreateFailed: &Failure{Reason: "ErrImageNeverPull", Message: "image x is not present"}}, h, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseError || a.Message != "image x is not present" || a.Conflict != "" {
		t.Fatalf("create failed: %+v", a)
	}
	d.SecretErr = "secret file /s/x: not found"
	if a := decide(d, Observed{}, h, t0); a.Kind != ActNone || a.Failed == nil || a.Failed.Reason != "SecretUnavailable" {
		t.Fatalf("secret unreadable: %+v", a)
	}
	// Positive control: the same spec with nothing in the way is created.
	if a := decide(testSpec(spec.RestartAlways), Observed{}, h, t0); a.Kind != ActCreate {
		t.Fatalf("nothing in the way: %v", a.Kind)
	}
}

// TestOOMNoticeWindowGrowsWithTheDaemonsLag: while the daemon takes longer
// over a start than oomNoticeWindow, a 137 exit waits that long for its
// oom notice, and a notice that late still makes the record OOMKilled;
// with a prompt daemon the same times close the window.
func TestOOMNoticeWindowGrowsWithTheDaemonsLag(t *testing.T) {
	const lag = 5 * time.Second
	late := oomNoticeWindow + time.Second // after the plain window, inside the lag
	d := testSpec(spec.RestartNever, func(c *spec.ContainerSpec) { c.Resources.Memory = "16Mi" })
	killed := ctr(d, "exited", exited(137, time.Second))
	for _, tc := range []struct {
		lag  time.Duration
		kind ActionKind
	}{{lag, ActNone}, {0, ActRecordExit}} {
		a := decide(d, Observed{Container: killed, DaemonLag: tc.lag}, model.History{SpecHash: d.Hash}, t0.Add(late))
		if a.Kind != tc.kind || (a.Kind == ActNone && a.RequeueAfter != lag-late) {
			t.Fatalf("lag %s: %v after %s, want %v (after %s when waiting)", tc.lag, a.Kind, a.RequeueAfter, tc.kind, lag-late)
		}
	}

	da := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.Resources.Memory = "16Mi" })
	start := t0.Add(-time.Minute)
	finish := start.Add(500 * time.Millisecond)
	again := ctr(da, "running", func(c *docker.Container) { c.StartedAt = finish.Add(10 * time.Millisecond) })
	for _, tc := range []struct {
		lag  time.Duration
		want model.ExitReason
	}{{lag, model.ReasonOOMKilled}, {0, model.ReasonSignaled}} {
		h := dec1Pending(da, start, 500*time.Millisecond, 137, model.ReasonSignaled)
		o := Observed{Container: again, OOMAt: finish.Add(late), DaemonLag: tc.lag}
		a := decide(da, o, h, finish.Add(lag+time.Second))
		if a.Kind != ActRecordExit || a.Exit.Reason != tc.want {
			t.Fatalf("pending, lag %s, notice %s after the exit: %v %+v, want the record as %s", tc.lag, late, a.Kind, a.Exit, tc.want)
		}
	}
}
