package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateWorkspace(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   *Workspace
		user string
		want string // "" for valid
	}{
		{"ok", &Workspace{Source: "/srv/repo", Target: "/workspace"}, "1000:1000", ""},
		{"uid only", &Workspace{Source: "/srv/repo", Target: "/workspace"}, "1000", ""},
		{"no user is root", &Workspace{Source: "/srv/repo", Target: "/workspace"}, "", ""},
		{"user name", &Workspace{Source: "/srv/repo", Target: "/workspace"}, "node", `spec.user: "node" is not numeric: with a workspace`},
		{"no source", &Workspace{Target: "/workspace"}, "", "spec.workspace.source: required"},
		{"relative source", &Workspace{Source: "repo", Target: "/workspace"}, "", `spec.workspace.source: "repo" is not an absolute path`},
		{"root source", &Workspace{Source: "/", Target: "/workspace"}, "", `spec.workspace.source: "/" is not an absolute path`},
		{"no target", &Workspace{Source: "/srv/repo"}, "", "spec.workspace.target: required"},
		{"root target", &Workspace{Source: "/srv/repo", Target: "/"}, "", `spec.workspace.target: "/" is not an absolute path below /`},
		{"relative target", &Workspace{Source: "/srv/repo", Target: "ws"}, "", `spec.workspace.target: "ws" is not an absolute path below /`},
		{"target of a mount", &Workspace{Source: "/srv/repo", Target: "/data"}, "", `spec.workspace.target: "/data" is mounted twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: "/data"}}
			s.Spec.Workspace, s.Spec.User = tc.ws, tc.user
			errs := s.Validate()
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors %q, want %q", errs, tc.want)
			}
		})
	}
	// A user name is fine without a workspace.
	s := validSpec()
	s.Spec.User = "node"
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("user name without a workspace: %v", errs)
	}
}

func TestDecodeWorkspaceLocatesErrors(t *testing.T) {
	doc := `apiVersion: reconciler/v1
kind: Container
metadata: {name: job}
spec:
  image: reconciler/box:latest
  workspace:
    source: repo
    target: /workspace
`
	specs, err := Decode("job.yaml", []byte(doc))
	if err == nil {
		for _, s := range specs {
			err = s.Validate().Err()
		}
	}
	if err == nil || !strings.Contains(err.Error(), "job.yaml:7: spec.workspace.source") {
		t.Fatalf("err = %v, want it at job.yaml:7", err)
	}
	if _, err := Decode("job.yaml", []byte(strings.Replace(doc, "target:", "targte:", 1))); err == nil || !strings.Contains(err.Error(), "targte") {
		t.Fatalf("unknown field: err = %v", err)
	}
}

func TestPolicyRefusesWorkspaceSources(t *testing.T) {
	allowed := t.TempDir()
	repo := filepath.Join(allowed, "repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	p := &Policy{AllowedBindPaths: []string{allowed}}
	for src, want := range map[string]string{
		repo:                                "",
		outside:                             "is not below any of allowedBindPaths",
		filepath.Join(allowed, "escape"):    "is a symlink below an allowed path",
		filepath.Join(allowed, "missing"):   "cannot stat",
		filepath.Join(allowed, "repo/../x"): "cannot stat",
	} {
		s := validSpec()
		s.Spec.Workspace = &Workspace{Source: src, Target: "/workspace"}
		errs := p.Check(s)
		if want == "" {
			if len(errs) > 0 {
				t.Errorf("%s: %v", src, errs)
			}
			continue
		}
		if len(errs) != 1 || errs[0].Rule != "allowedBindPaths" || errs[0].Path != "spec.workspace.source" ||
			!strings.Contains(errs[0].Msg, want) || !strings.Contains(errs[0].Msg, "refused by policy") {
			t.Errorf("%s: errs = %+v, want a refusal under rule allowedBindPaths saying %q", src, errs, want)
		}
	}
	s := validSpec()
	s.Spec.Workspace = &Workspace{Source: repo, Target: "/workspace"}
	if errs := DefaultPolicy().Check(s); len(errs) != 1 || errs[0].Rule != "allowedBindPaths" {
		t.Errorf("default policy: %v", errs)
	}
}

func TestHashCountsWorkspace(t *testing.T) {
	a := validSpec()
	b := validSpec()
	b.Spec.Workspace = &Workspace{Source: "/srv/repo", Target: "/workspace"}
	c := validSpec()
	c.Spec.Workspace = &Workspace{Source: "/srv/repo", Target: "/work"}
	d := validSpec()
	d.Spec.Workspace = &Workspace{Source: "/srv/other", Target: "/workspace"}
	seen := map[string]bool{}
	for _, s := range []*Spec{a, b, c, d} {
		seen[s.Hash()] = true
	}
	if len(seen) != 4 {
		t.Fatalf("hashes collide: %v", seen)
	}
}
