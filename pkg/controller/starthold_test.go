package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// addCreated adds a created container of the stored spec name, as an
// earlier agent process left it: created, never started by this one.
func (h *harness) addCreated(name, id string) {
	h.t.Helper()
	rec, err := h.st.GetSpec(name)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rt.add(docker.Container{ID: id, Name: ContainerName(name), State: "created", Image: rec.Spec.Spec.Image,
		Labels: map[string]string{docker.LabelManaged: "true", docker.LabelInstance: "test", docker.LabelSpec: name,
			docker.LabelSpecHash: rec.Hash, labelGrace: "10s", labelStopSignal: "SIGTERM"}})
}

// A created container this process did not create may have a start under
// way in the daemon (an agent killed during its start call): it is not
// started at once. Once the hold has passed it is started if it is still
// created (the positive control), and a container the start under way ran
// meanwhile is not started again: a job runs once.
func TestACreatedContainerOfAnEarlierProcessIsNotStartedTwice(t *testing.T) {
	adopted := func(t *testing.T) *harness {
		h := newHarness(t)
		h.put("job", spec.RestartNever, "exit", "--code", "0")
		h.addCreated("job", "j1")
		res := h.reconcile("job")
		if n := h.rt.count("start"); n != 0 {
			t.Fatalf("a created container of an earlier process was started at once (%d starts)", n)
		}
		if st := h.status("job"); st.Phase != model.PhasePending || !strings.Contains(st.Message, "a start may still be under way") {
			t.Fatalf("status while held: %+v", st)
		}
		if res.RequeueAfter != startHoldFloor {
			t.Fatalf("RequeueAfter = %s, want the hold, %s", res.RequeueAfter, startHoldFloor)
		}
		h.now = h.now.Add(startHoldFloor / 2)
		if h.reconcile("job"); h.rt.count("start") != 0 {
			t.Fatal("started before the hold had passed")
		}
		return h
	}

	t.Run("still created after the hold: started", func(t *testing.T) {
		h := adopted(t)
		h.now = h.now.Add(startHoldFloor / 2)
		h.reconcile("job")
		if n := h.rt.count("start"); n != 1 || h.rt.state("j1") != "running" {
			t.Fatalf("after the hold: %d starts, state %s; want it started once", n, h.rt.state("j1"))
		}
	})

	t.Run("run by the start under way: not started again", func(t *testing.T) {
		h := adopted(t)
		ran := h.now.Add(-time.Second)
		h.rt.edit("j1", func(c *docker.Container) {
			c.State, c.ExitCode, c.StartedAt, c.FinishedAt = "exited", 0, ran, ran.Add(100*time.Millisecond)
		})
		for range 3 {
			h.now = h.now.Add(startHoldFloor)
			h.reconcile("job")
		}
		if n := h.rt.count("start"); n != 0 {
			t.Fatalf("the job that ran was started again (%d starts)", n)
		}
		exits, err := h.st.Exits("job", 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := h.status("job"); st.Phase != model.PhaseSucceeded || len(exits) != 1 || exits[0].ContainerID != "j1" {
			t.Fatalf("phase %s, exits %+v; want Succeeded with the one run recorded", st.Phase, exits)
		}
	})
}

// timedOutStart is a daemon whose start calls all end in a time-out,
// leaving it unknown whether the container will start.
type timedOutStart struct {
	*fakeRuntime
	tries int
}

func (r *timedOutStart) Start(ctx context.Context, id string) error {
	r.tries++
	return fmt.Errorf("start container %s: %w", id, docker.ErrUnavailable)
}

// A start of this process's own that timed out may still be carried out:
// the retry waits the hold too.
func TestAStartThatTimedOutIsRetriedAfterTheHold(t *testing.T) {
	h := newHarness(t)
	h.put("job", spec.RestartNever, "exit", "--code", "0")
	rt := &timedOutStart{fakeRuntime: h.rt}
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	if _, err := h.c.Reconcile(context.Background(), "job"); !errors.Is(err, docker.ErrUnavailable) || rt.tries != 1 {
		t.Fatalf("first pass: err %v after %d start calls; want the time-out after one", err, rt.tries)
	}
	h.now = h.now.Add(time.Second)
	if _, err := h.c.Reconcile(context.Background(), "job"); err != nil || rt.tries != 1 {
		t.Fatalf("a second pass a second later: err %v, %d start calls; want the start held", err, rt.tries)
	}
	h.now = h.now.Add(startHoldFloor)
	if _, err := h.c.Reconcile(context.Background(), "job"); !errors.Is(err, docker.ErrUnavailable) || rt.tries != 2 {
		t.Fatalf("after the hold: err %v, %d start calls; want a second try", err, rt.tries)
	}
}

// The hold is startHoldFloor, or four of the daemon's last starts when
// that is longer: a daemon that slow may take as long over the start it
// was sent before.
func TestTheStartHoldGrowsWithTheDaemonsLag(t *testing.T) {
	c := New(newFakeRuntime(time.Now), nil, nil, Options{Instance: "test"})
	for _, tc := range []struct{ lag, want time.Duration }{
		{0, startHoldFloor},
		{startHoldFloor / 4, startHoldFloor},
		{5 * time.Second, 20 * time.Second},
	} {
		c.startLag.Store(int64(tc.lag))
		if got := c.startHold(); got != tc.want {
			t.Errorf("last start took %s: hold %s, want %s", tc.lag, got, tc.want)
		}
	}
}

// A created container held back keeps its admission slot: the job queued
// behind it is not admitted meanwhile (a kill -9 must not reorder the
// queue), and goes once the held one has run.
func TestAHeldContainerKeepsItsAdmissionSlot(t *testing.T) {
	h := admHarness(t, Budget{MaxRunningJobs: 1})
	h.putQueuedJob("first", 0, "")
	h.addCreated("first", "f1")
	h.now = h.now.Add(time.Second)
	h.putQueuedJob("second", 0, "")
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.reconcile("first")
	h.reconcile("second")
	if h.rt.count("start") != 0 || h.status("second").Phase != model.PhaseQueued {
		t.Fatalf("while first is held: %d starts, second %+v; want second queued behind it", h.rt.count("start"), h.status("second"))
	}
	h.now = h.now.Add(startHoldFloor)
	h.reconcile("second")
	h.reconcile("first")
	if got := h.running(); len(got) != 1 || got[0] != "first" {
		t.Fatalf("after the hold: running %v, want first", got)
	}
	h.rt.exit(ContainerName("first"), 0)
	h.reconcile("first")
	h.reconcile("second")
	if got := h.running(); len(got) != 1 || got[0] != "second" {
		t.Fatalf("after first ran: running %v, want second (the positive control)", got)
	}
}
