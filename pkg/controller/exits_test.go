package controller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// TestRestartFirstRecordAfter: a crash that its policy restarts at once is
// started before its record is read together (no log read, no second
// commit ahead of the start), and the record follows, whole, with the log
// tail up to the exit.
func TestRestartFirstRecordAfter(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "crash")
	h.reconcile("web")
	id := h.rt.byName("reconciler-web").ID

	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 2)
	finished := h.now
	mark := len(h.rt.ops())
	h.now = h.now.Add(50 * time.Millisecond)
	h.reconcile("web")

	ops := h.rt.ops()[mark:]
	start, logs := slices.Index(ops, "start"), slices.Index(ops, "logs")
	if start < 0 || logs < 0 || logs < start {
		t.Fatalf("calls after the crash: %v; want the start before the log read", ops)
	}
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ContainerID != id || exits[0].ExitCode != 2 || exits[0].Reason != model.ReasonError ||
		exits[0].RestartCount != 0 {
		t.Fatalf("exits = %+v; want the crash recorded once", exits)
	}
	reads := h.rt.logOpts()
	if until := reads[len(reads)-1].Until; until.IsZero() || until.After(finished.Add(logDrain)) {
		t.Fatalf("log tail read until %v; want it to end at the exit (%v), before the restarted run", until, finished)
	}
	hist, _ := h.st.GetHistory("web")
	if hist.PendingExit != nil || hist.Restarts != 1 {
		t.Fatalf("history = %+v; want the record complete and one restart", hist)
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.LastExit == nil || st.LastExit.ExitCode != 2 {
		t.Fatalf("status = %+v", st)
	}
}

// TestRestartFirstSurvivesAnAgentKilledBeforeTheRecord: the agent dies
// right after the restart, before the record; the next agent (no notes, no
// memory) records the run from the pending exit in the state file.
func TestRestartFirstSurvivesAnAgentKilledBeforeTheRecord(t *testing.T) {
	h := newHarness(t)
	fs := &fullStore{Store: h.st}
	h.c = New(h.rt, fs, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.put("web", spec.RestartAlways, "crash")
	h.reconcile("web")

	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 3)
	// The state file takes the pending exit, then nothing more: the agent
	// is as good as dead after its start.
	h.rt.OnStart = func(docker.Container) { fs.full.Store(true) }
	h.c.cache.dirty("web")
	if _, err := h.c.Reconcile(context.Background(), "web"); err == nil {
		t.Fatal("reconcile went on after the state file stopped taking writes")
	}
	if h.rt.count("start") != 2 {
		t.Fatalf("calls %v; want the restart done", h.rt.calls())
	}
	if exits, _ := h.st.Exits("web", 0); len(exits) != 0 {
		t.Fatalf("exits = %+v; the test needs the record not yet written", exits)
	}
	pending, _ := h.st.GetHistory("web")
	if pending.PendingExit == nil || pending.PendingExit.ExitCode != 3 {
		t.Fatalf("history = %+v; want the exit pending in the state file", pending)
	}

	fs.full.Store(false)
	h.rt.OnStart = nil
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.now = h.now.Add(2 * time.Second)
	h.reconcile("web")
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ExitCode != 3 || exits[0].Reason != model.ReasonError {
		t.Fatalf("exits = %+v; want the run before the restart recorded", exits)
	}
	if h.rt.count("start") != 2 {
		t.Fatalf("calls %v; the next agent must not start it again", h.rt.calls())
	}
	if hist, _ := h.st.GetHistory("web"); hist.PendingExit != nil || hist.Restarts != 1 {
		t.Fatalf("history = %+v", hist)
	}
}

// sigkilledUnderAMemoryLimit is a harness whose Always spec "web", limited
// to 16Mi, ran and was SIGKILLed (137) at finished, seen 100 ms later.
func sigkilledUnderAMemoryLimit(t *testing.T) (h *harness, id string, finished time.Time) {
	h = newHarness(t)
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.RestartPolicy = spec.RestartAlways
		c.Resources.Memory = "16Mi"
	})
	h.reconcile("web")
	id = h.rt.byName("reconciler-web").ID
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 137)
	finished = h.now
	h.now = h.now.Add(100 * time.Millisecond)
	return h, id, finished
}

// oneRecordOf checks web's ledger holds one record, OOMKilled when the oom
// notice came, Signaled when it did not.
func oneRecordOf(t *testing.T, h *harness, notice bool) {
	t.Helper()
	exits, _ := h.st.Exits("web", 0)
	want := model.ReasonSignaled
	if notice {
		want = model.ReasonOOMKilled
	}
	if len(exits) != 1 || exits[0].Reason != want || exits[0].OOMKilled != notice {
		t.Fatalf("notice %v: exits = %+v; want one record, reason %s", notice, exits, want)
	}
}

