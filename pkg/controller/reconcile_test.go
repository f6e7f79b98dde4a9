package controller

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/docker/dockertest"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// fakeRuntime is the shared fake daemon, dockertest, with the views the
// controller's tests read it through. Its ids are short (c1, c2, ...) so
// that failures read easily.
type fakeRuntime struct{ *dockertest.Runtime }

func newFakeRuntime(now func() time.Time) *fakeRuntime {
	rt := dockertest.New()
	rt.Now = now
	rt.NewID = func(n int) string { return fmt.Sprintf("c%d", n) }
	return &fakeRuntime{rt}
}

func (f *fakeRuntime) count(op string) int { return f.Calls(op) }

// calls counts every call made so far, by method.
func (f *fakeRuntime) calls() map[string]int { return f.CallCounts() }

// ops returns the calls made so far, in turn.
func (f *fakeRuntime) ops() []string { return f.Ops() }

// byName returns the container with this name as the daemon holds it now,
// or nil.
func (f *fakeRuntime) byName(name string) *docker.Container {
	c, ok := f.Container(name)
	if !ok {
		return nil
	}
	return &c
}

// byID is byName for an id.
func (f *fakeRuntime) byID(id string) *docker.Container { return f.byName(id) }

// state is the state of the container with this id or name; "" when there
// is none.
func (f *fakeRuntime) state(idOrName string) string {
	if c := f.byName(idOrName); c != nil {
		return c.State
	}
	return ""
}

// all returns every container.
func (f *fakeRuntime) all() []docker.Container { return f.Containers() }

// add puts a container into the daemon as it is.
func (f *fakeRuntime) add(c docker.Container) { f.Add(c) }

// edit changes a container as the daemon would on its own.
func (f *fakeRuntime) edit(idOrName string, fn func(*docker.Container)) {
	if !f.Edit(idOrName, fn) {
		panic("no container " + idOrName)
	}
}

// removeByHand removes a container as someone's docker rm -f does, outside
// the calls counted.
func (f *fakeRuntime) removeByHand(idOrName string) bool { return f.RemoveByHand(idOrName) }

// lastCreate is the last create request.
func (f *fakeRuntime) lastCreate() docker.CreateRequest { return f.LastCreate() }

// logOpts are the options of every log read, in turn.
func (f *fakeRuntime) logOpts() []docker.LogOptions { return f.LogOptions() }

// exit ends a running container's process with code, as a crash would.
func (f *fakeRuntime) exit(name string, code int) { f.Exit(name, code) }

// changes counts the calls a converged agent must not make: everything
// but Ping, List, Wait, ImagePresent and Events.
func (f *fakeRuntime) changes() int {
	n := 0
	for op, c := range f.CallCounts() {
		switch op {
		case "ping", "list", "wait", "imagepresent", "events":
		default:
			n += c
		}
	}
	return n
}

type harness struct {
	t   *testing.T
	c   *Controller
	rt  *fakeRuntime
	st  *store.Store
	now time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, now: t0}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Now: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.st = st
	h.rt = newFakeRuntime(func() time.Time { return h.now })
	h.c = New(h.rt, st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	return h
}

func (h *harness) put(name string, policy spec.RestartPolicy, args ...string) {
	h.t.Helper()
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: args, RestartPolicy: policy}}
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		h.t.Fatal(err)
	}
}

// reconcile runs Reconcile as a worker would after an event, and waits for
// stops it started.
func (h *harness) reconcile(name string) Result {
	h.t.Helper()
	h.c.cache.dirty(name)
	res, err := h.c.Reconcile(context.Background(), name)
	if err != nil {
		h.t.Fatalf("Reconcile(%s): %v", name, err)
	}
	h.c.wg.Wait()
	return res
}

func (h *harness) status(name string) model.Status {
	h.t.Helper()
	st, err := h.st.GetStatus(name)
	if err != nil {
		h.t.Fatalf("status of %s: %v", name, err)
	}
	return st
}

func TestReconcileLifecycle(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "tick")

	h.reconcile("web")
	if h.rt.count("create") != 1 || h.rt.count("start") != 1 {
		t.Fatalf("new spec: %v, want one create and one start", h.rt.calls())
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.ContainerID == "" {
		t.Fatalf("status = %+v", st)
	}
	ctr := h.rt.byName("reconciler-web")
	for k, v := range map[string]string{docker.LabelManaged: "true", docker.LabelSpec: "web", docker.LabelInstance: "test"} {
		if ctr.Labels[k] != v {
			t.Fatalf("label %s = %q, want %q", k, ctr.Labels[k], v)
		}
	}

	before := h.status("web").UpdatedAt
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	if h.rt.count("create") != 1 || h.rt.count("start") != 1 || !h.status("web").UpdatedAt.Equal(before) {
		t.Fatal("a settled spec was touched again")
	}

	// The process crashes: the exit is recorded once and it restarts in place.
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 2)
	h.reconcile("web")
	h.reconcile("web")
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ExitCode != 2 || exits[0].Reason != model.ReasonError || exits[0].ContainerID != ctr.ID {
		t.Fatalf("exits = %+v", exits)
	}
	if h.rt.count("start") != 2 || h.rt.count("create") != 1 {
		t.Fatalf("after crash: %v, want a restart in place", h.rt.calls())
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning || st.Restarts != 1 {
		t.Fatalf("after crash: %+v", st)
	}

	// Deleted: stopped with grace, recorded as the agent's stop, removed, forgotten.
	if err := h.st.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(time.Minute)
	h.reconcile("web") // stop
	h.reconcile("web") // record, remove, forget
	if h.rt.count("stop") != 1 || h.rt.count("remove") != 1 || h.rt.byName("reconciler-web") != nil {
		t.Fatalf("after delete: %v", h.rt.calls())
	}
	exits, _ = h.st.Exits("web", 0)
	if len(exits) != 2 || exits[0].Reason != model.ReasonStoppedByAgent || exits[0].ExitCode != 143 {
		t.Fatalf("exits after delete = %+v", exits)
	}
	if _, err := h.st.GetStatus("web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status after delete: %v", err)
	}
}

func TestReconcileLeavesAForeignContainerAlone(t *testing.T) {
	h := newHarness(t)
	h.rt.add(docker.Container{ID: "x1", Name: "reconciler-db", State: "running"})
	h.put("db", spec.RestartAlways, "sleep")
	h.reconcile("db")
	st := h.status("db")
	if st.Phase != model.PhaseError || st.Conflict != "reconciler-db" {
		t.Fatalf("status = %+v, want Error with the conflict", st)
	}
	if h.rt.count("stop") != 0 || h.rt.count("remove") != 0 || h.rt.state("x1") != "running" {
		t.Fatalf("the foreign container was touched: %v", h.rt.calls())
	}
}

func TestReconcileNeverJobRunsOnce(t *testing.T) {
	h := newHarness(t)
	h.put("job", spec.RestartNever, "exit")
	h.reconcile("job")
	h.now = h.now.Add(time.Second)
	h.rt.exit("reconciler-job", 0)
	h.reconcile("job")
	// A restarted agent has an empty cache and no notes: still nothing runs.
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.reconcile("job")
	if h.rt.count("start") != 1 {
		t.Fatalf("a finished Never job started %d times", h.rt.count("start"))
	}
	if st := h.status("job"); st.Phase != model.PhaseSucceeded {
		t.Fatalf("phase = %s", st.Phase)
	}
}
