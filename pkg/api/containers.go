package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/store"
)

// Runtime is what the API needs of Docker: it finds a spec's container by
// its labels, inspects it, reads its logs and runs commands in it.
// *docker.Client is one.
type Runtime interface {
	List(ctx context.Context, sel map[string]string) ([]docker.Container, error)
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Logs(ctx context.Context, id string, opts docker.LogOptions) (io.ReadCloser, error)
	Exec(ctx context.Context, id string, cmd []string) (docker.ExecResult, error)
}

var _ Runtime = (*docker.Client)(nil)

// container finds the spec's container by this agent's ownership labels,
// never by name alone: a foreign container may hold the name. When there
// are several (a stray beside the current one), the one with the
// deterministic name, else the newest, is the spec's.
func (s *server) container(ctx context.Context, name string) (Runtime, docker.Container, error) {
	rt := s.Runtime()
	if rt == nil {
		return nil, docker.Container{}, fmt.Errorf("the agent is not connected to the Docker daemon yet; try again shortly: %w", docker.ErrUnavailable)
	}
	cs, err := rt.List(ctx, ownership.SpecSelector(s.Instance, name))
	if err != nil {
		return nil, docker.Container{}, err
	}
	if len(cs) == 0 {
		return nil, docker.Container{}, s.noContainer(name)
	}
	return rt, pick(name, cs), nil
}

func pick(name string, cs []docker.Container) docker.Container {
	want := ownership.ContainerName(name)
	best := cs[0]
	for _, c := range cs[1:] {
		bestNamed, named := best.Name == want, c.Name == want
		if named && !bestNamed || named == bestNamed && c.Created.After(best.Created) {
			best = c
		}
	}
	return best
}

// noContainer says why a spec has no container, or that the spec is unknown.
func (s *server) noContainer(name string) error {
	if err := s.known(name); err != nil {
		return err
	}
	msg := fmt.Sprintf("spec %q has no container now", name)
	switch st, err := s.Store.GetStatus(name); {
	case err == nil && st.Message != "":
		msg += fmt.Sprintf(" (%s: %s)", st.Phase, st.Message)
	case err == nil && st.Phase != "":
		msg += fmt.Sprintf(" (%s)", st.Phase)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	return fail(errdefs.ErrNotFound, "", "%s", msg)
}

func (s *server) inspect(w http.ResponseWriter, r *http.Request, name string) error {
	rt, c, err := s.container(r.Context(), name)
	if err != nil {
		return err
	}
	got, err := rt.Inspect(r.Context(), c.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, containerView(got))
	return nil
}

// containerView is the wire form of what Docker reported.
func containerView(c docker.Container) Container {
	return Container{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, Labels: c.Labels, State: c.State, Created: c.Created,
		ExitCode: c.ExitCode, OOMKilled: c.OOMKilled, Error: c.Error, StartedAt: c.StartedAt,
		FinishedAt: c.FinishedAt, Health: c.Health, Pid: c.Pid}
}

// exec runs a command in the spec's running container and answers with its
// output and exit code once it ends (or the client gives up).
func (s *server) exec(w http.ResponseWriter, r *http.Request, name string) error {
	var req ExecRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return fail(errBadRequest, "", "exec body: %v (send {\"command\": [\"ls\", \"-l\"]})", err)
	}
	// Reading the body to its end is also what lets the server watch the
	// connection, and end the request's context, when the client leaves.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return fail(errBadRequest, "", "exec body: data after the JSON object")
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return fail(errBadRequest, "command", "command is required (send {\"command\": [\"ls\", \"-l\"]})")
	}
	rt, c, err := s.container(r.Context(), name)
	if err != nil {
		return err
	}
	if !c.Running() {
		return fail(errdefs.ErrConflict, "", "the container of spec %q is %s, not running", name, c.State)
	}
	select {
	case s.execs <- struct{}{}:
		defer func() { <-s.execs }()
	default:
		return fail(errTooMany, "", "%d execs are already running, the agent's limit (--exec-max-concurrent); try again when one ends", cap(s.execs))
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), s.ExecMaxDuration,
		fail(errTooLong, "", "the command ran longer than the agent's limit of %s (--exec-max-duration); its output is lost and it may still run in the container", s.ExecMaxDuration))
	defer cancel()
	res, err := rt.Exec(ctx, c.ID, req.Command)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ExecResult{ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr})
	return nil
}
