package controller

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/store"
)

// ledger holds what the state file holds of each spec's status and
// history, as this controller last read or wrote it. The controller is
// their only writer, so a reconcile reads them once, not back after each
// step: a no-op pass reads only the specs.
type ledger struct {
	st      Store
	mu      sync.Mutex
	entries map[string]*ledgerEntry
}

type ledgerEntry struct {
	status    model.Status
	hasStatus bool
	history   model.History
}

func newLedger(st Store) *ledger { return &ledger{st: st, entries: map[string]*ledgerEntry{}} }

// get returns name's stored status and history, reading them from the
// state file the first time.
func (l *ledger) get(name string) (ledgerEntry, error) {
	l.mu.Lock()
	e, ok := l.entries[name]
	l.mu.Unlock()
	if ok {
		return *e, nil
	}
	var n ledgerEntry
	st, err := l.st.GetStatus(name)
	switch {
	case err == nil:
		n.status, n.hasStatus = st, true
	case !errors.Is(err, store.ErrNotFound):
		return ledgerEntry{}, fmt.Errorf("read status: %w", err)
	}
	if n.history, err = l.st.GetHistory(name); err != nil {
		return ledgerEntry{}, fmt.Errorf("read history: %w", err)
	}
	l.mu.Lock()
	l.entries[name] = &n
	l.mu.Unlock()
	return n, nil
}

func (l *ledger) history(name string) (model.History, error) {
	e, err := l.get(name)
	return e.history, err
}

// committed notes what a successful commit wrote.
func (l *ledger) committed(name string, st *model.Status, h *model.History) {
	if st == nil && h == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[name]
	if !ok {
		// Not read yet: the next get reads the whole of it.
		return
	}
	if st != nil {
		e.status, e.hasStatus = *st, true
	}
	if h != nil {
		e.history = *h
	}
}

func (l *ledger) forget(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, name)
}

// settle writes the status (and history) when they changed; a no-op
// reconcile writes nothing.
func (c *Controller) settle(s *step) error {
	if s.a.Phase == model.PhaseRunning || s.a.Phase == model.PhaseSucceeded {
		c.observeConvergence(s.name)
	}
	if s.d.Spec == nil && s.o.Container == nil {
		return nil
	}
	if f := s.a.Failed; f != nil {
		c.log.Warn("cannot create container", "spec", s.name, "reason", f.Reason, "message", f.Message)
		return c.commitState(s, nil, c.event(s.name, model.EventWarning, f.Reason, "%s", f.Message))
	}
	return c.commitState(s, nil)
}

// commitHistory writes h before a Docker call that depends on it, unless
// the store holds it already.
func (c *Controller) commitHistory(name string, h model.History) error {
	if old, err := c.ledger.history(name); err == nil && historyEqual(old, h) {
		return nil
	}
	return c.commit(name, nil, &h, nil)
}

// commitState writes status, s.a.History, an exit and events in one
// transaction when anything changed, then publishes the events.
func (c *Controller) commitState(s *step, exit *model.ContainerExit, evs ...model.Event) error {
	name := s.name
	st := c.status(s)
	if exit != nil {
		st.LastExit = exit
	}
	old, err := c.ledger.get(name)
	if err != nil {
		return err
	}
	var hist *model.History
	if h := s.a.History; !historyEqual(old.history, h) {
		hist = &h
	}
	statusSame := old.hasStatus && statusEqual(old.status, st) && exit == nil // a new exit is the status's LastExit
	var refusedRules []string
	if st.Phase == model.PhaseRefused && (!old.hasStatus || old.status.Phase != model.PhaseRefused) {
		// Once per transition into Refused, not on every resync.
		refusedRules = s.d.Refused.Rules()
		evs = append(evs, c.event(name, model.EventWarning, "Refused", "%s", st.Message))
		c.log.Warn("spec refused by policy", "spec", name, "rules", refusedRules, "message", st.Message)
	}
	evs = append(evs, c.queuedEvent(old, st)...)
	if statusSame && hist == nil && exit == nil && len(evs) == 0 {
		c.setPhase(name, st.Phase)
		return nil
	}
	if old.hasStatus && old.status.LastExit != nil && st.LastExit == nil {
		st.LastExit = old.status.LastExit
	}
	var stp *model.Status
	if !statusSame {
		stp = &st
	}
	if err := c.commit(name, stp, hist, exit, evs...); err != nil {
		return err // the phase gauge keeps what the store holds
	}
	c.setPhase(name, st.Phase)
	for _, r := range refusedRules {
		c.m.PolicyRefusals.WithLabelValues(r).Inc()
	}
	return nil
}

func (c *Controller) commit(name string, st *model.Status, h *model.History, exit *model.ContainerExit, evs ...model.Event) error {
	stored, _, err := c.st.Commit(store.Change{Name: name, Status: st, History: h, Exit: exit, Events: evs})
	if err != nil {
		return fmt.Errorf("commit state of %q: %w", name, err)
	}
	c.ledger.committed(name, st, h)
	if st != nil {
		c.setPhase(name, st.Phase)
		c.deps.wake(name) // a dependency's status changed: its dependents look again
	}
	if c.pub != nil && len(stored) > 0 {
		c.pub.Publish(stored...)
	}
	return nil
}

