package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/spec"
)

// SpecYAML renders a spec for the box image carrying the run label; more
// are raw YAML lines put under spec:.
func (h *Harness) SpecYAML(name string, args []string, more ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  labels: {%s: %s}\n",
		spec.APIVersion, spec.KindContainer, name, LabelRun, h.RunID)
	fmt.Fprintf(&b, "spec:\n  image: %s\n  args: [", images.BoxImage)
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", a)
	}
	b.WriteString("]\n")
	for _, m := range more {
		b.WriteString("  " + m + "\n")
	}
	return b.String()
}

// Raw creates containers directly through the API with exactly the
// options the agent would give the same spec, so a baseline differs from
// the agent only in who makes the calls.
type Raw struct {
	Config  *container.Config
	Host    *container.HostConfig
	network *network.NetworkingConfig
	cli     *client.Client
}

// RawFor decodes a spec rendered by SpecYAML and builds its create options
// as the agent does (docker.BuildConfig), without the agent's ownership
// labels.
func (h *Harness) RawFor(yaml string) (*Raw, error) {
	specs, err := spec.Decode("bench.yaml", []byte(yaml))
	if err != nil {
		return nil, fmt.Errorf("bench spec: %w", err)
	}
	cfg, host, netw, err := docker.BuildConfig(docker.CreateRequest{Spec: specs[0], Labels: h.Labels()})
	if err != nil {
		return nil, fmt.Errorf("bench spec: %w", err)
	}
	return &Raw{Config: cfg, Host: host, network: netw, cli: h.Cli}, nil
}

// Create creates a container named name.
func (r *Raw) Create(ctx context.Context, name string) (string, error) {
	resp, err := r.cli.ContainerCreate(ctx, r.Config, r.Host, r.network, nil, name)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	return resp.ID, nil
}

// Start starts id and returns how long the call took.
func (h *Harness) Start(ctx context.Context, id string) (time.Duration, error) {
	t := time.Now()
	if err := h.Cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return 0, fmt.Errorf("start %s: %w", id[:12], err)
	}
	return time.Since(t), nil
}

// RunTimes are the start of a container's current run and the end of its
// previous one, by the daemon's clock: the daemon keeps FinishedAt of the
// last exit while the container runs again.
func (h *Harness) RunTimes(ctx context.Context, id string) (started, finished time.Time, err error) {
	in, err := h.Cli.ContainerInspect(ctx, id)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("inspect %s: %w", id[:12], err)
	}
	started, err1 := time.Parse(time.RFC3339Nano, in.State.StartedAt)
	finished, err2 := time.Parse(time.RFC3339Nano, in.State.FinishedAt)
	if err1 != nil || err2 != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("inspect %s: unreadable times %q, %q", id[:12], in.State.StartedAt, in.State.FinishedAt)
	}
	return started, finished, nil
}
