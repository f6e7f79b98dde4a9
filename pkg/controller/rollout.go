package controller

// How a container is replaced: the spec's update strategy. A replacement
// is due when the running container no longer matches what is desired
// (Desired.current: a changed spec, changed secrets, a restart request,
// or anything else mixed into the spec-hash label); replace says how it
// is done, and every replacement goes through it.
//
// StopFirst (the default) stops the old container with grace; its exit is
// recorded, it is removed, and the new one is created and started.
//
// StartFirst creates the new container beside the old one under a
// temporary name (NextName, with the ownership labels, so it is this
// agent's and survives an agent restart), starts it, and waits, one
// reconcile at a time, never holding a worker, until it is ready: healthy
// when the spec has a healthcheck, and run for updateStrategy.minReady.
// Then the old one is stopped with grace and removed, and the new one is
// renamed to the canonical name. A replacement that fails (cannot start,
// exits, turns unhealthy) is recorded (a RolloutFailed event, its exit in
// the ledger), stopped and removed; the old container keeps running, and
// the same definition is tried again only after a back-off.
//
// Every step is decided from what is observed (Observed.Next is the
// replacement as Docker shows it), so an agent restarted mid-rollout
// takes up where it was: a replacement of the current definition goes
// on, any other is removed.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Actions of a start-first replacement.
const (
	ActCreateNext ActionKind = iota + 100 // create (then start) the replacement beside the old container
	ActStartNext                          // start the created replacement
	ActNextFailed                         // record that the replacement failed
	ActStopNext                           // stop the replacement with grace (it failed, or is of another definition)
	ActRemoveNext                         // remove the (stopped) replacement
	ActPromote                            // the old container is gone: give the replacement the canonical name
)

var rolloutKinds = map[ActionKind]string{ActCreateNext: "CreateNext", ActStartNext: "StartNext",
	ActNextFailed: "NextFailed", ActStopNext: "StopNext", ActRemoveNext: "RemoveNext", ActPromote: "Promote"}

// nextSuffix makes the temporary name of a start-first replacement.
const nextSuffix = "-next"

// NextName is the name of the start-first replacement of spec's container.
func NextName(spec string) string { return ContainerName(spec) + nextSuffix }

// readyPoll is how soon a replacement waiting for its healthcheck is
// looked at again when no health event comes first.
const readyPoll = 2 * time.Second

// replace is the step towards replacing the running container c, which no
// longer matches d, by d's update strategy. stop stops c with grace.
func replace(d Desired, o Observed, h model.History, now time.Time, stop func(model.StopCause, string) Action) Action {
	c := o.Container
	if d.Spec == nil || !d.Spec.Spec.IsStartFirst() || len(d.Refused) > 0 {
		return stop(model.StopReplaced, replaceReason(d, c))
	}
	if h.Stop != nil && h.Stop.ContainerID == c.ID {
		return stop(h.Stop.Cause, "finishing an interrupted stop")
	}
	n := o.Next
	running := func(msg string, wait time.Duration) Action {
		return Action{Kind: ActNone, Phase: model.PhaseRunning, Message: msg, RequeueAfter: wait, History: h}
	}
	switch {
	case n == nil && (o.CreateFailed != nil || o.NameHeld != ""):
		f := Failure{Reason: "NameConflict", Message: fmt.Sprintf("a container not managed by this agent holds the name %s; remove or rename it", o.NameHeld)}
		if o.CreateFailed != nil {
			f = *o.CreateFailed
		}
		a := running(fmt.Sprintf("start-first replacement cannot be created: %s; the old container keeps running", f.Message), 0)
		a.Failed = &f
		return a
	case n == nil:
		if r := h.Rollout; r != nil && r.Want == d.Label() && now.Before(r.NextTryAt) {
			wait := r.NextTryAt.Sub(now)
			return running(fmt.Sprintf("start-first replacement failed %d time(s) (%s); the old container keeps running; next try in %s",
				r.Failures, r.Message, wait.Round(time.Millisecond)), wait)
		}
		return Action{Kind: ActCreateNext, Phase: model.PhaseRunning, History: h,
			Message: "starting the replacement beside the old container",
			Why:     replaceReason(d, c) + "; updateStrategy StartFirst starts the new container first"}
	case n.State == "created" && n.Error == "":
		return Action{Kind: ActStartNext, ContainerID: n.ID, Phase: model.PhaseRunning, History: h,
			Message: "starting the replacement beside the old container", Why: "replacement created but not started"}
	case !n.Running():
		return nextFailed(d, *n, h, now, nextExitText(*n))
	}
	ready, wait, why := nextReady(d, *n, now)
	switch {
	case why != "" && !ready && wait == 0:
		return nextFailed(d, *n, h, now, why)
	case !ready:
		return running(fmt.Sprintf("start-first: replacement %s %s; the old container keeps running", short(n.ID), why), wait)
	}
	a := stop(model.StopReplaced, fmt.Sprintf("replaced by %s, which is ready", short(n.ID)))
	a.History.Rollout = nil // this definition made it: past failures are moot
	a.Why = fmt.Sprintf("start-first: replacement %s is ready (%s)", short(n.ID), why)
	return a
}

