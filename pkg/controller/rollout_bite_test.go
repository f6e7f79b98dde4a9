package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// TestStartFirstStepsSayWhyAndHowLong: each step of a start-first
// replacement says why it was taken (the reason of the "decided" log
// line), what the status says, and when the spec is looked at again.
func TestStartFirstStepsSayWhyAndHowLong(t *testing.T) {
	old := testSpec(spec.RestartAlways)
	hcheck := func(c *spec.ContainerSpec) { c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}} }
	d := testSpec(spec.RestartAlways, startFirst(5*time.Second))
	d0 := testSpec(spec.RestartAlways, startFirst(0))
	hc := testSpec(spec.RestartAlways, startFirst(0, hcheck))
	hc5 := testSpec(spec.RestartAlways, startFirst(5*time.Second, hcheck))
	running := ctr(old, "running")
	started := func(ago time.Duration) func(*docker.Container) {
		return func(c *docker.Container) { c.StartedAt = t0.Add(-ago) }
	}
	healthy := func(c *docker.Container) { c.Health = "healthy" }
	hist := func(d Desired) model.History { return model.History{SpecHash: d.Hash} }
	failedBefore := func(d Desired) model.History {
		return model.History{SpecHash: d.Hash, Rollout: &model.RolloutFailure{Want: d.Label(), ContainerID: "n1"}}
	}
	// says is what a decision must say.
	type says struct {
		kind    ActionKind
		wait    time.Duration // RequeueAfter
		message string        // a part of the status message
		why     string        // a part of the log line's reason
	}
	cases := []struct {
		name string
		d    Desired
		o    Observed
		h    model.History
		want says
	}{
		{"a stop of the old container the agent issued and did not see end is finished first", d,
			Observed{Container: running},
			model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: running.ID, Cause: model.StopUnhealthy}},
			says{ActStop, 0, "finishing an interrupted stop", ""}},
		{"a stop intent of an earlier container does not stop this one", d,
			Observed{Container: running},
			model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: "c0", Cause: model.StopUnhealthy}},
			says{ActCreateNext, 0, "beside the old container", "spec changed; updateStrategy StartFirst"}},
		{"a foreign container holds the replacement's name: said so, the old one runs", d,
			Observed{Container: running, NameHeld: NextName("web")}, hist(d),
			says{ActNone, 0, "cannot be created: a container not managed by this agent holds the name reconciler-web-next", ""}},
		{"warming up: looked at again when minReady is over", d,
			Observed{Container: running, Next: next(d, "running", started(2*time.Second))}, hist(d),
			says{ActNone, 3 * time.Second, "has run 2s of minReady 5s", ""}},
		{"minReady, start time not seen yet: polled", d,
			Observed{Container: running, Next: next(d, "running")}, hist(d),
			says{ActNone, readyPoll, "waits to be seen running", ""}},
		{"no minReady: running is ready, start time seen or not", d0,
			Observed{Container: running, Next: next(d0, "running")}, hist(d0),
			says{ActStop, 0, "", "is ready (running)"}},
		{"no minReady, started: ready as running", d0,
			Observed{Container: running, Next: next(d0, "running", started(time.Second))}, hist(d0),
			says{ActStop, 0, "", "is ready (running)"}},
		{"minReady run: ready for it", d,
			Observed{Container: running, Next: next(d, "running", started(6*time.Second))}, hist(d),
			says{ActStop, 0, "", "is ready (ran for minReady 5s)"}},
		{"healthcheck, no minReady: ready when healthy", hc,
			Observed{Container: running, Next: next(hc, "running", started(time.Second), healthy)}, hist(hc),
			says{ActStop, 0, "", "is ready (healthy)"}},
		{"healthcheck and minReady: ready for both", hc5,
			Observed{Container: running, Next: next(hc5, "running", started(5*time.Second), healthy)}, hist(hc5),
			says{ActStop, 0, "", "is ready (healthy, and ran for minReady 5s)"}},
		{"healthy but minReady not run: waits", hc5,
			Observed{Container: running, Next: next(hc5, "running", started(time.Second), healthy)}, hist(hc5),
			says{ActNone, 4 * time.Second, "has run 1s of minReady 5s", ""}},
		{"replacement exited: its code said", d,
			Observed{Container: running, Next: next(d, "exited", exited(1, time.Second))}, hist(d),
			says{ActNextFailed, 0, "failed: the replacement exited with code 1; ", "start-first: the replacement exited with code 1"}},
		{"replacement exited with the daemon's error: both said", d,
			Observed{Container: running, Next: next(d, "exited", exited(1, time.Second, func(c *docker.Container) { c.Error = "exec format error" }))}, hist(d),
			says{ActNextFailed, 0, "failed: the replacement exited with code 1: exec format error; ", ""}},
		{"replacement never started: the daemon's error said", d,
			Observed{Container: running, Next: next(d, "exited", func(c *docker.Container) { c.Error = "no such file" })}, hist(d),
			says{ActNextFailed, 0, "failed: the replacement could not start: no such file; ", ""}},
		{"replacement of a deleted spec: stopped, said why", Desired{},
			Observed{Container: running, Next: next(d, "running")}, hist(d),
			says{ActStopNext, 0, "", "the spec was deleted during its replacement"}},
		{"replacement of a definition no longer desired: stopped, said why", d,
			Observed{Container: running, Next: next(old, "running")}, hist(d),
			says{ActStopNext, 0, "", "the replacement is of a definition no longer desired"}},
		{"replacement recorded as failed: removed, said why", d,
			Observed{Container: running, Next: next(d, "exited", exited(1, time.Second))}, failedBefore(d),
			says{ActRemoveNext, 0, "", "start-first: the replacement failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, tc.o, tc.h, t0)
			w := tc.want
			if a.Kind != w.kind || a.RequeueAfter != w.wait {
				t.Fatalf("%v after %s, want %v after %s (%+v)", a.Kind, a.RequeueAfter, w.kind, w.wait, a)
			}
			if !strings.Contains(a.Message, w.message) {
				t.Errorf("message = %q, want it to say %q", a.Message, w.message)
			}
			if !strings.Contains(a.why(), w.why) {
				t.Errorf("reason = %q, want it to say %q", a.why(), w.why)
			}
		})
	}
}

