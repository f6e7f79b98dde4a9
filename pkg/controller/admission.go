package controller

import (
	"slices"
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// admission keeps the books of the budget (--allocatable,
// --max-running-jobs): which specs hold a reservation and which wait in
// the queue. The rule itself is decide's (decide_admission.go); this only
// counts, under one lock, so that two workers never both take the last
// slot: a reservation is taken (reserve) right before a container is
// created or started, and given back when a reconcile ends with the
// spec's container not running (settled), or the spec is gone (forget).
//
// Nothing here is stored: on start the agent rebuilds it from the first
// container listing (what runs holds its reservation) and from the state
// file (specs whose status is Queued wait again, in their stored order:
// priority, then Record.Arrival), before it admits anything.
type admission struct {
	budget  Budget
	m       metrics.Admission
	enqueue func(string)

	mu      sync.Mutex
	ready   bool
	holds   map[string]reservation
	waiting map[string]queueEntry
	// total and jobs sum holds, so that a snapshot costs no pass over them.
	total Resources
	jobs  int
}

type reservation struct {
	Resources
	job bool
}

type queueEntry struct {
	priority int
	arrival  uint64
	since    time.Time // entered the queue (History.QueuedAt)
}

// before orders the queue: higher priority first, then earlier arrival,
// then name (two specs never share an arrival, but stay total).
func (e queueEntry) before(name string, o queueEntry, oname string) bool {
	if e.priority != o.priority {
		return e.priority > o.priority
	}
	if e.arrival != o.arrival {
		return e.arrival < o.arrival
	}
	return name < oname
}

func newAdmission(b Budget, m metrics.Admission, enqueue func(string)) *admission {
	a := &admission{budget: b, m: m, enqueue: enqueue, holds: map[string]reservation{}, waiting: map[string]queueEntry{}}
	m.Allocatable.WithLabelValues(metrics.ResourceMemory).Set(float64(b.Allocatable.Memory))
	m.Allocatable.WithLabelValues(metrics.ResourceCPUs).Set(float64(b.Allocatable.NanoCPUs) / 1e9)
	return a
}

func entryOf(d Desired) queueEntry {
	e := queueEntry{arrival: d.Arrival}
	if d.Spec != nil {
		e.priority = d.Spec.Spec.Priority
	}
	return e
}

// snapshotLocked is the budget as it stands for d's spec.
func (a *admission) snapshotLocked(name string, d Desired) Admission {
	req, job := requestOf(d.Spec)
	s := Admission{Request: req, Job: job, Budget: a.budget, Allocated: a.total, RunningJobs: a.jobs}
	if r, ok := a.holds[name]; ok {
		s.Held, s.Resized = true, r.Resources != req
		s.Allocated.Memory -= r.Memory
		s.Allocated.NanoCPUs -= r.NanoCPUs
		if r.job {
			s.RunningJobs--
		}
	}
	if !s.needed() {
		return s // admitted whatever the queue holds: spare the pass over it
	}
	me := entryOf(d)
	_, waits := a.waiting[name]
	s.Queued = len(a.waiting)
	if !waits {
		s.Queued++
	}
	for n, e := range a.waiting {
		if n != name && e.before(n, me, name) {
			s.Ahead++
		}
	}
	return s
}

// holdLocked sets name's reservation to r.
func (a *admission) holdLocked(name string, r reservation) {
	a.releaseLocked(name)
	a.holds[name] = r
	a.total.Memory += r.Memory
	a.total.NanoCPUs += r.NanoCPUs
	if r.job {
		a.jobs++
	}
}

// releaseLocked drops name's reservation, if it has one.
func (a *admission) releaseLocked(name string) {
	r, ok := a.holds[name]
	if !ok {
		return
	}
	delete(a.holds, name)
	a.total.Memory -= r.Memory
	a.total.NanoCPUs -= r.NanoCPUs
	if r.job {
		a.jobs--
	}
}

// observe snapshots the budget for d's spec into d.Admission. It reports
// false while the budget is not known yet (before the first container
// listing) and the spec would need it: the reconcile waits then, since
// admitting anything before the running containers are counted could
// exceed the budget.
func (a *admission) observe(name string, d *Desired) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d.Admission = a.snapshotLocked(name, *d)
	return a.ready || d.Spec == nil || !d.Admission.needed() || d.Admission.Held
}

