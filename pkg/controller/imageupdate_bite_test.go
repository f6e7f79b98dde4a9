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

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// imgRegistry is fakeRegistry with what these tests need besides: the
// references the registry was asked about, a push that lands between the
// check and the pull, and pulls or untags that fail.
type imgRegistry struct {
	*fakeRegistry
	asked chan string // every reference asked about, when not full

	hmu         sync.Mutex
	afterDigest func()
	pullErr     error
	untagErr    error
}

func (r *imgRegistry) RemoteDigest(ctx context.Context, ref string) (string, error) {
	select {
	case r.asked <- ref:
	default:
	}
	d, err := r.fakeRegistry.RemoteDigest(ctx, ref)
	r.hmu.Lock()
	after := r.afterDigest
	r.hmu.Unlock()
	if after != nil {
		after()
	}
	return d, err
}

// refused is the error set for an operation, noted as the fake notes the
// operation when it succeeds; nil when none is set.
func (r *imgRegistry) refused(set *error, note func()) error {
	r.hmu.Lock()
	err := *set
	r.hmu.Unlock()
	if err != nil {
		r.mu.Lock()
		note()
		r.mu.Unlock()
	}
	return err
}

func (r *imgRegistry) Pull(ctx context.Context, ref string) error {
	if err := r.refused(&r.pullErr, func() { r.calls["pull"]++ }); err != nil {
		return err
	}
	return r.fakeRegistry.Pull(ctx, ref)
}

func (r *imgRegistry) Untag(ctx context.Context, tag string) error {
	if err := r.refused(&r.untagErr, func() { r.untags = append(r.untags, tag) }); err != nil {
		return err
	}
	return r.fakeRegistry.Untag(ctx, tag)
}

func (r *imgRegistry) set(fn func()) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	fn()
}

// push makes the registry name digest from now on.
func (r *imgRegistry) push(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remote = digest
}

func (r *imgRegistry) hasTag(tag string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.tags[tag]
	return ok
}

func (r *imgRegistry) untagged() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.untags...)
}

type imgRig struct {
	*harness
	reg   *imgRegistry
	store *countingStore
	log   *logBuffer
}

// imgUpdateRig is updateHarness with the registry, state file and log
// these tests look at.
func imgUpdateRig(t *testing.T, edit func(c *spec.ContainerSpec)) *imgRig {
	h, reg := updateHarness(t, edit)
	r := &imgRig{harness: h, reg: &imgRegistry{fakeRegistry: reg, asked: make(chan string, 100)},
		store: &countingStore{Store: h.st}, log: &logBuffer{}}
	r.restartAgent()
	return r
}

