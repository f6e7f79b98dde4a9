package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// admBiteSpec is a spec with a restart policy, a priority and resources.
func admBiteSpec(name string, policy spec.RestartPolicy, priority int, memory, cpus string) *spec.Spec {
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"tick"}, RestartPolicy: policy, Priority: priority,
			Resources: spec.Resources{Memory: memory, CPUs: cpus}}}
	s.Default()
	return s
}

// admBitePut stores admBiteSpec(...) as an API spec.
func (h *harness) admBitePut(name string, policy spec.RestartPolicy, memory, cpus string) {
	h.t.Helper()
	s := admBiteSpec(name, policy, 0, memory, cpus)
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		h.t.Fatal(err)
	}
}

// admBiteQueued asserts name is Queued with this message.
func (h *harness) admBiteQueued(name, msg string) {
	h.t.Helper()
	if st := h.status(name); st.Phase != model.PhaseQueued || st.Message != msg {
		h.t.Fatalf("%s: %s %q, want Queued %q", name, st.Phase, st.Message, msg)
	}
}

// TestAdmissionQueuePositionsFollowPriorityThenArrival: among equal
// priorities the spec that came first goes first, whatever its name; a
// newcomer of higher priority goes to the head and counts everyone
// behind it in its position.
func TestAdmissionQueuePositionsFollowPriorityThenArrival(t *testing.T) {
	h := admHarness(t, Budget{MaxRunningJobs: 1})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	const slot = "waiting for a job slot: 1 of 1 jobs running (--max-running-jobs); "
	h.putQueuedJob("run", 0, "")
	h.reconcile("run")
	// zeta comes before alpha: arrival, not the name, orders them.
	h.putQueuedJob("zeta", 0, "")
	h.reconcile("zeta")
	h.admBiteQueued("zeta", slot+"position 1 of 1")
	h.putQueuedJob("alpha", 0, "")
	h.reconcile("alpha")
	h.admBiteQueued("alpha", slot+"position 2 of 2")
	h.putQueuedJob("urgent", 5, "")
	h.reconcile("urgent")
	h.admBiteQueued("urgent", slot+"position 1 of 3")
	if got := h.c.adm.order(); strings.Join(got, ",") != "urgent,zeta,alpha" {
		t.Fatalf("queue order %v, want urgent,zeta,alpha", got)
	}
	// Each job that ends lets the head of the queue in, however the
	// queued ones are reconciled.
	for _, next := range []string{"urgent", "zeta", "alpha"} {
		run := h.running()
		if len(run) != 1 {
			t.Fatalf("running %v, want one job", run)
		}
		h.rt.exit(ContainerName(run[0]), 0)
		h.reconcile(run[0])
		for _, n := range []string{"alpha", "zeta", "urgent"} {
			h.reconcile(n)
		}
		if got := h.running(); !slices.Equal(got, []string{next}) {
			t.Fatalf("running %v, want %s next", got, next)
		}
	}
}

// TestAdmissionQueueBreaksATieByName: two queued specs of one priority
// and one arrival (the store never gives two the same, but the order
// stays total) go in name order.
func TestAdmissionQueueBreaksATieByName(t *testing.T) {
	a := newAdmission(Budget{MaxRunningJobs: 1}, metrics.New("", "").Admission, nil)
	var wait []queued
	for _, n := range []string{"b", "c", "a"} {
		wait = append(wait, queued{name: n, d: Desired{Spec: admBiteSpec(n, spec.RestartNever, 1, "", ""), Arrival: 7}, since: t0})
	}
	a.seed(nil, nil, wait)
	if got := a.order(); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("order %v, want a,b,c", got)
	}
}

// TestAdmissionRestartInPlaceIsNeverQueued: a container that held its
// share restarts in place even when the budget is overcommitted (an
// agent restarted with a smaller --allocatable adopts what runs), while
// a spec that holds nothing waits.
func TestAdmissionRestartInPlaceIsNeverQueued(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"a", "b"} {
		h.admBitePut(n, spec.RestartAlways, "768Mi", "")
		h.reconcile(n)
	}
	b := Budget{Allocatable: Resources{Memory: 1024 * mi}}
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Budget: b})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.admBitePut("c", spec.RestartAlways, "256Mi", "")
	h.reconcile("c")
	h.admBiteQueued("c", "waiting for memory: needs 256Mi, 0 free of 1Gi; position 1 of 1")

	h.now = h.now.Add(time.Minute)
	h.rt.exit(ContainerName("a"), 1)
	h.reconcile("a")
	if st := h.status("a"); st.Phase != model.PhaseRunning || st.Restarts != 1 {
		t.Fatalf("a after its crash: %s %q restarts %d, want Running after a restart in place", st.Phase, st.Message, st.Restarts)
	}
	if h.rt.count("start") != 3 {
		t.Fatalf("starts %d, want 3 (a, b, a again)", h.rt.count("start"))
	}
}

