package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Desired is what the store says a spec should be; Spec is nil once the
// spec is deleted.
type Desired struct {
	Spec     *spec.Spec
	Hash     string
	FromFile bool
	// Refused lists why the policy in force refuses Spec; empty when it
	// admits it.
	Refused spec.ErrorList
	// Want is the spec-hash label of a container made from this definition:
	// Hash, mixed with the content of the spec's secret files (see
	// spec.HashWithSecrets), so that a changed secret replaces the
	// container. Empty means Hash.
	Want string
	// SecretErr says why the secret files could not be read. Then only the
	// definition counts: the container of an unchanged spec is kept, since
	// no replacement could be made.
	SecretErr string
	// secrets holds what was read, for create.
	secrets *secretValues
	// ImageID, when set, is the image the container must run (an
	// autoUpdate spec's, see imageupdate.go): a container of another image
	// is replaced like one of another definition.
	ImageID string
	// Arrival is the spec's arrival number in the store (admission order).
	Arrival uint64
	// Admission is the agent's budget as it stands for the spec, observed
	// when the reconcile began (decide_admission.go).
	Admission Admission
	// Deps are the observed states of the spec's dependsOn (depends.go).
	Deps []DepFact
	// RestartedAt is the spec's last restart request (restart.go).
	RestartedAt time.Time
}

// Label is the spec-hash label a container of d carries.
func (d Desired) Label() string {
	if d.Want != "" {
		return d.Want
	}
	return d.Hash
}

// current reports whether c was made from d's definition and d's secrets.
// When the secrets cannot be read, only the definition is compared: the
// container of an unchanged spec is kept rather than replaced by nothing.
func (d Desired) current(c *docker.Container) bool {
	if d.Spec == nil || !d.imageCurrent(c) {
		return false
	}
	if d.SecretErr != "" {
		def := c.Labels[labelDefinition]
		if def == "" {
			def = c.Labels[docker.LabelSpecHash] // made without secrets
		}
		return def == d.Hash
	}
	return c.Labels[docker.LabelSpecHash] == d.Label()
}

// Observed is what Docker shows of a spec's containers.
type Observed struct {
	// Container is the agent's container for the spec (by label and
	// deterministic name), nil when there is none.
	Container *docker.Container
	// Strays are other containers of this agent labelled with the spec name.
	Strays []docker.Container
	// DieSeen says the event stream delivered a die event for Container's
	// current run; KillSeen that someone other than the agent sent it a
	// kill or stop.
	DieSeen  bool
	KillSeen bool
	// OOMSeen says an oom event arrived for the run: this daemon sometimes
	// reports an OOM kill as a plain 137 without the OOMKilled flag.
	OOMSeen bool
	// OOMAt is when the last oom event for Container arrived, whatever run
	// it was for: the run before a restart in place may still get its
	// notice after the restart.
	OOMAt time.Time
	// DaemonLag is how long the daemon took over the agent's last start:
	// a daemon that slow is as slow to send its oom notices.
	DaemonLag time.Duration
	// StartRefused is the daemon's answer to a start of Container that it
	// refused (bad command, missing mount source...), at StartRefusedAt.
	StartRefused   string
	StartRefusedAt time.Time
	// StartHold is how much longer a created Container must be left before
	// it is started, when a start of it may be under way (starthold.go).
	StartHold time.Duration
	// NextStartRefused is the daemon's answer to a start of Next that it
	// refused, in the pass that tried it.
	NextStartRefused string
	// NameHeld is the container name a create was refused for, held by a
	// container that is not this agent's.
	NameHeld string
	// CreateFailed says why the last create could not be made, when
	// retrying soon will not help (a secret or profile file, the image
	// under its pull policy, the daemon's refusal).
	CreateFailed *Failure
	// Stopping says a stop the agent issued for Container is under way.
	Stopping bool
	// Next is the start-first replacement of Container (rollout.go), nil
	// when there is none; NextStopping says a stop of it is under way.
	Next         *docker.Container
	NextStopping bool
	// Image is what is known of the image a create needs; nil until decide
	// asks for a create (decide_image.go).
	Image *ImageFacts
}