// TestStartFirstFinishesAnInterruptedStopWithItsCause: the old container's
// stop that was under way keeps its cause, so its exit is classified as
// that stop's.
func TestStartFirstFinishesAnInterruptedStopWithItsCause(t *testing.T) {
	d := testSpec(spec.RestartAlways, startFirst(0))
	running := ctr(testSpec(spec.RestartAlways), "running")
	h := model.History{SpecHash: d.Hash, Stop: &model.StopIntent{ContainerID: running.ID, Cause: model.StopUnhealthy}}
	a := decide(d, Observed{Container: running}, h, t0)
	if a.Kind != ActStop || a.ContainerID != running.ID || a.Cause != model.StopUnhealthy {
		t.Fatalf("%v of %s for %v, want the old container's stop finished as Unhealthy", a.Kind, a.ContainerID, a.Cause)
	}
}

// rollVersion is a start-first definition running args.
func rollVersion(args string, minReady time.Duration, mod ...func(*spec.ContainerSpec)) func(*spec.ContainerSpec) {
	return func(c *spec.ContainerSpec) {
		c.Args = []string{args}
		c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst, MinReady: spec.Duration{Duration: minReady}}
		for _, m := range mod {
			m(c)
		}
	}
}

// rollRunning runs the first version of web and returns its container.
func rollRunning(h *harness, minReady time.Duration, mod ...func(*spec.ContainerSpec)) *docker.Container {
	h.t.Helper()
	h.putSpec("web", rollVersion("tick", minReady, mod...))
	h.reconcile("web")
	old := h.rt.byName("reconciler-web")
	if old == nil || old.State != "running" {
		h.t.Fatalf("first version: %v", h.rt.calls())
	}
	return old
}

