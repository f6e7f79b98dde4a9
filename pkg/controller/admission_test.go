package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

const mi = 1 << 20

func TestAdmitsRule(t *testing.T) {
	b := Budget{Allocatable: Resources{Memory: 2048 * mi, NanoCPUs: 2e9}, MaxRunningJobs: 2}
	tests := []struct {
		name string
		a    Admission
		ok   bool
		msg  string // queued message, or the never message
	}{
		{"fits", Admission{Request: Resources{Memory: 512 * mi}, Budget: b, Queued: 1}, true, ""},
		{"nothing asked, no cap", Admission{Budget: b, Allocated: Resources{Memory: 2048 * mi}, Ahead: 3}, true, ""},
		{"zero budget admits all", Admission{Request: Resources{Memory: 512 * mi}, Job: true, Allocated: Resources{Memory: 1 << 40}}, true, ""},
		{"memory", Admission{Request: Resources{Memory: 512 * mi}, Budget: b, Allocated: Resources{Memory: 1748 * mi}, Ahead: 2, Queued: 7},
			false, "waiting for memory: needs 512Mi, 300Mi free of 2Gi; position 3 of 7"},
		{"cpus", Admission{Request: Resources{NanoCPUs: 15e8}, Budget: b, Allocated: Resources{NanoCPUs: 1e9}, Queued: 1},
			false, "waiting for cpus: needs 1.5, 1 free of 2; position 1 of 1"},
		{"job slot", Admission{Job: true, Budget: b, RunningJobs: 2, Queued: 2, Ahead: 1},
			false, "waiting for a job slot: 2 of 2 jobs running (--max-running-jobs); position 2 of 2"},
		{"a service takes no job slot", Admission{Budget: b, RunningJobs: 2}, true, ""},
		{"fits but others first", Admission{Request: Resources{Memory: mi}, Budget: b, Ahead: 1, Queued: 3},
			false, "waiting for its turn: 1 queued before it; position 2 of 3"},
		{"held: a restart in place", Admission{Request: Resources{Memory: 512 * mi}, Job: true, Budget: b, Held: true,
			Allocated: Resources{Memory: 2048 * mi}, RunningJobs: 2, Ahead: 4}, true, ""},
		{"held but resized beyond the free", Admission{Request: Resources{Memory: 1024 * mi}, Budget: b, Held: true, Resized: true,
			Allocated: Resources{Memory: 1536 * mi}, Ahead: 4, Queued: 5}, false, "waiting for memory: needs 1Gi, 512Mi free of 2Gi; position 5 of 5"},
		{"held and resized within the free, others queued", Admission{Request: Resources{Memory: 1024 * mi}, Budget: b, Held: true, Resized: true,
			Ahead: 4}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, waitFor := tt.a.admits()
			if ok != tt.ok {
				t.Fatalf("admits = %v (%q), want %v", ok, waitFor, tt.ok)
			}
			if !ok {
				if got := tt.a.queuedMessage(waitFor); got != tt.msg {
					t.Fatalf("message %q, want %q", got, tt.msg)
				}
			}
		})
	}
	never := Admission{Request: Resources{Memory: 4096 * mi}, Budget: b}
	if got := never.never(); !strings.Contains(got, "resources.memory 4Gi is more than the agent's whole allocatable memory 2Gi") {
		t.Fatalf("never = %q", got)
	}
	if got := (Admission{Request: Resources{NanoCPUs: 3e9}, Budget: b}).never(); !strings.Contains(got, "resources.cpus 3 is more than") {
		t.Fatalf("never = %q", got)
	}
	if got := (Admission{Request: Resources{Memory: 2048 * mi}, Budget: b}).never(); got != "" {
		t.Fatalf("the whole budget fits, yet never = %q", got)
	}
}