// Failure is a reason (an event reason, e.g. SecretUnavailable) and its
// message.
type Failure struct {
	Reason, Message string
}

// ActionKind is one step towards the desired state.
type ActionKind int

const (
	ActNone        ActionKind = iota // settled; maybe come back after RequeueAfter
	ActInspect                       // need the container's exit details first
	ActRecordExit                    // a run ended: record it and decide on a restart
	ActStop                          // stop with grace
	ActRemove                        // remove the (stopped) container
	ActRemoveStray                   // stop and remove a stray container of ours
	ActCreate                        // create (and then start) the container
	ActStart                         // start the existing container
	ActForget                        // spec and container gone: drop status and history
	ActExpire                        // a finished job's TTL passed
)

// why is the reason text for the log line of a.
func (a Action) why() string {
	if a.Why != "" {
		return a.Why
	}
	return a.Message
}

func (k ActionKind) String() string {
	if s, ok := rolloutKinds[k]; ok {
		return s
	}
	return [...]string{"None", "Inspect", "RecordExit", "Stop", "Remove", "RemoveStray",
		"Create", "Start", "Forget", "Expire"}[k]
}

// Action is the outcome of decide. Only the fields its Kind needs are set.
type Action struct {
	Kind         ActionKind
	Phase        model.Phase
	Message      string
	RequeueAfter time.Duration
	ContainerID  string
	Cause        model.StopCause // ActStop
	Grace        time.Duration   // ActStop, ActRemoveStray
	Exit         *model.ContainerExit
	History      model.History // the history to persist with the action
	// Why says in words why decide chose the action, for its log line.
	Why string
	// Failed, with ActNone, is a failure to report with a Warning event.
	Failed *Failure
	// Conflict is the container name another container holds.
	Conflict string
	// Expired says a finished job's ttlAfterFinished passed: what the
	// agent keeps for it beside the container (its workspace) goes too.
	Expired bool
	// Image, with ActCreate or ActCreateNext, is what the create does
	// about its image; nil until the image is observed.
	Image *ImageDecision
	// Events are what apply records when it has carried the action out.
	Events []Note
}

// decide works out the next step for one spec. It is pure: everything it
// needs is in its arguments, and it calls nothing outside this file.
//
// A create needs its image: once o.Image is observed, the create becomes
// what the image allows (decide_image.go), or, when it cannot be made,
// the failure of the create, as if the daemon had refused it.
func decide(d Desired, o Observed, h model.History, now time.Time) Action {
	a := decideUnderPolicy(d, o, h, now)
	if creates(a.Kind) && o.Image != nil {
		var f *Failure
		if a, f = withImage(a, d, o, now); f != nil {
			o.CreateFailed, o.Image = f, nil
			a = decideUnderPolicy(d, o, h, now)
		}
	}
	a.Events = eventsOf(d, a)
	return forward(a, h)
}

// eventsOf are the events that record a once it is carried out.
func eventsOf(d Desired, a Action) []Note {
	switch a.Kind {
	case ActRecordExit:
		e := a.Exit
		n := Note{model.EventNormal, "Completed", fmt.Sprintf("Container %s exited with code %d (%s) after %s",
			short(e.ContainerID), e.ExitCode, e.Reason, e.Duration)}
		if !e.Succeeded() || e.Reason != model.ReasonCompleted {
			n.Type, n.Reason = model.EventWarning, string(e.Reason)
		}
		ns := []Note{n}
		if a.Phase == model.PhaseBackoff {
			ns = append(ns, Note{model.EventWarning, "BackOff", fmt.Sprintf("Back-off %s restarting failed container", a.RequeueAfter)})
		}
		if a.Phase == model.PhaseFailed && a.Message != "" {
			ns = append(ns, Note{model.EventWarning, "Failed", a.Message})
		}
		return ns
	case ActStop:
		return []Note{{model.EventNormal, "Killing", fmt.Sprintf("Stopping container %s (%s) with grace period %s",
			short(a.ContainerID), strings.ToLower(a.Message), a.Grace)}}
	case ActStopNext:
		return []Note{{model.EventNormal, "Killing", fmt.Sprintf("Stopping replacement container %s with grace period %s",
			short(a.ContainerID), a.Grace)}}
	case ActNextFailed:
		return []Note{{model.EventWarning, "RolloutFailed", a.Message}}
	case ActRemoveStray:
		return []Note{{model.EventWarning, "StrayRemoved", fmt.Sprintf("Removing stray container %s", short(a.ContainerID))}}
	case ActExpire:
		return []Note{{model.EventNormal, "Expired", fmt.Sprintf("Finished job removed after ttlAfterFinished %s", d.Spec.Spec.TTLAfterFinished)}}
	}
	return nil
}

