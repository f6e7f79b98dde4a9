package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// Result tells the worker what to do with a name after Reconcile.
//
// The retry contract: an error means "retry with backoff"; RequeueAfter
// means "come back then" (a backoff delay, a deadline, a TTL); the zero
// Result means settled until something changes. Failures that retrying
// cannot fix (a name conflict, a missing image with policy Never, a policy
// refusal) are recorded in the status and returned as a RequeueAfter of one
// resync period, not as errors.
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

// Reconcile drives one spec a step at a time towards its desired state.
func (c *Controller) Reconcile(ctx context.Context, name string) (Result, error) {
	d, err := c.desired(name)
	if err != nil {
		return Result{}, err
	}
	h, err := c.st.GetHistory(name)
	if err != nil {
		return Result{}, fmt.Errorf("read history: %w", err)
	}
	o, err := c.observe(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if err := c.inspectIfNeeded(ctx, d, &o); err != nil {
		return Result{}, err
	}
	for step := 0; step < maxSteps; step++ {
		now := c.opts.Now()
		a := decide(d, o, h, now)
		if a.Kind != ActNone && a.Kind != ActInspect {
			c.log.Info("decided", "spec", name, "action", a.Kind.String(), "reason", why(a, d, o), "container", short(a.ContainerID))
		}
		next, done, err := c.apply(ctx, name, d, o, h, a)
		if err != nil {
			return Result{}, err
		}
		if done {
			return Result{RequeueAfter: a.RequeueAfter}, nil
		}
		o, h = next, a.History
	}
	return Result{RequeueAfter: time.Millisecond}, nil
}

func (c *Controller) desired(name string) (Desired, error) {
	r, err := c.st.GetSpec(name)
	if errors.Is(err, store.ErrNotFound) {
		return Desired{}, nil
	}
	if err != nil {
		return Desired{}, fmt.Errorf("read spec: %w", err)
	}
	d := Desired{Spec: r.Spec, Hash: r.Hash, FromFile: r.Source.Kind == store.SourceFile}
	// The policy may have changed since the spec was stored (a reload, an
	// agent restart with another policy file): check it as it is now.
	d.Refused = c.opts.Policy.Get().Check(r.Spec)
	for _, e := range d.Refused {
		if e.File == "" {
			e.File = r.Source.Path // the spec file, for a spec from one
		}
	}
	return c.withSecrets(d), nil
}

// observe lists the spec's containers (from the cache when it is fresh).
func (c *Controller) observe(ctx context.Context, name string) (Observed, error) {
	cs, ok := c.cache.get(name)
	if !ok {
		v := c.cache.begin(name)
		sel := c.selector()
		sel[docker.LabelSpec] = name
		var err error
		cs, err = c.rt.List(ctx, sel)
		if err != nil {
			return Observed{}, fmt.Errorf("list containers of %q: %w", name, err)
		}
		c.cache.put(name, v, cs)
	}
	var o Observed
	want := ContainerName(name)
	for i := range cs {
		ct := cs[i]
		if ct.Name == want && o.Container == nil {
			o.Container = &ct
			continue
		}
		o.Strays = append(o.Strays, ct)
	}
	if ct := o.Container; ct != nil && ct.Running() && !ct.Inspected && c.notes.diedSinceStart(ct.ID) {
		in, err := c.rt.Inspect(ctx, ct.ID)
		switch {
		case errors.Is(err, docker.ErrNotFound):
			o.Container = nil
		case err != nil:
			return Observed{}, fmt.Errorf("inspect: %w", err)
		default:
			o.Container = &in
		}
	}
	c.annotate(&o)
	return o, nil
}

// inspectIfNeeded inspects a running container whose spec needs what a
// listing does not show: its start time (activeDeadline) or its health.
// Other specs cost no inspect per resync.
func (c *Controller) inspectIfNeeded(ctx context.Context, d Desired, o *Observed) error {
	ct := o.Container
	if d.Spec == nil || ct == nil || !ct.Running() || ct.Inspected {
		return nil
	}
	if d.Spec.Spec.ActiveDeadline.Duration == 0 && d.Spec.Spec.Healthcheck == nil {
		return nil
	}
	in, err := c.rt.Inspect(ctx, ct.ID)
	switch {
	case errors.Is(err, docker.ErrNotFound):
		o.Container = nil
		return nil
	case err != nil:
		return fmt.Errorf("inspect: %w", err)
	}
	o.Container = &in
	c.annotate(o)
	return nil
}

// annotate adds what the agent itself knows about the observed container.
func (c *Controller) annotate(o *Observed) {
	if o.Container == nil {
		return
	}
	o.DieSeen, o.KillSeen, o.OOMSeen = c.notes.about(o.Container.ID, o.Container.StartedAt)
	c.mu.Lock()
	o.Stopping = c.stopping[o.Container.ID]
	c.mu.Unlock()
	if o.Container.Running() {
		c.watchExit(o.Container.Labels[docker.LabelSpec], o.Container.ID)
	}
}

// Ordering against the state file. A full disk (or any commit the file
// refuses) must cost no record the agent had, and the agent must change no
// container whose change it could not record:
//
//  1. An exit is committed, with the back-off it starts, before anything
//     is done about it: decide restarts or removes a container only once
//     the stored history says its last run is recorded, and a refused
//     commit leaves that history as it was.
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
	case ActCreate, ActStart, ActRemove, ActExpire:
		return true
	}
	return false
}