// restartAgent starts a new controller on the same daemon and state file.
func (r *imgRig) restartAgent() {
	c := New(r.rt, r.store, nil, Options{Instance: "test", Now: func() time.Time { return r.now }, Images: r.reg,
		Log: slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	r.t.Cleanup(func() {
		c.updates.close()
		c.wg.Wait()
	})
	r.c = c
}

func (r *imgRig) image() *model.ImageUpdate {
	r.t.Helper()
	hist, err := r.st.GetHistory("web")
	if err != nil {
		r.t.Fatal(err)
	}
	return hist.Image
}

// onTrial runs web on image 1111, then updates it to 2222 (dig2) and runs
// that: the new image is on trial from r.now.
func (r *imgRig) onTrial() {
	r.t.Helper()
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	r.reg.push(dig2)
	r.check("web")
	r.runsImage("web", r.reg.fakeRegistry, "sha256:2222")
	if im := r.image(); !im.OnTrial() || im.ImageID != "sha256:2222" || !im.TrialSince.Equal(r.now) {
		r.t.Fatalf("not on trial: %+v", im)
	}
}

// A settled autoUpdate spec, before and during a trial, costs the state
// file nothing: the image decision is written when it changes only.
func TestAutoUpdateSettledSpecWritesNothing(t *testing.T) {
	r := imgUpdateRig(t, nil)
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	if r.image() == nil {
		t.Fatal("first container's image not adopted")
	}
	before := r.store.commits.Load()
	r.reconcile("web")
	r.reconcile("web")
	if n := r.store.commits.Load() - before; n != 0 {
		t.Fatalf("a settled spec made %d commits", n)
	}

	r.reg.push(dig2)
	r.check("web")
	r.runsImage("web", r.reg.fakeRegistry, "sha256:2222")
	if !r.image().OnTrial() {
		t.Fatalf("not on trial: %+v", r.image())
	}
	before = r.store.commits.Load()
	r.now = r.now.Add(time.Second)
	r.reconcile("web")
	if n := r.store.commits.Load() - before; n != 0 {
		t.Fatalf("a spec settled on trial made %d commits", n)
	}
	// Control: the trial's end is a change, and is written.
	r.now = r.now.Add(time.Minute)
	r.reconcile("web")
	if n := r.store.commits.Load() - before; n == 0 || r.image().OnTrial() {
		t.Fatalf("the trial's end was not written (%d commits): %+v", n, r.image())
	}
}

// The registry names a new digest that pulls as the image already running
// (pushed again with another manifest, say): the new digest is recorded,
// and nothing is replaced or tagged.
func TestAutoUpdateNewDigestOfTheRunningImageIsRecordedOnly(t *testing.T) {
	r := imgUpdateRig(t, nil)
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	ct := r.rt.byName(ContainerName("web"))
	r.reg.mu.Lock()
	r.reg.images[dig2] = "sha256:1111"
	r.reg.mu.Unlock()
	r.reg.push(dig2)
	r.check("web")
	r.reconcile("web")
	r.reconcile("web")
	if im := r.image(); im.Digest != dig2 || im.ImageID != "sha256:1111" || im.OnTrial() || im.KeepTag != "" {
		t.Fatalf("image after the check: %+v, want digest %s recorded for the same image", im, dig2)
	}
	if got := r.rt.byName(ContainerName("web")); got == nil || got.ID != ct.ID || !got.Running() {
		t.Fatalf("container replaced: %+v", got)
	}
	if n := len(r.events("web", "Updated")); n != 0 || r.reg.count("tag") != 0 {
		t.Fatalf("%d Updated events, %d tags for an image already running", n, r.reg.count("tag"))
	}
}

// A new image pushed between the registry's answer and the pull: what was
// pulled is what runs, and its digest is the one recorded.
func TestAutoUpdateRecordsTheDigestOfWhatWasPulled(t *testing.T) {
	r := imgUpdateRig(t, nil)
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	r.reg.push(dig2)
	r.reg.set(func() { r.reg.afterDigest = func() { r.reg.push(dig3) } })
	r.check("web")
	r.reg.set(func() { r.reg.afterDigest = nil })
	r.runsImage("web", r.reg.fakeRegistry, "sha256:3333")
	if im := r.image(); im.ImageID != "sha256:3333" || im.Digest != dig3 {
		t.Fatalf("image %+v, want 3333 with digest %s", im, dig3)
	}
	if up := r.events("web", "Updated"); len(up) != 1 || !strings.Contains(up[0].Message, dig3) {
		t.Fatalf("Updated events %+v, want one naming %s", up, dig3)
	}
}

// Pulls for an update count in the pulls metric by how they ended.
func TestAutoUpdatePullsAreCountedByResult(t *testing.T) {
	for _, tc := range []struct {
		name             string
		pullErr          error
		success, failure float64
	}{
		{"pulled", nil, 1, 0},
		{"refused", errors.New("manifest unknown"), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := imgUpdateRig(t, nil)
			r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
			pulls := func(res string) float64 { return testutil.ToFloat64(r.c.m.ImagePulls.WithLabelValues(res)) }
			success, failure := pulls(metrics.PullSuccess), pulls(metrics.PullFailure)
			r.reg.set(func() { r.reg.pullErr = tc.pullErr })
			r.reg.push(dig2)
			r.check("web")
			if r.reg.count("pull") != 1 {
				t.Fatalf("%d pulls, want 1", r.reg.count("pull"))
			}
			if s, f := pulls(metrics.PullSuccess)-success, pulls(metrics.PullFailure)-failure; s != tc.success || f != tc.failure {
				t.Fatalf("pulls counted success %v, failure %v; want %v, %v", s, f, tc.success, tc.failure)
			}
		})
	}
}

// imgAsked waits for the registry to be asked about a reference; the
// registry's timer, not the test, decides when.
func imgAsked(t *testing.T, reg *imgRegistry) string {
	t.Helper()
	select {
	case ref := <-reg.asked:
		return ref
	case <-time.After(10 * time.Second):
		t.Fatal("the registry was not asked")
		return ""
	}
}

// imgTimedChecks is the registry checks on their own timers, stopped when
// the test ends; the registry names dig1.
func imgTimedChecks(t *testing.T) (*updates, *imgRegistry) {
	reg := &imgRegistry{fakeRegistry: newFakeRegistry(), asked: make(chan string, 100)}
	var wg sync.WaitGroup
	u := newUpdates(reg, metrics.New("", ""), slog.New(slog.DiscardHandler), &wg, func(string) {})
	t.Cleanup(func() {
		u.close()
		wg.Wait()
	})
	return u, reg
}

// The registry is asked again every interval, not once: each check
// schedules the next.
func TestAutoUpdateAsksTheRegistryEveryInterval(t *testing.T) {
	u, reg := imgTimedChecks(t)
	u.want(context.Background(), "web", updRef, time.Millisecond, dig1, "")
	for range 3 {
		if ref := imgAsked(t, reg); ref != updRef {
			t.Fatalf("asked about %q", ref)
		}
	}
}

// A spec whose interval changes is checked at the new interval: from an
// hour to a millisecond, the registry is asked right away.
func TestAutoUpdateFollowsAChangedInterval(t *testing.T) {
	u, reg := imgTimedChecks(t)
	u.want(context.Background(), "web", updRef, time.Hour, dig1, "")
	u.want(context.Background(), "web", updRef, time.Millisecond, dig1, "")
	if ref := imgAsked(t, reg); ref != updRef {
		t.Fatalf("asked about %q", ref)
	}
}

// The spec moves to another tag: the registry is asked about that one.
func TestAutoUpdateFollowsAChangedReference(t *testing.T) {
	const ref2 = "127.0.0.1:5000/box:v2"
	r := imgUpdateRig(t, nil)
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	r.check("web")
	if ref := imgAsked(t, r.reg); ref != updRef {
		t.Fatalf("the registry was asked about %q, want %q", ref, updRef)
	}
	r.putSpec("web", func(c *spec.ContainerSpec) {
		c.Image = ref2
		c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}, RollbackAfter: spec.Duration{Duration: 30 * time.Second}}
	})
	r.reconcile("web")
	r.reconcile("web")
	for len(r.reg.asked) > 0 {
		<-r.reg.asked
	}
	r.check("web")
	if ref := imgAsked(t, r.reg); ref != ref2 {
		t.Fatalf("the registry was asked about %q, want the spec's new reference %q", ref, ref2)
	}
}