func decideUnderPolicy(d Desired, o Observed, h model.History, now time.Time) Action {
	a := decideAdmitted(d, o, h, now)
	if d.Spec != nil && len(d.Refused) > 0 {
		a = refused(a, d, o, h)
	}
	return a
}

// forward keeps the history moving forward only, as swarmkit's transition
// helper keeps task states: an action that leaves History unset means
// "unchanged", never "wiped". Only forgetting a spec drops it.
func forward(a Action, h model.History) Action {
	if a.Kind != ActForget && a.History == (model.History{}) {
		a.History = h
	}
	return a
}

// refused turns the step decided for an admitted spec into the step for a
// spec the policy refuses: nothing is created or started for it, and a
// container it still has is neither replaced nor stopped for that (the
// agent does not take down a workload because its policy changed). What
// is observed is still recorded, and a job's deadline still ends it.
func refused(a Action, d Desired, o Observed, h model.History) Action {
	if a.History.Done && (a.Phase == model.PhaseSucceeded || a.Phase == model.PhaseFailed) {
		return a // a finished job runs nothing more anyway: its outcome says more
	}
	switch a.Kind {
	case ActInspect, ActRemoveStray, ActExpire:
		return a
	case ActCreate, ActStart, ActRemove, ActCreateNext, ActStartNext, ActPromote:
		a = Action{Kind: ActNone, History: a.History}
	case ActNextFailed, ActStopNext, ActRemoveNext:
		return a
	case ActStop:
		if a.Cause == model.StopReplaced || a.Cause == model.StopUnhealthy {
			hist := a.History
			hist.Stop = h.Stop
			a = Action{Kind: ActNone, History: hist}
		}
	case ActNone:
		if o.Container == nil || !o.Container.Running() {
			a.RequeueAfter = 0 // a backoff timer would only say Refused again
		}
	}
	a.Phase = model.PhaseRefused
	if a.Kind != ActStop {
		a.Message = refusedMessage(d, o)
	}
	return a
}

// refusedMessage is a refused spec's status message.
func refusedMessage(d Desired, o Observed) string {
	msgs := make([]string, len(d.Refused))
	for i, e := range d.Refused {
		msgs[i] = e.Error()
	}
	why := strings.Join(msgs, "; ")
	if c := o.Container; c != nil && c.Running() {
		return fmt.Sprintf("container %s runs under a spec the policy now refuses; it is left running but will not be started again: %s",
			short(c.ID), why)
	}
	return "refused by policy: " + why
}

