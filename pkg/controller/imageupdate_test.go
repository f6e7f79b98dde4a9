package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// fakeRegistry is a registry behind a daemon: the digest a reference
// names remotely, the image a pull makes of it, and the local tags.
type fakeRegistry struct {
	mu      sync.Mutex
	remote  string            // digest the registry names now
	images  map[string]string // remote digest -> image ID a pull gives
	tags    map[string]string // local reference -> image ID
	digests map[string]string // image ID -> its repo digest
	down    bool
	calls   map[string]int
	untags  []string
}

const updRef = "127.0.0.1:5000/box:v1"

var (
	dig1 = "sha256:" + strings.Repeat("d1", 32)
	dig2 = "sha256:" + strings.Repeat("d2", 32)
	dig3 = "sha256:" + strings.Repeat("d3", 32)
)

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{remote: dig1, images: map[string]string{dig1: "sha256:1111", dig2: "sha256:2222", dig3: "sha256:3333"},
		tags: map[string]string{updRef: "sha256:1111"}, digests: map[string]string{"sha256:1111": dig1}, calls: map[string]int{}}
}

func (r *fakeRegistry) count(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[op]
}

func (r *fakeRegistry) RemoteDigest(_ context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls["digest"]++
	if r.down {
		return "", errors.New("connection refused")
	}
	return r.remote, nil
}

func (r *fakeRegistry) Pull(_ context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls["pull"]++
	if r.down {
		return errors.New("connection refused")
	}
	id := r.images[r.remote]
	r.tags[ref], r.digests[id] = id, r.remote
	return nil
}

func (r *fakeRegistry) Image(_ context.Context, ref string) (docker.ImageInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := ref
	if !strings.HasPrefix(ref, "sha256:") {
		id = r.tags[ref]
	}
	if id == "" {
		return docker.ImageInfo{}, docker.ErrNotFound
	}
	info := docker.ImageInfo{ID: id}
	if d := r.digests[id]; d != "" {
		info.RepoDigests = []string{"127.0.0.1:5000/box@" + d}
	}
	return info, nil
}

func (r *fakeRegistry) Tag(_ context.Context, id, tag string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls["tag"]++
	r.tags[tag] = id
	return nil
}

func (r *fakeRegistry) Untag(_ context.Context, tag string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.untags = append(r.untags, tag)
	delete(r.tags, tag)
	return nil
}

// check runs name's registry check now, as its timer would.
func (h *harness) check(name string) {
	h.t.Helper()
	u := h.c.updates
	u.mu.Lock()
	w := u.watches[name]
	u.mu.Unlock()
	if w == nil {
		h.t.Fatalf("%s is not checked", name)
	}
	u.check(context.Background(), name, w, w.generation)
	h.c.wg.Wait()
}

// settle reconciles until the spec's container runs image id, filling in
// the image ID a container made from the reference gets.
func (h *harness) runsImage(name string, reg *fakeRegistry, id string) {
	h.t.Helper()
	for range 10 {
		for _, c := range h.rt.all() {
			if c.ImageID == "" {
				reg.mu.Lock()
				image := reg.tags[c.Image]
				reg.mu.Unlock()
				h.rt.edit(c.ID, func(c *docker.Container) { c.ImageID = image })
			}
		}
		ct := h.rt.byName(ContainerName(name))
		if ct != nil && ct.Running() && ct.ImageID == id {
			h.reconcile(name)
			return
		}
		h.reconcile(name)
	}
	h.t.Fatalf("%s does not run image %s: %+v", name, id, h.rt.byName(ContainerName(name)))
}

// updateHarness is a harness whose controller checks reg, with spec "web"
// on updRef under autoUpdate (interval 1m, rollbackAfter 30s), then edit.
func updateHarness(t *testing.T, edit func(c *spec.ContainerSpec)) (*harness, *fakeRegistry) {
	h := newHarness(t)
	reg := newFakeRegistry()
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Images: reg})
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = updRef
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}, RollbackAfter: spec.Duration{Duration: 30 * time.Second}}
		if edit != nil {
			edit(c)
		}
	})
	return h, reg
}

func updateCount(m *metrics.Metrics, result string) float64 {
	return testutil.ToFloat64(m.ImageUpdates.WithLabelValues(result))
}

