package imagegc

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCandidates(t *testing.T) {
	img := func(id string, created, used int, tags ...string) Image {
		i := Image{ID: id, Tags: tags, Created: t0.Add(time.Duration(created) * time.Hour)}
		if used > 0 {
			i.LastUsed = t0.Add(time.Duration(used) * time.Hour)
		}
		return i
	}
	images := []Image{
		img("new-unused", 10, 0, "app:v3"),
		img("old-used-lately", 1, 20, "app:v1"),
		img("old-unused", 2, 0, "app:v2"),
		img("in-use", 0, 0, "db:1"),
		img("referenced", 0, 0, "web:1"),
		img("rollback", 0, 0),
		img("box", 0, 0, "reconciler/box:latest"),
		img("proxy", 0, 0, "other:1", "reconciler/egress-proxy:latest"),
		img("tie-b", 5, 0),
		img("tie-a", 5, 0),
		{ID: "base-of-others", Tags: []string{"base:1"}, Parent: true},
	}
	keep := Keep{"in-use": "used", "referenced": "spec", "rollback": "rollback"}
	var got []string
	for _, c := range Candidates(images, keep, PinnedImages) {
		got = append(got, c.ID)
	}
	want := []string{"old-unused", "tie-a", "tie-b", "new-unused", "old-used-lately"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates %v, want %v (least recently used first: last use, else creation; never kept or pinned)", got, want)
	}
}

func TestPinned(t *testing.T) {
	for _, tt := range []struct {
		tags []string
		want bool
	}{
		{[]string{"reconciler/box:latest"}, true},
		{[]string{"reconciler/egress-proxy:latest"}, true},
		{[]string{"app:1", "reconciler/box:v2"}, true},
		{[]string{"reconciler-rollback/web:3f2a9c01d7e4"}, true},
		{[]string{"reconcilerx/box:latest"}, false},
		{[]string{"example.com/reconciler/box:latest"}, false},
		{nil, false},
	} {
		if got := Pinned(tt.tags, PinnedImages); got != tt.want {
			t.Errorf("Pinned(%v) = %v, want %v", tt.tags, got, tt.want)
		}
	}
}

func TestUsage(t *testing.T) {
	u := Usage{Used: 90, Avail: 10}
	if u.Percent() != 90 {
		t.Errorf("percent %d, want 90", u.Percent())
	}
	if got := (Usage{Used: 801, Avail: 199}).Percent(); got != 81 {
		t.Errorf("80.1%% rounds to %d, want 81 (as df)", got)
	}
	if got := u.ToFree(80); got != 11 {
		t.Errorf("to free from 90%% to below 80%%: %d bytes, want 11", got)
	}
	if got := (Usage{Used: 79, Avail: 21}).ToFree(80); got != 0 {
		t.Errorf("below low already: %d, want 0", got)
	}
	if (Usage{}).Percent() != 0 {
		t.Error("an empty filesystem is 0%")
	}
}

func TestThresholds(t *testing.T) {
	for _, tt := range []struct {
		th   Thresholds
		want string
	}{
		{Thresholds{}, ""},
		{Thresholds{High: 85, Low: 80}, ""},
		{Thresholds{High: 100, Low: 0}, ""},
		{Thresholds{High: 80, Low: 80}, "--image-gc-low-threshold 80% must be below --image-gc-high-threshold 80%"},
		{Thresholds{High: 70, Low: 80}, "must be below"},
		{Thresholds{Low: 80}, "without --image-gc-high-threshold: set both"},
		{Thresholds{High: 101, Low: 1}, "--image-gc-high-threshold 101%: give a percentage from 1 to 100"},
	} {
		err := tt.th.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.th, err, tt.want)
		}
	}
	if !(Thresholds{High: 85, Low: 80}).Enabled() || (Thresholds{}).Enabled() {
		t.Error("Enabled: on when set, off when both are zero")
	}
}