// TestAdmissionResizedHolderIsCheckedAgainstTheOthers: a spec that holds
// its share but whose spec asks for another amount is admitted when the
// new amount fits beside what the others hold, its own old share and its
// own job slot set aside; it waits when it does not fit.
func TestAdmissionResizedHolderIsCheckedAgainstTheOthers(t *testing.T) {
	tests := []struct {
		name    string
		budget  Budget
		others  map[string]string // name: memory, held as jobs
		old     string
		grown   string
		ok      bool
		waitFor string
	}{
		{"a job grown within the free keeps its own slot", Budget{MaxRunningJobs: 1}, nil, "100Mi", "200Mi", true, ""},
		{"a job grown within the free memory", Budget{Allocatable: Resources{Memory: 1024 * mi}, MaxRunningJobs: 2},
			map[string]string{"other": "512Mi"}, "256Mi", "512Mi", true, ""},
		{"a job grown beyond the free memory waits", Budget{Allocatable: Resources{Memory: 1024 * mi}},
			map[string]string{"other": "512Mi"}, "256Mi", "768Mi", false, "memory: needs 768Mi, 512Mi free of 1Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdmission(tt.budget, metrics.New("", "").Admission, nil)
			a.seed(nil, nil, nil)
			arrival := uint64(0)
			reserve := func(name, memory string) (Admission, bool) {
				arrival++
				return a.reserve(name, Desired{Spec: admBiteSpec(name, spec.RestartNever, 0, memory, ""), Arrival: arrival}, t0)
			}
			for n, m := range tt.others {
				if _, ok := reserve(n, m); !ok {
					t.Fatalf("%s not admitted", n)
				}
			}
			if _, ok := reserve("job", tt.old); !ok {
				t.Fatal("job not admitted at its old size")
			}
			s, ok := reserve("job", tt.grown)
			_, waitFor := s.admits()
			if ok != tt.ok || waitFor != tt.waitFor {
				t.Fatalf("grown: admitted %v (%q), want %v (%q)", ok, waitFor, tt.ok, tt.waitFor)
			}
		})
	}
}

// TestAdmissionAReplacementHoldsItsNewSizeWhileTheOldStops: when a
// running spec's resources grow, it holds the new amount from the
// reconcile that stops the old container, so a queued spec that would
// fit only beside the old amount does not slip in before the replacement.
func TestAdmissionAReplacementHoldsItsNewSizeWhileTheOldStops(t *testing.T) {
	h := admHarness(t, Budget{Allocatable: Resources{Memory: 1024 * mi}})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.admBitePut("big", spec.RestartAlways, "256Mi", "")
	h.reconcile("big")
	h.admBitePut("small", spec.RestartAlways, "512Mi", "")
	h.admBitePut("hog", spec.RestartAlways, "512Mi", "")
	h.reconcile("hog")
	h.reconcile("small")
	h.admBiteQueued("small", "waiting for memory: needs 512Mi, 256Mi free of 1Gi; position 1 of 1")
	allocated := func() float64 {
		return testutil.ToFloat64(h.c.m.Admission.Allocated.WithLabelValues(metrics.ResourceMemory))
	}
	if got := allocated(); got != 768*mi {
		t.Fatalf("allocated %v, want 768Mi", got/mi)
	}

	// hog ends for good, and big grows to 768Mi: 256Mi stay free, not
	// enough for small, though 768Mi were free beside big's old size.
	if err := h.st.DeleteSpec("hog"); err != nil {
		t.Fatal(err)
	}
	h.reconcile("hog")
	h.reconcile("hog")
	h.admBitePut("big", spec.RestartAlways, "768Mi", "")
	h.reconcile("big")
	if got := allocated(); got != 768*mi {
		t.Fatalf("allocated %vMi while big's old container stops, want 768Mi (its new size)", got/mi)
	}
	h.reconcile("small")
	h.admBiteQueued("small", "waiting for memory: needs 512Mi, 256Mi free of 1Gi; position 1 of 1")
	// Positive control: with big gone, small fits.
	if err := h.st.DeleteSpec("big"); err != nil {
		t.Fatal(err)
	}
	h.reconcile("big")
	h.reconcile("big")
	h.reconcile("small")
	if got := h.running(); !slices.Equal(got, []string{"small"}) {
		t.Fatalf("running %v, want small once big is gone", got)
	}
}

