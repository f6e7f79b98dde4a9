package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Image updates (spec.autoUpdate) in two parts, kept apart so that how a
// container is replaced (stop first, start first) never depends on why:
//
//   - Which image ID the spec wants is a persisted fact, History.Image,
//     decided here (resolveImage, before decide): adopted from the first
//     container, moved to a new image when the registry's digest changes,
//     moved back when the new image fails its trial.
//   - Desired.ImageID carries it to decide, for which a container of
//     another image is not current, like one of another definition: it is
//     replaced by the normal path, created from the image ID (no registry).
//
// The registry is asked beside the workers (updates), as pulls are, so a
// slow registry holds up no reconcile; its answer is taken by the next
// reconcile of the spec.

// ImageRegistry is what image updates need of the daemon; *docker.Client
// is one. Nil disables autoUpdate (the spec's container keeps its image).
type ImageRegistry interface {
	RemoteDigest(ctx context.Context, ref string) (string, error)
	Image(ctx context.Context, ref string) (docker.ImageInfo, error)
	Pull(ctx context.Context, ref string) error
	Tag(ctx context.Context, id, tag string) error
	Untag(ctx context.Context, tag string) error
}

// imageCurrent reports whether c runs the image d wants; a container whose
// image ID is unknown yet (just created from the reference) counts as
// current until it is listed.
func (d Desired) imageCurrent(c *docker.Container) bool {
	return d.ImageID == "" || c.ImageID == "" || c.ImageID == d.ImageID
}

func imageUpdateEqual(a, b *model.ImageUpdate) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.TrialSince, y.TrialSince = time.Time{}, time.Time{}
	return x == y && a.TrialSince.Equal(b.TrialSince)
}

// keepTag is the tag that keeps image id for spec name's rollback.
func keepTag(name, id string) string {
	return "reconciler-rollback/" + name + ":" + strings.TrimPrefix(shortImage(id), "sha256:")
}

func shortImage(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// checkResult is what one registry check found: the digest the reference
// names now and the image ID it was pulled as.
type checkResult struct {
	ref, digest, imageID string
}

// updates asks the registry for each autoUpdate spec's digest every
// interval, and pulls when it differs from the spec's image and from its
// bad digest. The result is kept for the spec's next reconcile, which
// decides; the spec is enqueued for it.
type updates struct {
	reg  ImageRegistry
	m    *metrics.Metrics
	log  *slog.Logger
	done func(name string)
	wg   *sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	watches map[string]*updateWatch
	results map[string]checkResult
}

type updateWatch struct {
	ref        string
	interval   time.Duration
	digest     string // the spec's image's digest: no pull for it
	bad        string // rolled back: no pull for it either
	timer      *time.Timer
	generation int
}

func newUpdates(reg ImageRegistry, m *metrics.Metrics, log *slog.Logger, wg *sync.WaitGroup, done func(string)) *updates {
	return &updates{reg: reg, m: m, log: log, wg: wg, done: done,
		watches: map[string]*updateWatch{}, results: map[string]checkResult{}}
}

// want keeps name's reference checked every interval, with the digests
// that need no pull.
func (u *updates) want(ctx context.Context, name, ref string, interval time.Duration, digest, bad string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	if w, ok := u.watches[name]; ok && w.ref == ref && w.interval == interval {
		w.digest, w.bad = digest, bad
		return
	}
	if w, ok := u.watches[name]; ok {
		w.timer.Stop()
	}
	w := &updateWatch{ref: ref, interval: interval, digest: digest, bad: bad}
	u.watches[name] = w
	u.arm(ctx, name, w)
}

// arm schedules w's next check; u.mu is held.
func (u *updates) arm(ctx context.Context, name string, w *updateWatch) {
	w.generation++
	gen := w.generation
	w.timer = time.AfterFunc(w.interval, func() { u.check(ctx, name, w, gen) })
}

// drop stops checking name.
func (u *updates) drop(name string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if w, ok := u.watches[name]; ok {
		w.timer.Stop()
		delete(u.watches, name)
	}
	delete(u.results, name)
}

// close stops every check; none starts after it.
func (u *updates) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for _, w := range u.watches {
		w.timer.Stop()
	}
}

// take returns, once, a check's result for name about ref.
func (u *updates) take(name, ref string) (checkResult, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, ok := u.results[name]
	delete(u.results, name)
	return r, ok && r.ref == ref
}