// reserve takes d's reservation if decide's rule admits the spec with the
// books as they are now, atomically. Otherwise it returns the snapshot
// that says why, for decide to queue the spec.
func (a *admission) reserve(name string, d Desired, now time.Time) (Admission, bool) {
	a.mu.Lock()
	s := a.snapshotLocked(name, d)
	ok, _ := s.admits()
	if !ok || !a.ready && s.needed() && !s.Held {
		a.mu.Unlock()
		return s, false
	}
	if !s.needed() {
		a.mu.Unlock()
		return s, true
	}
	a.holdLocked(name, reservation{Resources: s.Request, job: s.Job})
	e, waited := a.waiting[name]
	delete(a.waiting, name)
	if waited && !e.since.IsZero() {
		a.m.QueueWait.Observe(max(now.Sub(e.since), 0).Seconds())
	}
	notify := a.changedLocked(true, name) // what is free changed: every message says it
	a.mu.Unlock()
	a.notify(notify)
	return s, true
}

// settled updates the books with how a reconcile of d's spec ended: the
// spec holds a reservation exactly while its container runs or is being
// started (a create or start under way, a pull before a create), and
// waits in the queue exactly while its phase is Queued.
func (a *admission) settled(name string, d Desired, act Action, o Observed) {
	running := o.Container != nil && o.Container.Running()
	if d.Spec == nil {
		if !running {
			a.forget(name)
			return
		}
		// Deleted but still stopping: it holds what it held until it exits.
		a.mu.Lock()
		_, waited := a.waiting[name]
		delete(a.waiting, name)
		notify := a.changedLocked(waited, name)
		a.mu.Unlock()
		a.notify(notify)
		return
	}
	req, job := requestOf(d.Spec)
	// A created container held back because a start of it may be under
	// way (starthold.go) may run any moment: it keeps its reservation, as
	// seed gives it one, and its place before the queue.
	heldBack := o.StartHold > 0 && act.Kind == ActNone && o.Container != nil && o.Container.State == "created"
	starting := act.Kind == ActCreate || act.Kind == ActStart || heldBack
	a.mu.Lock()
	changed := false
	r, held := a.holds[name]
	switch want := (running || starting) && (Admission{Request: req, Job: job, Budget: a.budget}).needed(); {
	case want && !held && running:
		// Running without a reservation (adopted, or started by hand):
		// it uses the resources whatever the budget says.
		a.holdLocked(name, reservation{Resources: req, job: job})
		changed = true
	case !want && held:
		a.releaseLocked(name)
		changed = true
	case want && held && running && r.Resources != req:
		a.holdLocked(name, reservation{Resources: req, job: job})
		changed = true
	}
	if act.Phase == model.PhaseQueued {
		e := entryOf(d)
		e.since = act.History.QueuedAt
		if old, ok := a.waiting[name]; !ok || old.priority != e.priority || old.arrival != e.arrival {
			changed = true
		}
		a.waiting[name] = e
	} else if _, ok := a.waiting[name]; ok {
		delete(a.waiting, name)
		changed = true
	}
	notify := a.changedLocked(changed, name)
	a.mu.Unlock()
	a.notify(notify)
}

// forget drops a spec that is gone.
func (a *admission) forget(name string) {
	a.mu.Lock()
	_, held := a.holds[name]
	_, waited := a.waiting[name]
	a.releaseLocked(name)
	delete(a.waiting, name)
	notify := a.changedLocked(held || waited, name)
	a.mu.Unlock()
	a.notify(notify)
}

// changedLocked updates the gauges after a change and returns the queued
// names to reconcile again: the head may fit now, and every position may
// have moved (each status message says its position).
func (a *admission) changedLocked(changed bool, except string) []string {
	if !changed {
		return nil
	}
	a.m.Allocated.WithLabelValues(metrics.ResourceMemory).Set(float64(a.total.Memory))
	a.m.Allocated.WithLabelValues(metrics.ResourceCPUs).Set(float64(a.total.NanoCPUs) / 1e9)
	a.m.QueueDepth.Set(float64(len(a.waiting)))
	names := make([]string, 0, len(a.waiting))
	for n := range a.waiting {
		if n != except {
			names = append(names, n)
		}
	}
	return names
}