// rollEvent is the message of web's last event with reason, or "".
func rollEvent(h *harness, reason string) string {
	h.t.Helper()
	evs, err := h.st.Events("web", 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	msg := ""
	for _, e := range evs {
		if e.Reason == reason {
			msg = e.Message
		}
	}
	return msg
}

// TestReconcileStartFirstRecordsAnExitedReplacementAndRemovesIt: a
// replacement that exits is in the ledger and the exits metric, it is
// removed in the same pass, the old container runs on, and the agent
// comes back when the back-off is over to try again.
func TestReconcileStartFirstRecordsAnExitedReplacementAndRemovesIt(t *testing.T) {
	h := newHarness(t)
	old := rollRunning(h, 5*time.Second)
	h.putSpec("web", rollVersion("sleep", 5*time.Second))
	h.reconcile("web")
	next := h.rt.byName("reconciler-web-next")
	if next == nil || next.State != "running" {
		t.Fatalf("replacement: %+v, calls %v", next, h.rt.ops())
	}
	if msg := rollEvent(h, "Started"); msg != "Started replacement container "+next.ID+" beside "+old.ID+" (updateStrategy StartFirst)" {
		t.Errorf("Started event %q, want it to name the replacement and the old container", msg)
	}

	h.now = h.now.Add(time.Second)
	h.rt.exit("reconciler-web-next", 3)
	counted := func() float64 { return testutil.ToFloat64(h.c.m.Exits.WithLabelValues(string(model.ReasonError))) }
	before := counted()
	res := h.reconcile("web")
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ContainerID != next.ID || exits[0].ExitCode != 3 || exits[0].Reason != model.ReasonError {
		t.Fatalf("exits %+v, want the replacement's exit 3", exits)
	}
	if got := counted(); got != before+1 {
		t.Errorf("exits metric %v, want %v: the replacement's exit counted", got, before+1)
	}
	if h.rt.byID(next.ID) != nil || h.rt.state(old.ID) != "running" || h.rt.count("stop") != 0 {
		t.Fatalf("after the failure: replacement %+v, old %s, calls %v: want it removed, the old one running", h.rt.byID(next.ID), h.rt.state(old.ID), h.rt.calls())
	}
	hist, err := h.st.GetHistory("web")
	if err != nil || hist.Rollout == nil {
		t.Fatalf("history %+v, %v: want the failure recorded", hist, err)
	}
	backoff := hist.Rollout.NextTryAt.Sub(h.now)
	if backoff <= 0 || res.RequeueAfter != backoff {
		t.Errorf("requeue after %s, want the back-off %s: nothing else would bring the agent back", res.RequeueAfter, backoff)
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.ContainerID != old.ID || !strings.Contains(st.Message, "failed 1 time(s)") {
		t.Errorf("status %+v, want the old one running and the failure said", st)
	}
	if msg := rollEvent(h, "RolloutFailed"); !strings.Contains(msg, "exited with code 3") {
		t.Errorf("RolloutFailed event %q", msg)
	}

	h.now = h.now.Add(backoff)
	h.reconcile("web")
	if n := h.rt.byName("reconciler-web-next"); n == nil || n.ID == next.ID || n.State != "running" {
		t.Fatalf("after the back-off: %+v, want a new replacement running", n)
	}
}

// TestReconcileStartFirstStopsAnUnhealthyReplacementThenRemovesIt: the old
// container is never stopped for a replacement that turned unhealthy.
func TestReconcileStartFirstStopsAnUnhealthyReplacementThenRemovesIt(t *testing.T) {
	h := newHarness(t)
	hcheck := func(c *spec.ContainerSpec) { c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}} }
	old := rollRunning(h, 0, hcheck)
	h.putSpec("web", rollVersion("sleep", 0, hcheck))
	h.reconcile("web")
	next := h.rt.byName("reconciler-web-next")
	if next == nil || next.State != "running" || !strings.Contains(h.status("web").Message, "waits for its healthcheck") {
		t.Fatalf("replacement %+v, status %+v", next, h.status("web"))
	}
	h.rt.edit(next.ID, func(c *docker.Container) { c.Health = "unhealthy" })
	h.reconcile("web")
	if h.rt.state(next.ID) != "exited" || h.rt.state(old.ID) != "running" || h.rt.count("stop") != 1 {
		t.Fatalf("after it turned unhealthy: replacement %s, old %s, calls %v: want it stopped, the old one running",
			h.rt.state(next.ID), h.rt.state(old.ID), h.rt.calls())
	}
	if msg := rollEvent(h, "Killing"); !strings.Contains(msg, "replacement container "+next.ID) {
		t.Errorf("Killing event %q, want the replacement's", msg)
	}
	if msg := rollEvent(h, "RolloutFailed"); !strings.Contains(msg, "turned unhealthy") {
		t.Errorf("RolloutFailed event %q", msg)
	}
	h.reconcile("web")
	if h.rt.byID(next.ID) != nil || h.rt.state(old.ID) != "running" || h.rt.count("stop") != 1 {
		t.Fatalf("next pass: replacement %+v, old %s, calls %v: want it removed, the old one untouched",
			h.rt.byID(next.ID), h.rt.state(old.ID), h.rt.calls())
	}
}

