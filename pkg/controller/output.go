package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/output"
)

// Saving a run's complete output (Options.Output) is part of recording
// its exit, and comes before the record's commit:
//   - it follows a restart, like the rest of the record (restart first,
//     record after), so it never delays one;
//   - the container is removed (removeOnExit, TTL, a deleted or replaced
//     spec) only once the record is committed, so only after the save;
//   - an agent that stops between the exit and the commit records the
//     exit again when it is back, and the save with it: it is as
//     level-triggered as the record. A save already made is not made
//     again (output.Store.Has).
//
// A save cut short by the agent stopping, or by a daemon that does not
// answer, holds the record back: the reconcile is retried (or the next
// agent records the exit), and saves then. Any other failure (the log is
// unreadable, the output directory full) is logged and does not hold the
// record back: the 8 KiB tail in the record remains.

// exitLister is the part of the state file that lists a spec's recorded
// exits, newest first; *store.Store has it.
type exitLister interface {
	Exits(name string, limit int) ([]model.ContainerExit, error)
}

// saveOutput saves the whole output of the run exit ended; an error means
// "record later".
func (c *Controller) saveOutput(ctx context.Context, s *step, exit model.ContainerExit) error {
	out := c.opts.Output
	if out == nil || exit.ContainerID == "" || exit.StartedAt.IsZero() {
		return nil
	}
	run := output.Run{Spec: s.name, ContainerID: exit.ContainerID, StartedAt: exit.StartedAt}
	if out.Has(run) {
		return nil
	}
	retry := func(err error) bool { return ctx.Err() != nil || errors.Is(err, docker.ErrUnavailable) }
	start := time.Now()
	rc, err := c.rt.Logs(ctx, exit.ContainerID, docker.LogOptions{
		Timestamps: true, Whole: true, Since: c.runSince(s.name, exit), Until: runUntil(s, exit),
	})
	if errors.Is(err, docker.ErrNotFound) {
		c.log.Debug("output not saved: the container is gone", "spec", s.name, "container", short(exit.ContainerID))
		return nil
	}
	var res output.Result
	if err == nil {
		res, err = out.Save(run, rc)
		rc.Close()
	}
	switch {
	case err != nil && retry(err):
		return fmt.Errorf("save the output of container %s: %w", short(exit.ContainerID), err)
	case err != nil:
		c.log.Warn("output not saved", "spec", s.name, "container", short(exit.ContainerID), "err", err)
		return nil
	}
	c.log.Info("output saved", "spec", s.name, "container", short(exit.ContainerID), "lines", res.Lines,
		"bytes", res.Bytes, "dropped_bytes", res.DroppedBytes, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// runSince is where the output of exit's run begins in its container's
// log: a container restarted in place keeps the output of all its runs,
// and the run before this one is in the ledger. Zero for a container's
// first run.
func (c *Controller) runSince(name string, exit model.ContainerExit) time.Time {
	l, ok := c.st.(exitLister)
	if !ok {
		return time.Time{}
	}
	exits, err := l.Exits(name, 0)
	if err != nil {
		return time.Time{}
	}
	for _, e := range exits {
		if e.ContainerID == exit.ContainerID && e.StartedAt.Before(exit.StartedAt) && !e.FinishedAt.IsZero() {
			return runBoundary(e.FinishedAt, exit.StartedAt).Add(time.Nanosecond)
		}
	}
	return time.Time{}
}

// runUntil is where the output of exit's run ends: at the boundary with
// the run after it when the container was restarted in place, else where
// the log tail ends (nowhere, for a container that has not run again).
func runUntil(s *step, exit model.ContainerExit) time.Time {
	if ct := s.o.Container; ct != nil && ct.ID == exit.ContainerID && !exit.FinishedAt.IsZero() &&
		ct.StartedAt.After(exit.FinishedAt) {
		return runBoundary(exit.FinishedAt, ct.StartedAt)
	}
	return logsUntil(s, exit)
}

// runBoundary divides the log of a container restarted in place between
// the run that finished and the one that started next. Neither time is
// exact: the daemon may stamp the last lines of a run a little after it
// stamps its exit (logDrain), and the first lines of the next run before
// it stamps that run started (when its start call returns). Midway, but no
// later than logDrain after the exit, is the least wrong.
func runBoundary(finished, nextStart time.Time) time.Time {
	b := finished.Add(logDrain)
	if nextStart.After(finished) {
		if mid := finished.Add(nextStart.Sub(finished) / 2); mid.Before(b) {
			b = mid
		}
	}
	return b
}

// pruneOutput drops the saved output of specs whose exit ledgers are gone.
func (c *Controller) pruneOutput() {
	if c.opts.Output == nil {
		return
	}
	if err := c.opts.Output.Prune(); err != nil {
		c.log.Warn("prune saved output", "err", err)
	}
}
