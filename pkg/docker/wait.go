package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// fallbackTimeout bounds the inspect that stands in for a failed wait.
const fallbackTimeout = 10 * time.Second

// Wait blocks until the container is not running and returns how it ended.
// Only inspect knows OOMKilled and the run's times, so it follows every
// wait; when the wait itself fails (stream cut, daemon restart, ctx
// cancelled) inspect alone decides: an exit that already happened is still
// reported, a container still running gives the wait's error. Reason is
// left to the controller.
func (c *Client) Wait(ctx context.Context, id string) (model.ContainerExit, error) {
	start := time.Now()
	resc, errc := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	var (
		res     container.WaitResponse
		waitErr error
	)
	select {
	case res = <-resc:
	case waitErr = <-errc:
	}
	c.report("wait", start, waitErr)

	// A cancelled ctx must not hide an exit that is already there.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fallbackTimeout)
	defer cancel()
	ct, inspectErr := c.Inspect(ictx, id)
	switch {
	case waitErr == nil && inspectErr != nil:
		// Removed right after its exit: the wait's answer is all there is.
		c.log.Debug("container gone after wait", "id", id, "err", inspectErr)
		exit := model.ContainerExit{ContainerID: id, ExitCode: int(res.StatusCode)}
		exit.Signal = SignalName(exit.ExitCode)
		if res.Error != nil {
			exit.Error = res.Error.Message
		}
		return exit, nil
	case waitErr != nil && errors.Is(inspectErr, ErrNotFound):
		return model.ContainerExit{}, fmt.Errorf("wait: %w", inspectErr)
	case waitErr != nil && inspectErr != nil:
		return model.ContainerExit{}, fmt.Errorf("wait for container %s failed (%v) and so did the fallback: %w",
			id, waitErr, inspectErr)
	case waitErr != nil && ct.Running():
		return model.ContainerExit{}, fmt.Errorf("wait for container %s: %w", id, classify(waitErr))
	case waitErr != nil:
		c.log.Info("wait failed, exit taken from inspect", "id", id, "err", waitErr)
	}
	exit := exitOf(ct)
	if waitErr == nil {
		// The wait's code belongs to the run that ended even if someone
		// started the container again before the inspect.
		exit.ExitCode = int(res.StatusCode)
		exit.Signal = SignalName(exit.ExitCode)
	}
	if exit.ExitCode == 137 && !exit.OOMKilled {
		exit.OOMKilled = c.oomLogged(ictx, ct)
	}
	return exit, nil
}

func exitOf(ct Container) model.ContainerExit {
	exit := model.ContainerExit{
		ContainerID: ct.ID,
		SpecName:    ct.Labels[ownership.LabelSpec],
		SpecHash:    ct.Labels[ownership.LabelSpecHash],
		ExitCode:    ct.ExitCode,
		Signal:      SignalName(ct.ExitCode),
		OOMKilled:   ct.OOMKilled,
		Error:       ct.Error,
		StartedAt:   ct.StartedAt,
		FinishedAt:  ct.FinishedAt,
	}
	if !ct.StartedAt.IsZero() && !ct.FinishedAt.Before(ct.StartedAt) {
		exit.Duration = ct.FinishedAt.Sub(ct.StartedAt).Round(time.Millisecond).String()
	}
	return exit
}

// oomSlack is how long after a container's exit the daemon may still log
// its oom event.
const oomSlack = time.Second

// oomLogged looks for an oom event of the container's run. Docker 20.10
// sets OOMKilled only when containerd's OOM notice arrives before the exit
// notice; when it arrives just after, only the event tells. The search
// lasts until oomSlack after the exit, so a SIGKILL exit (137) without the
// flag is reported up to that much later.
func (c *Client) oomLogged(ctx context.Context, ct Container) bool {
	if ct.StartedAt.IsZero() || ct.FinishedAt.IsZero() {
		return false
	}
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("container", ct.ID),
		filters.Arg("event", string(events.ActionOOM)),
	)
	start := time.Now()
	msgs, errs := c.api.Events(ctx, events.ListOptions{
		// Docker stamps StartedAt once the process already runs; an early
		// OOM can be logged before it.
		Since:   unixText(ct.StartedAt.Add(-time.Second)),
		Until:   unixText(ct.FinishedAt.Add(oomSlack)),
		Filters: f,
	})
	select {
	case <-msgs:
		c.report("events", start, nil)
		return true
	case err := <-errs:
		if errors.Is(err, io.EOF) {
			err = nil
		}
		c.report("events", start, err)
		if err != nil {
			c.log.Warn("cannot tell whether an exit was an OOM kill", "id", ct.ID, "err", err)
		}
		return false
	}
}