// apply carries out one action. It returns what is now observed, and done
// when the reconcile is over for now.
func (c *Controller) apply(ctx context.Context, name string, d Desired, o Observed, h model.History, a Action) (Observed, bool, error) {
	if gatedByWriteErr(a.Kind) {
		if err := c.st.WriteErr(); err != nil {
			return o, true, fmt.Errorf("%s deferred until the state file takes writes: %w", a.Kind, err)
		}
	}
	switch a.Kind {
	case ActNone:
		return o, true, c.settle(name, d, o, a)

	case ActInspect:
		ct, err := c.rt.Inspect(ctx, a.ContainerID)
		if errors.Is(err, docker.ErrNotFound) {
			c.cache.dirty(name)
			o.Container = nil
			return o, false, nil
		}
		if err != nil {
			return o, true, fmt.Errorf("inspect: %w", err)
		}
		o.Container = &ct
		c.annotate(&o)
		return o, false, nil

	case ActRecordExit:
		return o, false, c.recordExit(ctx, name, d, o, h, a)

	case ActStop:
		if err := c.commitState(name, d, o, a, a.History, nil, c.event(name, model.EventNormal, "Killing",
			"Stopping container %s (%s) with grace period %s", short(a.ContainerID), strings.ToLower(a.Message), a.Grace)); err != nil {
			return o, true, err
		}
		c.stopAsync(name, a.ContainerID, a.Grace)
		return o, true, nil

	case ActRemove:
		if err := c.commitHistory(name, a.History); err != nil {
			return o, true, err
		}
		if err := c.remove(ctx, name, a.ContainerID); err != nil {
			return o, true, err
		}
		c.dropSecretFiles(name, o.Container)
		o.Container = nil
		return o, false, nil

	case ActRemoveStray:
		if err := c.commit(name, nil, nil, nil, c.event(name, model.EventWarning, "StrayRemoved",
			"Removing stray container %s", short(a.ContainerID))); err != nil {
			return o, true, err
		}
		if err := c.rt.Stop(ctx, a.ContainerID, a.Grace); err != nil && !errors.Is(err, docker.ErrNotFound) {
			return o, true, fmt.Errorf("stop stray: %w", err)
		}
		if err := c.remove(ctx, name, a.ContainerID); err != nil {
			return o, true, err
		}
		o.Strays = o.Strays[1:]
		return o, false, nil

	case ActCreate:
		ct, err := c.create(ctx, name, d, o, a)
		if err != nil || ct == nil {
			return o, true, err
		}
		o = Observed{Container: ct}
		return o, false, nil

	case ActStart:
		return c.start(ctx, name, d, o, a)

	case ActForget:
		c.forgetSecretFiles(name)
		return o, true, c.forget(name)

	case ActExpire:
		if a.ContainerID != "" {
			if err := c.remove(ctx, name, a.ContainerID); err != nil {
				return o, true, err
			}
			c.dropSecretFiles(name, o.Container)
		}
		if d.FromFile {
			// The file still asks for the spec: keep its final status.
			o.Container = nil
			return o, true, c.settle(name, d, o, Action{Phase: a.Phase, History: a.History, Message: "expired after ttlAfterFinished; container removed"})
		}
		if err := c.st.DeleteSpec(name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return o, true, fmt.Errorf("delete expired spec: %w", err)
		}
		c.emit(c.event(name, model.EventNormal, "Expired", "Finished job removed after ttlAfterFinished %s", d.Spec.Spec.TTLAfterFinished))
		return o, true, c.forget(name)
	}
	return o, true, fmt.Errorf("unknown action %v", a.Kind)
}