func TestPercentFlag(t *testing.T) {
	for in, want := range map[string]int{"85": 85, "85%": 85, " 0 ": 0, "100": 100} {
		var p Percent
		if err := p.Set(in); err != nil || int(p) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, p, err, want)
		}
	}
	for _, in := range []string{"", "101", "-1", "85.5", "high"} {
		var p Percent
		if err := p.Set(in); err == nil || !strings.Contains(err.Error(), "is not a percentage") {
			t.Errorf("Set(%q) = %v, want an error", in, err)
		}
	}
}

// fakeDaemon holds images on a fake filesystem: removing one frees its
// size.
type fakeDaemon struct {
	mu         sync.Mutex
	images     map[string]docker.ImageInfo
	containers []docker.ContainerImage
	capacity   uint64
	base       uint64 // used by other things than images
	removed    []string
	refuse     map[string]bool // refs whose removal the daemon refuses
	events     chan docker.Event
}

func newFakeDaemon(capacity, base uint64, imgs ...docker.ImageInfo) *fakeDaemon {
	d := &fakeDaemon{images: map[string]docker.ImageInfo{}, capacity: capacity, base: base, refuse: map[string]bool{},
		events: make(chan docker.Event)}
	for _, i := range imgs {
		d.images[i.ID] = i
	}
	return d
}

func (d *fakeDaemon) usage(string) (Usage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.base
	for _, i := range d.images {
		used += uint64(i.Size)
	}
	return Usage{Used: used, Avail: d.capacity - used}, nil
}

func (d *fakeDaemon) DataRoot(context.Context) (string, error) { return "/var/lib/docker", nil }

func (d *fakeDaemon) Images(context.Context) ([]docker.ImageInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []docker.ImageInfo
	for _, i := range d.images {
		out = append(out, i)
	}
	return out, nil
}

func (d *fakeDaemon) ContainerImages(context.Context) ([]docker.ContainerImage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.containers), nil
}

func (d *fakeDaemon) ImageID(_ context.Context, ref string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, i := range d.images {
		if id == ref || slices.Contains(i.Tags, ref) {
			return id, nil
		}
	}
	return "", nil
}

func (d *fakeDaemon) RemoveImage(_ context.Context, ref string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refuse[ref] {
		return fmt.Errorf("remove image %s: conflict: in use", ref)
	}
	for id, i := range d.images {
		if id == ref {
			delete(d.images, id)
			d.removed = append(d.removed, id)
			return nil
		}
		if k := slices.Index(i.Tags, ref); k >= 0 {
			i.Tags = slices.Delete(slices.Clone(i.Tags), k, k+1)
			d.images[id] = i
			if len(i.Tags) == 0 {
				delete(d.images, id)
				d.removed = append(d.removed, id)
			}
			return nil
		}
	}
	return fmt.Errorf("no such image %s: %w", ref, docker.ErrNotFound)
}

func (d *fakeDaemon) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	out := make(chan docker.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer close(errc)
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case ev := <-d.events:
				out <- ev
			}
		}
	}()
	return out, errc
}

type recorded struct {
	typ model.EventType
	msg string
}

type harness struct {
	d      *fakeDaemon
	gc     *GC
	events []recorded
	reg    *prometheus.Registry
	now    time.Time
}

func newHarness(t *testing.T, d *fakeDaemon, th Thresholds, refs ...string) *harness {
	h := &harness{d: d, reg: prometheus.NewRegistry(), now: t0.Add(100 * time.Hour)}
	h.gc = New(d, Options{
		Thresholds: th, Instance: "me", StateFile: filepath.Join(t.TempDir(), "gc.json"),
		Referenced: func() ([]string, error) { return refs, nil },
		Statfs:     d.usage,
		Event: func(typ model.EventType, reason, format string, args ...any) {
			if reason != Reason {
				t.Errorf("event reason %q, want %s", reason, Reason)
			}
			h.events = append(h.events, recorded{typ, fmt.Sprintf(format, args...)})
		},
		Metrics: NewMetrics(h.reg),
		Now:     func() time.Time { return h.now },
	})
	return h
}

const mb = 1 << 20

func image(id string, sizeMB int64, createdHour int, tags ...string) docker.ImageInfo {
	return docker.ImageInfo{ID: id, Tags: tags, Size: sizeMB * mb, Created: t0.Add(time.Duration(createdHour) * time.Hour)}
}

