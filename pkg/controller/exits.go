package controller

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

// recordExit commits the ledger record of a run that ended, with the tail
// of its output, the events it gives rise to and the history that follows.
func (c *Controller) recordExit(ctx context.Context, s *step) error {
	name, a := s.name, s.a
	exit := *a.Exit
	exit.LogTail = c.logTail(ctx, exit.ContainerID, logsUntil(s, exit))
	if err := c.saveOutput(ctx, s, exit); err != nil {
		return err
	}
	evs := c.noteEvents(name, a.Events)
	if err := c.commitState(s, &exit, evs...); err != nil {
		return err
	}
	c.m.Exits.WithLabelValues(string(exit.Reason)).Inc()
	if a.History.Restarts > s.h.Restarts {
		c.m.Restarts.Inc()
	}
	c.log.Info("container exited", "spec", name, "container", short(exit.ContainerID), "exit_code", exit.ExitCode,
		"reason", exit.Reason, "oom_killed", exit.OOMKilled, "phase", a.Phase)
	return nil
}

// logDrain is how long after a process's exit the daemon may still stamp
// lines it read from the process's pipes.
const logDrain = 100 * time.Millisecond

// logsUntil is where the log tail of exit ends: nowhere for a container
// that has not run again, else shortly after the exit and before the
// restarted run began (restart first, record after).
func logsUntil(s *step, exit model.ContainerExit) time.Time {
	if s.h.PendingExit == nil || exit.FinishedAt.IsZero() {
		return time.Time{}
	}
	until := exit.FinishedAt.Add(logDrain)
	if ct := s.o.Container; ct != nil && ct.ID == exit.ContainerID && ct.StartedAt.After(exit.FinishedAt) && ct.StartedAt.Before(until) {
		until = ct.StartedAt
	}
	return until
}

// logTail reads the end of a container's output for its ledger record,
// up to until when it is set.
func (c *Controller) logTail(ctx context.Context, id string, until time.Time) string {
	rc, err := c.rt.Logs(ctx, id, docker.LogOptions{Tail: fmt.Sprint(c.opts.LogTailLines), Until: until})
	if docker.LogsUnreadable(err) {
		return "(no log tail: " + docker.LogsUnreadableMessage + ")\n"
	}
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
