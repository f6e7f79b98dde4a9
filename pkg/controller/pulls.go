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
	"github.com/reconciler/reconciler/pkg/spec"
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

// imageReady makes sure the spec's image is there before a create, under
// its imagePullPolicy: Never never pulls, IfNotPresent pulls when the image
// is absent, Always pulls for every create (and, when the registry fails,
// runs the image it has). A pull runs in the pool: imageReady records the
// spec as waiting and returns false; the pull's end enqueues the spec. A
// failed pull puts the spec in ImagePullBackOff until its next try. On
// true, a.History is what the create should record.
func (c *Controller) imageReady(ctx context.Context, s *step) (bool, error) {
	name, a := s.name, &s.a
	ref, policy := s.d.Spec.Spec.Image, s.d.Spec.Spec.ImagePullPolicy
	present, err := c.rt.ImagePresent(ctx, ref)
	res, pulled := c.pulls.take(name, ref)
	switch {
	case errors.Is(err, docker.ErrUnavailable):
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	case err != nil:
		s.o.CreateFailed = &Failure{Reason: "ImageUnavailable", Message: fmt.Sprintf("cannot inspect image %s: %v", ref, err)}
		return false, nil
	case pulled && res.err == nil:
		a.History.Pull = nil
		c.emit(c.event(name, model.EventNormal, "Pulled", "Successfully pulled image %s", ref))
		return true, nil
	case !present && policy == spec.PullNever:
		s.o.CreateFailed = &Failure{Reason: "ErrImageNeverPull",
			Message: fmt.Sprintf("image %s is not present and imagePullPolicy is Never", ref)}
		return false, nil
	case present && policy != spec.PullAlways:
		a.History.Pull = nil
		return true, nil
	}
	now := c.opts.Now()
	if pulled {
		bo := pullFailed(a.History.Pull, ref, res.err, c.opts.PullBackoff, now)
		a.History.Pull = bo
		failed := c.event(name, model.EventWarning, "Failed", "Failed to pull image %s: %v", ref, res.err)
		if present {
			c.log.Warn("pull failed; creating from the image in store", "spec", name, "image", ref, "err", res.err)
			c.emit(failed)
			return true, nil
		}
		return false, c.pullBackoff(s, failed,
			c.event(name, model.EventWarning, "BackOff", "Back-off %s pulling image %s", bo.Delay, ref))
	}
	if bo := a.History.Pull; bo != nil && bo.Image == ref && now.Before(bo.NextTryAt) {
		if present {
			return true, nil // Always, but the last pull failed: run what we have until the next try
		}
		return false, c.pullBackoff(s)
	}
	var evs []model.Event
	if c.pulls.start(ctx, name, ref) {
		evs = append(evs, c.event(name, model.EventNormal, "Pulling", "Pulling image %s", ref))
	}
	a.Phase, a.Message = model.PhasePending, fmt.Sprintf("pulling image %s", ref)
	return false, c.commitState(s, nil, evs...)
}

// pullBackoff records a spec waiting for its next pull and enqueues it
// for then.
func (c *Controller) pullBackoff(s *step, evs ...model.Event) error {
	bo := s.a.History.Pull
	s.a.Phase = model.PhaseImagePullBackOff
	s.a.Message = fmt.Sprintf("Back-off %s pulling image %s: %s", bo.Delay, bo.Image, bo.Message)
	if err := c.commitState(s, nil, evs...); err != nil {
		return err
	}
	c.queue.AddAfter(s.name, bo.NextTryAt.Sub(c.opts.Now()))
	return nil
}
