package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// A spec's secrets reach its container as read-only files the agent
// wrote, never as env or labels; new content replaces the container, and
// the agent's copies go with the container.
func TestReconcileSecrets(t *testing.T) {
	h := newHarness(t)
	src := t.TempDir()
	copies := filepath.Join(t.TempDir(), "secrets")
	policy := &spec.Policy{AllowedSecretPaths: []string{src}}
	h.c.opts.ReadSecret = policy.ReadSecret
	h.c.opts.Policy = spec.NewCurrentPolicy(policy)
	h.c.opts.SecretsDir = copies
	key := filepath.Join(src, "api-key")
	writeSecret := func(content string) {
		t.Helper()
		if err := os.WriteFile(key, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret("first-value")
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Secrets: []spec.SecretFile{{File: key}}}}
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}

	h.reconcile("job")
	req := h.rt.lastCreate()
	if len(req.Files) != 1 || req.Files[0].Target != "/run/secrets/api-key" || len(req.Env) != 0 {
		t.Fatalf("create request: files %+v, env %v; want one file at /run/secrets/api-key and no env", req.Files, req.Env)
	}
	first := req.Files[0].Source
	if b, err := os.ReadFile(first); err != nil || string(b) != "first-value" {
		t.Fatalf("agent's copy: %q, %v", b, err)
	}
	if !strings.HasPrefix(first, copies+"/job/") {
		t.Fatalf("copy at %s, want below %s/job", first, copies)
	}
	for _, p := range []string{copies, filepath.Dir(first)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, %v; want a 0700 directory", p, fi.Mode(), err)
		}
	}
	label := req.Labels[docker.LabelSpecHash]
	if label == s.Hash() || strings.Contains(strings.Join(labelValues(req.Labels), " "), "first-value") {
		t.Fatalf("spec-hash label %q: want the spec hash mixed with the secret, and no content in labels", label)
	}
	if req.Labels[labelDefinition] != s.Hash() {
		t.Fatalf("definition label %q, want the spec's own hash %s", req.Labels[labelDefinition], s.Hash())
	}
	if st := h.status("job"); st.SpecHash != s.Hash() || st.Phase != model.PhaseRunning {
		t.Fatalf("status %+v: the status keeps the spec's own hash", st)
	}

	// Same content: nothing happens (the positive control for what follows).
	h.now = h.now.Add(time.Minute)
	h.reconcile("job")
	if h.rt.count("create") != 1 || h.rt.count("stop") != 0 {
		t.Fatalf("unchanged secret: %v, want nothing done", h.rt.calls())
	}

	// New content: stop, remove (with the old copy), create with the new one.
	writeSecret("second-value")
	for i := 0; i < 3 && h.rt.count("create") < 2; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("job")
	}
	if h.rt.count("stop") != 1 || h.rt.count("remove") != 1 || h.rt.count("create") != 2 {
		t.Fatalf("changed secret: %v, want the container replaced", h.rt.calls())
	}
	second := h.rt.lastCreate().Files[0].Source
	if b, err := os.ReadFile(second); err != nil || string(b) != "second-value" {
		t.Fatalf("new copy: %q, %v", b, err)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("old copy %s still there: %v", first, err)
	}

	// Unreadable now (world-readable): the running container is kept and the
	// status says why.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(time.Minute)
	h.reconcile("job")
	if h.rt.count("stop") != 1 || !strings.Contains(h.status("job").Message, "readable by every user") {
		t.Fatalf("unreadable secret: %v, status %+v", h.rt.calls(), h.status("job"))
	}

	// Unreadable, and the spec changes: the definition still counts, so the
	// old container goes, and no new one can be made.
	s.Spec.Args = []string{"tick"}
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3 && h.rt.byName("reconciler-job") != nil; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("job")
	}
	h.reconcile("job")
	if st := h.status("job"); h.rt.count("stop") != 2 || h.rt.count("create") != 2 || st.Phase != model.PhaseError ||
		!strings.Contains(st.Message, "readable by every user") {
		t.Fatalf("changed spec, unreadable secret: %v, status %+v; want the old container replaced by an error", h.rt.calls(), st)
	}

	// Deleted: the container and every copy go.
	if err := h.st.DeleteSpec("job"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3 && h.rt.byName("reconciler-job") != nil; i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile("job")
	}
	h.reconcile("job")
	if _, err := os.Stat(filepath.Join(copies, "job")); !os.IsNotExist(err) {
		t.Fatalf("copies of a deleted spec remain: %v", err)
	}
}

// A secret the current policy no longer allows is never read.
func TestReconcileSecretRefusedByPolicy(t *testing.T) {
	h := newHarness(t)
	src := t.TempDir()
	key := filepath.Join(src, "api-key")
	if err := os.WriteFile(key, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.c.opts.ReadSecret = spec.DefaultPolicy().ReadSecret
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Env: []spec.EnvVar{{Name: "K", ValueFrom: &spec.EnvSource{File: key}}}}}
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
	h.reconcile("job")
	st := h.status("job")
	if h.rt.count("create") != 0 || st.Phase != model.PhaseRefused || !strings.Contains(st.Message, "allowedSecretPaths") {
		t.Fatalf("%v, status %+v; want no create and Refused naming allowedSecretPaths", h.rt.calls(), st)
	}
}

func labelValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