func (a *admission) notify(names []string) {
	if a.enqueue == nil {
		return
	}
	for _, n := range names {
		a.enqueue(n)
	}
}

// queued is a stored spec that waited in the queue when the agent stopped.
type queued struct {
	name  string
	d     Desired
	since time.Time
}

// seed rebuilds the books once, from the first container listing and the
// state file: the running containers are counted first, then the queued
// specs take their places in the queue. Until then nothing needing the
// budget is admitted.
func (a *admission) seed(recs []store.Record, running []docker.Container, wait []queued) {
	a.mu.Lock()
	if a.ready {
		a.mu.Unlock()
		return
	}
	specs := make(map[string]*spec.Spec, len(recs))
	for _, r := range recs {
		specs[r.Spec.Metadata.Name] = r.Spec
	}
	for _, ct := range running {
		name := ct.Labels[docker.LabelSpec]
		// A created container counts too: the agent before may have died
		// in its start call, which the daemon still completes, so it may be
		// running a moment after this listing.
		if !(ct.Running() || ct.State == "created") || name == "" || specs[name] == nil {
			continue
		}
		req, job := requestOf(specs[name])
		if (Admission{Request: req, Job: job, Budget: a.budget}).needed() {
			a.holdLocked(name, reservation{Resources: req, job: job})
		}
	}
	for _, q := range wait {
		if _, held := a.holds[q.name]; held {
			continue
		}
		e := entryOf(q.d)
		e.since = q.since
		a.waiting[q.name] = e
	}
	a.ready = true
	notify := a.changedLocked(true, "")
	a.mu.Unlock()
	a.notify(notify)
}

// order lists the queued names in admission order (for tests and logs).
func (a *admission) order() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.waiting))
	for n := range a.waiting {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int {
		if a.waiting[x].before(x, a.waiting[y], y) {
			return -1
		}
		return 1
	})
	return names
}

// queuedEvent is the Queued event of a status that enters phase Queued:
// one per entry into the queue, not one per change of position.
func (c *Controller) queuedEvent(old ledgerEntry, st model.Status) []model.Event {
	if st.Phase != model.PhaseQueued || (old.hasStatus && old.status.Phase == model.PhaseQueued) {
		return nil
	}
	return []model.Event{c.event(st.Name, model.EventNormal, "Queued", "%s", st.Message)}
}

// ready says the books are seeded.
func (a *admission) isReady() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

// budgetUnknownWait is how soon a spec that needs the budget is looked at
// again while the agent has not counted the running containers yet.
const budgetUnknownWait = 200 * time.Millisecond

// reserve takes s's reservation right before its container is created or
// started. When the books changed since decide saw them (another worker
// took the slot), it hands decide the books as they are now and reports
// false: decide then queues the spec.
func (c *Controller) reserve(s *step) bool {
	snap, ok := c.adm.reserve(s.name, s.d, c.opts.Now())
	if ok {
		return true
	}
	s.d.Admission = snap
	s.a.History.QueuedAt = s.h.QueuedAt // still queued since then
	return false
}

// seedAdmission rebuilds the admission books from the first listing of
// the agent's containers and the stored statuses, once.
func (c *Controller) seedAdmission(recs []store.Record, cs []docker.Container) {
	if c.adm.isReady() {
		return
	}
	var wait []queued
	for _, r := range recs {
		name := r.Spec.Metadata.Name
		e, err := c.ledger.get(name)
		if err != nil {
			c.log.Warn("admission: cannot read a spec's state; it queues afresh", "spec", name, "err", err)
			continue
		}
		if e.hasStatus && e.status.Phase == model.PhaseQueued && !e.history.QueuedAt.IsZero() {
			wait = append(wait, queued{name: name, d: Desired{Spec: r.Spec, Arrival: r.Arrival}, since: e.history.QueuedAt})
		}
	}
	c.adm.seed(recs, cs, wait)
	b := c.opts.Budget
	c.log.Info("admission budget counted", "allocatable_memory", formatBytes(b.Allocatable.Memory),
		"allocatable_cpus", formatCPUs(b.Allocatable.NanoCPUs), "max_running_jobs", b.MaxRunningJobs,
		"queued", len(wait), "order", c.adm.order())
}