// TestAdmissionWakesTheOtherQueuedSpecsOnlyWhenTheQueueChanges: when a
// spec enters the queue or moves in it, the others are reconciled again
// (their positions changed) but not the spec itself; a queued spec that
// stays as it was wakes no one.
func TestAdmissionWakesTheOtherQueuedSpecsOnlyWhenTheQueueChanges(t *testing.T) {
	var woken []string
	a := newAdmission(Budget{MaxRunningJobs: 1}, metrics.New("", "").Admission, func(n string) { woken = append(woken, n) })
	a.seed(nil, nil, nil)
	run := Desired{Spec: admBiteSpec("run", spec.RestartNever, 0, "", ""), Arrival: 1}
	if _, ok := a.reserve("run", run, t0); !ok {
		t.Fatal("run not admitted")
	}
	arrival := map[string]uint64{"aa": 2, "bbb": 3}
	queue := func(name string, priority int) []string {
		t.Helper()
		woken = nil
		d := Desired{Spec: admBiteSpec(name, spec.RestartNever, priority, "", ""), Arrival: arrival[name]}
		a.settled(name, d, Action{Phase: model.PhaseQueued, History: model.History{QueuedAt: t0}}, Observed{})
		return woken
	}
	for _, step := range []struct {
		what     string
		name     string
		priority int
		want     []string
	}{
		{"first in the queue", "aa", 0, nil},
		{"a second one enters", "bbb", 0, []string{"aa"}},
		{"bbb reconciled again, unchanged", "bbb", 0, nil},
		{"aa reconciled again, unchanged", "aa", 0, nil},
		{"bbb's priority rises", "bbb", 3, []string{"aa"}},
	} {
		if got := queue(step.name, step.priority); !slices.Equal(got, step.want) {
			t.Fatalf("%s: woke %v, want %v", step.what, got, step.want)
		}
	}
	if got := a.order(); !slices.Equal(got, []string{"bbb", "aa"}) {
		t.Fatalf("order %v", got)
	}
}

// TestAdmissionCPUGaugesReadInCPUs: the allocatable and allocated cpus
// gauges read in CPUs, as --allocatable and resources.cpus are written.
func TestAdmissionCPUGaugesReadInCPUs(t *testing.T) {
	h := admHarness(t, Budget{Allocatable: Resources{NanoCPUs: 2e9}})
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.admBitePut("web", spec.RestartAlways, "", "0.5")
	h.reconcile("web")
	m := h.c.m.Admission
	if got := testutil.ToFloat64(m.Allocatable.WithLabelValues(metrics.ResourceCPUs)); got != 2 {
		t.Fatalf("allocatable cpus %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Allocated.WithLabelValues(metrics.ResourceCPUs)); got != 0.5 {
		t.Fatalf("allocated cpus %v, want 0.5", got)
	}
}

// TestAdmissionLooksAgainSoonBeforeTheFirstListing: a spec that needs
// the budget before the running containers are counted comes back on
// its own, soon, rather than waiting for the next resync.
func TestAdmissionLooksAgainSoonBeforeTheFirstListing(t *testing.T) {
	h := admHarness(t, Budget{MaxRunningJobs: 1})
	h.putQueuedJob("a", 0, "")
	res := h.reconcile("a")
	if res.RequeueAfter <= 0 || res.RequeueAfter > time.Second {
		t.Fatalf("requeue after %v, want a short positive wait", res.RequeueAfter)
	}
	if len(h.running()) != 0 {
		t.Fatalf("running %v before the listing", h.running())
	}
	// Positive control: once counted, it runs.
	if err := h.c.resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.reconcile("a")
	if got := h.running(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("running %v after the listing", got)
	}
}