func (u *updates) check(ctx context.Context, name string, w *updateWatch, gen int) {
	u.mu.Lock()
	if u.closed || u.watches[name] != w || w.generation != gen || ctx.Err() != nil {
		u.mu.Unlock()
		return
	}
	ref, have, bad := w.ref, w.digest, w.bad
	u.wg.Add(1)
	u.mu.Unlock()
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		if !u.closed && u.watches[name] == w && w.generation == gen {
			u.arm(ctx, name, w)
		}
		u.mu.Unlock()
	}()

	log := u.log.With("spec", name, "image", ref)
	digest, err := u.reg.RemoteDigest(ctx, ref)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		u.m.ImageUpdates.WithLabelValues(metrics.UpdateFailed).Inc()
		log.Warn("autoUpdate: cannot ask the registry for the image's digest", "err", err)
		return
	}
	u.m.ImageUpdates.WithLabelValues(metrics.UpdateChecked).Inc()
	switch digest {
	case have:
		log.Debug("autoUpdate: image is current", "digest", digest)
		return
	case bad:
		log.Debug("autoUpdate: the registry still names the digest that was rolled back", "digest", digest)
		return
	}
	log.Info("autoUpdate: the registry names another digest; pulling", "digest", digest, "running", have)
	err = u.reg.Pull(ctx, ref)
	result := metrics.PullSuccess
	if errors.Is(err, docker.ErrStalled) {
		result = metrics.PullStalled
	} else if err != nil {
		result = metrics.PullFailure
	}
	u.m.ImagePulls.WithLabelValues(result).Inc()
	var info docker.ImageInfo
	if err == nil {
		info, err = u.reg.Image(ctx, ref)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		u.m.ImageUpdates.WithLabelValues(metrics.UpdateFailed).Inc()
		log.Warn("autoUpdate: cannot pull the new image", "digest", digest, "err", err)
		return
	}
	if d := info.DigestFor(ref); d != "" {
		digest = d // pushed again meanwhile: what was pulled counts
	}
	u.mu.Lock()
	u.results[name] = checkResult{ref: ref, digest: digest, imageID: info.ID}
	u.mu.Unlock()
	u.done(name)
}

