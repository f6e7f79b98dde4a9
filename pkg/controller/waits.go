package controller

import (
	"context"
	"errors"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

// watchExit keeps one Wait open per running container: a second path, next
// to the event stream and the resync, by which an exit reaches the queue.
func (c *Controller) watchExit(name, id string) {
	if c.runCtx == nil || name == "" {
		return
	}
	c.mu.Lock()
	if _, ok := c.waiters[id]; ok {
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(c.runCtx)
	c.waiters[id] = cancel
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		exit, err := c.rt.Wait(ctx, id)
		if err == nil {
			died := exit.FinishedAt
			if died.IsZero() {
				died = c.opts.Now()
			}
			c.notes.record(docker.Event{Action: "die", ContainerID: id, Time: died})
		}
		// Read before cancel, which would make it always true: only a Wait
		// cut short (cancelWait, or the agent stopping) queues nothing.
		cut := ctx.Err() != nil
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
		cancel()
		if cut {
			return
		}
		if err != nil && !errors.Is(err, docker.ErrNotFound) {
			c.log.Debug("wait ended with an error", "spec", name, "container", short(id), "err", err)
		}
		c.cache.dirty(name)
		c.queue.Add(name)
	}()
}

func (c *Controller) cancelWait(id string) {
	c.mu.Lock()
	cancel := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// stopAsync stops a container off the worker, so that a long grace period
// does not hold a worker; the name is reconciled again when it is done.
func (c *Controller) stopAsync(name, id string, grace time.Duration) {
	c.mu.Lock()
	if c.stopping[id] {
		c.mu.Unlock()
		return
	}
	c.stopping[id] = true
	c.mu.Unlock()
	ctx := c.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// The stop outlives a cancelled run context: an interrupted stop
		// would leave the container half-way.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+30*time.Second)
		defer cancel()
		err := c.rt.Stop(sctx, id, grace)
		c.mu.Lock()
		delete(c.stopping, id)
		c.mu.Unlock()
		if err != nil && !errors.Is(err, docker.ErrNotFound) {
			c.log.Warn("stop failed", "spec", name, "container", short(id), "err", err)
		} else {
			c.m.ContainerOperations.WithLabelValues("stop").Inc()
		}
		c.cache.dirty(name)
		c.queue.Add(name)
	}()
}

// stopAll stops every managed container with its grace period, in
// parallel, when the agent shuts down with StopOnExit.
func (c *Controller) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs, err := c.rt.List(ctx, c.selector())
	if err != nil {
		c.log.Error("cannot list containers to stop", "err", err)
		return
	}
	done := make(chan struct{}, len(cs))
	for _, ct := range cs {
		// An egress proxy (no spec label) is not a spec's container; it
		// has no grace or history of its own and is adopted on restart.
		if !ct.Running() || ct.Labels[docker.LabelSpec] == "" {
			done <- struct{}{}
			continue
		}
		go func(ct docker.Container) {
			defer func() { done <- struct{}{} }()
			name := ct.Labels[docker.LabelSpec]
			g := grace(Desired{}, &ct)
			if r, err := c.st.ViewSpec(name); err == nil {
				g = r.Spec.Spec.TerminationGracePeriod.Duration
			}
			h, err := c.ledger.history(name)
			if err != nil {
				c.log.Error("not stopping a container on shutdown: its history cannot be read", "spec", name, "err", err)
				return
			}
			h.Stop = &model.StopIntent{ContainerID: ct.ID, Cause: model.StopShutdown, At: c.opts.Now(), Grace: g}
			if err := c.commit(name, nil, &h, nil); err != nil {
				// Unrecorded, the stop would read as someone else's kill.
				c.log.Error("not stopping a container on shutdown: its stop cannot be recorded", "spec", name, "err", err)
				return
			}
			if err := c.rt.Stop(ctx, ct.ID, g); err != nil {
				c.log.Warn("stop on shutdown failed", "spec", name, "err", err)
			}
		}(ct)
	}
	for range cs {
		<-done
	}
	c.log.Info("stopped managed containers", "count", len(cs))
}
