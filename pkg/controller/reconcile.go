package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// Result tells the worker what to do with a name after Reconcile.
//
// The retry contract (processNext holds it): an error means "retry with
// backoff", per name, from 5ms doubling to 30s (Queue.AddRateLimited),
// until a reconcile of the name succeeds (Queue.Forget); RequeueAfter
// means "come back then" (a restart back-off, a pull back-off, a
// deadline, a TTL, an oom notice window); the zero Result means settled until something changes
// (an event, a file or API write, the periodic resync). Failures that
// retrying cannot fix (a name conflict, a missing image with policy Never,
// a policy refusal) are not errors: they are recorded in the status, and
// the name comes back with the next event or resync.
type Result struct {
	RequeueAfter time.Duration
}

// Extra labels on every container: what the agent needs to stop a container
// properly after its spec is gone.
const (
	labelGrace      = "reconciler.stop-grace"
	labelStopSignal = "reconciler.stop-signal"
	// labelDefinition is the spec's own hash on a container whose spec-hash
	// label has its secrets mixed in.
	labelDefinition = "reconciler.definition-hash"
	defaultGrace    = 10 * time.Second
	// maxSteps bounds the steps one Reconcile takes (e.g. record, remove,
	// create, start); the rest waits for the next pass.
	maxSteps = 8
)

// ContainerName is the deterministic name of a spec's container.
//
// Deprecated: use ownership.ContainerName, the one definition.
func ContainerName(spec string) string { return ownership.ContainerName(spec) }

// step is one spec's reconcile as it goes: what is desired, what is
// observed, the history in force, and the action decided from them. apply
// carries the action out and updates what is observed.
type step struct {
	name string
	d    Desired
	o    Observed
	h    model.History
	a    Action
}

// Reconcile drives one spec a step at a time towards its desired state.
func (c *Controller) Reconcile(ctx context.Context, name string) (Result, error) {
	d, err := c.desired(name)
	if err != nil {
		return Result{}, err
	}
	h, err := c.ledger.history(name)
	if err != nil {
		return Result{}, err
	}
	o, err := c.observe(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if err := c.inspectIfNeeded(ctx, d, &o); err != nil {
		return Result{}, err
	}
	if !c.adm.observe(name, &d) {
		return Result{RequeueAfter: budgetUnknownWait}, nil
	}
	s := &step{name: name, d: d, o: o, h: h}
	trialLeft, err := c.resolveImage(ctx, s)
	if err != nil {
		return Result{}, err
	}
	for range maxSteps {
		now := c.opts.Now()
		c.renote(&s.o)
		s.a = decide(s.d, s.o, s.h, now)
		if creates(s.a.Kind) && s.o.Image == nil {
			if err := c.observeImage(ctx, s); err != nil {
				return Result{}, err
			}
			s.a = decide(s.d, s.o, s.h, now)
		}
		if s.a.Kind != ActNone && s.a.Kind != ActInspect {
			c.log.Info("decided", "spec", name, "action", s.a.Kind.String(), "reason", s.a.why(), "container", short(s.a.ContainerID))
		}
		done, err := c.apply(ctx, s)
		if err != nil {
			return Result{}, err
		}
		if rolled, err := c.rollBackRefused(ctx, s); err != nil {
			return Result{}, err
		} else if rolled {
			done = false // create again, from the image rolled back to
		}
		if done {
			c.adm.settled(name, s.d, s.a, s.o)
			return Result{RequeueAfter: earliest(s.a.RequeueAfter, trialLeft)}, nil
		}
		s.h = s.a.History
	}
	return Result{RequeueAfter: time.Millisecond}, nil
}

// Ordering against the state file. A full disk (or any commit the file
// refuses) must cost no record the agent had, and the agent must change no
// container whose change it could not record:
//
//  1. An exit is committed, with the back-off it starts, before anything
//     is done about it: decide restarts or removes a container only once
//     the stored history says its last run is recorded, and a refused
//     commit leaves that history as it was. A container its policy
//     restarts at once is restarted first and recorded after: the history
//     written before the start carries the exit as PendingExit (with the
//     counters and back-off it starts), a small write; the expensive part
//     of the record (the log tail, waiting for an OOM notice) follows the
//     start, and a later reconcile, of this agent or the next, completes
//     it from the history.
//  2. What the next exit of a container depends on is committed before
//     the Docker call: the stop intent before a stop (so the exit is
//     classified as the agent's), ExitRecorded=false before a restart in
//     place (so the next exit counts as a new run), the history a removal
//     leaves before the removal, the StrayRemoved event before a stray is
//     removed. A refused commit means no Docker call.
//  3. While the last commit was refused (store.WriteErr), no container is
//     created, started or removed even when there is nothing new to write
//     first: what follows the call (its Created or Started record, its
//     exit) could not be written. A stop or stray removal is gated by its
//     own commit, which also clears WriteErr when it succeeds.
//  4. What is written after a Docker call (Created, Started, the status)
//     may still be refused; the call was safe by 1-3, and the next
//     reconcile, which observes Docker afresh, writes it.
//
// A refused commit is returned as the reconcile's error, so the name is
// retried; the agent probes the file meanwhile (pkg/agent).
func gatedByWriteErr(k ActionKind) bool {
	switch k {
	case ActCreate, ActStart, ActRemove, ActExpire, ActCreateNext, ActStartNext, ActRemoveNext, ActPromote:
		return true
	}
	return false
}

// apply carries out s.a and updates s.o with what is now observed. It
// reports done when the reconcile is over for now.
func (c *Controller) apply(ctx context.Context, s *step) (bool, error) {
	a := &s.a
	if gatedByWriteErr(a.Kind) {
		if err := c.st.WriteErr(); err != nil {
			return true, fmt.Errorf("%s deferred until the state file takes writes: %w", a.Kind, err)
		}
	}
	if a.Expired {
		c.forgetWorkspaces(s.name)
	}
	if a.Image != nil && a.Image.Took {
		if err := c.recordPull(s); err != nil {
			return true, err
		}
	}
	if (a.Kind == ActCreate || a.Kind == ActStart) && !c.reserve(s) {
		return false, nil // decide again, on the books as they are now
	}
	switch a.Kind {
	case ActNone:
		return true, c.settle(s)

	case ActInspect:
		ct, err := c.rt.Inspect(ctx, a.ContainerID)
		if errors.Is(err, docker.ErrNotFound) {
			c.cache.dirty(s.name)
			s.o.Container = nil
			return false, nil
		}
		if err != nil {
			return true, fmt.Errorf("inspect: %w", err)
		}
		s.o.Container = &ct
		c.annotate(&s.o)
		return false, nil

	case ActRecordExit:
		return false, c.recordExit(ctx, s)

	case ActStop:
		return true, c.stop(s)

	case ActRemove:
		return false, c.removeExited(ctx, s)

	case ActRemoveStray:
		return false, c.removeStray(ctx, s)

	case ActCreate:
		return c.create(ctx, s)

	case ActStart:
		return c.start(ctx, s)

	case ActForget:
		c.forgetSecretFiles(s.name)
		c.forgetWorkspaces(s.name)
		c.releaseEgress(ctx, s.name)
		c.releaseImages(ctx, s.h.Image) // resolveImage left them to go with the container
		return true, c.forget(s.name)

	case ActExpire:
		return true, c.expire(ctx, s)
	}
	if done, ok, err := c.applyRollout(ctx, s); ok {
		return done, err
	}
	return true, fmt.Errorf("unknown action %v", a.Kind)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