func TestAutoUpdateReplacesAndRollsBackWithoutTheRegistry(t *testing.T) {
	h, reg := updateHarness(t, nil)
	h.runsImage("web", reg, "sha256:1111")
	hist, _ := h.st.GetHistory("web")
	if hist.Image == nil || hist.Image.ImageID != "sha256:1111" || hist.Image.Digest != dig1 {
		t.Fatalf("first container's image not adopted: %+v", hist.Image)
	}

	// Same digest: checked, nothing pulled.
	h.check("web")
	if reg.count("digest") != 1 || reg.count("pull") != 0 || updateCount(h.c.m, metrics.UpdateChecked) != 1 {
		t.Fatalf("calls %v", reg.calls)
	}

	// A new digest: pulled, the old image kept by a tag, the container replaced.
	reg.mu.Lock()
	reg.remote = dig2
	reg.mu.Unlock()
	h.check("web")
	if reg.count("pull") != 1 {
		t.Fatal("new digest not pulled")
	}
	h.runsImage("web", reg, "sha256:2222")
	if h.rt.lastCreate().Image != "sha256:2222" {
		t.Fatalf("created from %q, want the new image ID", h.rt.lastCreate().Image)
	}
	if len(h.events("web", "Updated")) != 1 || updateCount(h.c.m, metrics.UpdateUpdated) != 1 {
		t.Fatal("no Updated event or metric")
	}
	keep := keepTag("web", "sha256:1111")
	if reg.tags[keep] != "sha256:1111" {
		t.Fatalf("old image not kept: tags %v", reg.tags)
	}

	// It exits 1 within rollbackAfter, with the registry down: rolled back by ID.
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	h.now = h.now.Add(5 * time.Second)
	h.rt.exit(ContainerName("web"), 1)
	h.runsImage("web", reg, "sha256:1111")
	if h.rt.lastCreate().Image != "sha256:1111" || reg.count("pull") != 1 {
		t.Fatalf("rollback created from %q after %d pulls", h.rt.lastCreate().Image, reg.count("pull"))
	}
	rb := h.events("web", "RolledBack")
	if len(rb) != 1 || rb[0].Type != model.EventWarning || !strings.Contains(rb[0].Message, "exited with code 1") ||
		updateCount(h.c.m, metrics.UpdateRolledBack) != 1 {
		t.Fatalf("RolledBack events %+v", rb)
	}
	hist, _ = h.st.GetHistory("web")
	if hist.Image.BadDigest != dig2 || hist.Image.OnTrial() {
		t.Fatalf("after rollback: %+v", hist.Image)
	}

	// The registry still names the bad digest: checked, not pulled again.
	reg.mu.Lock()
	reg.down = false
	reg.mu.Unlock()
	checked := updateCount(h.c.m, metrics.UpdateChecked)
	h.check("web")
	h.reconcile("web")
	if updateCount(h.c.m, metrics.UpdateChecked) != checked+1 || reg.count("pull") != 1 {
		t.Fatalf("bad digest retried: %v", reg.calls)
	}
	if ct := h.rt.byName(ContainerName("web")); ct.ImageID != "sha256:1111" || !ct.Running() {
		t.Fatalf("container changed: %+v", ct)
	}

	// Another digest is tried, and kept once it ran for rollbackAfter.
	reg.mu.Lock()
	reg.remote = dig3
	reg.mu.Unlock()
	h.check("web")
	h.runsImage("web", reg, "sha256:3333")
	res := h.reconcile("web")
	if res.RequeueAfter <= 0 || res.RequeueAfter > 30*time.Second {
		t.Fatalf("trial end not scheduled: %v", res.RequeueAfter)
	}
	h.now = h.now.Add(31 * time.Second)
	h.reconcile("web")
	hist, _ = h.st.GetHistory("web")
	if hist.Image.OnTrial() || hist.Image.ImageID != "sha256:3333" || hist.Image.KeepTag != "" {
		t.Fatalf("after the trial: %+v", hist.Image)
	}
	if _, ok := reg.tags[keep]; ok {
		t.Fatalf("rollback tag kept after the trial: %v", reg.untags)
	}
}

func TestAutoUpdateUnhealthyWithinTheWindowRollsBack(t *testing.T) {
	h := newHarness(t)
	reg := newFakeRegistry()
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Images: reg})
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = updRef
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}}
		// Health is read by inspect, which the controller makes for a
		// spec with a healthcheck; a listing does not show it.
		c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}}
	})
	h.runsImage("web", reg, "sha256:1111")
	reg.remote = dig2
	h.check("web")
	h.runsImage("web", reg, "sha256:2222")
	h.rt.edit(ContainerName("web"), func(c *docker.Container) { c.Health = "unhealthy" })
	h.runsImage("web", reg, "sha256:1111")
	if rb := h.events("web", "RolledBack"); len(rb) != 1 || !strings.Contains(rb[0].Message, "unhealthy") {
		t.Fatalf("RolledBack %+v", rb)
	}
}

