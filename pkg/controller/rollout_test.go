package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

func startFirst(minReady time.Duration, mod ...func(*spec.ContainerSpec)) func(*spec.ContainerSpec) {
	return func(c *spec.ContainerSpec) {
		c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst, MinReady: spec.Duration{Duration: minReady}}
		c.Args = []string{"tick"} // a new definition: the running one (old) has none
		for _, m := range mod {
			m(c)
		}
	}
}

// next is the replacement container of d, in state.
func next(d Desired, state string, mod ...func(*docker.Container)) *docker.Container {
	c := &docker.Container{ID: "n1", Name: NextName("web"), State: state, Inspected: true,
		Labels: map[string]string{docker.LabelSpec: "web", docker.LabelSpecHash: d.Label()}}
	for _, m := range mod {
		m(c)
	}
	return c
}

// TestDecideStartFirst walks a start-first replacement step by step from
// the facts each step leaves.
func TestDecideStartFirst(t *testing.T) {
	old := testSpec(spec.RestartAlways)
	d := testSpec(spec.RestartAlways, startFirst(5*time.Second))
	hc := testSpec(spec.RestartAlways, startFirst(0, func(c *spec.ContainerSpec) {
		c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}}
	}))
	h := model.History{SpecHash: d.Hash}
	running := ctr(old, "running")
	started := func(ago time.Duration) func(*docker.Container) {
		return func(c *docker.Container) { c.StartedAt = t0.Add(-ago) }
	}
	cases := []struct {
		name    string
		d       Desired
		o       Observed
		h       model.History
		want    ActionKind
		message string // a part of the status message, when set
	}{
		{"StopFirst (the default) stops the old one first",
			testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.Args = []string{"tick"} }),
			Observed{Container: running}, h, ActStop, ""},
		{"spec changed: the replacement is created beside the old one", d,
			Observed{Container: running}, h, ActCreateNext, "beside the old container"},
		{"created replacement is started", d,
			Observed{Container: running, Next: next(d, "created")}, h, ActStartNext, ""},
		{"replacement running for less than minReady: wait, the old one runs", d,
			Observed{Container: running, Next: next(d, "running", started(2*time.Second))}, h, ActNone, "has run 2s of minReady 5s"},
		{"replacement ran minReady: the old one is stopped", d,
			Observed{Container: running, Next: next(d, "running", started(5*time.Second))}, h, ActStop, ""},
		{"with a healthcheck, starting: wait", hc,
			Observed{Container: running, Next: next(hc, "running", started(time.Minute), func(c *docker.Container) { c.Health = "starting" })}, h, ActNone, "waits for its healthcheck"},
		{"with a healthcheck, healthy: the old one is stopped", hc,
			Observed{Container: running, Next: next(hc, "running", started(time.Second), func(c *docker.Container) { c.Health = "healthy" })}, h, ActStop, ""},
		{"replacement unhealthy: failure recorded", hc,
			Observed{Container: running, Next: next(hc, "running", started(time.Second), func(c *docker.Container) { c.Health = "unhealthy" })}, h, ActNextFailed, "turned unhealthy"},
		{"replacement exited: failure recorded", d,
			Observed{Container: running, Next: next(d, "exited", exited(1, time.Second))}, h, ActNextFailed, "exited with code 1"},
		{"replacement could not start: failure recorded", d,
			Observed{Container: running, Next: next(d, "created", func(c *docker.Container) { c.Error = "exec: no such file" })}, h, ActNextFailed, "could not start"},
		{"failure recorded, replacement still running: stopped", hc,
			Observed{Container: running, Next: next(hc, "running")}, model.History{SpecHash: hc.Hash, Rollout: &model.RolloutFailure{Want: hc.Label(), ContainerID: "n1"}}, ActStopNext, ""},
		{"failure recorded, replacement exited: removed", d,
			Observed{Container: running, Next: next(d, "exited", exited(1, time.Second))}, model.History{SpecHash: d.Hash, Rollout: &model.RolloutFailure{Want: d.Label(), ContainerID: "n1"}}, ActRemoveNext, ""},
		{"after a failure, the same definition waits for its back-off", d,
			Observed{Container: running}, model.History{SpecHash: d.Hash, Rollout: &model.RolloutFailure{Want: d.Label(), ContainerID: "n1", Failures: 1, NextTryAt: t0.Add(time.Second), Message: "boom"}}, ActNone, "next try in 1s"},
		{"after the back-off, it is tried again", d,
			Observed{Container: running}, model.History{SpecHash: d.Hash, Rollout: &model.RolloutFailure{Want: d.Label(), ContainerID: "n1", Failures: 1, NextTryAt: t0}}, ActCreateNext, ""},
		{"replacement cannot be created: said so, the old one runs", d,
			Observed{Container: running, CreateFailed: &Failure{Reason: "ErrImageNeverPull", Message: "image x is not present"}}, h, ActNone, "cannot be created: image x is not present"},
		{"old one stopping: wait", d,
			Observed{Container: running, Stopping: true, Next: next(d, "running", started(time.Minute))}, h, ActNone, "stopping"},
		{"old one gone: the replacement takes the canonical name", d,
			Observed{Next: next(d, "running", started(time.Minute))}, h, ActPromote, ""},
		{"old one gone, a foreign container holds the name: reported", d,
			Observed{Next: next(d, "running", started(time.Minute)), NameHeld: ContainerName("web")}, h, ActNone, "holds the name reconciler-web"},
		{"replacement of another definition (spec changed again): stopped", d,
			Observed{Container: running, Next: next(old, "running")}, h, ActStopNext, ""},
		{"replacement of a deleted spec, exited: removed", Desired{},
			Observed{Container: running, Next: next(d, "exited", exited(0, time.Second))}, h, ActRemoveNext, ""},
		{"spec changed back to the running definition: replacement stopped",
			testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) {
				c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst}
			}),
			Observed{Container: running, Next: next(d, "running")}, h, ActStopNext, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, tc.o, tc.h, t0)
			if a.Kind != tc.want {
				t.Fatalf("kind = %v, want %v (%+v)", a.Kind, tc.want, a)
			}
			if tc.message != "" && !strings.Contains(a.Message, tc.message) {
				t.Errorf("message = %q, want it to say %q", a.Message, tc.message)
			}
			if a.Kind == ActStop && a.ContainerID != running.ID {
				t.Errorf("stops %s, want the old container", a.ContainerID)
			}
		})
	}
}

