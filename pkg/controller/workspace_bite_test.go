package controller

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
	"github.com/reconciler/reconciler/pkg/workspace"
)

// The copy's bounds: a bound the agent sets is kept, an unset one (zero)
// takes the default; past either the create fails as WorkspaceUnavailable.
// The source of workspaceHarness holds 3 entries and 23 bytes.
func TestWorkspaceBoundsAreTheAgentsOrTheDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		defaults workspace.Limits // in place of workspace.DefaultLimits
		set      workspace.Limits // WorkspaceOptions.Limits
		refused  bool
	}{
		{"set bounds that fit", workspace.DefaultLimits, workspace.Limits{MaxBytes: 23, MaxFiles: 3}, false},
		{"default bounds that fit", workspace.Limits{MaxBytes: 23, MaxFiles: 3}, workspace.Limits{}, false},
		{"set byte bound passed", workspace.DefaultLimits, workspace.Limits{MaxBytes: 22}, true},
		{"default byte bound passed", workspace.Limits{MaxBytes: 22, MaxFiles: 3}, workspace.Limits{}, true},
		{"set entry bound passed", workspace.DefaultLimits, workspace.Limits{MaxFiles: 2}, true},
		{"default entry bound passed", workspace.Limits{MaxBytes: 23, MaxFiles: 2}, workspace.Limits{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := workspace.DefaultLimits
			workspace.DefaultLimits = tc.defaults
			t.Cleanup(func() { workspace.DefaultLimits = saved })
			h, src, _ := workspaceHarness(t)
			h.c.opts.Workspace.Limits = tc.set
			h.putJob("job", store.SourceAPI, func(c *spec.ContainerSpec) {
				c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
				c.User = me()
			})
			h.reconcile("job")
			created, unavailable := h.rt.count("create"), len(h.events("job", "WorkspaceUnavailable"))
			if st := h.status("job"); tc.refused && (created != 0 || unavailable == 0 || !strings.Contains(st.Message, "holds more than")) {
				t.Fatalf("%d creates, %d WorkspaceUnavailable events, status %+v; want the copy refused as too large, no create", created, unavailable, st)
			}
			if !tc.refused && (created != 1 || unavailable != 0 || len(h.events("job", "WorkspaceCopied")) != 1) {
				t.Fatalf("%d creates, %d WorkspaceUnavailable events; want the copy made and the job created", created, unavailable)
			}
		})
	}
}

// When a deleted spec's copies cannot be removed the operator is told in
// the log; when they are removed, nothing is said.
func TestWorkspaceCopiesThatCannotBeRemovedAreLogged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rootGone bool // the root was replaced by a file since the run
		wantWarn bool
	}{
		{"removed", false, false},
		{"cannot be removed", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, src, root := workspaceHarness(t)
			lg := &logBuffer{}
			h.c.log = slog.New(slog.NewTextHandler(lg, nil))
			h.putJob("job", store.SourceAPI, func(c *spec.ContainerSpec) {
				c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
				c.User = me()
			})
			h.reconcile("job")
			dir := h.rt.lastCreate().Workspace
			h.rt.exit(ContainerName("job"), 0)
			h.now = h.now.Add(time.Second)
			h.reconcile("job")
			if tc.rootGone {
				if err := os.Rename(root, root+".moved"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(root, []byte("not a directory"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.st.DeleteSpec("job"); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				h.now = h.now.Add(time.Second)
				h.reconcile("job")
				if _, err := h.st.GetStatus("job"); errors.Is(err, store.ErrNotFound) {
					break
				}
			}
			if _, err := h.st.GetStatus("job"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the deleted job is still known: %v", err)
			}
			if _, err := os.Stat(dir); !tc.rootGone && !os.IsNotExist(err) {
				t.Fatalf("the copy %s of the deleted spec: %v; want it removed", dir, err)
			}
			if warned := strings.Contains(lg.String(), "cannot remove a spec's workspace copies"); warned != tc.wantWarn {
				t.Fatalf("logged a failed removal: %v, want %v; log:\n%s", warned, tc.wantWarn, lg)
			}
		})
	}
}