func TestCheckRemovesLRUFirstUntilBelowLow(t *testing.T) {
	// 1000 MB; 300 MB of other data; images 100 MB each: 90% used.
	d := newFakeDaemon(1000*mb, 300*mb,
		image("a", 100, 1, "app:a"), image("b", 100, 2, "app:b"), image("c", 100, 3, "app:c"),
		image("used", 100, 0, "app:used"), image("ref", 100, 0, "app:ref"), image("box", 100, 0, "reconciler/box:latest"))
	d.containers = []docker.ContainerImage{{ID: "c1", ImageID: "used"}} // not this agent's: in use all the same
	h := newHarness(t, d, Thresholds{High: 85, Low: 75}, "app:ref", "app:gone")
	h.gc.Check(context.Background())

	// From 90% to below 75%: 151 MB must go, so a and b (oldest first), not c.
	if !slices.Equal(d.removed, []string{"a", "b"}) {
		t.Fatalf("removed %v, want [a b]: least recently used first, stopping once below the low threshold", d.removed)
	}
	if u, _ := d.usage(""); u.Percent() >= 75 {
		t.Errorf("usage %d%% after GC, want below 75%%", u.Percent())
	}
	if len(h.events) != 2 || !strings.Contains(h.events[0].msg, "removed image app:a (a, 104857600 bytes): freed 104857600 bytes") ||
		!strings.Contains(h.events[1].msg, "removed image app:b") || h.events[0].typ != model.EventNormal {
		t.Errorf("events %+v, want one Normal ImageGC per removal naming the image and the bytes freed", h.events)
	}
	if got := testutil.ToFloat64(h.gc.opts.Metrics.Removed); got != 2 {
		t.Errorf("removed_total %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.gc.opts.Metrics.Freed); got != 200*mb {
		t.Errorf("freed_bytes_total %v, want %d", got, 200*mb)
	}

	// A second check, below the high threshold, removes nothing.
	h.gc.Check(context.Background())
	if len(d.removed) != 2 {
		t.Errorf("removed %v below the high threshold", d.removed)
	}
}

func TestCheckNeverRemovesKeptImages(t *testing.T) {
	// Above high even with every candidate gone: what is kept stays.
	d := newFakeDaemon(1000*mb, 600*mb,
		image("a", 100, 1, "app:a"), image("used", 100, 0, "app:used"), image("ref", 100, 0, "app:ref"),
		image("box", 50, 0, "reconciler/box:latest"), image("proxy", 50, 0, "reconciler/egress-proxy:latest"),
		image("rollback", 50, 0))
	d.containers = []docker.ContainerImage{{ID: "c1", ImageID: "used"}}
	h := newHarness(t, d, Thresholds{High: 50, Low: 10}, "app:ref")
	h.gc.opts.Keep = func() []string { return []string{"rollback"} }
	h.gc.Check(context.Background())
	if !slices.Equal(d.removed, []string{"a"}) {
		t.Fatalf("removed %v, want only a: in use, referenced, pinned and kept images stay", d.removed)
	}
	last := h.events[len(h.events)-1]
	if last.typ != model.EventWarning || !strings.Contains(last.msg, "with no image left that may be removed") {
		t.Errorf("last event %+v, want a Warning that nothing more may go", last)
	}
	n := len(h.events)
	h.gc.Check(context.Background())
	if len(h.events) != n {
		t.Errorf("the warning was repeated: %+v", h.events[n:])
	}
}

func TestCheckSkipsARefusedRemoval(t *testing.T) {
	d := newFakeDaemon(1000*mb, 800*mb, image("a", 100, 1, "app:a"), image("b", 100, 2, "app:b"))
	d.refuse["app:a"] = true // a container was created from it since the listing
	h := newHarness(t, d, Thresholds{High: 85, Low: 85})
	h.gc.opts.Thresholds.Low = 84
	h.gc.Check(context.Background())
	if !slices.Equal(d.removed, []string{"b"}) {
		t.Errorf("removed %v, want [b]: the refused one skipped, the next removed", d.removed)
	}
}

func TestLastUsedTrackedAndPersisted(t *testing.T) {
	d := newFakeDaemon(1000*mb, 0,
		image("old-mine", 100, 1, "app:old"), image("new", 100, 5, "app:new"), image("x", 100, 9, "app:x"))
	d.containers = []docker.ContainerImage{
		{ID: "c1", ImageID: "old-mine", Labels: map[string]string{ownership.LabelInstance: "me"}},
		{ID: "c2", ImageID: "x", Labels: map[string]string{ownership.LabelInstance: "another-agent"}},
	}
	h := newHarness(t, d, Thresholds{High: 90, Low: 80})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.gc.Run(ctx) }()
	// The container of this agent is removed: its image was used until then.
	removedAt := h.now.Add(time.Hour)
	waitFor(t, func() bool { _, ok := h.gc.LastUsed()["old-mine"]; return ok })
	d.mu.Lock()
	d.containers = d.containers[1:]
	d.mu.Unlock()
	d.events <- docker.Event{Action: "destroy", ContainerID: "c1", Time: removedAt}
	waitFor(t, func() bool { return h.gc.LastUsed()["old-mine"].Equal(removedAt) })
	if _, ok := h.gc.LastUsed()["x"]; ok {
		t.Error("another agent's container counted as this agent's use")
	}
	cancel()
	<-done

	// A new collector reads the record back: old-mine, used last,
	// goes after new (created hour 5, never used).
	h2 := newHarness(t, d, Thresholds{High: 85, Low: 80})
	h2.gc.opts.StateFile = h.gc.opts.StateFile
	if err := h2.gc.load(); err != nil {
		t.Fatal(err)
	}
	if got := h2.gc.LastUsed()["old-mine"]; !got.Equal(removedAt) {
		t.Fatalf("persisted last use %v, want %v", got, removedAt)
	}
	d.mu.Lock()
	d.base = 600 * mb // 90%: two images must go
	d.containers = nil
	d.mu.Unlock()
	h2.gc.Check(context.Background())
	if !slices.Equal(d.removed, []string{"new", "x"}) {
		t.Errorf("removed %v, want [new x]: old-mine, created first but used last, is the most recently used", d.removed)
	}
}