func TestStartFirstFailureBacksOff(t *testing.T) {
	d := testSpec(spec.RestartAlways, startFirst(0))
	running := ctr(testSpec(spec.RestartAlways), "running")
	h := model.History{SpecHash: d.Hash}
	var delays []time.Duration
	for i := range 3 {
		n := next(d, "exited", exited(1, time.Second), func(c *docker.Container) { c.ID = string(rune('a' + i)) })
		a := decide(d, Observed{Container: running, Next: n}, h, t0)
		if a.Kind != ActNextFailed || a.Exit == nil || a.Exit.ExitCode != 1 || a.Phase != model.PhaseRunning {
			t.Fatalf("failure %d: %+v", i, a)
		}
		h = a.History
		delays = append(delays, h.Rollout.NextTryAt.Sub(t0))
	}
	if h.Rollout.Failures != 3 || !(delays[0] < delays[1] && delays[1] < delays[2]) {
		t.Errorf("failures %d, delays %v: want 3, growing", h.Rollout.Failures, delays)
	}
	// A new definition is not held by the old one's failures.
	d2 := testSpec(spec.RestartAlways, startFirst(0, func(c *spec.ContainerSpec) { c.Args = []string{"sleep"} }))
	if a := decide(d2, Observed{Container: running}, h, t0); a.Kind != ActCreateNext {
		t.Errorf("new definition after failures: %v, want CreateNext", a.Kind)
	}
}

