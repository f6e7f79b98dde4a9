package imagegc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// DefaultPeriod is how often usage is checked, besides after every
// container removal on the daemon (kubelet: every 5 minutes).
const DefaultPeriod = 5 * time.Minute

// MinKickGap is the least time between two checks asked for by container
// removals (or the period, when shorter).
const MinKickGap = 10 * time.Second

// Reason is the reason of the events the collector records.
const Reason = "ImageGC"

// Daemon is what the collector asks of Docker; *docker.Client is one.
type Daemon interface {
	DataRoot(ctx context.Context) (string, error)
	Images(ctx context.Context) ([]docker.ImageInfo, error)
	ContainerImages(ctx context.Context) ([]docker.ContainerImage, error)
	ImageID(ctx context.Context, ref string) (string, error)
	RemoveImage(ctx context.Context, ref string) error
	Events(ctx context.Context, since time.Time, sel map[string]string) (<-chan docker.Event, <-chan error)
}

var _ Daemon = (*docker.Client)(nil)

// Options configure a GC.
type Options struct {
	Thresholds Thresholds
	// Period between checks; zero is DefaultPeriod.
	Period time.Duration
	// Instance is this agent's id: its containers' uses are recorded.
	Instance string
	// StateFile keeps when each image was last used, across restarts.
	StateFile string
	// Referenced returns the image references of every spec; their images
	// stay whether a container uses them or not.
	Referenced func() ([]string, error)
	// Keep, when set, returns image IDs other parts of the agent keep (the
	// previous image of an update, for a rollback without a registry).
	Keep func() []string
	// Pinned are patterns of images never removed; nil is PinnedImages.
	Pinned []string
	// Statfs measures the filesystem holding path; nil is StatFS.
	Statfs func(path string) (Usage, error)
	// Event records an agent-level event.
	Event   func(typ model.EventType, reason, format string, args ...any)
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// Metrics count the collector's removals.
type Metrics struct {
	Removed prometheus.Counter
	Freed   prometheus.Counter
}

// NewMetrics registers the collector's counters on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Removed: prometheus.NewCounter(prometheus.CounterOpts{Name: "reconciler_image_gc_removed_total",
			Help: "Images removed by the image garbage collector."}),
		Freed: prometheus.NewCounter(prometheus.CounterOpts{Name: "reconciler_image_gc_freed_bytes_total",
			Help: "Bytes of the daemon's data-root filesystem freed by image removals, as measured around each."}),
	}
	reg.MustRegister(m.Removed, m.Freed)
	return m
}

// GC is the image garbage collector of one agent.
type GC struct {
	opts Options
	d    Daemon
	kick chan struct{}

	mu       sync.Mutex
	lastUsed map[string]time.Time // image ID -> last use by this agent's containers
	ours     map[string]string    // this agent's containers -> image ID, as last listed
	dirty    bool

	root       string
	warnedRoot bool // the data-root could not be measured; said once
	warnedFull bool // still above low with nothing left to remove; said once
}

// New makes a collector; Run runs it.
func New(d Daemon, opts Options) *GC {
	if opts.Period <= 0 {
		opts.Period = DefaultPeriod
	}
	if opts.Pinned == nil {
		opts.Pinned = PinnedImages
	}
	if opts.Statfs == nil {
		opts.Statfs = StatFS
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Event == nil {
		opts.Event = func(model.EventType, string, string, ...any) {}
	}
	if opts.Referenced == nil {
		opts.Referenced = func() ([]string, error) { return nil, nil }
	}
	return &GC{opts: opts, d: d, kick: make(chan struct{}, 1), lastUsed: map[string]time.Time{}, ours: map[string]string{}}
}

// StatFS measures the filesystem holding path.
func StatFS(path string) (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Usage{}, err
	}
	bs := uint64(st.Bsize)
	return Usage{Used: (st.Blocks - st.Bfree) * bs, Avail: st.Bavail * bs}, nil
}

// Run checks usage every period and after every container removal until
// ctx ends. It follows the daemon's container events to learn of removals
// and of this agent's containers' uses.
func (g *GC) Run(ctx context.Context) error {
	if err := g.load(); err != nil {
		g.opts.Log.Warn("image GC: last-used record unreadable; starting afresh (images count from their creation)", "file", g.opts.StateFile, "err", err)
	}
	g.opts.Log.Info("image GC on", "high_threshold", g.opts.Thresholds.High, "low_threshold", g.opts.Thresholds.Low, "period", g.opts.Period)
	go g.watch(ctx)
	t := time.NewTicker(g.opts.Period)
	defer t.Stop()
	// A burst of removals (or a crash loop's) asks for one check, not one
	// each: checks after a removal are spaced by gap.
	gap := min(g.opts.Period, MinKickGap)
	for {
		g.Check(ctx)
		checked := time.Now()
		select {
		case <-ctx.Done():
			g.save()
			return nil
		case <-t.C:
		case <-g.kick:
			select {
			case <-ctx.Done():
				g.save()
				return nil
			case <-time.After(gap - time.Since(checked)):
			}
		}
	}
}