// resolveImage decides which image ID an autoUpdate spec's container must
// run, records that decision (with its Updated or RolledBack event) before
// anything is replaced for it, and hands it to decide as s.d.ImageID. It
// returns when the spec must be looked at again (a trial's end).
func (c *Controller) resolveImage(ctx context.Context, s *step) (time.Duration, error) {
	h := s.h
	var u *spec.AutoUpdate
	if s.d.Spec != nil {
		u = s.d.Spec.Spec.AutoUpdate
	}
	if u == nil || c.images == nil {
		c.updates.drop(s.name)
		if h.Image == nil || (s.d.Spec == nil && s.o.Container != nil) {
			return 0, nil // a deleted spec's images are let go with its container
		}
		// autoUpdate is off or the spec is gone: the container keeps the
		// image it runs, and the image kept for a rollback is let go.
		c.releaseImages(ctx, h.Image)
		h.Image = nil
		s.h = h
		return 0, c.commitHistory(s.name, h)
	}
	ref := s.d.Spec.Spec.Image
	st := h.Image
	if st != nil && st.Image != ref {
		c.releaseImages(ctx, st)
		st = nil // another reference: start afresh from its first container
	}
	var next model.ImageUpdate
	if st != nil {
		next = *st
	}
	ct := s.o.Container
	if st == nil {
		// Nothing runs yet for the reference when there is no container,
		// or only one of another definition, which is about to be replaced
		// (after an edit of image:, it runs the old reference's image): the
		// first create takes the reference, and its container is adopted.
		if ct == nil || ct.ImageID == "" || !s.d.current(ct) {
			c.updates.want(ctx, s.name, ref, u.Interval.Duration, "", "")
			return 0, nil
		}
		next = model.ImageUpdate{Image: ref, ImageID: ct.ImageID}
		if info, err := c.images.Image(ctx, ct.ImageID); err == nil {
			next.Digest = info.DigestFor(ref)
		} else if errors.Is(err, docker.ErrUnavailable) {
			return 0, err
		}
	}
	var (
		evs     []model.Event
		requeue time.Duration
	)
	now := c.opts.Now()
	if next.OnTrial() && ct != nil && ct.ImageID == next.ImageID {
		if next.TrialSince.IsZero() {
			next.TrialSince = now
		}
		window := u.RollbackWindow()
		why, err := c.trialFailure(ctx, s)
		if err != nil {
			return 0, err
		}
		left := next.TrialSince.Add(window).Sub(now)
		switch {
		case why != "" && left > 0:
			evs = append(evs, c.rollBack(s.name, ref, &next, why, window))
		case left <= 0:
			c.log.Info("autoUpdate: new image kept after its trial", "spec", s.name, "image", ref, "digest", next.Digest)
			if next.KeepTag != "" {
				if err := c.images.Untag(ctx, next.KeepTag); err != nil {
					c.log.Warn("autoUpdate: cannot remove the rollback tag", "tag", next.KeepTag, "err", err)
				}
			}
			next.PreviousID, next.PreviousDigest, next.KeepTag, next.TrialSince = "", "", "", time.Time{}
		case left > 0:
			requeue = left
		}
	}
	if res, ok := c.updates.take(s.name, ref); ok && res.digest != next.Digest && res.digest != next.BadDigest {
		switch {
		case res.imageID == next.ImageID:
			next.Digest = res.digest
		case next.OnTrial():
			// Another image while one is on trial: it goes on trial in its
			// place, and a failure goes back to the image that passed its
			// trial last, still kept.
			evs = append(evs, c.event(s.name, model.EventNormal, "Updated",
				"Updating image %s to %s (%s), from %s (on trial); rolled back to %s if it fails within %s",
				ref, res.digest, shortImage(res.imageID), shortImage(next.ImageID), shortImage(next.PreviousID), u.RollbackWindow()))
			next.ImageID, next.Digest, next.TrialSince = res.imageID, res.digest, time.Time{}
			c.m.ImageUpdates.WithLabelValues(metrics.UpdateUpdated).Inc()
		default:
			tag := keepTag(s.name, next.ImageID)
			if err := c.images.Tag(ctx, next.ImageID, tag); err != nil {
				if errors.Is(err, docker.ErrUnavailable) {
					return 0, err
				}
				c.log.Warn("autoUpdate: cannot tag the image to roll back to; it is kept by its containers only", "tag", tag, "err", err)
				tag = ""
			}
			if next.KeepTag != "" && next.KeepTag != tag {
				_ = c.images.Untag(ctx, next.KeepTag)
			}
			evs = append(evs, c.event(s.name, model.EventNormal, "Updated",
				"Updating image %s to %s (%s), from %s; rolled back if it fails within %s",
				ref, res.digest, shortImage(res.imageID), shortImage(next.ImageID), u.RollbackWindow()))
			c.log.Info("autoUpdate: updating", "spec", s.name, "image", ref, "digest", res.digest, "from", shortImage(next.ImageID))
			next.PreviousID, next.PreviousDigest, next.KeepTag = next.ImageID, next.Digest, tag
			next.ImageID, next.Digest, next.TrialSince = res.imageID, res.digest, time.Time{}
			c.m.ImageUpdates.WithLabelValues(metrics.UpdateUpdated).Inc()
		}
	}
	c.updates.want(ctx, s.name, ref, u.Interval.Duration, next.Digest, next.BadDigest)
	s.d.ImageID = next.ImageID
	if !imageUpdateEqual(h.Image, &next) || len(evs) > 0 {
		h.Image = &next
		if err := c.commit(s.name, nil, &h, nil, evs...); err != nil {
			return 0, err
		}
		s.h = h
	}
	return requeue, nil
}

// rollBack turns next back to the image that passed its trial last and
// marks the digest that failed bad; it returns the RolledBack event.
func (c *Controller) rollBack(name, ref string, next *model.ImageUpdate, why string, window time.Duration) model.Event {
	bad := next.Digest
	ev := c.event(name, model.EventWarning, "RolledBack",
		"Rolled back to image %s: the new image %s (%s) %s within rollbackAfter %s; it is not tried again until the registry names another digest",
		shortImage(next.PreviousID), shortImage(next.ImageID), bad, why, window)
	c.log.Warn("autoUpdate: rolling back", "spec", name, "image", ref, "bad_digest", bad, "why", why)
	next.ImageID, next.Digest, next.BadDigest = next.PreviousID, next.PreviousDigest, bad
	next.PreviousID, next.PreviousDigest, next.TrialSince = "", "", time.Time{}
	c.m.ImageUpdates.WithLabelValues(metrics.UpdateRolledBack).Inc()
	return ev
}

