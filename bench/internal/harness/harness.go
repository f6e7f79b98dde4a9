// Package harness runs the benchmark's real processes: it builds the agent
// binary and the box image, starts agents on temporary directories, speaks
// to the local Docker daemon, follows its events and removes everything a
// run created. Every container of a run carries the label
// reconciler.bench=<run id>, and only containers with it are ever removed.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/pkg/images"
)

// LabelRun marks every container a benchmark run creates; its value is the
// run id.
const LabelRun = "reconciler.bench"

// Harness is one benchmark run's connection to the daemon and its files.
type Harness struct {
	Cli      *client.Client
	RunID    string
	Repo     string // the reconciler module's directory
	Work     string // temporary directory of this run
	AgentBin string
	Log      io.Writer
	// KeepWork leaves the work directory (agent logs, state files) in
	// place on Close, for a look after a failure.
	KeepWork bool

	mu     sync.Mutex
	agents []*Agent
}

// New connects to the local daemon and makes the run's work directory.
func New(ctx context.Context, log io.Writer) (*Harness, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("the benchmark needs a running Docker daemon: %w", err)
	}
	repo, err := ModuleDir(ctx)
	if err != nil {
		cli.Close()
		return nil, err
	}
	work, err := os.MkdirTemp("", "reconbench-")
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("work directory: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &Harness{Cli: cli, RunID: "rb" + hex.EncodeToString(b), Repo: repo, Work: work, Log: log}, nil
}

// ModuleDir asks the go command where the reconciler module is, so the
// program works from any directory of the bench module.
func ModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/reconciler/reconciler").Output()
	if err != nil {
		return "", fmt.Errorf("find the reconciler module (run from the bench module): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Prepare builds the agent binary into the work directory and makes sure
// the box image is current.
func (h *Harness) Prepare(ctx context.Context) error {
	h.AgentBin = filepath.Join(h.Work, "reconciler")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", h.AgentBin, "./cmd/reconciler")
	build.Dir = h.Repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the agent: %w\n%s", err, out)
	}
	if err := images.EnsureBox(ctx, h.Cli, images.BoxImage, h.Log); err != nil {
		return fmt.Errorf("box image: %w", err)
	}
	return nil
}

// Labels are the labels every container of this run carries.
func (h *Harness) Labels() map[string]string {
	return map[string]string{LabelRun: h.RunID}
}

// RunFilter selects this run's containers.
func (h *Harness) RunFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelRun+"="+h.RunID))
}

// RemoveAll force-removes every container of this run and returns how many
// it removed.
func (h *Harness) RemoveAll(ctx context.Context) (int, error) {
	cs, err := h.Cli.ContainerList(ctx, container.ListOptions{All: true, Filters: h.RunFilter()})
	if err != nil {
		return 0, fmt.Errorf("list this run's containers: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4) // removal is daemon work too: more in flight only queues
	for _, c := range cs {
		g.Go(func() error {
			err := h.Cli.ContainerRemove(gctx, c.ID, container.RemoveOptions{Force: true})
			if err != nil && !client.IsErrNotFound(err) {
				return fmt.Errorf("remove %s: %w", c.ID[:12], err)
			}
			return nil
		})
	}
	return len(cs), g.Wait()
}

// Close stops every agent still running, removes this run's containers and
// its work directory. It runs on Ctrl-C too, with a fresh context.
func (h *Harness) Close(ctx context.Context) error {
	h.mu.Lock()
	agents := h.agents
	h.agents = nil
	h.mu.Unlock()
	var errs []error
	for _, a := range agents {
		if err := a.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	n, err := h.RemoveAll(ctx)
	errs = append(errs, err)
	if n > 0 {
		fmt.Fprintf(h.Log, "removed %d containers of run %s\n", n, h.RunID)
	}
	if h.KeepWork {
		fmt.Fprintf(h.Log, "kept the work directory %s (agent logs and state files)\n", h.Work)
	} else {
		errs = append(errs, os.RemoveAll(h.Work))
	}
	h.Cli.Close()
	return errors.Join(errs...)
}