// Kick asks for a check soon.
func (g *GC) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// watch follows container events: a removal anywhere asks for a check
// (it may have freed an image); a start, exit or removal of one of this
// agent's containers records its image's use at that moment (a short job
// may come and go between two listings).
func (g *GC) watch(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		evs, errs := g.d.Events(ctx, time.Time{}, nil)
		for ev := range evs {
			delay = time.Second
			g.used(ctx, ev)
			if ev.Action == "destroy" {
				g.Kick()
			}
		}
		if err := <-errs; err != nil && ctx.Err() == nil {
			g.opts.Log.Debug("image GC: event stream ended; the periodic check goes on", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// used records the use an event of this agent's container shows.
func (g *GC) used(ctx context.Context, ev docker.Event) {
	switch ev.Action {
	case "start", "die", "destroy":
	default:
		return
	}
	g.mu.Lock()
	img, ok := g.ours[ev.ContainerID]
	g.mu.Unlock()
	if !ok {
		if g.opts.Instance == "" || ev.Labels[ownership.LabelInstance] != g.opts.Instance || ev.Image == "" {
			return
		}
		id, err := g.d.ImageID(ctx, ev.Image)
		if err != nil {
			return
		}
		img = id
	}
	if img == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ev.Time.After(g.lastUsed[img]) {
		g.lastUsed[img] = ev.Time
		g.dirty = true
	}
	if ev.Action == "destroy" {
		delete(g.ours, ev.ContainerID)
	} else {
		g.ours[ev.ContainerID] = img
	}
}

// Check records the uses of this agent's containers and, when the
// data-root filesystem is above the high threshold, removes candidates
// until it is below the low one.
func (g *GC) Check(ctx context.Context) {
	inUse, err := g.track(ctx)
	defer g.save()
	if err != nil {
		g.opts.Log.Warn("image GC: cannot list containers", "err", err)
		return
	}
	usage, ok := g.measure(ctx)
	if !ok || usage.Percent() <= g.opts.Thresholds.High {
		g.warnedFull = false
		return
	}
	g.collect(ctx, usage, inUse)
}

// track lists every container: their images are in use, and those of this
// agent's containers are used now.
func (g *GC) track(ctx context.Context) (Keep, error) {
	cs, err := g.d.ContainerImages(ctx)
	if err != nil {
		return nil, err
	}
	now := g.opts.Now()
	keep := Keep{}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ours = map[string]string{}
	for _, c := range cs {
		keep[c.ImageID] = "used by container " + shortID(c.ID)
		if c.Labels[ownership.LabelInstance] == g.opts.Instance && g.opts.Instance != "" {
			g.ours[c.ID] = c.ImageID
			g.lastUsed[c.ImageID] = now
			g.dirty = true
		}
	}
	return keep, nil
}

// measure reads the usage of the data-root filesystem. When the agent
// cannot see the data-root (it runs in another mount namespace without
// it) the collector cannot know how full it is and does nothing; it says
// so once.
func (g *GC) measure(ctx context.Context) (Usage, bool) {
	if g.root == "" {
		root, err := g.d.DataRoot(ctx)
		if err != nil {
			g.opts.Log.Warn("image GC: cannot learn the daemon's data-root", "err", err)
			return Usage{}, false
		}
		g.root = root
	}
	u, err := g.opts.Statfs(g.root)
	if err != nil {
		if !g.warnedRoot {
			g.warnedRoot = true
			g.opts.Log.Warn("image GC off: the daemon's data-root is not visible to the agent", "data_root", g.root, "err", err)
			g.opts.Event(model.EventWarning, Reason, "image garbage collection is off: the daemon's data-root %s cannot be measured here (%v); "+
				"run the agent where that path is the daemon's filesystem (bind-mount it at the same path)", g.root, err)
		}
		return Usage{}, false
	}
	if g.warnedRoot {
		g.warnedRoot = false
		g.opts.Log.Info("image GC: the daemon's data-root is visible again", "data_root", g.root)
	}
	return u, true
}

// collect removes candidates, least recently used first, until usage is
// below the low threshold, measuring after each removal.
func (g *GC) collect(ctx context.Context, usage Usage, keep Keep) {
	th := g.opts.Thresholds
	refs, err := g.opts.Referenced()
	if err != nil {
		g.opts.Log.Warn("image GC: cannot read the specs; nothing removed", "err", err)
		return
	}
	for _, ref := range refs {
		id, err := g.d.ImageID(ctx, ref)
		if err != nil {
			// An image the agent cannot resolve may be one a spec needs.
			g.opts.Log.Warn("image GC: cannot resolve a spec's image; nothing removed", "image", ref, "err", err)
			return
		}
		if id != "" {
			keep[id] = "referenced by a spec as " + ref
		}
	}
	if g.opts.Keep != nil {
		for _, id := range g.opts.Keep() {
			keep[id] = "kept for a rollback"
		}
	}
	infos, err := g.d.Images(ctx)
	if err != nil {
		g.opts.Log.Warn("image GC: cannot list images", "err", err)
		return
	}
	g.mu.Lock()
	imgs := make([]Image, 0, len(infos))
	present := map[string]bool{}
	for _, in := range infos {
		present[in.ID] = true
		imgs = append(imgs, Image{ID: in.ID, Tags: in.Tags, Size: in.Size, Created: in.Created, LastUsed: g.lastUsed[in.ID], Parent: in.Parent})
	}
	// Images removed by others leave the record.
	for id := range g.lastUsed {
		if !present[id] {
			delete(g.lastUsed, id)
			g.dirty = true
		}
	}
	g.mu.Unlock()
	cands := Candidates(imgs, keep, g.opts.Pinned)
	level := slog.LevelInfo
	if len(cands) == 0 {
		level = slog.LevelDebug // said once by the Warning below
	}
	g.opts.Log.Log(ctx, level, "image GC: data-root above the high threshold", "data_root", g.root, "usage_percent", usage.Percent(),
		"high_threshold", th.High, "low_threshold", th.Low, "to_free_bytes", usage.ToFree(th.Low), "candidates", len(cands))
	for _, img := range cands {
		if usage.ToFree(th.Low) == 0 || ctx.Err() != nil {
			break
		}
		if err := g.remove(ctx, img); err != nil {
			g.opts.Log.Warn("image GC: image not removed", "image", img.Name(), "id", shortID(img.ID), "err", err)
			continue
		}
		after, err := g.opts.Statfs(g.root)
		if err != nil {
			after = usage
		}
		freed := int64(0)
		if after.Used < usage.Used {
			freed = int64(usage.Used - after.Used)
		}
		g.mu.Lock()
		delete(g.lastUsed, img.ID)
		g.dirty = true
		g.mu.Unlock()
		last := "never used by this agent; created " + img.Created.UTC().Format(time.RFC3339)
		if !img.LastUsed.IsZero() {
			last = "last used " + img.LastUsed.UTC().Format(time.RFC3339)
		}
		g.opts.Log.Info("image GC: image removed", "image", img.Name(), "id", shortID(img.ID), "freed_bytes", freed,
			"usage_percent", after.Percent())
		g.opts.Event(model.EventNormal, Reason, "removed image %s (%s, %d bytes): freed %d bytes; %s; data-root %d%% used (high %d%%, low %d%%)",
			img.Name(), shortID(img.ID), img.Size, freed, last, after.Percent(), th.High, th.Low)
		if g.opts.Metrics != nil {
			g.opts.Metrics.Removed.Inc()
			g.opts.Metrics.Freed.Add(float64(freed))
		}
		usage = after
	}
	if usage.ToFree(th.Low) > 0 && !g.warnedFull {
		g.warnedFull = true
		g.opts.Event(model.EventWarning, Reason, "data-root %d%% used, above the low threshold %d%%, with no image left that may be removed "+
			"(%d in use, referenced, kept, pinned or the base of others)", usage.Percent(), th.Low, len(imgs)-len(cands))
	}
}

// remove removes each tag of img and then img itself, never by force: the
// daemon refuses an image a container uses, which covers a container
// created since the collector listed them.
func (g *GC) remove(ctx context.Context, img Image) error {
	for _, tag := range img.Tags {
		if err := g.d.RemoveImage(ctx, tag); err != nil && !errors.Is(err, docker.ErrNotFound) {
			return err
		}
	}
	// The last tag's removal removed an image nothing else names; an
	// untagged image, or one also named by digest, goes by its ID.
	id, err := g.d.ImageID(ctx, img.ID)
	if err != nil {
		return err
	}
	if id == "" {
		return nil
	}
	if err := g.d.RemoveImage(ctx, img.ID); err != nil && !errors.Is(err, docker.ErrNotFound) {
		return fmt.Errorf("its tags are gone, but: %w", err)
	}
	return nil
}

// LastUsed returns a copy of the record of uses, for tests and status.
func (g *GC) LastUsed() map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.lastUsed)
}

// sortedIDs is the record's keys in order, for a stable file.
func sortedIDs(m map[string]time.Time) []string {
	return slices.Sorted(maps.Keys(m))
}