func decideAdmitted(d Desired, o Observed, h model.History, now time.Time) Action {
	if len(o.Strays) > 0 {
		s := o.Strays[0]
		return Action{Kind: ActRemoveStray, ContainerID: s.ID, Grace: grace(d, &s), History: h,
			Message: fmt.Sprintf("removing stray container %s", s.Name)}
	}
	if d.Spec != nil && h.SpecHash != d.generation() {
		// Past failures do not count against a new definition (or a
		// restart request); what is known of the runs so far still stands.
		h = model.History{SpecHash: d.generation(), LastContainerID: h.LastContainerID, LastStartedAt: h.LastStartedAt,
			ExitRecorded: h.ExitRecorded, Stop: h.Stop, PendingExit: h.PendingExit, Image: h.Image, QueuedAt: h.QueuedAt}
	}
	if a, ok := decideNext(d, o, h); ok {
		return a
	}
	if h.PendingExit != nil {
		if a, ok := decidePending(d, o, h, now); ok {
			return a
		}
	}
	if o.Container != nil && o.StartRefused != "" {
		// What was seen of the run before is not this one's.
		rc := refusedRun(*o.Container, o, h)
		o.Container, o.DieSeen, o.KillSeen, o.OOMSeen = &rc, false, false, false
	}
	c := o.Container
	if c == nil {
		return decideAbsent(d, o, h, now)
	}
	if c.Running() {
		return decideRunning(d, o, h, now)
	}
	// An inspected container says when its last run started, which beats
	// the flag (a failed start leaves the flag of the run before it).
	recorded := c.ID == h.LastContainerID && h.ExitRecorded &&
		(!c.Inspected || c.StartedAt.Equal(h.LastStartedAt))
	if c.State == "created" && !recorded {
		// Created but never started: the agent stopped between create and start.
		if !d.current(c) {
			return Action{Kind: ActRemove, ContainerID: c.ID, History: h, Phase: model.PhasePending,
				Why: "created but never started, for a spec that changed or is gone"}
		}
		if o.StartHold > 0 {
			return Action{Kind: ActNone, History: h, Phase: model.PhasePending, RequeueAfter: o.StartHold,
				Message: fmt.Sprintf("container %s was created by an earlier agent process, or a start of it failed: a start may still be under way in the daemon; starting it in %s if it is still created",
					short(c.ID), o.StartHold.Round(time.Second)),
				Why: "created, and a start may be under way"}
		}
		if a, ok := admit(d, &h, now); !ok {
			return a
		}
		return Action{Kind: ActStart, ContainerID: c.ID, History: h, Phase: model.PhasePending,
			Why: "container created but not started"}
	}
	if !recorded {
		if !c.Inspected {
			return Action{Kind: ActInspect, ContainerID: c.ID, History: h, Why: "its exit needs the container's details"}
		}
		if c.ID != h.LastContainerID || !c.StartedAt.Equal(h.LastStartedAt) {
			r := recordExit(d, o, h, now)
			if a, ok := restartFirst(d, *c, r, now); ok {
				return a
			}
			if wait := oomGrace(d, o, h, now); wait > 0 {
				return Action{Kind: ActNone, Phase: model.PhasePending, RequeueAfter: wait, History: h,
					Message: "waiting for the daemon's oom notice"}
			}
			return r
		}
		h.ExitRecorded = true
	}
	return decideExited(d, *c, h, now)
}

func decideAbsent(d Desired, o Observed, h model.History, now time.Time) Action {
	if d.Spec == nil {
		return Action{Kind: ActForget, Why: "spec and container are gone"}
	}
	if h.Done {
		return finished(d, h, nil, now)
	}
	if wait := h.NextTryAt.Sub(now); wait > 0 {
		return Action{Kind: ActNone, Phase: model.PhaseBackoff, RequeueAfter: wait, History: h,
			Message: fmt.Sprintf("restarting in %s", wait.Round(time.Millisecond))}
	}
	fail := func(f Failure) Action {
		return Action{Kind: ActNone, Phase: model.PhaseError, Message: f.Message, History: h, Failed: &f}
	}
	switch {
	case o.NameHeld != "":
		a := fail(Failure{Reason: "NameConflict",
			Message: fmt.Sprintf("a container not managed by this agent holds the name %s; remove or rename it", o.NameHeld)})
		a.Conflict = o.NameHeld
		return a
	case o.CreateFailed != nil:
		return fail(*o.CreateFailed)
	case d.SecretErr != "":
		return fail(Failure{Reason: "SecretUnavailable", Message: d.SecretErr})
	}
	if a, ok := waitForDependencies(d, h); ok {
		return a
	}
	if a, ok := admit(d, &h, now); !ok {
		return a
	}
	return Action{Kind: ActCreate, Phase: model.PhasePending, History: h, Why: "the spec has no container"}
}