func (c *Controller) emit(ev model.Event) {
	_ = c.commit(ev.Spec, nil, nil, nil, ev)
}

func (c *Controller) status(s *step) model.Status {
	a, o := s.a, s.o
	st := model.Status{
		Name:       s.name,
		Phase:      a.Phase,
		Message:    a.Message,
		SpecHash:   s.d.Hash,
		Restarts:   a.History.Restarts,
		Conflict:   a.Conflict,
		UpdatedAt:  c.opts.Now(),
		FinishedAt: a.History.FinishedAt,
	}
	if a.Phase == model.PhaseBackoff {
		st.NextTryAt = a.History.NextTryAt
	}
	if a.Phase == model.PhaseImagePullBackOff && a.History.Pull != nil {
		st.NextTryAt = a.History.Pull.NextTryAt
	}
	if o.Container != nil {
		st.ContainerID = o.Container.ID
		if o.Container.Running() {
			st.StartedAt = o.Container.StartedAt
			st.Health = o.Container.Health
		}
		st.Updating = s.d.Spec != nil && !s.d.current(o.Container)
	}
	if !a.History.Done {
		st.FinishedAt = time.Time{}
	}
	return st
}

func statusEqual(a, b model.Status) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	a.LastExit, b.LastExit = nil, nil
	// StartedAt from a listing is zero; do not rewrite status for that.
	if a.StartedAt.IsZero() || b.StartedAt.IsZero() {
		a.StartedAt, b.StartedAt = time.Time{}, time.Time{}
	}
	return a.Name == b.Name && a.Phase == b.Phase && a.Message == b.Message && a.SpecHash == b.SpecHash &&
		a.ContainerID == b.ContainerID && a.StartedAt.Equal(b.StartedAt) && a.NextTryAt.Equal(b.NextTryAt) &&
		a.Restarts == b.Restarts && a.Conflict == b.Conflict && a.FinishedAt.Equal(b.FinishedAt) &&
		a.Health == b.Health && a.Updating == b.Updating
}

func historyEqual(a, b model.History) bool {
	sa, sb := a.Stop, b.Stop
	if (sa == nil) != (sb == nil) || (sa != nil && *sa != *sb) {
		return false
	}
	pa, pb := a.Pull, b.Pull
	if (pa == nil) != (pb == nil) || (pa != nil && !pullEqual(*pa, *pb)) {
		return false
	}
	ea, eb := a.PendingExit, b.PendingExit
	if (ea == nil) != (eb == nil) || (ea != nil && (ea.ContainerID != eb.ContainerID || !ea.StartedAt.Equal(eb.StartedAt) ||
		ea.Reason != eb.Reason || ea.OOMKilled != eb.OOMKilled)) {
		return false
	}
	if !imageUpdateEqual(a.Image, b.Image) {
		return false
	}
	if ra, rb := a.Rollout, b.Rollout; (ra == nil) != (rb == nil) || (ra != nil && !rolloutEqual(*ra, *rb)) {
		return false
	}
	return a.SpecHash == b.SpecHash && a.Attempts == b.Attempts && a.Restarts == b.Restarts &&
		a.NextTryAt.Equal(b.NextTryAt) && a.LastContainerID == b.LastContainerID &&
		a.LastStartedAt.Equal(b.LastStartedAt) && a.ExitRecorded == b.ExitRecorded &&
		a.Done == b.Done && a.Succeeded == b.Succeeded && a.FinishedAt.Equal(b.FinishedAt) &&
		a.QueuedAt.Equal(b.QueuedAt)
}

func pullEqual(a, b model.PullBackoff) bool {
	return a.Image == b.Image && a.Failures == b.Failures && a.Delay == b.Delay &&
		a.NextTryAt.Equal(b.NextTryAt) && a.Message == b.Message
}

func (c *Controller) event(name string, typ model.EventType, reason, format string, args ...any) model.Event {
	now := c.opts.Now()
	return model.Event{Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...), Spec: name,
		Count: 1, FirstTime: now, LastTime: now}
}

// setPhase notes name's phase and moves the phase gauge by the change
// alone: a pass over many specs costs no count over all of them.
func (c *Controller) setPhase(name string, p model.Phase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.phases[name]
	c.phases[name] = p
	if had && old == p {
		return
	}
	if had {
		c.m.Specs.WithLabelValues(string(old)).Dec()
	}
	c.m.Specs.WithLabelValues(string(p)).Inc()
}

// dropPhase forgets name's phase.
func (c *Controller) dropPhase(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.phases[name]
	delete(c.phases, name)
	if had {
		c.m.Specs.WithLabelValues(string(old)).Dec()
	}
}

func (c *Controller) observeConvergence(name string) {
	c.mu.Lock()
	at, ok := c.changedAt[name]
	delete(c.changedAt, name)
	c.mu.Unlock()
	if ok {
		c.m.Convergence.Observe(c.opts.Now().Sub(at).Seconds())
	}
}