func TestDecideQueuesAdmitsAndRefusesTooLarge(t *testing.T) {
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
		Spec: spec.ContainerSpec{Image: "x", RestartPolicy: spec.RestartNever, Resources: spec.Resources{Memory: "512Mi"}}}
	s.Default()
	b := Budget{Allocatable: Resources{Memory: 1024 * mi}}
	d := Desired{Spec: s, Hash: s.Hash()}
	h := model.History{SpecHash: d.Hash}

	d.Admission = Admission{Request: Resources{Memory: 512 * mi}, Job: true, Budget: b, Allocated: Resources{Memory: 768 * mi}, Queued: 1}
	a := decide(d, Observed{}, h, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseQueued || !a.History.QueuedAt.Equal(t0) ||
		a.Message != "waiting for memory: needs 512Mi, 256Mi free of 1Gi; position 1 of 1" {
		t.Fatalf("queued: %+v", a)
	}
	// Still queued a minute later: it entered the queue at t0.
	a = decide(d, Observed{}, a.History, t0.Add(time.Minute))
	if !a.History.QueuedAt.Equal(t0) {
		t.Fatalf("QueuedAt moved to %v", a.History.QueuedAt)
	}
	d.Admission.Allocated = Resources{}
	a = decide(d, Observed{}, a.History, t0.Add(2*time.Minute))
	if a.Kind != ActCreate || !a.History.QueuedAt.IsZero() {
		t.Fatalf("admitted: %+v", a)
	}
	d.Admission.Request.Memory = 2048 * mi
	a = decide(d, Observed{}, h, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseError || a.Failed == nil || a.Failed.Reason != "ExceedsAllocatable" {
		t.Fatalf("too large: %+v", a)
	}
	// A failed OnFailure job due for a restart waits like a new one.
	s2 := *s
	s2.Spec.RestartPolicy = spec.RestartOnFailure
	d2 := Desired{Spec: &s2, Hash: s2.Hash(), Admission: Admission{Request: Resources{Memory: 512 * mi}, Job: true, Budget: b,
		Allocated: Resources{Memory: 1024 * mi}, Queued: 1}}
	c := docker.Container{ID: "c1", Name: "reconciler-job", State: "exited", ExitCode: 1, Inspected: true,
		StartedAt: t0.Add(-time.Minute), FinishedAt: t0, Labels: map[string]string{docker.LabelSpecHash: d2.Hash}}
	a = decideExited(d2, c, model.History{SpecHash: d2.Hash, LastContainerID: c.ID, LastStartedAt: c.StartedAt, ExitRecorded: true}, t0)
	if a.Phase != model.PhaseQueued {
		t.Fatalf("restart of a failed job: %+v", a)
	}
}

// admHarness is a harness whose controller has a budget.
func admHarness(t *testing.T, b Budget) *harness {
	h := newHarness(t)
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Budget: b})
	return h
}

func (h *harness) putQueuedJob(name string, priority int, memory string) {
	h.t.Helper()
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", RestartPolicy: spec.RestartNever, Priority: priority,
			Resources: spec.Resources{Memory: memory}}}
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) running() []string {
	var out []string
	for _, c := range h.rt.all() {
		if c.Running() {
			out = append(out, c.Labels["reconciler.spec"])
		}
	}
	return out
}