func decideRunning(d Desired, o Observed, h model.History, now time.Time) Action {
	c := *o.Container
	if c.ID == h.LastContainerID && h.ExitRecorded {
		h.ExitRecorded = false // running again: its next exit is a new record
	}
	if d.current(&c) {
		h.Pull = nil // it runs: its image is in place, past pull failures are moot
	} // else the pulls are for its replacement (rollout.go), whose back-off stands
	if o.Stopping {
		return Action{Kind: ActNone, Phase: model.PhaseRunning, History: h, Message: "stopping"}
	}
	stop := func(cause model.StopCause, msg string) Action {
		g := grace(d, &c)
		h.Stop = &model.StopIntent{ContainerID: c.ID, Cause: cause, At: now, Grace: g}
		return Action{Kind: ActStop, ContainerID: c.ID, Cause: cause, Grace: g, History: h,
			Phase: model.PhaseRunning, Message: msg}
	}
	switch {
	case d.Spec == nil:
		return stop(model.StopDeleted, "spec deleted")
	case !d.current(&c):
		return replace(d, o, h, now, stop) // by the spec's update strategy
	case o.Next != nil:
		// A replacement of what is running (the spec changed back): not needed.
		return Action{Kind: ActRemoveNext, ContainerID: o.Next.ID, Phase: model.PhaseRunning, History: h,
			Why: "start-first: the running container matches the spec again"}
	case h.Stop != nil && h.Stop.ContainerID == c.ID:
		// A stop we issued did not finish (the agent may have died in it): finish it.
		return stop(h.Stop.Cause, "finishing an interrupted stop")
	case c.Health == "unhealthy" && d.Spec.Spec.RestartPolicy != spec.RestartNever:
		return stop(model.StopUnhealthy, "container is unhealthy")
	}
	a := Action{Kind: ActNone, Phase: model.PhaseRunning, History: h}
	if d.SecretErr != "" {
		a.Message = d.SecretErr + "; the running container is kept"
	}
	if dl := d.Spec.Spec.ActiveDeadline.Duration; dl > 0 && !c.StartedAt.IsZero() {
		left := c.StartedAt.Add(dl).Sub(now)
		if left <= 0 {
			return stop(model.StopDeadline, fmt.Sprintf("activeDeadline %s exceeded", dl))
		}
		a.RequeueAfter = left
	}
	return a
}

// oomNoticeWindow is how long after a SIGKILL exit of a memory-limited
// container the oom event may still arrive: the daemon sends the exit
// first at times, and on a loaded host (2 cores compiling) its oom event
// came up to 1.2 s after the die event.
const oomNoticeWindow = 2 * time.Second

// noticeWindow is the oom notice window for what o shows: oomNoticeWindow,
// or longer while the daemon takes longer than that over a start (a
// start of 3.5 s on a loaded host came with a notice later than 2 s).
func (o Observed) noticeWindow() time.Duration { return max(oomNoticeWindow, o.DaemonLag) }

// oomGrace is how long to wait before recording a 137 exit that may still
// turn out to be an OOM kill.
func oomGrace(d Desired, o Observed, h model.History, now time.Time) time.Duration {
	c := o.Container
	if c.ExitCode != 137 || c.OOMKilled || o.OOMSeen || d.Spec == nil || d.Spec.Spec.Resources.Memory == "" ||
		(h.Stop != nil && h.Stop.ContainerID == c.ID) || c.FinishedAt.IsZero() {
		return 0
	}
	return c.FinishedAt.Add(o.noticeWindow()).Sub(now)
}

// refusedRun is the run a refused start makes of container c: a failed run
// under the restart policy like any other, exit code 128 unless the
// daemon gave one, with the daemon's answer as its error.
func refusedRun(c docker.Container, o Observed, h model.History) docker.Container {
	c.State, c.Error = "exited", joinText(c.Error, o.StartRefused)
	// A container restarted in place still shows its previous run, whose
	// exit is recorded: taken for that run, the refusal would be retried
	// at once, forever, with no backoff and no record.
	if !c.StartedAt.After(h.LastStartedAt) {
		c.StartedAt, c.ExitCode, c.OOMKilled = o.StartRefusedAt, 0, false
	}
	if c.ExitCode == 0 {
		c.ExitCode = 128
	}
	if c.FinishedAt.Before(c.StartedAt) {
		c.FinishedAt = c.StartedAt
	}
	c.Inspected = true
	return c
}