// replaceReason says why running container c is replaced: its definition
// changed, or (same definition) its secrets or a restart request did.
func replaceReason(d Desired, c *docker.Container) string {
	def := c.Labels[labelDefinition]
	if def == "" {
		def = c.Labels[docker.LabelSpecHash]
	}
	if def != d.Hash {
		return "spec changed"
	}
	return "restart requested or secrets changed"
}

// nextReady says whether the running replacement n is ready: healthy when
// the spec has a healthcheck, and run for minReady. When it is not, wait
// is when to look again and why says what it waits for; a replacement
// that failed has why set and wait zero.
func nextReady(d Desired, n docker.Container, now time.Time) (ready bool, wait time.Duration, why string) {
	ps := d.Spec.Spec
	health := ""
	if ps.Healthcheck != nil {
		switch n.Health {
		case "unhealthy":
			return false, 0, "the replacement turned unhealthy"
		case "healthy":
			health = "healthy"
		default:
			return false, readyPoll, "waits for its healthcheck to pass"
		}
	}
	var minReady time.Duration
	if ps.UpdateStrategy != nil {
		minReady = ps.UpdateStrategy.MinReady.Duration
	}
	if minReady > 0 {
		if n.StartedAt.IsZero() {
			return false, readyPoll, "waits to be seen running"
		}
		if ran := now.Sub(n.StartedAt); ran < minReady {
			return false, minReady - ran, fmt.Sprintf("has run %s of minReady %s", ran.Round(time.Millisecond), minReady)
		}
	}
	switch {
	case health != "" && minReady > 0:
		return true, 0, fmt.Sprintf("healthy, and ran for minReady %s", minReady)
	case health != "":
		return true, 0, "healthy"
	case minReady > 0:
		return true, 0, fmt.Sprintf("ran for minReady %s", minReady)
	}
	return true, 0, "running"
}

func nextExitText(n docker.Container) string {
	switch {
	case n.State == "created" || n.StartedAt.IsZero():
		return "the replacement could not start: " + n.Error
	case n.Error != "":
		return fmt.Sprintf("the replacement exited with code %d: %s", n.ExitCode, n.Error)
	}
	return fmt.Sprintf("the replacement exited with code %d", n.ExitCode)
}