// rollBackRefused rolls an image on trial back when the daemon refused
// to create a container from it (an image with no command, say) or to
// start the one it created (a command the image lacks), a start-first
// replacement included. trialFailure
// cannot see either: no container of the image ever runs, and a refused
// start is recorded and its container removed before the next pass looks.
// It reports whether it rolled back; s.d.ImageID is then the image that
// passed its trial last, its image to be observed afresh, and the create
// failure is moot (a refused container is still recorded as a failed run).
func (c *Controller) rollBackRefused(ctx context.Context, s *step) (bool, error) {
	h := s.a.History
	if s.d.Spec == nil || s.d.Spec.Spec.AutoUpdate == nil || !h.Image.OnTrial() || s.d.ImageID != h.Image.ImageID {
		return false, nil
	}
	var why string
	switch f := s.o.CreateFailed; {
	case f != nil && f.Reason == reasonCreateFailed:
		why = "could not be created (" + f.Message + ")"
	case s.o.StartRefused != "" && s.o.Container != nil && s.o.Container.ImageID == h.Image.ImageID:
		why = "could not start (" + s.o.StartRefused + ")"
	case s.o.NextStartRefused != "" && s.o.Next != nil && s.o.Next.ImageID == h.Image.ImageID:
		why = "could not start (" + s.o.NextStartRefused + ")" // a start-first replacement
	default:
		return false, nil
	}
	u, ref := s.d.Spec.Spec.AutoUpdate, s.d.Spec.Spec.Image
	next := *h.Image
	ev := c.rollBack(s.name, ref, &next, why, u.RollbackWindow())
	h.Image = &next
	if err := c.commit(s.name, nil, &h, nil, ev); err != nil {
		return false, err
	}
	c.updates.want(ctx, s.name, ref, u.Interval.Duration, next.Digest, next.BadDigest)
	s.a.History, s.d.ImageID, s.o.CreateFailed, s.o.Image = h, next.ImageID, nil, nil
	return true, nil
}

// trialFailure says how the container of an image on trial failed ("" if
// it did not): it could not start, exited non-zero or turned unhealthy.
// An exited container is inspected for its exit code.
func (c *Controller) trialFailure(ctx context.Context, s *step) (string, error) {
	if s.o.StartRefused != "" {
		return "could not start: " + s.o.StartRefused, nil
	}
	ct := s.o.Container
	if p := s.h.PendingExit; p != nil && p.ContainerID == ct.ID && (p.ExitCode != 0 || p.OOMKilled) {
		return fmt.Sprintf("exited with code %d", p.ExitCode), nil
	}
	if ct.Running() {
		if ct.Health == "unhealthy" {
			return "turned unhealthy", nil
		}
		return "", nil
	}
	if stop := s.h.Stop; stop != nil && stop.ContainerID == ct.ID {
		return "", nil // the agent stopped it
	}
	if !ct.Inspected {
		in, err := c.rt.Inspect(ctx, ct.ID)
		if errors.Is(err, docker.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("inspect: %w", err)
		}
		s.o.Container = &in
		c.annotate(&s.o)
		ct = &in
	}
	switch {
	case ct.Error != "":
		return "could not start: " + ct.Error, nil
	case ct.OOMKilled:
		return "was OOM-killed", nil
	case ct.ExitCode != 0:
		return fmt.Sprintf("exited with code %d", ct.ExitCode), nil
	}
	return "", nil
}

// releaseImages lets go of the image kept for a rollback.
func (c *Controller) releaseImages(ctx context.Context, st *model.ImageUpdate) {
	if st == nil || st.KeepTag == "" || c.images == nil {
		return
	}
	if err := c.images.Untag(ctx, st.KeepTag); err != nil {
		c.log.Warn("autoUpdate: cannot remove the rollback tag", "tag", st.KeepTag, "err", err)
	}
}

// earliest is the sooner of two requeue delays, zero meaning none.
func earliest(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	if b <= 0 {
		return a
	}
	return min(a, b)
}
