package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/pkg/model"
)

// fallbackTimeout bounds the inspect that stands in for a failed wait.
const fallbackTimeout = 10 * time.Second

// Wait blocks until the container is not running and returns the exit
// code the daemon gave the wait. It is the signal that a run ended, not its
// record: the controller builds the one record of every exit from an
// inspect, and alone judges whether a SIGKILL was an OOM kill. When the
// wait itself fails (stream cut, daemon restart, ctx cancelled), inspect
// decides: an exit that already happened is still reported, a container
// still running gives the wait's error.
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
	if waitErr == nil {
		exit := model.ContainerExit{ContainerID: id, ExitCode: int(res.StatusCode), Signal: SignalName(int(res.StatusCode))}
		if res.Error != nil {
			exit.Error = res.Error.Message
		}
		return exit, nil
	}

	// A cancelled ctx must not hide an exit that is already there.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fallbackTimeout)
	defer cancel()
	ct, inspectErr := c.Inspect(ictx, id)
	switch {
	case errors.Is(inspectErr, ErrNotFound):
		return model.ContainerExit{}, fmt.Errorf("wait: %w", inspectErr)
	case inspectErr != nil:
		return model.ContainerExit{}, fmt.Errorf("wait for container %s failed (%v) and so did the fallback: %w",
			id, waitErr, inspectErr)
	case ct.Running():
		return model.ContainerExit{}, fmt.Errorf("wait for container %s: %w", id, classify(waitErr))
	}
	c.log.Info("wait failed, exit taken from inspect", "id", id, "err", waitErr)
	return model.ContainerExit{ContainerID: id, ExitCode: ct.ExitCode, Signal: SignalName(ct.ExitCode),
		Error: ct.Error, StartedAt: ct.StartedAt, FinishedAt: ct.FinishedAt}, nil
}