// nextFailed records that replacement n failed, with a back-off before
// the same definition is tried again; the old container keeps running.
func nextFailed(d Desired, n docker.Container, h model.History, now time.Time, why string) Action {
	r := model.RolloutFailure{Want: d.Label(), ContainerID: n.ID, Failures: 1, Message: why}
	if old := h.Rollout; old != nil && old.Want == r.Want {
		r.Failures = old.Failures + 1
	}
	delay := max(d.Spec.Spec.Backoff.Delay(r.Failures), spec.DefaultBackoffBase)
	r.NextTryAt = now.Add(delay)
	h.Rollout = &r
	a := Action{Kind: ActNextFailed, ContainerID: n.ID, Phase: model.PhaseRunning, History: h,
		Message: fmt.Sprintf("start-first replacement %s failed: %s; the old container keeps running; next try in %s",
			short(n.ID), why, delay),
		Why: "start-first: " + why}
	if !n.Running() && !n.StartedAt.IsZero() {
		a.Exit = &model.ContainerExit{ContainerID: n.ID, SpecName: n.Labels[docker.LabelSpec],
			SpecHash: n.Labels[docker.LabelSpecHash], ExitCode: n.ExitCode, Signal: docker.SignalName(n.ExitCode),
			OOMKilled: n.OOMKilled, Error: n.Error, StartedAt: n.StartedAt, FinishedAt: n.FinishedAt,
			Reason: classify(n, Observed{}, model.History{})}
		if a.Exit.FinishedAt.Before(a.Exit.StartedAt) {
			a.Exit.FinishedAt = a.Exit.StartedAt
		}
		a.Exit.Duration = a.Exit.FinishedAt.Sub(a.Exit.StartedAt).Round(time.Millisecond).String()
	}
	return a
}

// decideNext handles a replacement that is not (or no longer) the way to
// the desired state: one of another definition, of a deleted spec, or
// one whose failure is recorded, is stopped and removed; one whose old
// container is gone takes the canonical name. ok is false when the
// replacement is in progress (replace decides) or there is none.
func decideNext(d Desired, o Observed, h model.History) (Action, bool) {
	n := o.Next
	if n == nil {
		return Action{}, false
	}
	phase := model.PhasePending
	if o.Container != nil && o.Container.Running() {
		phase = model.PhaseRunning
	}
	failed := h.Rollout != nil && h.Rollout.ContainerID == n.ID
	if d.Spec == nil || !d.current(n) || failed {
		why := "start-first: the replacement failed"
		switch {
		case d.Spec == nil:
			why = "start-first: the spec was deleted during its replacement"
		case !d.current(n):
			why = "start-first: the replacement is of a definition no longer desired"
		}
		if n.Running() {
			if o.NextStopping {
				return Action{Kind: ActNone, Phase: phase, History: h, Message: "stopping the replacement"}, true
			}
			return Action{Kind: ActStopNext, ContainerID: n.ID, Grace: grace(d, n), Phase: phase, History: h, Why: why}, true
		}
		return Action{Kind: ActRemoveNext, ContainerID: n.ID, Phase: phase, History: h, Why: why}, true
	}
	if o.Container == nil && o.NameHeld != "" {
		f := Failure{Reason: "NameConflict", Message: fmt.Sprintf(
			"a container not managed by this agent holds the name %s, which the replacement %s should take; remove or rename it",
			o.NameHeld, short(n.ID))}
		return Action{Kind: ActNone, Phase: model.PhaseError, Message: f.Message, History: h, Failed: &f, Conflict: o.NameHeld}, true
	}
	if o.Container == nil {
		return Action{Kind: ActPromote, ContainerID: n.ID, Phase: model.PhasePending, History: h,
			Why: "start-first: the old container is gone; the replacement takes the canonical name"}, true
	}
	return Action{}, false
}

// renamer is the Docker call a promotion needs, beside docker.Runtime.
type renamer interface {
	Rename(ctx context.Context, id, name string) error
}