func TestRestartWantReplaces(t *testing.T) {
	d := testSpec(spec.RestartAlways)
	running := ctr(d, "running")
	if a := decide(d, Observed{Container: running}, model.History{SpecHash: d.Hash}, t0); a.Kind != ActNone {
		t.Fatalf("before the restart request: %v", a.Kind)
	}
	d.Want = restartWant(d.Label(), t0)
	if a := decide(d, Observed{Container: running}, model.History{SpecHash: d.Hash}, t0); a.Kind != ActStop || a.Cause != model.StopReplaced ||
		a.Message != "restart requested or secrets changed" {
		t.Fatalf("after the restart request: %v %v %q, want a replacing stop saying why", a.Kind, a.Cause, a.Message)
	}
	if restartWant("h", time.Time{}) != "h" || restartWant("h", t0) == restartWant("h", t0.Add(time.Second)) {
		t.Error("restartWant: no request must keep the label, each request must change it")
	}
}

func TestDecideDependencies(t *testing.T) {
	withDeps := func(facts ...DepFact) Desired {
		d := testSpec(spec.RestartAlways)
		d.Deps = facts
		return d
	}
	cases := []struct {
		name    string
		d       Desired
		want    ActionKind
		phase   model.Phase
		message string
	}{
		{"no dependencies: created", withDeps(), ActCreate, model.PhasePending, ""},
		{"Started dependency running: created",
			withDeps(DepFact{Name: "db", Condition: spec.DependsStarted, Exists: true, Phase: model.PhaseRunning}), ActCreate, model.PhasePending, ""},
		{"Started dependency pending: waiting",
			withDeps(DepFact{Name: "db", Condition: spec.DependsStarted, Exists: true, Phase: model.PhasePending}), ActNone, model.PhaseWaiting,
			`waiting for dependency "db" to be Started (it is Pending)`},
		{"Healthy dependency starting: waiting",
			withDeps(DepFact{Name: "db", Condition: spec.DependsHealthy, Exists: true, HasHealthcheck: true, Phase: model.PhaseRunning, Health: "starting"}),
			ActNone, model.PhaseWaiting, `"db" to be Healthy (it is Running, starting)`},
		{"Healthy dependency healthy: created",
			withDeps(DepFact{Name: "db", Condition: spec.DependsHealthy, Exists: true, HasHealthcheck: true, Phase: model.PhaseRunning, Health: "healthy"}),
			ActCreate, model.PhasePending, ""},
		{"Healthy dependency without a healthcheck: waiting, said why",
			withDeps(DepFact{Name: "db", Condition: spec.DependsHealthy, Exists: true, Phase: model.PhaseRunning}),
			ActNone, model.PhaseWaiting, "has no healthcheck"},
		{"Succeeded dependency still running: waiting",
			withDeps(DepFact{Name: "migrate", Condition: spec.DependsSucceeded, Exists: true, Phase: model.PhaseRunning}),
			ActNone, model.PhaseWaiting, `"migrate" to be Succeeded`},
		{"Succeeded dependency failed: waiting",
			withDeps(DepFact{Name: "migrate", Condition: spec.DependsSucceeded, Exists: true, Phase: model.PhaseFailed}),
			ActNone, model.PhaseWaiting, "it is Failed"},
		{"Succeeded dependency succeeded: created",
			withDeps(DepFact{Name: "migrate", Condition: spec.DependsSucceeded, Exists: true, Phase: model.PhaseSucceeded}),
			ActCreate, model.PhasePending, ""},
		{"deleted dependency: waiting, said so",
			withDeps(DepFact{Name: "db", Condition: spec.DependsStarted}), ActNone, model.PhaseWaiting, `there is no spec "db"`},
		{"two dependencies, one unmet: waiting for that one",
			withDeps(DepFact{Name: "db", Condition: spec.DependsStarted, Exists: true, Phase: model.PhaseRunning},
				DepFact{Name: "cache", Condition: spec.DependsStarted, Exists: true}),
			ActNone, model.PhaseWaiting, `"cache" to be Started (it has no status yet)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := decide(tc.d, Observed{}, model.History{}, t0)
			if a.Kind != tc.want || a.Phase != tc.phase {
				t.Fatalf("got %v %v (%q), want %v %v", a.Kind, a.Phase, a.Message, tc.want, tc.phase)
			}
			if !strings.Contains(a.Message, tc.message) {
				t.Errorf("message %q, want it to say %q", a.Message, tc.message)
			}
		})
	}
	// A running dependent is not stopped when its dependency stops holding.
	d := withDeps(DepFact{Name: "db", Condition: spec.DependsStarted, Exists: true, Phase: model.PhaseFailed})
	if a := decide(d, Observed{Container: ctr(d, "running")}, model.History{SpecHash: d.Hash}, t0); a.Kind != ActNone || a.Phase != model.PhaseRunning {
		t.Errorf("running dependent: %v %v, want left running", a.Kind, a.Phase)
	}
}

// TestReconcileStartFirst drives a whole start-first replacement through
// Reconcile, with an agent restart in the middle of it.
func TestReconcileStartFirst(t *testing.T) {
	h := newHarness(t)
	version := func(args string) func(*spec.ContainerSpec) {
		return func(c *spec.ContainerSpec) {
			c.Args = []string{args}
			c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst, MinReady: spec.Duration{Duration: 5 * time.Second}}
		}
	}
	h.putSpec("web", version("tick"))
	h.reconcile("web")
	old := h.rt.byName("reconciler-web")
	if old == nil || old.State != "running" {
		t.Fatalf("first version: %v", h.rt.calls())
	}

	h.putSpec("web", version("sleep"))
	res := h.reconcile("web")
	next := h.rt.byName("reconciler-web-next")
	if next == nil || next.State != "running" || h.rt.state(old.ID) != "running" || h.rt.count("stop") != 0 {
		t.Fatalf("after the change: next %+v, old %s, calls %v: want both running", next, h.rt.state(old.ID), h.rt.calls())
	}
	if res.RequeueAfter != 5*time.Second {
		t.Errorf("requeue after %s, want minReady 5s: the wait holds no worker", res.RequeueAfter)
	}
	st := h.status("web")
	if st.Phase != model.PhaseRunning || st.ContainerID != old.ID || !strings.Contains(st.Message, "minReady") || !st.Updating {
		t.Fatalf("status while the replacement warms up: %+v", st)
	}

	// The agent restarts here: a new controller finds the replacement.
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.now = h.now.Add(2 * time.Second)
	h.reconcile("web")
	if h.rt.count("create") != 2 || h.rt.count("stop") != 0 {
		t.Fatalf("restarted agent before minReady: %v, want no new create, no stop", h.rt.calls())
	}
	h.now = h.now.Add(3 * time.Second)
	h.reconcile("web") // ready: the old one is stopped
	h.reconcile("web") // its exit recorded, removed, the replacement renamed
	next = h.rt.byID(next.ID)
	if h.rt.byID(old.ID) != nil || next == nil || next.Name != "reconciler-web" || next.State != "running" || len(h.rt.all()) != 1 {
		t.Fatalf("after the rollout: %d containers, next %+v: calls %v", len(h.rt.all()), next, h.rt.ops())
	}
	// The daemon's calls, in turn: the second start (the replacement's)
	// comes before the only stop (the old one's), and the rename after.
	var starts, stop, rename []int
	for i, op := range h.rt.ops() {
		switch op {
		case "start":
			starts = append(starts, i)
		case "stop":
			stop = append(stop, i)
		case "rename":
			rename = append(rename, i)
		}
	}
	if len(starts) != 2 || len(stop) != 1 || len(rename) != 1 || starts[1] > stop[0] || rename[0] < stop[0] {
		t.Fatalf("calls %v: want the replacement started before the old one stopped, renamed after", h.rt.ops())
	}
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ContainerID != old.ID || exits[0].Reason != model.ReasonStoppedByAgent {
		t.Fatalf("exits %+v, want the old one's, stopped by the agent", exits)
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.ContainerID != next.ID || st.Updating {
		t.Fatalf("status after: %+v", st)
	}
	h.now = h.now.Add(time.Minute)
	before := h.rt.changes()
	h.reconcile("web")
	if h.rt.changes() != before {
		t.Fatalf("a settled rollout touched the daemon again: %v", h.rt.ops()[before:])
	}

	// A restart request replaces it again, by the same strategy.
	if _, err := h.st.RequestRestart("web", h.now); err != nil {
		t.Fatal(err)
	}
	h.reconcile("web")
	if n := h.rt.byName("reconciler-web-next"); n == nil || n.State != "running" || h.rt.state(next.ID) != "running" {
		t.Fatalf("after a restart request: %v", h.rt.ops())
	}
}

func TestReconcileDependsOnWakesDependents(t *testing.T) {
	h := newHarness(t)
	h.putSpec("db", func(c *spec.ContainerSpec) { c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}} })
	h.putSpec("app", func(c *spec.ContainerSpec) {
		c.DependsOn = []spec.Dependency{{Name: "db", Condition: spec.DependsHealthy}}
	})
	h.reconcile("app")
	if st := h.status("app"); st.Phase != model.PhaseWaiting || !strings.Contains(st.Message, `"db" to be Healthy (it has no status yet)`) {
		t.Fatalf("app before db: %+v", st)
	}
	h.reconcile("db")
	h.reconcile("app")
	if st := h.status("app"); st.Phase != model.PhaseWaiting || h.rt.byName("reconciler-app") != nil {
		t.Fatalf("app while db is not healthy: %+v", st)
	}
	for h.c.queue.Len() > 0 { // drain what the status changes woke
		n, _ := h.c.queue.Get()
		h.c.queue.Done(n)
	}
	h.rt.edit("reconciler-db", func(c *docker.Container) { c.Health = "healthy" })
	h.reconcile("db")
	if st := h.status("db"); st.Health != "healthy" {
		t.Fatalf("db status %+v, want its health recorded", st)
	}
	if h.c.queue.Len() != 1 {
		t.Fatalf("queue holds %d names, want app woken by db's status change", h.c.queue.Len())
	}
	if n, _ := h.c.queue.Get(); n != "app" {
		t.Fatalf("woken %q, want app", n)
	}
	h.reconcile("app")
	if st := h.status("app"); st.Phase != model.PhaseRunning {
		t.Fatalf("app once db is healthy: %+v", st)
	}
}

func TestRestartRunsAFinishedJobAgain(t *testing.T) {
	h := newHarness(t)
	h.put("job", spec.RestartNever, "exit")
	h.reconcile("job")
	h.now = h.now.Add(time.Second)
	h.rt.exit("reconciler-job", 0)
	h.reconcile("job")
	if st := h.status("job"); st.Phase != model.PhaseSucceeded || h.rt.count("start") != 1 {
		t.Fatalf("before the restart: %+v, %v", st, h.rt.calls())
	}
	if _, err := h.st.RequestRestart("job", h.now); err != nil {
		t.Fatal(err)
	}
	h.reconcile("job")
	if h.rt.count("start") != 2 || h.rt.count("create") != 2 {
		t.Fatalf("after the restart: %v, want a fresh container run", h.rt.calls())
	}
	if st := h.status("job"); st.Phase != model.PhaseRunning {
		t.Fatalf("after the restart: %+v", st)
	}
}

// TestStartFirstKeepsThePullBackOff: the image of a start-first
// replacement that fails to pull backs off like any pull, while the old
// container runs on; the old one's running does not wipe the back-off.
func TestStartFirstKeepsThePullBackOff(t *testing.T) {
	h := newHarness(t)
	h.putSpec("web", func(c *spec.ContainerSpec) { c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst} })
	h.reconcile("web")
	old := h.rt.byName("reconciler-web")
	h.rt.Images = map[string]bool{"reconciler/box:latest": true}
	h.rt.PullFunc = func(context.Context, string) error { return errors.New("manifest unknown") }
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = "reconciler/box:2"
		c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst}
	})
	h.reconcile("web") // starts the pull
	h.reconcile("web") // takes its failure
	if st := h.status("web"); st.Phase != model.PhaseImagePullBackOff || h.rt.state(old.ID) != "running" || h.rt.count("pull") != 1 {
		t.Fatalf("after a failed pull: %+v, old %s, %d pulls", st, h.rt.state(old.ID), h.rt.count("pull"))
	}
	h.now = h.now.Add(5 * time.Second)
	h.reconcile("web")
	if h.rt.count("pull") != 1 || h.rt.state(old.ID) != "running" || h.rt.byName("reconciler-web-next") != nil {
		t.Fatalf("inside the back-off: %d pulls, %v", h.rt.count("pull"), h.rt.ops())
	}
}
