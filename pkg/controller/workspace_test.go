package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// workspaceHarness is a harness whose policy allows binds from a fresh
// directory holding a source tree, and whose workspace root is set.
func workspaceHarness(t *testing.T) (h *harness, src, root string) {
	h = newHarness(t)
	allowed := t.TempDir()
	src = filepath.Join(allowed, "repo")
	for p, c := range map[string]string{"README": "v1", ".git/HEAD": "ref: refs/heads/main\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root = filepath.Join(t.TempDir(), "workspaces")
	h.c.opts.Policy = spec.NewCurrentPolicy(&spec.Policy{AllowedBindPaths: []string{allowed}})
	h.c.opts.Workspace = WorkspaceOptions{Root: root}
	return h, src, root
}

func (h *harness) putJob(name string, source store.SourceKind, mod func(*spec.ContainerSpec)) {
	h.t.Helper()
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"ls"}, RestartPolicy: spec.RestartNever}}
	mod(&s.Spec)
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: source, Path: "/specs/" + name + ".yaml"}}); err != nil {
		h.t.Fatal(err)
	}
}

func me() string { return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) }

// Each create gets its own copy, mounted at the target; the copy outlives
// a removed container and goes at ttlAfterFinished with the API job.
func TestReconcileWorkspaceCopyLivesUntilTTL(t *testing.T) {
	h, src, root := workspaceHarness(t)
	h.putJob("job", store.SourceAPI, func(c *spec.ContainerSpec) {
		c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
		c.User = me()
		c.RemoveOnExit = true
		c.TTLAfterFinished = spec.Duration{Duration: time.Hour}
	})
	h.reconcile("job")
	dir := h.rt.lastCreate().Workspace
	if !strings.HasPrefix(dir, root+"/job/") {
		t.Fatalf("create request workspace %q, want a copy below %s/job", dir, root)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".git/HEAD")); err != nil || string(b) != "ref: refs/heads/main\n" {
		t.Fatalf("copy's .git/HEAD: %q, %v", b, err)
	}
	if evs := h.events("job", "WorkspaceCopied"); len(evs) != 1 || !strings.Contains(evs[0].Message, "to "+dir+" for "+me()+" (3 entries") {
		t.Fatalf("WorkspaceCopied events %+v", evs)
	}
	// The job writes; the source does not see it.
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("result"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "out.txt")); !os.IsNotExist(err) {
		t.Fatalf("the source sees the job's write: %v", err)
	}

	h.rt.exit(ContainerName("job"), 0)
	h.now = h.now.Add(time.Second)
	h.reconcile("job")
	if h.rt.byName(ContainerName("job")) != nil {
		t.Fatal("removeOnExit: the container is still there")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "result" {
		t.Fatalf("after the container is gone the copy holds %q, %v; want the job's output", b, err)
	}

	h.now = h.now.Add(2 * time.Hour)
	h.reconcile("job")
	if _, err := h.st.GetSpec("job"); err == nil {
		t.Fatal("the job did not expire")
	}
	if _, err := os.Stat(filepath.Join(root, "job")); !os.IsNotExist(err) {
		t.Fatalf("the copy outlived ttlAfterFinished: %v", err)
	}
}

// A file job keeps its spec at TTL but loses its container and its copy.
func TestReconcileWorkspaceOfAFileJobGoesAtTTL(t *testing.T) {
	h, src, root := workspaceHarness(t)
	h.putJob("job", store.SourceFile, func(c *spec.ContainerSpec) {
		c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
		c.User = me()
		c.TTLAfterFinished = spec.Duration{Duration: time.Hour}
	})
	h.reconcile("job")
	dir := h.rt.lastCreate().Workspace
	h.rt.exit(ContainerName("job"), 0)
	h.now = h.now.Add(time.Second)
	h.reconcile("job")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("finished, before the TTL: the copy is gone: %v", err)
	}
	h.now = h.now.Add(2 * time.Hour)
	h.reconcile("job")
	if _, err := os.Stat(filepath.Join(root, "job")); !os.IsNotExist(err) {
		t.Fatalf("the copy outlived ttlAfterFinished: %v", err)
	}
	if _, err := h.st.GetSpec("job"); err != nil {
		t.Fatalf("the file job's spec went: %v", err)
	}
}