// restartFirst turns the record r of an exit whose container the policy
// starts again at once into that start, with the record carried as the
// history's PendingExit: the container runs again as soon as its exit is
// known, and the record is completed after (decidePending). What the next
// exit depends on (the counters, the back-off, the recorded run) is in
// the history written before the start, so an agent killed between the
// start and the record still records the run.
func restartFirst(d Desired, c docker.Container, r Action, now time.Time) (Action, bool) {
	if len(d.Refused) > 0 {
		return r, false
	}
	next := decideExited(d, c, r.History, now)
	if next.Kind != ActStart {
		return r, false
	}
	next.History.PendingExit = r.Exit
	next.Message = r.Message
	next.Why = fmt.Sprintf("restart policy %s, at once after exit code %d (%s); the record follows the start",
		d.Spec.Spec.RestartPolicy, r.Exit.ExitCode, r.Exit.Reason)
	return next, true
}

// decidePending completes the record of a run that was restarted before
// it was recorded: at once, unless its SIGKILL may still turn out an OOM
// kill and the restarted run goes on meanwhile; then the step for the
// running container stands, and the record is due when the notice window
// closes.
func decidePending(d Desired, o Observed, h model.History, now time.Time) (Action, bool) {
	p := *h.PendingExit
	c := o.Container
	same := c != nil && c.ID == p.ContainerID
	seen := same && !o.OOMAt.IsZero() && o.OOMAt.After(p.StartedAt.Add(-time.Second)) &&
		!o.OOMAt.After(p.FinishedAt.Add(o.noticeWindow()))
	if !p.OOMKilled && oomKilled(false, p.ExitCode, seen) {
		p.OOMKilled = true
		if p.Reason == model.ReasonSignaled || p.Reason == model.ReasonExternal {
			p.Reason = model.ReasonOOMKilled
		}
	}
	maybeOOM := !p.OOMKilled && p.ExitCode == 137 && d.Spec != nil && d.Spec.Spec.Resources.Memory != "" &&
		(p.Reason == model.ReasonSignaled || p.Reason == model.ReasonExternal) && !p.FinishedAt.IsZero()
	if wait := p.FinishedAt.Add(o.noticeWindow()).Sub(now); maybeOOM && wait > 0 && same && c.Running() {
		h.PendingExit = nil // decided on as recorded; the store keeps it until it is
		a := decideRunning(d, o, h, now)
		if a.Kind != ActNone {
			return Action{}, false
		}
		if a.RequeueAfter <= 0 || wait < a.RequeueAfter {
			a.RequeueAfter = wait
		}
		a.History.PendingExit = &p
		return a, true
	}
	h.PendingExit = nil
	a := Action{Kind: ActRecordExit, ContainerID: p.ContainerID, Exit: &p, History: h, Phase: model.PhasePending,
		Why: fmt.Sprintf("completing the record of the run before the restart: exit code %d (%s)", p.ExitCode, p.Reason)}
	if same && c.Running() {
		a.Phase = model.PhaseRunning
	}
	return a, true
}

// oomKilled is the one OOM heuristic: the daemon's flag, or a SIGKILL
// exit (137) of a run for which an oom event arrived. The daemon sets the
// flag only when its OOM notice beats the exit; when the exit outruns it,
// only the event tells.
func oomKilled(flag bool, code int, oomSeen bool) bool {
	return flag || (oomSeen && code == 137)
}