// The tag that kept the old image for a rollback is removed once it is no
// longer needed: when the new image passed its trial, and when autoUpdate
// is turned off. A daemon that refuses the removal is in the log, and only
// then.
func TestAutoUpdateReleasesTheRollbackTag(t *testing.T) {
	const warning = "cannot remove the rollback tag"
	keep := keepTag("web", "sha256:1111")
	for _, tc := range []struct {
		name    string
		release func(r *imgRig)
	}{
		{"trial passed", func(r *imgRig) {
			r.now = r.now.Add(31 * time.Second)
			r.reconcile("web")
			if im := r.image(); im == nil || im.OnTrial() || im.ImageID != "sha256:2222" {
				t.Fatalf("after the trial: %+v", im)
			}
		}},
		{"autoUpdate turned off", func(r *imgRig) {
			r.putSpec("web", func(c *spec.ContainerSpec) { c.Image = updRef })
			r.reconcile("web")
			if im := r.image(); im != nil {
				t.Fatalf("image decision kept with autoUpdate off: %+v", im)
			}
		}},
	} {
		for _, refused := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/untag refused %v", tc.name, refused), func(t *testing.T) {
				r := imgUpdateRig(t, nil)
				r.onTrial()
				if !r.reg.hasTag(keep) || len(r.reg.untagged()) != 0 {
					t.Fatalf("on trial: tag %s missing or untags %v", keep, r.reg.untagged())
				}
				if refused {
					r.reg.set(func() { r.reg.untagErr = errors.New("conflict: unable to untag") })
				}
				tc.release(r)
				if got := r.reg.untagged(); len(got) != 1 || got[0] != keep {
					t.Fatalf("untags %v, want %s", got, keep)
				}
				if logged := strings.Contains(r.log.String(), warning); logged != refused {
					t.Fatalf("warning %q logged: %v, want %v; log:\n%s", warning, logged, refused, r.log.String())
				}
			})
		}
	}
}

// A spec deleted while a new image is on trial: its container is stopped
// and removed, and the tag that kept the old image goes with it, not
// before (the container still runs while it stops) and not never.
func TestAutoUpdateDeletedSpecReleasesTheRollbackTagWithItsContainer(t *testing.T) {
	r := imgUpdateRig(t, nil)
	r.onTrial()
	keep := keepTag("web", "sha256:1111")
	if err := r.st.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	r.reconcile("web") // stop
	if ct := r.rt.byName(ContainerName("web")); ct == nil || !r.reg.hasTag(keep) {
		t.Fatalf("while the container is there: container %+v, tag %s kept %v", ct, keep, r.reg.hasTag(keep))
	}
	r.reconcile("web") // record, remove, forget
	if ct := r.rt.byName(ContainerName("web")); ct != nil {
		t.Fatalf("container left: %+v", ct)
	}
	if r.reg.hasTag(keep) || len(r.reg.untagged()) != 1 {
		t.Fatalf("after the spec and its container are gone: tag %s kept %v, untags %v", keep, r.reg.hasTag(keep), r.reg.untagged())
	}
}

