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

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// reasonCreateFailed is the reason of a create the daemon refused, as
// opposed to one the agent could not prepare (a secret, a workspace...).
const reasonCreateFailed = "CreateFailed"

// create makes the spec's container; on success s.o shows it, created.
func (c *Controller) create(ctx context.Context, s *step) (bool, error) {
	name, d := s.name, s.d
	ps := d.Spec.Spec
	// Checked again here, not only when the spec came in: the policy may
	// have been reloaded, and a bind source re-resolved now is the one
	// Docker gets.
	binds, refusal := c.opts.Policy.Get().Admit(d.Spec)
	if len(refusal) > 0 {
		s.d.Refused = refusal
		s.a = refused(s.a, s.d, s.o, s.a.History)
		return true, c.settle(s)
	}
	img := s.a.Image
	if img == nil {
		return true, fmt.Errorf("%s of %q decided before its image was observed", s.a.Kind, name)
	}
	switch img.Step {
	case ImagePull:
		return true, c.startPull(ctx, s)
	case ImageBackOff:
		return true, c.commitState(s, nil)
	}
	if img.DropPin {
		s.d.ImageID = "" // the reference's image is adopted once its container runs
	}
	image := img.ImageID
	var env map[string]string
	if d.secrets != nil {
		env = d.secrets.env
	}
	files, err := c.writeSecretFiles(name, d)
	if err != nil {
		s.o.CreateFailed = &Failure{Reason: "SecretUnavailable", Message: err.Error()}
		return false, nil
	}
	wsDir, wsEvents, err := c.prepareWorkspace(name, d)
	if err != nil {
		s.o.CreateFailed = &Failure{Reason: "WorkspaceUnavailable", Message: err.Error()}
		return false, nil
	}
	secOpt, err := inlineSeccompProfiles(ps.SecurityOpt)
	if err != nil {
		s.o.CreateFailed = &Failure{Reason: "SeccompProfileUnavailable", Message: err.Error()}
		return false, nil
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
	if s.a.Kind == ActCreateNext {
		cname = NextName(name) // start-first: beside the old container (rollout.go)
	}
	req := docker.CreateRequest{Name: cname, Spec: d.Spec, Labels: labels, Env: env, Files: files, SecurityOpt: secOpt, BindSources: binds, Workspace: wsDir, Image: image}
	if f := c.withEgress(ctx, name, &req); f != nil {
		s.o.CreateFailed = f
		return false, nil
	}
	id, err := c.rt.Create(ctx, req)
	c.cache.dirty(name)
	if errors.Is(err, docker.ErrConflict) {
		return c.nameTaken(ctx, s, cname)
	}
	if err != nil {
		if errors.Is(err, docker.ErrUnavailable) {
			return true, err
		}
		s.o.CreateFailed = &Failure{Reason: reasonCreateFailed, Message: err.Error()}
		return false, nil
	}
	c.m.ContainerOperations.WithLabelValues("create").Inc()
	c.starts.created(id)
	ct := &docker.Container{ID: id, Name: cname, Image: ps.Image, ImageID: image, Labels: labels, State: "created"}
	if s.a.Kind == ActCreateNext {
		s.o.Next = ct
	} else {
		s.o = Observed{Container: ct}
	}
	created := c.event(name, model.EventNormal, "Created", "Created container %s", short(id))
	if err := c.commitState(s, nil, append(wsEvents, created)...); err != nil {
		return true, err
	}
	return false, nil
}

// nameTaken finds out who holds the name a create was refused for: our
// own container, listed late, is retried (and adopted by the next
// listing); anyone else's is a fact for decide, which reports it.
func (c *Controller) nameTaken(ctx context.Context, s *step, cname string) (bool, error) {
	holder, err := c.rt.Inspect(ctx, cname)
	if err == nil && holder.Labels[docker.LabelManaged] == "true" &&
		holder.Labels[docker.LabelInstance] == c.opts.Instance && holder.Labels[docker.LabelSpec] == s.name {
		return true, fmt.Errorf("container %s exists but was not listed yet: %w", cname, docker.ErrConflict)
	}
	s.o.NameHeld = cname
	return false, nil
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

// start starts the existing container.
func (c *Controller) start(ctx context.Context, s *step) (bool, error) {
	name, a := s.name, &s.a
	h := a.History
	h.ExitRecorded = false
	h.Pull = nil // it is about to run: its image is in place
	if err := c.commitHistory(name, h); err != nil {
		return true, err
	}
	began := c.opts.Now()
	c.starts.trying(a.ContainerID, began)
	err := c.rt.Start(ctx, a.ContainerID)
	c.cache.dirty(name)
	if errors.Is(err, docker.ErrNotFound) {
		c.starts.forget(a.ContainerID)
		s.o.Container = nil
		return false, nil
	}
	if errors.Is(err, docker.ErrUnavailable) {
		return true, err // it may start yet: the next try is held
	}
	if err != nil {
		c.starts.forget(a.ContainerID) // refused: it is recorded and removed
		// The daemon refused to run it: decide makes a failed run of that,
		// from the container as it is now.
		ct, ierr := c.rt.Inspect(ctx, a.ContainerID)
		if ierr != nil {
			return true, fmt.Errorf("start: %w (inspect: %v)", err, ierr)
		}
		c.log.Warn("container start refused; counted as a failed run", "spec", name, "container", short(a.ContainerID), "err", err)
		s.o.Container, s.o.StartRefused, s.o.StartRefusedAt = &ct, err.Error(), c.opts.Now()
		c.annotate(&s.o)
		return false, nil
	}
	c.m.ContainerOperations.WithLabelValues("start").Inc()
	c.starts.forget(a.ContainerID)
	c.startLag.Store(int64(c.opts.Now().Sub(began)))
	if a.History.Restarts > s.h.Restarts {
		c.m.Restarts.Inc() // restarted before its exit's record is complete
	}
	c.notes.record(docker.Event{Action: "start", ContainerID: a.ContainerID, Time: c.opts.Now()})
	ct := *s.o.Container
	ct.State, ct.StartedAt, ct.Inspected = "running", c.opts.Now(), false
	s.o.Container = &ct
	a.Phase, a.History = model.PhaseRunning, h
	if err := c.commitState(s, nil, c.event(name, model.EventNormal, "Started", "Started container %s", short(ct.ID))); err != nil {
		return true, err
	}
	c.watchExit(name, ct.ID)
	c.observeConvergence(name)
	return false, nil
}
