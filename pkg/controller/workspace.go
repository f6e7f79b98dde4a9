package controller

import (
	"errors"
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/workspace"
)

// A spec's workspace is copied in the create step, on the worker, before
// the container is created: the copy must be complete when the job
// starts, and a worker is what bounds how many run at once. So that one
// large source cannot hold a worker for long, the copy has a deadline
// (WorkspaceOptions.CopyTimeout) and a size bound; past either, the create
// fails as WorkspaceUnavailable and backs off like any failed create.
//
// A restart in place (restartPolicy OnFailure restarts the same container)
// keeps the run's copy, as the container keeps its own filesystem; each
// new container gets a fresh copy, which replaces the previous one once
// complete. The last copy outlives its container (removeOnExit), so that
// `reconciler cp` can read it, until the job's ttlAfterFinished passes or
// the spec is deleted.

// DefaultWorkspaceCopyTimeout bounds one copy when none is set.
const DefaultWorkspaceCopyTimeout = 2 * time.Minute

// WorkspaceOptions configure workspace copies.
type WorkspaceOptions struct {
	// Root holds the copies (pkg/workspace draws the tree); empty refuses
	// every spec with a workspace.
	Root string
	// Limits bound one copy; zero fields get workspace.DefaultLimits'.
	Limits workspace.Limits
	// CopyTimeout bounds one copy; default DefaultWorkspaceCopyTimeout.
	CopyTimeout time.Duration
}

// prepareWorkspace makes this run's copy of d's workspace source and
// returns its directory with the event that tells of it ("" and no event
// when d has no workspace). The source is resolved against the policy
// again, as a bind source is, so a link planted since the spec came in is
// refused here.
func (c *Controller) prepareWorkspace(name string, d Desired) (string, []model.Event, error) {
	ws := d.Spec.Spec.Workspace
	if ws == nil {
		return "", nil, nil
	}
	o := c.opts.Workspace
	if o.Root == "" {
		return "", nil, errors.New("workspaces need the agent's --workspace-root, which is not set")
	}
	src, err := c.opts.Policy.Get().ResolveBind(ws.Source)
	if err != nil {
		return "", nil, fmt.Errorf("workspace source %q: %w", ws.Source, err)
	}
	owner, err := workspace.ParseUser(d.Spec.Spec.User)
	if err != nil {
		return "", nil, err
	}
	lim := o.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = workspace.DefaultLimits.MaxBytes
	}
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = workspace.DefaultLimits.MaxFiles
	}
	timeout := o.CopyTimeout
	if timeout <= 0 {
		timeout = DefaultWorkspaceCopyTimeout
	}
	began := time.Now()
	dir, st, err := workspace.Prepare(o.Root, name, src, owner, lim, began.Add(timeout), c.opts.Now())
	if err != nil {
		return "", nil, err
	}
	took := time.Since(began).Round(time.Millisecond)
	c.log.Info("workspace copied", "spec", name, "source", src, "copy", dir, "entries", st.Entries, "bytes", st.Bytes,
		"owner", fmt.Sprintf("%d:%d", owner.UID, owner.GID), "took", took)
	ev := c.event(name, model.EventNormal, "WorkspaceCopied", "Copied %s to %s for %d:%d (%d entries, %d bytes) in %s",
		src, dir, owner.UID, owner.GID, st.Entries, st.Bytes, took)
	return dir, []model.Event{ev}, nil
}

// forgetWorkspaces removes every copy of name's workspace: its spec was
// deleted, or its job's ttlAfterFinished passed.
func (c *Controller) forgetWorkspaces(name string) {
	if c.opts.Workspace.Root == "" {
		return
	}
	if err := workspace.Remove(c.opts.Workspace.Root, name); err != nil {
		c.log.Warn("cannot remove a spec's workspace copies", "spec", name, "err", err)
	}
}