// TestAdmissionOrderAndBudget: jobs run at most as the budget allows, in
// priority order then arrival; the queued ones say what they wait for
// and where they stand, with one Queued event each.
func TestAdmissionOrderAndBudget(t *testing.T) {
	h := admHarness(t, Budget{Allocatable: Resources{Memory: 1024 * mi}})
	if err := h.c.resync(context.Background()); err != nil { // counts what runs: nothing
		t.Fatal(err)
	}
	// Arrival order a..f; priorities make the order c(5) f(5) a(1) d(1) b(0) e(0).
	prios := map[string]int{"a": 1, "b": 0, "c": 5, "d": 1, "e": 0, "f": 5}
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		h.putQueuedJob(n, prios[n], "512Mi")
	}
	// Everything arrives before any reconcile; the lowest reconciles first.
	for _, n := range []string{"e", "b", "d", "a", "f", "c"} {
		h.reconcile(n)
	}
	// e and b got in first: nothing was queued when they came. The rest
	// queue in order.
	if got := h.running(); len(got) != 2 {
		t.Fatalf("running %v, want 2 (the budget)", got)
	}
	want := []string{"c", "f", "a", "d"}
	if got := h.c.adm.order(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("queue order %v, want %v", got, want)
	}
	for _, n := range want {
		h.reconcile(n) // positions settle once everyone is in
	}
	st := h.status("a")
	if st.Phase != model.PhaseQueued || st.Message != "waiting for memory: needs 512Mi, 0 free of 1Gi; position 3 of 4" {
		t.Fatalf("status of a: %s %q", st.Phase, st.Message)
	}
	var admitted []string
	for len(admitted) < 4 {
		// The oldest running job ends; the head of the queue takes its place.
		run := h.running()
		if len(run) > 2 {
			t.Fatalf("running %v: over the budget", run)
		}
		h.rt.exit("reconciler-"+run[0], 0)
		h.reconcile(run[0])
		for _, n := range h.c.adm.order() {
			h.reconcile(n)
		}
		for _, n := range want {
			if h.status(n).Phase == model.PhaseRunning && !contains(admitted, n) {
				admitted = append(admitted, n)
			}
		}
	}
	if strings.Join(admitted, ",") != strings.Join(want, ",") {
		t.Fatalf("admitted in order %v, want %v", admitted, want)
	}
	evs, err := h.st.Events("a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	queuedEvents := 0
	for _, e := range evs {
		if e.Reason == "Queued" {
			queuedEvents += e.Count
		}
	}
	if queuedEvents != 1 {
		t.Fatalf("a got %d Queued events, want 1: %+v", queuedEvents, evs)
	}
	m := h.c.m.Admission
	if got := testutil.ToFloat64(m.QueueDepth); got != 0 {
		t.Fatalf("queue depth %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.Allocated.WithLabelValues(metrics.ResourceMemory)); got != 1024*mi {
		t.Fatalf("allocated memory %v, want 1Gi", got)
	}
	if got := testutil.ToFloat64(m.Allocatable.WithLabelValues(metrics.ResourceMemory)); got != 1024*mi {
		t.Fatalf("allocatable memory %v", got)
	}
	if got := testutil.CollectAndCount(m.QueueWait); got != 1 {
		t.Fatalf("queue wait histogram: %d series", got)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestAdmissionWaitsForTheFirstListing: before the running containers are
// counted, nothing that needs the budget is admitted.
func TestAdmissionWaitsForTheFirstListing(t *testing.T) {
	h := admHarness(t, Budget{MaxRunningJobs: 1})
	h.putQueuedJob("a", 0, "")
	if res := h.reconcile("a"); res.RequeueAfter != budgetUnknownWait || len(h.running()) != 0 {
		t.Fatalf("before the listing: %+v, running %v", res, h.running())
	}
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.reconcile("a")
	if got := h.running(); len(got) != 1 {
		t.Fatalf("after the listing: running %v", got)
	}
}

// TestAdmissionQueueSurvivesRestart: a new controller on the same state
// file counts what runs first, then puts the queued specs back in their
// order, whatever order it reconciles them in.
func TestAdmissionQueueSurvivesRestart(t *testing.T) {
	b := Budget{MaxRunningJobs: 1}
	h := admHarness(t, b)
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, n := range []string{"run", "low", "mid", "high"} {
		h.putQueuedJob(n, i, "")
		h.reconcile(n)
	}
	if got := h.c.adm.order(); strings.Join(got, ",") != "high,mid,low" {
		t.Fatalf("order before restart %v", got)
	}
	// The agent dies (kill -9: nothing more is written) and a new one starts.
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Budget: b})
	h.now = h.now.Add(time.Minute)
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.c.adm.order(); strings.Join(got, ",") != "high,mid,low" {
		t.Fatalf("order after restart %v", got)
	}
	for _, n := range []string{"low", "mid", "high", "run"} {
		h.reconcile(n)
	}
	if got := h.running(); len(got) != 1 || got[0] != "run" {
		t.Fatalf("running %v after restart, want only run", got)
	}
	h.rt.exit("reconciler-run", 0)
	h.reconcile("run")
	for _, n := range []string{"low", "mid", "high"} {
		h.reconcile(n)
	}
	if got := h.running(); len(got) != 1 || got[0] != "high" {
		t.Fatalf("running %v, want high next", got)
	}
	evs, _ := h.st.Events("low", 0, 0)
	for _, e := range evs {
		if e.Reason == "Queued" && e.Count != 1 {
			t.Fatalf("low's Queued event counted %d times: the restart re-announced it", e.Count)
		}
	}
	if got := testutil.CollectAndCount(h.c.m.Admission.QueueWait); got != 1 {
		t.Fatal("no queue wait observed")
	}
}

// TestAdmissionReserveIsAtomic: many workers reserving at once never take
// more than the budget (run with -race).
func TestAdmissionReserveIsAtomic(t *testing.T) {
	m := metrics.New("", "")
	a := newAdmission(Budget{Allocatable: Resources{Memory: 3 * 100 * mi}, MaxRunningJobs: 5}, m.Admission, nil)
	a.seed(nil, nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &spec.Spec{Metadata: spec.Metadata{Name: fmt.Sprint("j", i)}, Spec: spec.ContainerSpec{
				RestartPolicy: spec.RestartNever, Resources: spec.Resources{Memory: "100Mi"}}}
			if _, ok := a.reserve(s.Metadata.Name, Desired{Spec: s, Arrival: uint64(i + 1)}, t0); ok {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 3 {
		t.Fatalf("%d reservations taken, want exactly 3 (the memory budget)", got)
	}
	if v := testutil.ToFloat64(m.Admission.Allocated.WithLabelValues(metrics.ResourceMemory)); v != 300*mi {
		t.Fatalf("allocated %v", v)
	}
}

// TestAdmissionPriorityChangeReorders: a new priority on a queued spec
// moves it in the queue (without touching its arrival).
func TestAdmissionPriorityChangeReorders(t *testing.T) {
	h := admHarness(t, Budget{MaxRunningJobs: 1})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"run", "a", "b"} {
		h.putQueuedJob(n, 0, "")
		h.reconcile(n)
	}
	if got := h.c.adm.order(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("order %v", got)
	}
	h.putQueuedJob("b", 3, "")
	h.reconcile("b")
	h.reconcile("a")
	if got := h.c.adm.order(); strings.Join(got, ",") != "b,a" {
		t.Fatalf("order after b's priority rose: %v", got)
	}
	if st := h.status("a"); !strings.HasSuffix(st.Message, "position 2 of 2") {
		t.Fatalf("a says %q", st.Message)
	}
	if h.rt.count("create") != 1 {
		t.Fatalf("creates %d: a priority change created something", h.rt.count("create"))
	}
}

// TestAdmissionCountsAContainerCreatedBeforeTheRestart: an agent killed
// in its start call leaves a container that the first listing of the next
// agent shows as created, and that the daemon starts a moment later. It
// holds its share from that listing on, so nothing queued is started
// beside it beyond the budget (the e2e admission spec saw 4 running
// against a budget of 2 before).
func TestAdmissionCountsAContainerCreatedBeforeTheRestart(t *testing.T) {
	b := Budget{MaxRunningJobs: 1}
	h := admHarness(t, b)
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.putQueuedJob("first", 0, "")
	h.reconcile("first")
	if got := h.running(); len(got) != 1 || got[0] != "first" {
		t.Fatalf("running %v, want first", got)
	}
	// The agent dies inside the start call: the listing sees "created".
	h.rt.edit(ContainerName("first"), func(c *docker.Container) { c.State = "created" })
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Budget: b})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The daemon completes the start.
	h.rt.edit(ContainerName("first"), func(c *docker.Container) { c.State = "running" })
	h.putQueuedJob("second", 0, "")
	h.reconcile("second")
	if got := h.running(); len(got) != 1 || got[0] != "first" {
		t.Fatalf("running %v with --max-running-jobs 1: the created container was not counted", got)
	}
	if st := h.status("second"); st.Phase != model.PhaseQueued {
		t.Fatalf("second: %+v, want Queued", st)
	}
}
