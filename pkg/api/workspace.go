package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/store"
	"github.com/reconciler/reconciler/pkg/workspace"
)

// workspace answers a tar of one file or directory of the spec's latest
// workspace copy (GET /v1/specs/{name}/workspace?path=/workspace/out).
// The path is the one inside the container, under the workspace target;
// it is read from the copy on the host, so it works after the container
// is gone, until the copy goes with the job's ttlAfterFinished or the
// spec. Nothing out of the copy is ever read: see workspace.Open.
func (s *server) workspace(w http.ResponseWriter, r *http.Request, name string) error {
	rec, err := s.Store.GetSpec(name)
	if err != nil {
		return err
	}
	ws := rec.Spec.Spec.Workspace
	if ws == nil {
		return fail(errBadRequest, "spec.workspace", "spec %q has no workspace to copy from", name)
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		p = ws.Target
	}
	rel, err := workspace.Rel(ws.Target, p)
	if err != nil {
		return fail(errBadRequest, "path", "%v", err)
	}
	dir, err := workspace.Latest(s.WorkspaceRoot, name)
	if errors.Is(err, workspace.ErrNotFound) {
		return fail(errdefs.ErrNotFound, "", "spec %q has no workspace copy (one is made when its container is created, and goes with the job's ttlAfterFinished)", name)
	}
	if err != nil {
		return err
	}
	src, err := workspace.Open(dir, rel, path.Base(path.Clean(p)))
	switch {
	case errors.Is(err, workspace.ErrNotFound):
		return fail(errdefs.ErrNotFound, "", "spec %q: its workspace copy is gone", name)
	case errors.Is(err, fs.ErrNotExist):
		return fail(errdefs.ErrNotFound, "path", "%s: no such file or directory in the workspace of %q", path.Clean(p), name)
	case err != nil:
		// A path through a symlink that leads out of the copy ends here.
		return fail(errBadRequest, "path", "%s: %v", path.Clean(p), err)
	}
	defer src.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := src.WriteTar(w); err != nil {
		// The answer has begun: cutting the connection is how the client
		// learns that the tar is incomplete.
		s.Log.Warn("workspace copy cut short", "spec", name, "path", path.Clean(p), "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// Workspace returns a tar of p (a path inside the container, under the
// workspace target) from a spec's latest workspace copy; its names begin
// with p's base name. The caller closes it.
func (c *Client) Workspace(ctx context.Context, name, p string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, specPath(name, "workspace"), url.Values{"path": {p}}, nil, "")
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-tar" {
		resp.Body.Close()
		return nil, fmt.Errorf("workspace of %s: the agent answered %q, not a tar", name, ct)
	}
	return resp.Body, nil
}

// workspaceDir is the spec's latest workspace copy, or "" when it has none.
func (s *server) workspaceDir(rec store.Record) string {
	if rec.Spec == nil || rec.Spec.Spec.Workspace == nil {
		return ""
	}
	dir, err := workspace.Latest(s.WorkspaceRoot, rec.Spec.Metadata.Name)
	if err != nil {
		return ""
	}
	return dir
}

// CopyOut writes p from a spec's latest workspace copy to dest, as docker
// cp does (see workspace.Extract): into dest when it is an existing
// directory, else as dest.
func (c *Client) CopyOut(ctx context.Context, name, p, dest string) error {
	rc, err := c.Workspace(ctx, name, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := workspace.Extract(rc, dest); err != nil {
		return fmt.Errorf("copy %s:%s to %s: %w", name, p, dest, err)
	}
	return nil
}