func (c *Controller) recordExit(ctx context.Context, name string, d Desired, o Observed, h model.History, a Action) error {
	exit := *a.Exit
	exit.LogTail = c.logTail(ctx, exit.ContainerID)
	typ, reason := model.EventNormal, "Completed"
	if !exit.Succeeded() || exit.Reason != model.ReasonCompleted {
		typ, reason = model.EventWarning, string(exit.Reason)
	}
	evs := []model.Event{c.event(name, typ, reason, "Container %s exited with code %d (%s) after %s",
		short(exit.ContainerID), exit.ExitCode, exit.Reason, exit.Duration)}
	if a.Phase == model.PhaseBackoff {
		evs = append(evs, c.event(name, model.EventWarning, "BackOff", "Back-off %s restarting failed container",
			a.RequeueAfter))
	}
	if a.Phase == model.PhaseFailed && a.Message != "" {
		evs = append(evs, c.event(name, model.EventWarning, "Failed", "%s", a.Message))
	}
	if err := c.commitState(name, d, o, a, a.History, &exit, evs...); err != nil {
		return err
	}
	c.m.Exits.WithLabelValues(string(exit.Reason)).Inc()
	if a.History.Restarts > h.Restarts {
		c.m.Restarts.Inc()
	}
	c.log.Info("container exited", "spec", name, "container", short(exit.ContainerID), "exit_code", exit.ExitCode,
		"reason", exit.Reason, "oom_killed", exit.OOMKilled, "phase", a.Phase)
	return nil
}