// TestRestartFirstWaitsForALateOOMNotice: a SIGKILL of a memory-limited
// container restarts at once; its record waits for the oom notice window,
// and an oom event that arrives after the restart makes it OOMKilled.
func TestRestartFirstWaitsForALateOOMNotice(t *testing.T) {
	for _, notice := range []bool{true, false} {
		h, id, finished := sigkilledUnderAMemoryLimit(t)
		res := h.reconcile("web")
		if h.rt.count("start") != 2 {
			t.Fatalf("calls %v; want the restart at once", h.rt.calls())
		}
		if exits, _ := h.st.Exits("web", 0); len(exits) != 0 || res.RequeueAfter != oomNoticeWindow-100*time.Millisecond {
			t.Fatalf("exits %+v, requeue %s; want the record to wait the rest of %s for an oom notice", exits, res.RequeueAfter, oomNoticeWindow)
		}
		if notice {
			h.c.notes.record(dockerEvent("oom", id, finished.Add(200*time.Millisecond)))
		}
		h.now = finished.Add(oomNoticeWindow)
		h.reconcile("web")
		oneRecordOf(t, h, notice)
	}
}

// TestRestartFirstSeesTheOOMNoticeThatCameDuringTheStart: a start takes
// seconds on a loaded daemon; the oom notice of the run before, arriving
// meanwhile, makes its record OOMKilled even when the start returns after
// the notice window, in the same reconcile pass.
func TestRestartFirstSeesTheOOMNoticeThatCameDuringTheStart(t *testing.T) {
	for _, notice := range []bool{true, false} {
		h, id, finished := sigkilledUnderAMemoryLimit(t)
		h.rt.OnStart = func(docker.Container) {
			if notice {
				h.c.notes.record(dockerEvent("oom", id, finished.Add(200*time.Millisecond)))
			}
			h.now = finished.Add(oomNoticeWindow + time.Second)
		}
		h.reconcile("web")
		if h.rt.count("start") != 2 {
			t.Fatalf("calls %v; want the restart", h.rt.calls())
		}
		oneRecordOf(t, h, notice)
	}
}

func dockerEvent(action, id string, at time.Time) docker.Event {
	return docker.Event{Action: action, ContainerID: id, Time: at}
}

// TestRefusedStartIsAFailedRun: a start the daemon refuses is recorded as
// a run that failed with code 128 and the daemon's answer, backs off, and
// the next try gets a fresh container.
func TestRefusedStartIsAFailedRun(t *testing.T) {
	h := newHarness(t)
	refused := errors.New(`exec: "nope": executable file not found in $PATH`)
	h.rt.StartFunc = func(string) error { return refused }
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Backoff = spec.Backoff{Initial: spec.Duration{Duration: time.Second}}
	})
	res := h.reconcile("web")
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ExitCode != 128 || exits[0].Reason != model.ReasonError ||
		!strings.Contains(exits[0].Error, "executable file not found") {
		t.Fatalf("exits = %+v; want one run, 128, Error, with the daemon's answer", exits)
	}
	if st := h.status("web"); st.Phase != model.PhaseBackoff || res.RequeueAfter != time.Second {
		t.Fatalf("status %+v, requeue %s; want Backoff for 1s", st, res.RequeueAfter)
	}
	h.rt.StartFunc = nil
	h.now = h.now.Add(time.Second)
	h.reconcile("web")
	if h.rt.count("remove") != 1 || h.rt.count("create") != 2 || h.status("web").Phase != model.PhaseRunning {
		t.Fatalf("calls %v, status %+v; want the refused container replaced and running", h.rt.calls(), h.status("web"))
	}
	if exits, _ := h.st.Exits("web", 0); len(exits) != 1 {
		t.Fatalf("exits = %+v; the refusal is recorded once", exits)
	}
}

// TestDaemonLagIsTheLastStartsDuration: each step sees how long the
// daemon took over the agent's last start.
func TestDaemonLagIsTheLastStartsDuration(t *testing.T) {
	h, _, _ := sigkilledUnderAMemoryLimit(t)
	h.rt.OnStart = func(docker.Container) { h.now = h.now.Add(4 * time.Second) }
	h.reconcile("web")
	if h.rt.count("start") != 2 {
		t.Fatalf("calls %v; want the restart", h.rt.calls())
	}
	o := Observed{Container: h.rt.byName("reconciler-web")}
	h.c.renote(&o)
	if o.DaemonLag != 4*time.Second || o.noticeWindow() != 4*time.Second {
		t.Fatalf("lag %s, window %s after a 4s start; want both 4s", o.DaemonLag, o.noticeWindow())
	}
}
