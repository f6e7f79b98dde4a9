package main

import (
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/spec"
)

func TestRunWorkspaceFlag(t *testing.T) {
	o := runOptions{image: "i", restart: "Never", maxRestarts: -1, user: "1000:1000", workspace: "/srv/work/repo:/workspace"}
	s, err := buildJobSpec("j", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws := s.Spec.Workspace; ws == nil || ws.Source != "/srv/work/repo" || ws.Target != "/workspace" {
		t.Fatalf("workspace %+v", s.Spec.Workspace)
	}
	for flag, want := range map[string]string{
		"/srv/repo":            `--workspace "/srv/repo": use SOURCE:TARGET`,
		"/srv/repo:":           "use SOURCE:TARGET",
		"/srv/repo:/w:ro":      "use SOURCE:TARGET",
		"repo:/workspace":      `--workspace: "repo" is not an absolute path`,
		"/srv/repo:/":          `--workspace: "/" is not an absolute path below /`,
		"/srv/repo:/workspace": `--user: "node" is not numeric`,
	} {
		o := o
		o.workspace = flag
		if strings.HasSuffix(want, "is not numeric") {
			o.user = "node"
		}
		if _, err := buildJobSpec("j", o, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--workspace %s: err = %v, want %q", flag, err, want)
		}
	}
}

func TestParseCopySource(t *testing.T) {
	name, p, err := parseCopySource("job:/workspace/out")
	if err != nil || name != "job" || p != "/workspace/out" {
		t.Fatalf("= %q %q %v", name, p, err)
	}
	for arg, want := range map[string]string{
		"job":           "give NAME:PATH",
		":/workspace":   "give NAME:PATH",
		"job:":          "give NAME:PATH",
		"job:out/a.txt": `must be absolute`,
	} {
		if _, _, err := parseCopySource(arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", arg, err, want)
		}
	}
}

func TestDescribeShowsTheWorkspace(t *testing.T) {
	v := api.SpecView{Spec: &spec.Spec{Spec: spec.ContainerSpec{Workspace: &spec.Workspace{Source: "/srv/repo", Target: "/workspace"}}}}
	if got := workspaceLine(v); got != "/srv/repo -> /workspace (no copy yet)" {
		t.Errorf("no copy: %q", got)
	}
	v.Workspace = "/var/lib/reconciler/workspaces/job/20260101T000000.000000000Z"
	if got := workspaceLine(v); !strings.HasSuffix(got, "(copy at "+v.Workspace+")") {
		t.Errorf("copy: %q", got)
	}
	if got := workspaceLine(api.SpecView{Spec: &spec.Spec{}}); got != "" {
		t.Errorf("none: %q", got)
	}
}