func TestDataRootNotVisible(t *testing.T) {
	d := newFakeDaemon(1000*mb, 950*mb, image("a", 10, 1, "app:a"))
	h := newHarness(t, d, Thresholds{High: 50, Low: 40})
	h.gc.opts.Statfs = func(string) (Usage, error) {
		return Usage{}, fmt.Errorf("statfs /var/lib/docker: no such file or directory")
	}
	h.gc.Check(context.Background())
	h.gc.Check(context.Background())
	if len(d.removed) != 0 {
		t.Errorf("removed %v without knowing the usage", d.removed)
	}
	if len(h.events) != 1 || h.events[0].typ != model.EventWarning || !strings.Contains(h.events[0].msg, "image garbage collection is off") {
		t.Errorf("events %+v, want one Warning saying GC is off and why", h.events)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShortJobUseIsRecordedFromEvents(t *testing.T) {
	d := newFakeDaemon(1000*mb, 0, image("job", 10, 1, "app:job"))
	h := newHarness(t, d, Thresholds{High: 90, Low: 80})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.gc.Run(ctx) }()
	ours := map[string]string{ownership.LabelInstance: "me"}
	theirs := map[string]string{ownership.LabelInstance: "other"}
	at := h.now.Add(time.Minute)
	// Another agent's job first: not this agent's use.
	d.events <- docker.Event{Action: "die", ContainerID: "j0", Labels: theirs, Image: "app:job", Time: at}
	// A job that came and went between two listings.
	d.events <- docker.Event{Action: "start", ContainerID: "j1", Labels: ours, Image: "app:job", Time: at}
	d.events <- docker.Event{Action: "die", ContainerID: "j1", Labels: ours, Image: "app:job", Time: at.Add(time.Second)}
	waitFor(t, func() bool { return h.gc.LastUsed()["job"].Equal(at.Add(time.Second)) })
}
