package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

func TestPullDelay(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := pullDelay(10*time.Second, i+1); got != w {
			t.Errorf("failure %d: delay %s, want %s", i+1, got, w)
		}
	}
	if got := pullDelay(10*time.Second, 1000); got != maxPullBackoff {
		t.Errorf("after 1000 failures: %s", got)
	}
	boom := errors.New("manifest unknown")
	bo := pullFailed(nil, "a:1", boom, time.Second, t0)
	bo = pullFailed(bo, "a:1", boom, time.Second, t0)
	if bo.Failures != 2 || bo.Delay != 2*time.Second || !bo.NextTryAt.Equal(t0.Add(2*time.Second)) || bo.Message != "manifest unknown" {
		t.Errorf("second failure: %+v", bo)
	}
	if bo = pullFailed(bo, "b:1", boom, time.Second, t0); bo.Failures != 1 || bo.Delay != time.Second {
		t.Errorf("another image starts over: %+v", bo)
	}
}

// gatedPuller holds every pull until the test lets it end.
type gatedPuller struct {
	mu      sync.Mutex
	running map[string]int
	most    int
	release map[string]chan error
}

func (g *gatedPuller) gate(ref string) chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release[ref] == nil {
		g.release[ref] = make(chan error)
	}
	return g.release[ref]
}

func (g *gatedPuller) Pull(ctx context.Context, ref string) error {
	g.mu.Lock()
	g.running[ref]++
	n := 0
	for _, c := range g.running {
		n += c
	}
	g.most = max(g.most, n)
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.running[ref]--; g.mu.Unlock() }()
	select {
	case err := <-g.gate(ref):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedPuller) inFlight(ref string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running[ref]
}

func TestPullsPool(t *testing.T) {
	g := &gatedPuller{running: map[string]int{}, release: map[string]chan error{}}
	m := metrics.New("", "")
	var wg sync.WaitGroup
	done := make(chan string, 10)
	p := newPulls(g, 2, m, slog.New(slog.DiscardHandler), &wg, func(n string) { done <- n })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if !p.start(ctx, "a", "img:a") || !p.start(ctx, "b", "img:b") || !p.start(ctx, "c", "img:c") {
		t.Fatal("a new image did not start a pull")
	}
	if p.start(ctx, "a2", "img:a") {
		t.Fatal("a second spec on the same image started a second pull")
	}
	waitFor(t, "two pulls running", func() bool { return g.inFlight("img:a")+g.inFlight("img:b")+g.inFlight("img:c") == 2 })

	// One stuck pull does not hold up the others: the third runs once a slot frees.
	var first, third string
	switch {
	case g.inFlight("img:a") == 0:
		first, third = "img:b", "img:a"
	case g.inFlight("img:b") == 0:
		first, third = "img:a", "img:b"
	default:
		first, third = "img:a", "img:c"
	}
	g.gate(first) <- nil
	waitFor(t, "the queued pull to start", func() bool { return g.inFlight(third) == 1 })
	g.gate(third) <- fmt.Errorf("pull image %s: no progress for 1m: %w", third, docker.ErrStalled)
	for _, ref := range []string{"img:a", "img:b", "img:c"} {
		if ref != first && ref != third {
			g.gate(ref) <- errors.New("manifest unknown")
		}
	}
	wg.Wait()
	close(done)
	var got []string
	for n := range done {
		got = append(got, n)
	}
	if len(got) != 4 {
		t.Fatalf("enqueued %v, want every waiting spec once", got)
	}
	if g.most != 2 {
		t.Errorf("%d pulls ran at once, want at most 2", g.most)
	}
	if r, ok := p.take("a2", "img:a"); !ok || (first == "img:a") != (r.err == nil) {
		t.Errorf("the spec that joined a pull got %+v, %v", r, ok)
	}
	if _, ok := p.take("a2", "img:a"); ok {
		t.Error("a result was taken twice")
	}
	if _, ok := p.take("b", "img:other"); ok {
		t.Error("a result for another image was taken")
	}
	for r, want := range map[string]float64{metrics.PullSuccess: 1, metrics.PullStalled: 1, metrics.PullFailure: 1} {
		if got := counterValue(t, m, "reconciler_image_pulls_total", r); got != want {
			t.Errorf("pulls %s = %v, want %v", r, got, want)
		}
	}
}

