package controller

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// This file is part of decide: the admission rule, pure like the rest of
// it. The bookkeeping it decides from (who holds what, who waits) is in
// admission.go.

// Resources is an amount of the admission budget.
type Resources struct {
	Memory   int64 // bytes
	NanoCPUs int64
}

// Budget is what the agent may admit: --allocatable (a zero amount is no
// limit on that resource) and --max-running-jobs (0: no cap).
type Budget struct {
	Allocatable    Resources
	MaxRunningJobs int
}

// Admission is what decide knows of the budget when a spec's container is
// to be created or started: an observed fact, snapshotted for the spec.
type Admission struct {
	// Request is what the spec takes of the budget while it runs; Job says
	// it counts against MaxRunningJobs (restartPolicy Never or OnFailure).
	Request Resources
	Job     bool
	Budget  Budget
	// Allocated and RunningJobs are what the other admitted specs hold.
	Allocated   Resources
	RunningJobs int
	// Held says the spec holds its reservation already (its container ran
	// or is being started); Resized that it holds another amount than
	// Request (its spec changed).
	Held, Resized bool
	// Ahead counts the queued specs admitted before it (higher priority,
	// or equal priority and earlier arrival); Queued counts the queue with
	// the spec in it.
	Ahead, Queued int
}

// requestOf is what a spec takes of the budget.
func requestOf(s *spec.Spec) (Resources, bool) {
	if s == nil {
		return Resources{}, false
	}
	var r Resources
	// Validated specs parse; a spec that does not is refused elsewhere.
	if s.Spec.Resources.Memory != "" {
		r.Memory, _ = spec.ParseMemory(s.Spec.Resources.Memory)
	}
	if s.Spec.Resources.CPUs != "" {
		r.NanoCPUs, _ = spec.ParseCPUs(s.Spec.Resources.CPUs)
	}
	return r, s.Spec.RestartPolicy == spec.RestartNever || s.Spec.RestartPolicy == spec.RestartOnFailure
}

// needed says the budget applies to the spec at all: it asks for memory
// or CPUs that the budget limits, or it is a job and jobs are capped.
// Anything else is never queued (and a zero Budget queues nothing).
func (a Admission) needed() bool {
	al := a.Budget.Allocatable
	return (al.Memory > 0 && a.Request.Memory > 0) || (al.NanoCPUs > 0 && a.Request.NanoCPUs > 0) ||
		(a.Job && a.Budget.MaxRunningJobs > 0)
}

// never says why the spec can never be admitted, however much frees up:
// it asks for more than the whole budget.
func (a Admission) never() string {
	al := a.Budget.Allocatable
	switch {
	case al.Memory > 0 && a.Request.Memory > al.Memory:
		return fmt.Sprintf("resources.memory %s is more than the agent's whole allocatable memory %s (--allocatable); it can never be admitted",
			formatBytes(a.Request.Memory), formatBytes(al.Memory))
	case al.NanoCPUs > 0 && a.Request.NanoCPUs > al.NanoCPUs:
		return fmt.Sprintf("resources.cpus %s is more than the agent's whole allocatable cpus %s (--allocatable); it can never be admitted",
			formatCPUs(a.Request.NanoCPUs), formatCPUs(al.NanoCPUs))
	}
	return ""
}

// admits is the admission rule: a spec starts when what it asks for fits
// beside what the others hold and no queued spec comes before it (strict
// order, as Kueue's StrictFIFO: a large spec at the head is not overtaken
// by smaller ones, so it cannot starve). A spec holding its reservation
// already (a restart in place) is admitted as long as its amount is the
// same. Otherwise waitFor says, in words, what it waits for.
func (a Admission) admits() (ok bool, waitFor string) {
	if !a.needed() || (a.Held && !a.Resized) {
		return true, ""
	}
	al := a.Budget.Allocatable
	switch {
	case al.Memory > 0 && a.Allocated.Memory+a.Request.Memory > al.Memory:
		return false, fmt.Sprintf("memory: needs %s, %s free of %s", formatBytes(a.Request.Memory),
			formatBytes(max(al.Memory-a.Allocated.Memory, 0)), formatBytes(al.Memory))
	case al.NanoCPUs > 0 && a.Allocated.NanoCPUs+a.Request.NanoCPUs > al.NanoCPUs:
		return false, fmt.Sprintf("cpus: needs %s, %s free of %s", formatCPUs(a.Request.NanoCPUs),
			formatCPUs(max(al.NanoCPUs-a.Allocated.NanoCPUs, 0)), formatCPUs(al.NanoCPUs))
	case a.Job && a.Budget.MaxRunningJobs > 0 && a.RunningJobs >= a.Budget.MaxRunningJobs:
		return false, fmt.Sprintf("a job slot: %d of %d jobs running (--max-running-jobs)", a.RunningJobs, a.Budget.MaxRunningJobs)
	case a.Ahead > 0 && !a.Held:
		return false, fmt.Sprintf("its turn: %d queued before it", a.Ahead)
	}
	return true, ""
}

// queuedMessage is a queued spec's status message.
func (a Admission) queuedMessage(waitFor string) string {
	return fmt.Sprintf("waiting for %s; position %d of %d", waitFor, a.Ahead+1, max(a.Queued, a.Ahead+1))
}

// admit is decide's admission step, taken right before a container is
// created or started. It reports true when the spec may go on; h then
// leaves the queue. Otherwise the action is the spec's wait in the queue
// (phase Queued, with what it waits for and its position), or an Error
// when it can never fit.
func admit(d Desired, h *model.History, now time.Time) (Action, bool) {
	a := d.Admission
	if ok, waitFor := a.admits(); !ok {
		if why := a.never(); why != "" {
			h.QueuedAt = time.Time{}
			return Action{Kind: ActNone, Phase: model.PhaseError, Message: why, History: *h,
				Failed: &Failure{Reason: "ExceedsAllocatable", Message: why}}, false
		}
		if h.QueuedAt.IsZero() {
			h.QueuedAt = now
		}
		return Action{Kind: ActNone, Phase: model.PhaseQueued, Message: a.queuedMessage(waitFor), History: *h}, false
	}
	h.QueuedAt = time.Time{}
	return Action{}, true
}

// formatBytes writes n in the largest binary unit it has at least one of,
// with at most one decimal ("512Mi", "1.5Gi", "300Mi").
func formatBytes(n int64) string {
	units := []string{"Ki", "Mi", "Gi", "Ti"}
	v, unit := float64(n), ""
	for _, u := range units {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return trimDecimal(v) + unit
}

func formatCPUs(nano int64) string { return trimDecimal(float64(nano) / 1e9) }

func trimDecimal(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}
