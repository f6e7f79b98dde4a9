package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// List returns all containers, running or not, carrying every label in sel,
// in one daemon call.
func (c *Client) List(ctx context.Context, sel map[string]string) ([]Container, error) {
	var list []container.Summary
	err := c.do(ctx, OpList, func(ctx context.Context) (err error) {
		list, err = c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilters(sel)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(list))
	for _, s := range list {
		var name string
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, Container{
			ID: s.ID, Name: name, Image: s.Image, ImageID: s.ImageID, Labels: s.Labels, State: s.State,
			Created: time.Unix(s.Created, 0),
		})
	}
	return out, nil
}

func labelFilters(sel map[string]string) filters.Args {
	args := filters.NewArgs()
	for k, v := range sel {
		args.Add("label", k+"="+v)
	}
	return args
}

// Inspect returns one container; ErrNotFound when it is gone.
func (c *Client) Inspect(ctx context.Context, id string) (Container, error) {
	var resp container.InspectResponse
	err := c.do(ctx, OpInspect, func(ctx context.Context) (err error) {
		resp, err = c.api.ContainerInspect(ctx, id)
		return err
	})
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	return fromInspect(resp), nil
}

func fromInspect(r container.InspectResponse) Container {
	ct := Container{Inspected: true}
	if r.ContainerJSONBase != nil {
		ct.ID = r.ID
		ct.Name = strings.TrimPrefix(r.Name, "/")
		ct.Created = parseDockerTime(r.Created)
		ct.ImageID = r.Image
	}
	if r.Config != nil {
		ct.Image = r.Config.Image
		ct.Labels = r.Config.Labels
	}
	if r.ContainerJSONBase == nil || r.State == nil {
		return ct
	}
	st := r.State
	ct.State = st.Status
	ct.ExitCode = st.ExitCode
	ct.OOMKilled = st.OOMKilled
	ct.Error = st.Error
	ct.StartedAt = parseDockerTime(st.StartedAt)
	ct.FinishedAt = parseDockerTime(st.FinishedAt)
	ct.Pid = st.Pid
	if st.Health != nil {
		ct.Health = string(st.Health.Status)
	}
	return ct
}

// parseDockerTime reads the daemon's RFC 3339 times; Docker writes
// 0001-01-01T00:00:00Z for "never", which becomes the zero time.
func parseDockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() {
		return time.Time{}
	}
	return t
}

// Create creates a container (not started). A name already taken returns
// an error wrapping ErrConflict. Env values are secrets: they are never
// logged.
func (c *Client) Create(ctx context.Context, req CreateRequest) (string, error) {
	cfg, host, netCfg, err := BuildConfig(req)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", req.Name, err)
	}
	var resp container.CreateResponse
	err = c.do(ctx, OpCreate, func(ctx context.Context) (err error) {
		resp, err = c.api.ContainerCreate(ctx, cfg, host, netCfg, nil, req.Name)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", req.Name, err)
	}
	for _, w := range resp.Warnings {
		c.log.Warn("docker warned on create", "container", req.Name, "warning", w)
	}
	c.log.Debug("container created", "container", req.Name, "id", resp.ID, "image", cfg.Image)
	return resp.ID, nil
}

// Start starts a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	err := c.do(ctx, OpStart, func(ctx context.Context) error {
		return c.api.ContainerStart(ctx, id, container.StartOptions{})
	})
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Stop sends the stop signal chosen at create time, then SIGKILL after
// grace. Docker counts grace in whole seconds, so a sub-second grace rounds
// up (500ms waits 1s): a process never gets less time than promised. The
// call's deadline is the grace period plus the stop timeout.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := graceSeconds(grace)
	g := time.Duration(secs) * time.Second
	err := c.call(ctx, OpStop, g+c.timeouts.with(OpStop), g+hangAfter, func(ctx context.Context) error {
		return c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	})
	if err != nil {
		return fmt.Errorf("stop container %s (grace %ds): %w", id, secs, err)
	}
	return nil
}

// Remove removes a container, killing it if needed. Named volumes stay:
// they hold data the next container of the spec expects to find.
func (c *Client) Remove(ctx context.Context, id string) error {
	err := c.do(ctx, OpRemove, func(ctx context.Context) error {
		return c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: false})
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