// imgPendingExit writes web's history as an agent leaves it when it was
// killed after restarting the crashed container in place and before it
// completed the crash's record.
func (r *imgRig) imgPendingExit(code int) {
	r.t.Helper()
	ct := r.rt.byName(ContainerName("web"))
	hist, err := r.st.GetHistory("web")
	if err != nil {
		r.t.Fatal(err)
	}
	hist.PendingExit = &model.ContainerExit{ContainerID: ct.ID, SpecName: "web", ExitCode: code, Reason: model.ReasonError,
		StartedAt: ct.StartedAt, FinishedAt: r.now}
	if _, _, err := r.st.Commit(store.Change{Name: "web", History: &hist}); err != nil {
		r.t.Fatal(err)
	}
}

// How a new image's trial (rollbackAfter 30s) ends, by what its container
// does and when: a failure within the window rolls back to the old image,
// anything else keeps the new one, at the window's end.
func TestAutoUpdateTrialOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		act        func(r *imgRig)
		rolledBack string // what the RolledBack event says failed; "" for none
		onTrial    bool
		requeue    time.Duration
	}{
		{name: "runs on within the window", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
		}, onTrial: true, requeue: 20 * time.Second},
		{name: "exits non-zero within the window", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
			r.rt.exit(ContainerName("web"), 1)
		}, rolledBack: "exited with code 1"},
		{name: "cannot run within the window", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
			r.rt.exit(ContainerName("web"), 128)
			r.rt.edit(ContainerName("web"), func(c *docker.Container) { c.Error = "oci runtime: mount failed" })
		}, rolledBack: "could not start: oci runtime: mount failed"},
		{name: "restarted after exit 1, its record pending", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
			r.imgPendingExit(1)
			r.restartAgent()
		}, rolledBack: "exited with code 1"},
		{name: "restarted after exit 0, its record pending", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
			r.imgPendingExit(0)
			r.restartAgent()
		}, onTrial: true, requeue: 20 * time.Second},
		{name: "stopped by the agent for a changed spec", act: func(r *imgRig) {
			r.now = r.now.Add(10 * time.Second)
			r.putSpec("web", func(c *spec.ContainerSpec) {
				c.Image, c.Args = updRef, []string{"sleep"}
				c.AutoUpdate = &spec.AutoUpdate{Interval: spec.Duration{Duration: time.Minute}, RollbackAfter: spec.Duration{Duration: 30 * time.Second}}
			})
			r.reconcile("web") // stop
		}, onTrial: true, requeue: 20 * time.Second},
		{name: "ran the whole window", act: func(r *imgRig) {
			r.now = r.now.Add(30 * time.Second)
		}},
		{name: "exits non-zero as the window closes", act: func(r *imgRig) {
			r.now = r.now.Add(30 * time.Second)
			r.rt.exit(ContainerName("web"), 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := imgUpdateRig(t, nil)
			r.onTrial()
			tc.act(r)
			res := r.reconcile("web")
			rb := r.events("web", "RolledBack")
			im := r.image()
			if tc.rolledBack != "" {
				if len(rb) != 1 || !strings.Contains(rb[0].Message, tc.rolledBack) {
					t.Fatalf("RolledBack events %+v, want one saying %q", rb, tc.rolledBack)
				}
				if im.ImageID != "sha256:1111" || im.BadDigest != dig2 || im.OnTrial() {
					t.Fatalf("after the rollback: %+v", im)
				}
				return
			}
			if len(rb) != 0 {
				t.Fatalf("rolled back: %+v", rb)
			}
			if im.ImageID != "sha256:2222" || im.OnTrial() != tc.onTrial || im.BadDigest != "" {
				t.Fatalf("image %+v, want 2222 on trial %v", im, tc.onTrial)
			}
			if tc.onTrial && res.RequeueAfter != tc.requeue {
				t.Fatalf("requeued after %v, want the trial's end in %v", res.RequeueAfter, tc.requeue)
			}
		})
	}
}

// After a rollback the old image is still kept by its tag: the next
// update's trial can fall back to it again.
func TestAutoUpdateKeepsTheRollbackTagAcrossARollback(t *testing.T) {
	r := imgUpdateRig(t, nil)
	r.onTrial()
	keep := keepTag("web", "sha256:1111")
	r.now = r.now.Add(5 * time.Second)
	r.rt.exit(ContainerName("web"), 1)
	r.runsImage("web", r.reg.fakeRegistry, "sha256:1111")
	r.reg.push(dig3)
	r.check("web")
	r.runsImage("web", r.reg.fakeRegistry, "sha256:3333")
	if im := r.image(); !im.OnTrial() || im.PreviousID != "sha256:1111" || im.KeepTag != keep {
		t.Fatalf("second update: %+v", im)
	}
	if !r.reg.hasTag(keep) || len(r.reg.untagged()) != 0 {
		t.Fatalf("tag %s kept %v, untags %v", keep, r.reg.hasTag(keep), r.reg.untagged())
	}
}