// TestReconcileStartFirstRecordsAReplacementTheDaemonRefusesToStart: a
// refused start is the replacement's failure, not the reconcile's error.
func TestReconcileStartFirstRecordsAReplacementTheDaemonRefusesToStart(t *testing.T) {
	h := newHarness(t)
	old := rollRunning(h, 0)
	h.rt.StartFunc = func(id string) error {
		if id != old.ID {
			return errors.New(`exec: "sleep": executable file not found in $PATH`)
		}
		return nil
	}
	h.putSpec("web", rollVersion("sleep", 0))
	h.reconcile("web")
	if h.rt.count("create") != 2 || h.rt.byName("reconciler-web-next") != nil || h.rt.state(old.ID) != "running" || h.rt.count("stop") != 0 {
		t.Fatalf("calls %v: want the replacement created, removed after its refused start, the old one running", h.rt.ops())
	}
	st := h.status("web")
	if st.Phase != model.PhaseRunning || st.ContainerID != old.ID || !strings.Contains(st.Message, "executable file not found") {
		t.Fatalf("status %+v, want the old one running and the daemon's refusal said", st)
	}
	if msg := rollEvent(h, "RolloutFailed"); !strings.Contains(msg, "could not start") {
		t.Errorf("RolloutFailed event %q", msg)
	}
}

// rollLateStart is a daemon whose start answers an error after it did
// start the container, as a client time-out does.
type rollLateStart struct {
	*fakeRuntime
	late string // the id whose start answers an error
}

func (r *rollLateStart) Start(ctx context.Context, id string) error {
	if err := r.fakeRuntime.Start(ctx, id); err != nil || id != r.late {
		return err
	}
	return errors.New("Post /containers/start: context deadline exceeded (Client.Timeout exceeded)")
}

// TestReconcileStartFirstGoesOnWithAReplacementTheDaemonStartedDespiteAnError:
// what the daemon shows after a failed start is what counts: a replacement
// it runs is not recorded as failed, and the rollout goes on.
func TestReconcileStartFirstGoesOnWithAReplacementTheDaemonStartedDespiteAnError(t *testing.T) {
	h := newHarness(t)
	rt := &rollLateStart{fakeRuntime: h.rt, late: "c2"}
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	old := rollRunning(h, 0)
	h.putSpec("web", rollVersion("sleep", 0))
	h.reconcile("web")
	next := h.rt.byID("c2")
	if next == nil || next.Name != "reconciler-web-next" || next.State != "running" {
		t.Fatalf("replacement %+v, calls %v", next, h.rt.ops())
	}
	if h.rt.state(old.ID) != "exited" || rollEvent(h, "RolloutFailed") != "" {
		t.Fatalf("old %s, RolloutFailed %q: want the old one stopped for the running replacement", h.rt.state(old.ID), rollEvent(h, "RolloutFailed"))
	}
}