// logTail reads the end of a container's output for its ledger record.
func (c *Controller) logTail(ctx context.Context, id string) string {
	rc, err := c.rt.Logs(ctx, id, docker.LogOptions{Tail: fmt.Sprint(c.opts.LogTailLines)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	lim := &limitWriter{w: &buf, n: 64 << 10}
	if _, err := stdcopy.StdCopy(lim, lim, rc); err != nil && buf.Len() == 0 {
		return ""
	}
	return buf.String()
}

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	if len(p) > 0 {
		if _, err := l.w.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (c *Controller) remove(ctx context.Context, name, id string) error {
	c.cancelWait(id)
	if err := c.rt.Remove(ctx, id); err != nil {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	c.m.ContainerOperations.WithLabelValues("remove").Inc()
	c.cache.dirty(name)
	return nil
}

func (c *Controller) create(ctx context.Context, name string, d Desired, o Observed, a Action) (*docker.Container, error) {
	ps := d.Spec.Spec
	// Checked again here, not only when the spec came in: the policy may
	// have been reloaded, and a bind source re-resolved now is the one
	// Docker gets.
	binds, refusal := c.opts.Policy.Get().Admit(d.Spec)
	if len(refusal) > 0 {
		d.Refused = refusal
		return nil, c.settle(name, d, o, refused(a, d, o, a.History))
	}
	if ok, err := c.imageReady(ctx, name, d, o, &a); !ok || err != nil {
		return nil, err
	}
	if d.SecretErr != "" {
		return nil, c.fail(name, d, o, a, "SecretUnavailable", d.SecretErr)
	}
	var env map[string]string
	if d.secrets != nil {
		env = d.secrets.env
	}
	files, err := c.writeSecretFiles(name, d)
	if err != nil {
		return nil, c.fail(name, d, o, a, "SecretUnavailable", err.Error())
	}
	secOpt, err := inlineSeccompProfiles(ps.SecurityOpt)
	if err != nil {
		return nil, c.fail(name, d, o, a, "SeccompProfileUnavailable", err.Error())
	}
	labels := map[string]string{
		docker.LabelManaged:  "true",
		docker.LabelSpec:     name,
		docker.LabelSpecHash: d.Label(),
		docker.LabelInstance: c.opts.Instance,
		labelGrace:           ps.TerminationGracePeriod.Duration.String(),
		labelStopSignal:      ps.StopSignal,
	}
	if d.Label() != d.Hash {
		labels[labelDefinition] = d.Hash
	}
	cname := ContainerName(name)
	id, err := c.rt.Create(ctx, docker.CreateRequest{Name: cname, Spec: d.Spec, Labels: labels, Env: env, Files: files, SecurityOpt: secOpt, BindSources: binds})
	c.cache.dirty(name)
	if errors.Is(err, docker.ErrConflict) {
		return nil, c.conflict(ctx, name, d, o, a, cname)
	}
	if err != nil {
		if errors.Is(err, docker.ErrUnavailable) {
			return nil, err
		}
		return nil, c.fail(name, d, o, a, "CreateFailed", err.Error())
	}
	c.m.ContainerOperations.WithLabelValues("create").Inc()
	ct := &docker.Container{ID: id, Name: cname, Image: ps.Image, Labels: labels, State: "created"}
	if err := c.commitState(name, d, Observed{Container: ct}, a, a.History, nil,
		c.event(name, model.EventNormal, "Created", "Created container %s", short(id))); err != nil {
		return nil, err
	}
	return ct, nil
}

// conflict handles a create refused because the name is taken: our own
// container (listed late) is adopted on the next pass; anyone else's is
// reported and left alone.
func (c *Controller) conflict(ctx context.Context, name string, d Desired, o Observed, a Action, cname string) error {
	holder, err := c.rt.Inspect(ctx, cname)
	if err == nil && holder.Labels[docker.LabelManaged] == "true" &&
		holder.Labels[docker.LabelInstance] == c.opts.Instance && holder.Labels[docker.LabelSpec] == name {
		return fmt.Errorf("container %s exists but was not listed yet: %w", cname, docker.ErrConflict)
	}
	a.Phase = model.PhaseError
	msg := fmt.Sprintf("a container not managed by this agent holds the name %s; remove or rename it", cname)
	st := c.status(name, d, o, a)
	st.Conflict = cname
	return c.commit(name, &st, nil, nil, c.event(name, model.EventWarning, "NameConflict", "%s", msg))
}

// fail records a failure that retrying soon will not fix.
func (c *Controller) fail(name string, d Desired, o Observed, a Action, reason, msg string) error {
	a.Phase, a.Message = model.PhaseError, msg
	c.log.Warn("cannot create container", "spec", name, "reason", reason, "message", msg)
	return c.commitState(name, d, o, a, a.History, nil, c.event(name, model.EventWarning, reason, "%s", msg))
}

// maxSeccompProfile bounds a profile file; Docker's default is about 20 KiB.
const maxSeccompProfile = 1 << 20

// inlineSeccompProfiles reads the profile files that securityOpt names by
// path (seccomp=/etc/...json, allowed by allowedSeccompProfiles) into the
// inline JSON the daemon's API expects: the docker CLI does the same on
// the client side. It returns nil when there is none, so the spec's
// options stand.
func inlineSeccompProfiles(opts []string) ([]string, error) {
	var out []string
	for i, opt := range opts {
		key, val := spec.SplitSecurityOpt(opt)
		if key != "seccomp" || !filepath.IsAbs(val) {
			continue
		}
		if out == nil {
			out = slices.Clone(opts)
		}
		f, err := os.Open(val)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(f, maxSeccompProfile+1))
		f.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("seccomp profile %s: %w", val, err)
		case len(raw) > maxSeccompProfile:
			return nil, fmt.Errorf("seccomp profile %s is over %d bytes", val, maxSeccompProfile)
		case !json.Valid(raw):
			return nil, fmt.Errorf("seccomp profile %s is not JSON", val)
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, raw)
		out[i] = "seccomp=" + compact.String()
	}
	return out, nil
}

func (c *Controller) start(ctx context.Context, name string, d Desired, o Observed, a Action) (Observed, bool, error) {
	h := a.History
	h.ExitRecorded = false
	h.Pull = nil // it is about to run: its image is in place
	if err := c.commitHistory(name, h); err != nil {
		return o, true, err
	}
	err := c.rt.Start(ctx, a.ContainerID)
	c.cache.dirty(name)
	if errors.Is(err, docker.ErrNotFound) {
		o.Container = nil
		return o, false, nil
	}
	if errors.Is(err, docker.ErrUnavailable) {
		return o, true, err
	}
	if err != nil {
		// The daemon refused to run it (bad command, missing mount source...):
		// that is a failed run, under the restart policy like any other.
		ct, ierr := c.rt.Inspect(ctx, a.ContainerID)
		if ierr != nil {
			return o, true, fmt.Errorf("start: %w (inspect: %v)", err, ierr)
		}
		c.log.Warn("container start refused; counted as a failed run", "spec", name, "container", short(a.ContainerID), "err", err)
		ct.State, ct.Error = "exited", joinText(ct.Error, err.Error())
		// A container restarted in place still shows its previous run, whose
		// exit is recorded: taken for that run, the refusal would be retried
		// at once, forever, with no backoff and no record.
		if !ct.StartedAt.After(a.History.LastStartedAt) {
			ct.StartedAt, ct.ExitCode, ct.OOMKilled = c.opts.Now(), 0, false
		}
		if ct.ExitCode == 0 {
			ct.ExitCode = 128
		}
		if ct.FinishedAt.Before(ct.StartedAt) {
			ct.FinishedAt = ct.StartedAt
		}
		o.Container = &ct
		c.annotate(&o) // what was seen of the previous run is not this one's
		return o, false, nil
	}
	c.m.ContainerOperations.WithLabelValues("start").Inc()
	c.notes.record(docker.Event{Action: "start", ContainerID: a.ContainerID, Time: c.opts.Now()})
	ct := *o.Container
	ct.State, ct.StartedAt, ct.Inspected = "running", c.opts.Now(), false
	o.Container = &ct
	a.Phase, a.History = model.PhaseRunning, h
	if err := c.commitState(name, d, o, a, h, nil,
		c.event(name, model.EventNormal, "Started", "Started container %s", short(ct.ID))); err != nil {
		return o, true, err
	}
	c.watchExit(name, ct.ID)
	c.observeConvergence(name)
	return o, false, nil
}

// settle writes the status (and history) when they changed; a no-op
// reconcile writes nothing.
func (c *Controller) settle(name string, d Desired, o Observed, a Action) error {
	if a.Phase == model.PhaseRunning || a.Phase == model.PhaseSucceeded {
		c.observeConvergence(name)
	}
	if d.Spec == nil && o.Container == nil {
		return nil
	}
	return c.commitState(name, d, o, a, a.History, nil)
}

func (c *Controller) forget(name string) error {
	if err := c.st.DeleteState(name); err != nil {
		return fmt.Errorf("drop state: %w", err)
	}
	c.cache.forget(name)
	c.pulls.forget(name)
	c.mu.Lock()
	delete(c.phases, name)
	delete(c.changedAt, name)
	c.mu.Unlock()
	c.updatePhaseGauge()
	return nil
}

// commitHistory writes h before a Docker call that depends on it, unless
// the store holds it already.
func (c *Controller) commitHistory(name string, h model.History) error {
	if old, err := c.st.GetHistory(name); err == nil && historyEqual(old, h) {
		return nil
	}
	if _, _, err := c.st.Commit(store.Change{Name: name, History: &h}); err != nil {
		return fmt.Errorf("commit history of %q: %w", name, err)
	}
	return nil
}

// commitState writes status, history, an exit and events in one
// transaction when anything changed, then publishes the events.
func (c *Controller) commitState(name string, d Desired, o Observed, a Action, h model.History, exit *model.ContainerExit, evs ...model.Event) error {
	st := c.status(name, d, o, a)
	if exit != nil {
		st.LastExit = exit
	}
	old, err := c.st.GetStatus(name)
	var hist *model.History
	oldH, _ := c.st.GetHistory(name)
	if !historyEqual(oldH, h) {
		hist = &h
	}
	statusSame := err == nil && statusEqual(old, st)
	var refusedRules []string
	if st.Phase == model.PhaseRefused && (err != nil || old.Phase != model.PhaseRefused) {
		// Once per transition into Refused, not on every resync.
		refusedRules = d.Refused.Rules()
		evs = append(evs, c.event(name, model.EventWarning, "Refused", "%s", st.Message))
		c.log.Warn("spec refused by policy", "spec", name, "rules", refusedRules, "message", st.Message)
	}
	if statusSame && hist == nil && exit == nil && len(evs) == 0 {
		c.setPhase(name, st.Phase)
		return nil
	}
	if err == nil && old.LastExit != nil && st.LastExit == nil {
		st.LastExit = old.LastExit
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
	if st != nil {
		c.setPhase(name, st.Phase)
	}
	if c.pub != nil && len(stored) > 0 {
		c.pub.Publish(stored...)
	}
	return nil
}

func (c *Controller) emit(ev model.Event) {
	_ = c.commit(ev.Spec, nil, nil, nil, ev)
}

func (c *Controller) status(name string, d Desired, o Observed, a Action) model.Status {
	st := model.Status{
		Name:       name,
		Phase:      a.Phase,
		Message:    a.Message,
		SpecHash:   d.Hash,
		Restarts:   a.History.Restarts,
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
		}
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
		a.Restarts == b.Restarts && a.Conflict == b.Conflict && a.FinishedAt.Equal(b.FinishedAt)
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
	return a.SpecHash == b.SpecHash && a.Attempts == b.Attempts && a.Restarts == b.Restarts &&
		a.NextTryAt.Equal(b.NextTryAt) && a.LastContainerID == b.LastContainerID &&
		a.LastStartedAt.Equal(b.LastStartedAt) && a.ExitRecorded == b.ExitRecorded &&
		a.Done == b.Done && a.Succeeded == b.Succeeded && a.FinishedAt.Equal(b.FinishedAt)
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

func (c *Controller) setPhase(name string, p model.Phase) {
	c.mu.Lock()
	changed := c.phases[name] != p
	c.phases[name] = p
	c.mu.Unlock()
	if changed {
		c.updatePhaseGauge()
	}
}

func (c *Controller) updatePhaseGauge() {
	c.mu.Lock()
	counts := map[model.Phase]int{}
	for _, p := range c.phases {
		counts[p]++
	}
	c.mu.Unlock()
	for _, p := range model.Phases {
		c.m.Specs.WithLabelValues(string(p)).Set(float64(counts[p]))
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

// why says in words why decide chose a, for the one log line per decision.
func why(a Action, d Desired, o Observed) string {
	oldHash := o.Container != nil && d.Spec != nil && !d.current(o.Container)
	switch a.Kind {
	case ActCreate:
		return "the spec has no container"
	case ActStart:
		if o.Container != nil && o.Container.State == "created" {
			return "container created but not started"
		}
		return "restart policy " + string(d.Spec.Spec.RestartPolicy)
	case ActRecordExit:
		return fmt.Sprintf("container exited with code %d (%s)", a.Exit.ExitCode, a.Exit.Reason)
	case ActRemove:
		switch {
		case d.Spec == nil:
			return "spec deleted"
		case oldHash:
			return "spec changed"
		case o.Container != nil && o.Container.Error != "":
			return "the daemon refused to start it; the next try gets a fresh container"
		}
		return "run finished and removeOnExit is set"
	case ActForget:
		return "spec and container are gone"
	case ActExpire:
		return "ttlAfterFinished passed"
	}
	return a.Message
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