func counterValue(t *testing.T, m *metrics.Metrics, name, result string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{result=%q}", name, result)
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReconcileImagePullBackOff(t *testing.T) {
	h := newHarness(t)
	h.rt.Images = map[string]bool{}
	h.put("web", spec.RestartAlways, "tick")
	const image = "reconciler/box:latest"
	h.rt.PullFunc = func(context.Context, string) error {
		return errors.New(`manifest for reconciler/box:latest not found: manifest unknown`)
	}

	pullAndReconcile := func(wantPulls int) model.Status {
		t.Helper()
		h.reconcile("web") // starts the pull; the harness waits for it
		if st := h.status("web"); st.Phase != model.PhasePending || st.Message != "pulling image "+image {
			t.Fatalf("while pulling: %+v", st)
		}
		if n := h.rt.count("pull"); n != wantPulls {
			t.Fatalf("%d pulls, want %d", n, wantPulls)
		}
		if h.c.queue.Len() == 0 {
			t.Fatal("the pull's end did not enqueue the spec")
		}
		h.reconcile("web") // takes the result
		return h.status("web")
	}
	st := pullAndReconcile(1)
	if st.Phase != model.PhaseImagePullBackOff || !strings.Contains(st.Message, "manifest unknown") ||
		!strings.HasPrefix(st.Message, "Back-off 10s pulling image "+image) || !st.NextTryAt.Equal(h.now.Add(10*time.Second)) {
		t.Fatalf("after a failed pull: %+v", st)
	}
	h.now = h.now.Add(9 * time.Second)
	h.reconcile("web")
	if h.rt.count("pull") != 1 || h.status("web").Phase != model.PhaseImagePullBackOff {
		t.Fatal("pulled again inside the back-off")
	}
	h.now = h.now.Add(time.Second)
	if st = pullAndReconcile(2); !strings.HasPrefix(st.Message, "Back-off 20s") || !st.NextTryAt.Equal(h.now.Add(20*time.Second)) {
		t.Fatalf("second failure: %+v", st)
	}

	// A new agent on the same state keeps the back-off.
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.now = h.now.Add(19 * time.Second)
	h.reconcile("web")
	if h.rt.count("pull") != 2 || h.status("web").Phase != model.PhaseImagePullBackOff {
		t.Fatal("an agent restart reset the pull back-off")
	}
	h.now = h.now.Add(time.Second)
	if st = pullAndReconcile(3); !strings.HasPrefix(st.Message, "Back-off 40s") {
		t.Fatalf("third failure, after a restart: %+v", st)
	}

	// The registry answers: created, started, back-off forgotten.
	h.rt.PullFunc = func(context.Context, string) error { return nil }
	h.now = h.now.Add(40 * time.Second)
	if st = pullAndReconcile(4); st.Phase != model.PhaseRunning || !st.NextTryAt.IsZero() {
		t.Fatalf("after a good pull: %+v", st)
	}
	if hist, _ := h.st.GetHistory("web"); hist.Pull != nil {
		t.Fatalf("back-off kept after a good pull: %+v", hist.Pull)
	}
	evs, _ := h.st.Events("web", 0, 0)
	var reasons []string
	for _, e := range evs {
		reasons = append(reasons, e.Reason)
	}
	if got := strings.Join(reasons, ","); !strings.HasPrefix(got, "Pulling,Failed,BackOff,Pulling,Failed,BackOff,") ||
		!strings.Contains(got, "Pulled,Created,Started") {
		t.Errorf("events %s", got)
	}
}

func TestReconcilePullPolicies(t *testing.T) {
	h := newHarness(t)
	h.rt.Images = map[string]bool{}
	h.put("never", spec.RestartAlways, "tick")
	rec, _ := h.st.GetSpec("never")
	rec.Spec.Spec.ImagePullPolicy = spec.PullNever
	rec.Hash = rec.Spec.Hash()
	if err := h.st.PutSpec(rec); err != nil {
		t.Fatal(err)
	}
	h.reconcile("never")
	if st := h.status("never"); st.Phase != model.PhaseError ||
		st.Message != "image reconciler/box:latest is not present and imagePullPolicy is Never" || h.rt.count("pull") != 0 {
		t.Fatalf("Never, image absent: %+v, %d pulls", st, h.rt.count("pull"))
	}

	// Always with the image in store: a failing registry does not stop it.
	h.rt.Images["reconciler/box:latest"] = true
	h.put("always", spec.RestartAlways, "tick")
	rec, _ = h.st.GetSpec("always")
	rec.Spec.Spec.ImagePullPolicy = spec.PullAlways
	rec.Hash = rec.Spec.Hash()
	if err := h.st.PutSpec(rec); err != nil {
		t.Fatal(err)
	}
	h.reconcile("always")
	h.reconcile("always")
	if st := h.status("always"); st.Phase != model.PhaseRunning || h.rt.count("pull") != 1 {
		t.Fatalf("Always, registry away, image present: %+v, %d pulls", st, h.rt.count("pull"))
	}
	// IfNotPresent with the image there never pulls.
	h.put("ifnot", spec.RestartAlways, "tick")
	h.reconcile("ifnot")
	if st := h.status("ifnot"); st.Phase != model.PhaseRunning || h.rt.count("pull") != 1 {
		t.Fatalf("IfNotPresent, image present: %+v, %d pulls", st, h.rt.count("pull"))
	}
}

// TestPullPolicyTable: which policy pulls, with the image in store or not.
// The registry answers, so a pull that is made succeeds.
func TestPullPolicyTable(t *testing.T) {
	for _, tc := range []struct {
		policy  spec.PullPolicy
		present bool
		pulls   int
		phase   model.Phase
	}{
		{spec.PullAlways, true, 1, model.PhaseRunning},
		{spec.PullAlways, false, 1, model.PhaseRunning},
		{spec.PullIfNotPresent, true, 0, model.PhaseRunning},
		{spec.PullIfNotPresent, false, 1, model.PhaseRunning},
		{spec.PullNever, true, 0, model.PhaseRunning},
		{spec.PullNever, false, 0, model.PhaseError},
	} {
		t.Run(fmt.Sprintf("%s/present=%v", tc.policy, tc.present), func(t *testing.T) {
			h := newHarness(t)
			h.rt.Images = map[string]bool{"reconciler/box:latest": tc.present}
			h.rt.PullFunc = func(context.Context, string) error { return nil }
			h.putSpec("web", func(c *spec.ContainerSpec) {
				c.RestartPolicy = spec.RestartAlways
				c.ImagePullPolicy = tc.policy
			})
			h.reconcile("web") // pulls (in the pool) or creates
			h.reconcile("web") // creates after the pull
			if st := h.status("web"); h.rt.count("pull") != tc.pulls || st.Phase != tc.phase {
				t.Fatalf("%d pulls, phase %s (%s); want %d pulls, %s", h.rt.count("pull"), st.Phase, st.Message, tc.pulls, tc.phase)
			}
		})
	}
}