func TestAutoUpdateFailedCheckIsCountedAndNothingChanges(t *testing.T) {
	h := newHarness(t)
	reg := newFakeRegistry()
	reg.down = true
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Images: reg})
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = updRef
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}}
	})
	h.runsImage("web", reg, "sha256:1111")
	h.check("web")
	if updateCount(h.c.m, metrics.UpdateFailed) != 1 || updateCount(h.c.m, metrics.UpdateChecked) != 0 || reg.count("pull") != 0 {
		t.Fatal("a failed check should count as failed and pull nothing")
	}
}

func TestAutoUpdateDuringATrialRollsBackToTheLastImageThatPassed(t *testing.T) {
	h := newHarness(t)
	reg := newFakeRegistry()
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Images: reg})
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = updRef
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}}
	})
	h.runsImage("web", reg, "sha256:1111")
	reg.remote = dig2
	h.check("web")
	h.runsImage("web", reg, "sha256:2222") // on trial
	reg.remote = dig3
	h.check("web")
	h.runsImage("web", reg, "sha256:3333") // on trial in its place
	if n := len(h.events("web", "Updated")); n != 2 {
		t.Fatalf("%d Updated events", n)
	}
	h.rt.exit(ContainerName("web"), 2)
	h.runsImage("web", reg, "sha256:1111")
	hist, _ := h.st.GetHistory("web")
	if hist.Image.BadDigest != dig3 || hist.Image.ImageID != "sha256:1111" || hist.Image.Digest != dig1 {
		t.Fatalf("after rollback: %+v", hist.Image)
	}
}

// An update goes through the spec's update strategy: with StartFirst the
// new image's container starts beside the old one, which runs on until the
// replacement is ready.
func TestAutoUpdateReplacesByTheSpecsStrategy(t *testing.T) {
	h, reg := updateHarness(t, func(c *spec.ContainerSpec) {
		c.UpdateStrategy = &spec.UpdateStrategy{Type: spec.StartFirst, MinReady: spec.Duration{Duration: 5 * time.Second}}
	})
	h.runsImage("web", reg, "sha256:1111")
	old := h.rt.byName(ContainerName("web"))

	reg.mu.Lock()
	reg.remote = dig2
	reg.mu.Unlock()
	h.check("web")
	h.reconcile("web")
	next := h.rt.byName(NextName("web"))
	if next == nil || next.State != "running" || h.rt.lastCreate().Image != "sha256:2222" {
		t.Fatalf("no replacement of the new image beside the old one: next %+v, created from %q, calls %v",
			next, h.rt.lastCreate().Image, h.rt.ops())
	}
	if h.rt.state(old.ID) != "running" || h.rt.count("stop") != 0 {
		t.Fatalf("the old container was stopped before the new one was ready: %v", h.rt.ops())
	}
	h.now = h.now.Add(5 * time.Second)
	h.reconcile("web")
	h.reconcile("web")
	if ct := h.rt.byName(ContainerName("web")); ct == nil || ct.ID != next.ID || h.rt.byID(old.ID) != nil {
		t.Fatalf("after minReady: %+v, calls %v; want the new image's container under the name", ct, h.rt.ops())
	}
}

// refusalHarness is an autoUpdate spec "web" under strategy (minReady
// 5s) running the image sha256:1111.
func refusalHarness(t *testing.T, strategy spec.UpdateStrategyType) (*harness, *fakeRegistry) {
	h, reg := updateHarness(t, func(c *spec.ContainerSpec) {
		c.UpdateStrategy = &spec.UpdateStrategy{Type: strategy, MinReady: spec.Duration{Duration: 5 * time.Second}}
	})
	h.runsImage("web", reg, "sha256:1111")
	return h, reg
}

// updateThenRegistryDown publishes dig2, lets web's check find it, and
// takes the registry down: a rollback must do without it.
func updateThenRegistryDown(h *harness, reg *fakeRegistry) {
	reg.mu.Lock()
	reg.remote = dig2
	reg.mu.Unlock()
	h.check("web")
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
}

// rolledBackTo1111 checks that web's update to dig2 was rolled back once,
// with an event that says each of why, and that sha256:1111 runs again.
func rolledBackTo1111(t *testing.T, h *harness, why ...string) {
	t.Helper()
	rb := h.events("web", "RolledBack")
	ok := len(rb) == 1 && updateCount(h.c.m, metrics.UpdateRolledBack) == 1
	for _, w := range why {
		ok = ok && strings.Contains(rb[0].Message, w)
	}
	if !ok {
		t.Fatalf("RolledBack events %+v, want one saying %q", rb, why)
	}
	hist, _ := h.st.GetHistory("web")
	if hist.Image.BadDigest != dig2 || hist.Image.ImageID != "sha256:1111" || hist.Image.OnTrial() {
		t.Fatalf("after rollback: %+v", hist.Image)
	}
	if ct := h.rt.byName(ContainerName("web")); ct == nil || ct.ImageID != "sha256:1111" || !ct.Running() {
		t.Fatalf("container %+v, want the old image running", ct)
	}
}

