package api_test

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
	"github.com/reconciler/reconciler/pkg/workspace"
)

// workspaceFixture is the API with a job spec whose latest workspace copy
// holds out/a.txt, out/sub/b.txt, a symlink out of the copy, and top.txt.
func workspaceFixture(t *testing.T) (f *fixture, copyDir, outside string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "workspaces")
	f = newFixture(t, func(d *api.Deps) { d.WorkspaceRoot = root })
	sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
		Spec: spec.ContainerSpec{Image: "box", Workspace: &spec.Workspace{Source: "/srv/repo", Target: "/workspace"}}}
	sp.Default()
	if err := f.st.PutSpec(store.Record{Spec: sp, Hash: sp.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	outside = t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"out/a.txt": "A", "out/sub/b.txt": "B", "top.txt": "T"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"out/esc", "escdir"} {
		if err := os.Symlink(outside, filepath.Join(src, l)); err != nil {
			t.Fatal(err)
		}
	}
	me := workspace.Owner{UID: os.Getuid(), GID: os.Getgid()}
	dir, _, err := workspace.Prepare(root, "job", src, me, workspace.DefaultLimits, time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return f, dir, outside
}

func tarNames(t *testing.T, rc io.ReadCloser) map[string]string {
	t.Helper()
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b) + h.Linkname
	}
}

func TestWorkspaceCopiesFilesAndDirectoriesOut(t *testing.T) {
	f, dir, outside := workspaceFixture(t)
	rc, err := f.c.Workspace(t.Context(), "job", "/workspace/out")
	if err != nil {
		t.Fatal(err)
	}
	got := tarNames(t, rc)
	want := map[string]string{"out/": "", "out/a.txt": "A", "out/sub/": "", "out/sub/b.txt": "B", "out/esc": outside}
	if len(got) != len(want) {
		t.Fatalf("tar holds %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	rc, err = f.c.Workspace(t.Context(), "job", "/workspace/top.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := tarNames(t, rc); len(got) != 1 || got["top.txt"] != "T" {
		t.Fatalf("file: %v", got)
	}
	// describe's path.
	v, err := f.c.Get(t.Context(), "job")
	if err != nil || v.Workspace != dir {
		t.Fatalf("get: workspace %q, %v; want %s", v.Workspace, err, dir)
	}
}

func TestWorkspaceRefusesPathsOutside(t *testing.T) {
	f, _, _ := workspaceFixture(t)
	for p, want := range map[string]string{
		"/workspace/../etc/passwd": `holds ".."`,
		"/etc/passwd":              "outside the workspace",
		"out/a.txt":                "not an absolute path",
		"/workspace/escdir/secret": "escdir/secret",
	} {
		_, err := f.c.Workspace(t.Context(), "job", p)
		ae := apiError(t, err, http.StatusBadRequest)
		if ae.Field != "path" || !strings.Contains(ae.Message, want) {
			t.Errorf("%s: %+v, want field path and %q", p, ae, want)
		}
	}
	_, err := f.c.Workspace(t.Context(), "job", "/workspace/nope")
	if ae := apiError(t, err, http.StatusNotFound); !strings.Contains(ae.Message, "no such file") {
		t.Errorf("missing: %v", ae)
	}
	_, err = f.c.Workspace(t.Context(), "ghost", "/workspace")
	apiError(t, err, http.StatusNotFound)
	// The escaping symlink itself comes as a link, never what it points at.
	rc, err := f.c.Workspace(t.Context(), "job", "/workspace/escdir")
	if err != nil {
		t.Fatal(err)
	}
	if got := tarNames(t, rc); len(got) != 1 || strings.Contains(got["escdir"], "host secret") {
		t.Fatalf("escdir: %v", got)
	}
}

func TestWorkspaceWithoutCopyOrField(t *testing.T) {
	f, _, _ := workspaceFixture(t)
	f.apply(specYAML("plain", "box"))
	_, err := f.c.Workspace(t.Context(), "plain", "/workspace")
	if ae := apiError(t, err, http.StatusBadRequest); !strings.Contains(ae.Message, "has no workspace") {
		t.Errorf("no field: %v", ae)
	}
	sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "fresh"},
		Spec: spec.ContainerSpec{Image: "box", Workspace: &spec.Workspace{Source: "/srv/repo", Target: "/workspace"}}}
	sp.Default()
	if err := f.st.PutSpec(store.Record{Spec: sp, Hash: sp.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Workspace(t.Context(), "fresh", "/workspace")
	if ae := apiError(t, err, http.StatusNotFound); !strings.Contains(ae.Message, "no workspace copy") {
		t.Errorf("no copy: %v", ae)
	}
}

func TestWorkspaceIsReadWithRoleView(t *testing.T) {
	for _, r := range api.Routes() {
		if r.Route == "GET /v1/specs/{name}/workspace" {
			if r.Role != api.RoleView || r.Verb != "cp" {
				t.Fatalf("%s: role %s verb %s, want view and cp (a job's files are its output, as its logs)", r.Route, r.Role, r.Verb)
			}
			return
		}
	}
	t.Fatal("no workspace route")
}