// recordExit builds the ledger record of a run that ended and decides what
// follows it under the restart policy.
func recordExit(d Desired, o Observed, h model.History, now time.Time) Action {
	c := *o.Container
	exit := &model.ContainerExit{
		ContainerID:  c.ID,
		SpecName:     c.Labels[docker.LabelSpec],
		SpecHash:     c.Labels[docker.LabelSpecHash],
		ExitCode:     c.ExitCode,
		Signal:       docker.SignalName(c.ExitCode),
		OOMKilled:    oomKilled(c.OOMKilled, c.ExitCode, o.OOMSeen),
		Error:        c.Error,
		StartedAt:    c.StartedAt,
		FinishedAt:   c.FinishedAt,
		RestartCount: h.Restarts,
		Reason:       classify(c, o, h),
	}
	if exit.FinishedAt.Before(exit.StartedAt) {
		// The daemon stamps a process that dies at once as finished before
		// it stamps it started; a run cannot end before it began.
		exit.FinishedAt = exit.StartedAt
	}
	if !c.FinishedAt.IsZero() && !c.StartedAt.IsZero() {
		exit.Duration = exit.FinishedAt.Sub(exit.StartedAt).Round(time.Millisecond).String()
	}
	stop := h.Stop
	h.Stop = nil
	h.LastContainerID, h.LastStartedAt, h.ExitRecorded = c.ID, c.StartedAt, true
	a := Action{Kind: ActRecordExit, ContainerID: c.ID, Exit: exit, History: h,
		Why: fmt.Sprintf("container exited with code %d (%s)", exit.ExitCode, exit.Reason)}
	if stop != nil && stop.ContainerID == c.ID && stop.Cause == model.StopUnhealthy {
		exit.Error = joinText(exit.Error, "stopped by the agent: container was unhealthy")
	}

	switch {
	case !d.current(&c):
		// Deleted or replaced: what follows is removal, not a restart.
		a.Phase = model.PhasePending
		return a
	case stop != nil && stop.ContainerID == c.ID && stop.Cause == model.StopShutdown:
		// Stopped with the agent: start again when the agent is back.
		a.Phase = model.PhasePending
		return a
	case exit.Reason == model.ReasonDeadlineExceeded:
		a.History.Done, a.History.FinishedAt = true, finishedAt(exit, now)
		a.Phase, a.Message = model.PhaseFailed, "activeDeadline exceeded"
		return a
	}

	ps := d.Spec.Spec
	restart := ps.RestartPolicy == spec.RestartAlways ||
		(ps.RestartPolicy == spec.RestartOnFailure && !exit.Succeeded())
	if !restart {
		a.History.Done, a.History.Succeeded = true, exit.Succeeded()
		a.History.FinishedAt = finishedAt(exit, now)
		a.Phase = model.PhaseFailed
		if exit.Succeeded() {
			a.Phase = model.PhaseSucceeded
		}
		return a
	}
	if ps.MaxRestarts != nil && h.Restarts >= *ps.MaxRestarts {
		a.History.Done, a.History.FinishedAt = true, finishedAt(exit, now)
		a.Phase = model.PhaseFailed
		a.Message = fmt.Sprintf("maxRestarts (%d) reached", *ps.MaxRestarts)
		return a
	}
	ran := exit.FinishedAt.Sub(exit.StartedAt)
	if ps.Backoff.ResetAfter.Duration > 0 && ran >= ps.Backoff.ResetAfter.Duration {
		a.History.Attempts = 0
	}
	a.History.Attempts++
	a.History.Restarts++
	delay := ps.Backoff.Delay(a.History.Attempts - 1)
	a.History.NextTryAt = now.Add(delay)
	a.Phase = model.PhasePending
	if delay > 0 {
		a.Phase = model.PhaseBackoff
		a.RequeueAfter = delay
		a.Message = fmt.Sprintf("back-off %s restarting failed container", delay)
	}
	return a
}

func decideExited(d Desired, c docker.Container, h model.History, now time.Time) Action {
	if !d.current(&c) {
		why := "spec changed"
		if d.Spec == nil {
			why = "spec deleted"
		}
		return Action{Kind: ActRemove, ContainerID: c.ID, History: h, Phase: model.PhasePending, Why: why}
	}
	if h.Done {
		return finished(d, h, &c, now)
	}
	if c.Error != "" {
		// The daemon refused to start it: the next try gets a fresh
		// container, since what stops this one may be its own state (a task
		// left behind when the daemon stopped in the middle of a start).
		return Action{Kind: ActRemove, ContainerID: c.ID, History: h, Phase: model.PhasePending,
			Why: "the daemon refused to start it; the next try gets a fresh container"}
	}
	if wait := h.NextTryAt.Sub(now); wait > 0 {
		return Action{Kind: ActNone, Phase: model.PhaseBackoff, RequeueAfter: wait, History: h,
			Message: fmt.Sprintf("back-off %s restarting failed container", wait.Round(time.Millisecond))}
	}
	if a, ok := admit(d, &h, now); !ok {
		return a
	}
	return Action{Kind: ActStart, ContainerID: c.ID, History: h, Phase: model.PhasePending,
		Why: "restart policy " + string(d.Spec.Spec.RestartPolicy)}
}