// A changed workspace replaces the container with a fresh copy, which
// replaces the old one; deleting the spec removes it.
func TestReconcileWorkspaceReplacedAndForgotten(t *testing.T) {
	h, src, root := workspaceHarness(t)
	mod := func(target string) func(*spec.ContainerSpec) {
		return func(c *spec.ContainerSpec) {
			c.Workspace = &spec.Workspace{Source: src, Target: target}
			c.User = me()
			c.Args = []string{"tick"}
			c.RestartPolicy = spec.RestartAlways
		}
	}
	h.putJob("svc", store.SourceAPI, mod("/a"))
	h.reconcile("svc")
	first := h.rt.lastCreate().Workspace
	h.putJob("svc", store.SourceAPI, mod("/b"))
	for i := 0; i < 4 && h.rt.count("create") < 2; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("svc")
	}
	second := h.rt.lastCreate().Workspace
	if h.rt.count("create") != 2 || second == first || h.rt.lastCreate().Spec.Spec.Workspace.Target != "/b" {
		t.Fatalf("changed target: %v, copies %s then %s; want the container replaced with a new copy", h.rt.calls(), first, second)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("the previous run's copy is still there: %v", err)
	}
	if err := h.st.DeleteSpec("svc"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4 && h.rt.byName(ContainerName("svc")) != nil; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("svc")
	}
	h.reconcile("svc")
	if _, err := os.Stat(filepath.Join(root, "svc")); !os.IsNotExist(err) {
		t.Fatalf("copies of a deleted spec remain: %v", err)
	}
}

// A source the policy does not allow is refused with its rule, and nothing
// is copied; a copy that cannot be made fails the create, visibly.
func TestReconcileWorkspaceRefusedOrUnavailable(t *testing.T) {
	h, src, root := workspaceHarness(t)
	outside := t.TempDir()
	h.putJob("job", store.SourceAPI, func(c *spec.ContainerSpec) {
		c.Workspace = &spec.Workspace{Source: outside, Target: "/workspace"}
	})
	h.reconcile("job")
	if st := h.status("job"); h.rt.count("create") != 0 || st.Phase != model.PhaseRefused || !strings.Contains(st.Message, "allowedBindPaths") {
		t.Fatalf("%v, status %+v; want Refused naming allowedBindPaths", h.rt.calls(), st)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("something was copied: %v", err)
	}

	if err := os.MkdirAll(filepath.Join(src, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(src, "dev", "pipe")); err != nil {
		t.Fatal(err)
	}
	h.putJob("job", store.SourceAPI, func(c *spec.ContainerSpec) {
		c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
		c.User = me()
	})
	h.now = h.now.Add(time.Minute)
	h.reconcile("job")
	if st := h.status("job"); h.rt.count("create") != 0 || !strings.Contains(st.Message, "is a FIFO") ||
		len(h.events("job", "WorkspaceUnavailable")) == 0 {
		t.Fatalf("%v, status %+v; want no create and a WorkspaceUnavailable warning", h.rt.calls(), st)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "job"))
	if len(entries) != 0 {
		t.Fatalf("a half-made copy was left: %v", entries)
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }

// The source is resolved again at every create: a symlink planted in its
// place after the first run is refused, not followed.
func TestReconcileWorkspaceSourceResolvedAtEachCreate(t *testing.T) {
	h, src, root := workspaceHarness(t)
	h.putJob("svc", store.SourceAPI, func(c *spec.ContainerSpec) {
		c.Workspace = &spec.Workspace{Source: src, Target: "/workspace"}
		c.User = me()
		c.Args = []string{"tick"}
		c.RestartPolicy = spec.RestartAlways
	})
	h.reconcile("svc")
	if h.rt.count("create") != 1 {
		t.Fatalf("first create: %v", h.rt.calls())
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, src); err != nil {
		t.Fatal(err)
	}
	h.removeByHand("svc")
	h.now = h.now.Add(time.Minute)
	h.reconcile("svc")
	if st := h.status("svc"); h.rt.count("create") != 1 || st.Phase != model.PhaseRefused || !strings.Contains(st.Message, "symlink") {
		t.Fatalf("%v, status %+v; want no second create and Refused for the symlink", h.rt.calls(), st)
	}
	latest, err := os.ReadDir(filepath.Join(root, "svc"))
	if err != nil || len(latest) != 1 {
		t.Fatalf("copies: %v, %v; want the first run's only", latest, err)
	}
	if _, err := os.Stat(filepath.Join(root, "svc", latest[0].Name(), "secret")); !os.IsNotExist(err) {
		t.Fatalf("what the link points at was copied: %v", err)
	}
}