// applyRollout carries out the start-first actions. It reports done as
// apply does, and ok false for an action that is not one of them.
func (c *Controller) applyRollout(ctx context.Context, s *step) (done, ok bool, err error) {
	a := &s.a
	switch a.Kind {
	case ActCreateNext:
		done, err = c.create(ctx, s)
		return done, true, err
	case ActStartNext:
		return false, true, c.startNext(ctx, s)
	case ActNextFailed:
		if err := c.commitState(s, a.Exit, c.noteEvents(s.name, a.Events)...); err != nil {
			return true, true, err
		}
		if a.Exit != nil {
			c.m.Exits.WithLabelValues(string(a.Exit.Reason)).Inc()
		}
		c.log.Warn("start-first replacement failed; the old container keeps running", "spec", s.name,
			"container", short(a.ContainerID), "reason", a.Why)
		return false, true, nil
	case ActStopNext:
		if err := c.commitState(s, nil, c.noteEvents(s.name, a.Events)...); err != nil {
			return true, true, err
		}
		c.stopAsync(s.name, a.ContainerID, a.Grace)
		return true, true, nil
	case ActRemoveNext:
		if err := c.remove(ctx, s.name, a.ContainerID); err != nil {
			return true, true, err
		}
		s.o.Next = nil
		return false, true, nil
	case ActPromote:
		return false, true, c.promote(ctx, s)
	}
	return false, false, nil
}

func (c *Controller) startNext(ctx context.Context, s *step) error {
	id := s.a.ContainerID
	err := c.rt.Start(ctx, id)
	c.cache.dirty(s.name)
	switch {
	case errors.Is(err, docker.ErrNotFound):
		s.o.Next = nil
		return nil
	case errors.Is(err, docker.ErrUnavailable):
		return err
	case err != nil:
		ct, ierr := c.rt.Inspect(ctx, id)
		if ierr != nil {
			return fmt.Errorf("start replacement: %w (inspect: %v)", err, ierr)
		}
		ct.Error = joinText(ct.Error, err.Error())
		if ct.State == "created" || ct.State == "" {
			ct.State = "exited"
		}
		s.o.Next, s.o.NextStartRefused = &ct, err.Error()
		return nil
	}
	c.m.ContainerOperations.WithLabelValues("start").Inc()
	n := *s.o.Next
	n.State, n.StartedAt, n.Inspected, n.Health = "running", c.opts.Now(), false, ""
	s.o.Next = &n
	old := ""
	if s.o.Container != nil {
		old = short(s.o.Container.ID)
	}
	return c.commitState(s, nil, c.event(s.name, model.EventNormal, "Started",
		"Started replacement container %s beside %s (updateStrategy StartFirst)", short(id), old))
}

// promote renames the replacement to the canonical name, once the old
// container is gone.
func (c *Controller) promote(ctx context.Context, s *step) error {
	r, ok := c.rt.(renamer)
	if !ok {
		return fmt.Errorf("promote replacement: the Docker runtime cannot rename containers")
	}
	n := *s.o.Next
	cname := ContainerName(s.name)
	err := r.Rename(ctx, n.ID, cname)
	c.cache.dirty(s.name)
	if errors.Is(err, docker.ErrNotFound) {
		s.o.Next = nil
		return nil
	}
	if errors.Is(err, docker.ErrConflict) {
		s.o.NameHeld = cname // not ours: we list ours, and it was gone
		return nil
	}
	if err != nil {
		return fmt.Errorf("rename replacement %s to %s: %w", short(n.ID), cname, err)
	}
	n.Name = cname
	s.o.Container, s.o.Next = &n, nil
	c.annotate(&s.o)
	return c.commitState(s, nil, c.event(s.name, model.EventNormal, "Replaced",
		"Replacement container %s took the name %s", short(n.ID), cname))
}

// observeNext inspects the start-first replacement: its start time,
// health and exit are what its steps are decided from.
func (c *Controller) observeNext(ctx context.Context, o *Observed) error {
	if o.Next == nil {
		return nil
	}
	in, err := c.rt.Inspect(ctx, o.Next.ID)
	switch {
	case errors.Is(err, docker.ErrNotFound):
		o.Next = nil
		return nil
	case err != nil:
		return fmt.Errorf("inspect replacement: %w", err)
	}
	o.Next = &in
	c.mu.Lock()
	o.NextStopping = c.stopping[in.ID]
	c.mu.Unlock()
	return nil
}