// expiredMessage is the status of a file job after its TTL.
const expiredMessage = "expired after ttlAfterFinished; container removed"

// finished handles a run that ended for good: the container is removed when
// the spec asks, and the whole job expires after its TTL.
func finished(d Desired, h model.History, c *docker.Container, now time.Time) Action {
	phase := model.PhaseFailed
	if h.Succeeded {
		phase = model.PhaseSucceeded
	}
	ps := d.Spec.Spec
	if ttl := ps.TTLAfterFinished.Duration; ttl > 0 && !h.FinishedAt.IsZero() {
		left := h.FinishedAt.Add(ttl).Sub(now)
		switch {
		case left > 0:
		case d.FromFile && c != nil:
			// The file still asks for the spec: it keeps its final status
			// and only loses its container.
			return Action{Kind: ActRemove, ContainerID: c.ID, Phase: phase, History: h, Message: expiredMessage,
				Why: "ttlAfterFinished passed; the spec file keeps the job's status", Expired: true}
		case d.FromFile:
			return Action{Kind: ActNone, Phase: phase, History: h, Message: expiredMessage, Expired: true}
		default:
			id := ""
			if c != nil {
				id = c.ID
			}
			return Action{Kind: ActExpire, ContainerID: id, Phase: phase, History: h, Why: "ttlAfterFinished passed", Expired: true}
		}
		if c != nil && ps.RemoveOnExit {
			return Action{Kind: ActRemove, ContainerID: c.ID, Phase: phase, History: h, Why: "run finished and removeOnExit is set"}
		}
		return Action{Kind: ActNone, Phase: phase, RequeueAfter: left, History: h}
	}
	if c != nil && ps.RemoveOnExit {
		return Action{Kind: ActRemove, ContainerID: c.ID, Phase: phase, History: h, Why: "run finished and removeOnExit is set"}
	}
	return Action{Kind: ActNone, Phase: phase, History: h}
}

// classify names the reason of an exit. The agent's own stops come first,
// then what the kernel or someone else did, then the process's own code.
func classify(c docker.Container, o Observed, h model.History) model.ExitReason {
	if s := h.Stop; s != nil && s.ContainerID == c.ID {
		switch {
		case s.Cause == model.StopDeadline:
			return model.ReasonDeadlineExceeded
		case c.ExitCode == 137 && !c.OOMKilled && s.Grace > 0 && c.Labels[labelStopSignal] != "SIGKILL":
			return model.ReasonGraceExpired
		default:
			return model.ReasonStoppedByAgent
		}
	}
	switch {
	case oomKilled(c.OOMKilled, c.ExitCode, o.OOMSeen):
		return model.ReasonOOMKilled
	case o.KillSeen:
		return model.ReasonExternal
	case c.ExitCode == 255 && !o.DieSeen:
		return model.ReasonLost
	case c.ExitCode > 128 && c.ExitCode <= 128+64: // 128+n: killed by signal n
		return model.ReasonSignaled
	case c.ExitCode == 0:
		return model.ReasonCompleted
	default:
		return model.ReasonError
	}
}

// grace is the stop grace period of container c: the spec's, or for a
// deleted spec the one recorded on the container when it was created.
func grace(d Desired, c *docker.Container) time.Duration {
	if d.Spec != nil {
		return d.Spec.Spec.TerminationGracePeriod.Duration
	}
	if c != nil {
		if g, err := time.ParseDuration(c.Labels[labelGrace]); err == nil {
			return g
		}
	}
	return defaultGrace
}

func finishedAt(e *model.ContainerExit, now time.Time) time.Time {
	if e.FinishedAt.IsZero() {
		return now
	}
	return e.FinishedAt
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
