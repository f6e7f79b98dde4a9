package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
)

// maxPullBackoff caps the delay between failed pulls, as kubelet's
// ImagePullBackOff does.
const maxPullBackoff = 5 * time.Minute

// pullDelay is the wait after the n-th consecutive failed pull (n >= 1):
// initial, doubling, capped at maxPullBackoff.
func pullDelay(initial time.Duration, n int) time.Duration {
	d := initial
	for i := 1; i < n && d < maxPullBackoff; i++ {
		d *= 2
	}
	return min(d, maxPullBackoff)
}

// pullFailed is the back-off after a failed pull of ref, counting on from
// prev when prev was about the same image.
func pullFailed(prev *model.PullBackoff, ref string, err error, initial time.Duration, now time.Time) *model.PullBackoff {
	n := 1
	if prev != nil && prev.Image == ref {
		n = prev.Failures + 1
	}
	d := pullDelay(initial, n)
	return &model.PullBackoff{Image: ref, Failures: n, Delay: d, NextTryAt: now.Add(d), Message: err.Error()}
}

// Puller is what the pull pool needs of the daemon.
type Puller interface {
	Pull(ctx context.Context, ref string) error
}

// pulls runs image pulls beside the workers, at most size at a time, so
// that a slow or stuck registry holds up only the specs that wait for its
// image. One pull serves every spec asking for the same image; each of
// them is enqueued when it ends and finds the result with take.
type pulls struct {
	rt   Puller
	sem  chan struct{}
	m    *metrics.Metrics
	log  *slog.Logger
	done func(name string)
	wg   *sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]map[string]bool // image -> spec names waiting for its pull
	results map[string]pullResult      // spec name -> its last finished pull
}

type pullResult struct {
	ref string
	err error
}

func newPulls(rt Puller, size int, m *metrics.Metrics, log *slog.Logger, wg *sync.WaitGroup, done func(string)) *pulls {
	return &pulls{rt: rt, sem: make(chan struct{}, size), m: m, log: log, wg: wg, done: done,
		waiting: map[string]map[string]bool{}, results: map[string]pullResult{}}
}

// peek returns the result of a pull of ref that finished for name, and
// keeps it until take.
func (p *pulls) peek(name, ref string) (pullResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[name]
	return r, ok && r.ref == ref
}

// take returns, once, the result of a pull of ref that finished for name.
func (p *pulls) take(name, ref string) (pullResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[name]
	delete(p.results, name)
	return r, ok && r.ref == ref
}

// start asks for ref to be pulled for name and returns at once; a pull of
// ref already queued or running is joined. It reports whether a new pull
// was queued.
func (p *pulls) start(ctx context.Context, name, ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.waiting[ref]; ok {
		w[name] = true
		return false
	}
	p.waiting[ref] = map[string]bool{name: true}
	p.wg.Add(1)
	go p.run(ctx, ref)
	return true
}

// forget drops what is kept for a deleted spec.
func (p *pulls) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.results, name)
	for _, w := range p.waiting {
		delete(w, name)
	}
}

func (p *pulls) run(ctx context.Context, ref string) {
	defer p.wg.Done()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	start := time.Now()
	p.log.Info("pulling image", "image", ref)
	err := p.rt.Pull(ctx, ref)
	<-p.sem
	if ctx.Err() != nil {
		return // shutting down: the next agent tries again
	}
	took := time.Since(start)
	result := metrics.PullSuccess
	switch {
	case errors.Is(err, docker.ErrStalled):
		result = metrics.PullStalled
	case err != nil:
		result = metrics.PullFailure
	}
	p.m.ImagePulls.WithLabelValues(result).Inc()
	p.m.ImagePullDuration.Observe(took.Seconds())
	if err != nil {
		p.log.Warn("image pull failed", "image", ref, "result", result, "took", took.Round(time.Millisecond), "err", err)
	} else {
		p.log.Info("image pulled", "image", ref, "took", took.Round(time.Millisecond))
	}
	p.mu.Lock()
	names := p.waiting[ref]
	delete(p.waiting, ref)
	for n := range names {
		p.results[n] = pullResult{ref: ref, err: err}
	}
	p.mu.Unlock()
	for n := range names {
		p.done(n)
	}
}

// observeImage observes what a create of s's spec needs to know of its
// image (ImageFacts). It is called only once decide asks for a create: an
// image inspect per reconcile would cost every no-op pass a daemon call
// per spec. The pool's result is only looked at: recordPull takes it once
// it is recorded, so a reconcile that fails in between loses nothing.
func (c *Controller) observeImage(ctx context.Context, s *step) error {
	f := &ImageFacts{Backoff: c.opts.PullBackoff}
	if id := s.d.ImageID; id != "" && c.images != nil {
		_, err := c.images.Image(ctx, id)
		switch {
		case err == nil:
			f.Pinned = id
			s.o.Image = f
			return nil
		case errors.Is(err, docker.ErrUnavailable):
			return err
		}
		f.PinGone = err.Error() // removed by hand
	}
	ref := s.d.Spec.Spec.Image
	present, err := c.rt.ImagePresent(ctx, ref)
	switch {
	case errors.Is(err, docker.ErrUnavailable):
		return fmt.Errorf("inspect image %s: %w", ref, err)
	case err != nil:
		f.InspectErr = err.Error()
	}
	f.Present = present
	if r, ok := c.pulls.peek(s.name, ref); ok {
		f.Pulled, f.PullErr = true, r.err
	}
	s.o.Image = f
	return nil
}

// recordPull commits the result of a finished pull that s.a rests on (its
// events and the back-off it starts or ends) before anything is done
// about it, then lets the pool forget the result: it is counted once,
// even when the create that follows is put off.
func (c *Controller) recordPull(s *step) error {
	img := s.a.Image
	evs := c.noteEvents(s.name, img.Events)
	h := &s.a.History
	if old, err := c.ledger.history(s.name); err == nil && historyEqual(old, *h) {
		h = nil
	}
	if err := c.commit(s.name, nil, h, nil, evs...); err != nil {
		return err
	}
	c.pulls.take(s.name, s.d.Spec.Spec.Image)
	f := *s.o.Image
	f.Present = f.Present || f.PullErr == nil
	f.Pulled, f.PullErr = false, nil
	s.o.Image = &f
	img.Took, img.Events = false, nil
	return nil
}

// startPull starts (or joins) the pull s.a asks for and records the spec
// as waiting for it; the pull's end enqueues the spec.
func (c *Controller) startPull(ctx context.Context, s *step) error {
	var evs []model.Event
	if c.pulls.start(ctx, s.name, s.d.Spec.Spec.Image) {
		evs = c.noteEvents(s.name, s.a.Image.Events)
	}
	return c.commitState(s, nil, evs...)
}

// noteEvents makes the events decide asked for.
func (c *Controller) noteEvents(name string, ns []Note) []model.Event {
	evs := make([]model.Event, 0, len(ns))
	for _, n := range ns {
		evs = append(evs, c.event(name, n.Type, n.Reason, "%s", n.Message))
	}
	return evs
}