// An image the daemon refuses to make a container from (pushed with no
// command, say) never runs, so there is no exit to judge it by: the
// refused create itself rolls it back, with no registry access, and the
// old image runs again. By either strategy.
func TestAutoUpdateImageThatCannotBeCreatedRollsBack(t *testing.T) {
	for _, strategy := range []spec.UpdateStrategyType{spec.StopFirst, spec.StartFirst} {
		t.Run(string(strategy), func(t *testing.T) {
			h, reg := refusalHarness(t, strategy)
			h.rt.CreateFunc = func(req docker.CreateRequest) error {
				if req.Image == "sha256:2222" {
					return errors.New("Error response from daemon: no command specified")
				}
				return nil
			}
			updateThenRegistryDown(h, reg)
			h.runsImage("web", reg, "sha256:1111")
			h.reconcile("web")

			// The daemon's refusal, which only the new image gets, is in
			// the event: the new image was tried.
			rolledBackTo1111(t, h, "could not be created", "no command specified")
			st, _ := h.st.GetStatus("web")
			if st.Phase != model.PhaseRunning {
				t.Fatalf("phase %s (%s), want Running on the old image", st.Phase, st.Message)
			}
			if reg.count("pull") != 1 {
				t.Fatalf("pulls %d: the rollback went to the registry", reg.count("pull"))
			}
		})
	}
}

// An image whose container the daemon creates but refuses to start (its
// command is missing, say) is rolled back too, and the spec runs the image
// that passed its trial last. Under StopFirst the refused run is recorded;
// a refused start-first replacement is dropped with the rollback, whose
// event carries the daemon's refusal.
func TestAutoUpdateImageThatCannotStartRollsBack(t *testing.T) {
	for _, strategy := range []spec.UpdateStrategyType{spec.StopFirst, spec.StartFirst} {
		t.Run(string(strategy), func(t *testing.T) {
			h, reg := refusalHarness(t, strategy)
			// The fake's StartFunc sees only the id: the container made
			// last is the one started next (one worker, create then start).
			refused, newest := 0, ""
			h.rt.CreateFunc = func(req docker.CreateRequest) error {
				newest = req.Image
				return nil
			}
			h.rt.StartFunc = func(string) error {
				if newest == "sha256:2222" {
					refused++
					return errors.New(`Error response from daemon: exec: "serve": executable file not found in $PATH`)
				}
				return nil
			}
			updateThenRegistryDown(h, reg)
			for range 3 {
				h.reconcile("web")
				h.now = h.now.Add(time.Minute)
			}

			if refused != 1 {
				t.Fatalf("the new image's container was started %d times, want 1 (tried, refused, rolled back)", refused)
			}
			rolledBackTo1111(t, h, "could not start", "executable file not found")
			if strategy == spec.StartFirst {
				return // the refused replacement is dropped at the rollback; the event holds the refusal
			}
			exits, _ := h.st.Exits("web", 0)
			found := false
			for _, e := range exits {
				found = found || strings.Contains(e.Error, "executable file not found")
			}
			if !found {
				t.Fatalf("the refused start is not in the exit records: %+v", exits)
			}
		})
	}
}

// An operator edits an autoUpdate spec's image: the replacement runs the
// new reference's image, not the image ID that was pinned for the old
// reference, and that image is the one adopted for the new reference.
func TestAutoUpdateImageEditRunsTheNewReference(t *testing.T) {
	h, reg := updateHarness(t, nil)
	h.runsImage("web", reg, "sha256:1111")
	const v2 = "127.0.0.1:5000/box:v2"
	reg.mu.Lock()
	reg.tags[v2], reg.digests["sha256:2222"] = "sha256:2222", dig2
	reg.mu.Unlock()
	h.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = v2
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}, RollbackAfter: spec.Duration{Duration: 30 * time.Second}}
	})
	h.runsImage("web", reg, "sha256:2222")
	if req := h.rt.lastCreate(); req.Image != "" || req.Spec.Spec.Image != v2 {
		t.Fatalf("the replacement was created from image %q of reference %q, want the reference %s itself", req.Image, req.Spec.Spec.Image, v2)
	}
	hist, _ := h.st.GetHistory("web")
	if hist.Image == nil || hist.Image.Image != v2 || hist.Image.ImageID != "sha256:2222" || hist.Image.Digest != dig2 {
		t.Fatalf("after the edit, the pinned image is %+v, want %s's sha256:2222", hist.Image, v2)
	}
	if reg.count("pull") != 0 {
		t.Fatalf("the new reference was present, yet pulled %d times", reg.count("pull"))
	}
}
