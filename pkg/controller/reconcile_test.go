package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// fakeRuntime is an in-memory daemon: enough state to drive Reconcile
// through whole lifecycles without Docker.
type fakeRuntime struct {
	mu         sync.Mutex
	now        func() time.Time
	containers map[string]*docker.Container
	seq        int
	counts     map[string]int
	order      []string // every call, in turn
	logReads   []docker.LogOptions
	logData    func(id string, opts docker.LogOptions) string // what Logs returns; nothing when nil
	wholeErr   error                                          // when set, a whole read fails with it
	onStart    func()                                         // called after each successful start
	startErr   error                                          // when set, every start is refused with it
	stopCode   int                                            // exit code of a stopped container
	created    docker.CreateRequest                           // the last create request
	// images in the local store when set (else every image is); pull
	// answers a pull (else it fails) and adds the image on success.
	images map[string]bool
	pull   func(ref string) error
}

func newFakeRuntime(now func() time.Time) *fakeRuntime {
	return &fakeRuntime{now: now, containers: map[string]*docker.Container{}, counts: map[string]int{}, stopCode: 143}
}

func (f *fakeRuntime) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// calls counts every call made so far, by method.
func (f *fakeRuntime) calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

func (f *fakeRuntime) call(op string) {
	f.counts[op]++
	f.order = append(f.order, op)
}

// ops returns the calls made so far, in turn.
func (f *fakeRuntime) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

func (f *fakeRuntime) find(idOrName string) *docker.Container {
	if c, ok := f.containers[idOrName]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.Name == idOrName {
			return c
		}
	}
	return nil
}

// byName returns the container with this name as the daemon holds it now,
// or nil.
func (f *fakeRuntime) byName(name string) *docker.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(name)
	if c == nil {
		return nil
	}
	ct := *c
	return &ct
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
func (f *fakeRuntime) all() []docker.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []docker.Container
	for _, c := range f.containers {
		out = append(out, *c)
	}
	return out
}

// add puts a container into the daemon as it is.
func (f *fakeRuntime) add(c docker.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[c.ID] = &c
}

// edit changes a container as the daemon would on its own.
func (f *fakeRuntime) edit(idOrName string, fn func(*docker.Container)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.find(idOrName))
}

// removeByHand removes a container as someone's docker rm -f does, outside
// the calls counted.
func (f *fakeRuntime) removeByHand(idOrName string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c != nil {
		delete(f.containers, c.ID)
	}
	return c != nil
}

// lastCreate is the last create request.
func (f *fakeRuntime) lastCreate() docker.CreateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

// logOpts are the options of every log read, in turn.
func (f *fakeRuntime) logOpts() []docker.LogOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logReads)
}

// exit ends a running container's process with code, as a crash would.
func (f *fakeRuntime) exit(name string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(name)
	c.State, c.ExitCode, c.FinishedAt = "exited", code, f.now()
}

func (f *fakeRuntime) Ping(context.Context) error { return nil }

func (f *fakeRuntime) List(_ context.Context, sel map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("list")
	var out []docker.Container
next:
	for _, c := range f.containers {
		for k, v := range sel {
			if c.Labels[k] != v {
				continue next
			}
		}
		l := *c
		l.Inspected, l.ExitCode, l.StartedAt, l.FinishedAt = false, 0, time.Time{}, time.Time{}
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeRuntime) Inspect(_ context.Context, id string) (docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("inspect")
	c := f.find(id)
	if c == nil {
		return docker.Container{}, fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
	}
	in := *c
	in.Inspected = true
	return in, nil
}

func (f *fakeRuntime) Create(_ context.Context, req docker.CreateRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(req.Name) != nil {
		return "", fmt.Errorf("name %s: %w", req.Name, docker.ErrConflict)
	}
	f.call("create")
	f.created = req
	f.seq++
	id := fmt.Sprintf("c%d", f.seq)
	f.containers[id] = &docker.Container{ID: id, Name: req.Name, Image: req.Spec.Spec.Image, ImageID: req.Image, Labels: req.Labels, State: "created"}
	return id, nil
}

func (f *fakeRuntime) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("start")
	c := f.containers[id]
	if f.startErr != nil {
		return f.startErr
	}
	c.State, c.StartedAt, c.ExitCode = "running", f.now(), 0
	if f.onStart != nil {
		f.onStart()
	}
	return nil
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("stop")
	c := f.containers[id]
	if c.State == "running" {
		c.State, c.ExitCode, c.FinishedAt = "exited", f.stopCode, f.now()
	}
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("remove")
	delete(f.containers, id)
	return nil
}

func (f *fakeRuntime) Wait(ctx context.Context, _ string) (model.ContainerExit, error) {
	<-ctx.Done()
	return model.ContainerExit{}, ctx.Err()
}

func (f *fakeRuntime) Logs(_ context.Context, id string, opts docker.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("logs")
	f.logReads = append(f.logReads, opts)
	if opts.Whole && f.wholeErr != nil {
		return nil, f.wholeErr
	}
	if f.logData != nil {
		return io.NopCloser(strings.NewReader(f.logData(id, opts))), nil
	}
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *fakeRuntime) Exec(context.Context, string, []string) (docker.ExecResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("exec")
	return docker.ExecResult{}, errors.New("not used")
}

func (f *fakeRuntime) ImagePresent(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images == nil || f.images[ref], nil
}

func (f *fakeRuntime) Pull(_ context.Context, ref string) error {
	f.mu.Lock()
	f.call("pull")
	pull := f.pull
	f.mu.Unlock()
	if pull == nil {
		return errors.New("no registry")
	}
	err := pull(ref)
	if err == nil {
		f.mu.Lock()
		if f.images != nil {
			f.images[ref] = true
		}
		f.mu.Unlock()
	}
	return err
}

// changes counts the calls a converged agent must not make: everything
// but Ping, List, Wait, ImagePresent and Events.
func (f *fakeRuntime) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for op, c := range f.counts {
		if op != "list" {
			n += c
		}
	}
	return n
}

func (f *fakeRuntime) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	errs := make(chan error, 1)
	go func() { <-ctx.Done(); errs <- ctx.Err() }()
	return make(chan docker.Event), errs
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
