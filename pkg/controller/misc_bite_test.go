package controller

import (
	"log/slog"
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

// miscCaptureLog sends h's controller log, every level, to the returned
// buffer.
func miscCaptureLog(h *harness) *logBuffer {
	l := &logBuffer{}
	h.c.log = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l
}

// miscPut stores s as an API spec.
func miscPut(h *harness, s *spec.Spec) {
	h.t.Helper()
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		h.t.Fatal(err)
	}
}

func miscSpec(name string, cs spec.ContainerSpec) *spec.Spec {
	if cs.Image == "" {
		cs.Image = "reconciler/box:latest"
	}
	return &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name}, Spec: cs}
}

// miscEnableSecrets lets h read secret files below a new source directory
// and keep its copies below a new secrets directory; it returns both.
func miscEnableSecrets(h *harness) (src, copies string) {
	src = h.t.TempDir()
	copies = filepath.Join(h.t.TempDir(), "secrets")
	policy := &spec.Policy{AllowedSecretPaths: []string{src}}
	h.c.opts.ReadSecret = policy.ReadSecret
	h.c.opts.Policy = spec.NewCurrentPolicy(policy)
	h.c.opts.SecretsDir = copies
	return src, copies
}

func miscWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// miscReconcileUntil reconciles name, a minute apart, until done holds
// (at most 6 passes).
func miscReconcileUntil(h *harness, name string, done func() bool) {
	for i := 0; i < 6 && !done(); i++ {
		h.now = h.now.Add(time.Minute)
		h.reconcile(name)
	}
}

func miscExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Every decision that does something is logged with its action; a pass
// that finds the spec settled logs none.
func TestReconcileLogsTheDecisionsThatAct(t *testing.T) {
	h := newHarness(t)
	logs := miscCaptureLog(h)
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	for _, action := range []string{"Create", "Start"} {
		if !strings.Contains(logs.String(), "msg=decided spec=web action="+action) {
			t.Fatalf("first pass logged:\n%s\nwant a decided line with action=%s", logs, action)
		}
	}

	before := strings.Count(logs.String(), "msg=decided")
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	if n := strings.Count(logs.String(), "msg=decided") - before; n != 0 || h.rt.changes() != 2 {
		t.Fatalf("settled pass: %d decided lines, calls %v; want none and nothing done:\n%s", n, h.rt.calls(), logs)
	}
}

// A container whose spec is gone is stopped with the grace period it was
// created with, or Docker's 10s when it carries none.
func TestStopGraceOfAContainerWhoseSpecIsGone(t *testing.T) {
	for _, tc := range []struct {
		name, label, want string
	}{
		{"grace label", "3s", "grace period 3s"},
		{"no grace label", "", "grace period 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			labels := map[string]string{docker.LabelManaged: "true", docker.LabelSpec: "old", docker.LabelInstance: "test"}
			if tc.label != "" {
				labels[labelGrace] = tc.label
			}
			h.rt.add(docker.Container{ID: "c9", Name: ContainerName("old"), State: "running", Labels: labels})
			h.reconcile("old")
			if h.rt.count("stop") != 1 {
				t.Fatalf("calls %v, want the orphan stopped", h.rt.calls())
			}
			var msgs []string
			for _, ev := range h.events("old", "Killing") {
				msgs = append(msgs, ev.Message)
			}
			if len(msgs) != 1 || !strings.HasSuffix(msgs[0], tc.want) {
				t.Fatalf("Killing events %q, want one ending %q", msgs, tc.want)
			}
		})
	}
}

// A second container labelled with the spec's name is stopped and removed
// once, with one event, and the spec's own container is made in the same
// pass.
func TestReconcileRemovesAStrayOnceThenCreatesTheSpecsContainer(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "tick")
	h.rt.add(docker.Container{ID: "s1", Name: "web-copy", State: "running",
		Labels: map[string]string{docker.LabelManaged: "true", docker.LabelSpec: "web", docker.LabelInstance: "test"}})

	res := h.reconcile("web")
	if h.rt.byID("s1") != nil || h.rt.count("stop") != 1 || h.rt.count("remove") != 1 {
		t.Fatalf("stray %v still there or handled more than once: calls %v", h.rt.byID("s1"), h.rt.calls())
	}
	if h.rt.count("create") != 1 || h.rt.state(ContainerName("web")) != "running" || res.RequeueAfter != 0 {
		t.Fatalf("calls %v, %s %q, requeue %s; want the spec's container running and the spec settled",
			h.rt.calls(), ContainerName("web"), h.rt.state(ContainerName("web")), res.RequeueAfter)
	}
	if evs := h.events("web", "StrayRemoved"); len(evs) != 1 || evs[0].Count != 1 || !strings.Contains(evs[0].Message, "s1") {
		t.Fatalf("StrayRemoved events %+v, want one, for s1", evs)
	}
	if st := h.status("web"); st.Phase != model.PhaseRunning {
		t.Fatalf("status %+v, want Running", st)
	}
}

// Environment variables from files reach the container by value (newline
// trimmed) beside the plain ones; a spec with plain variables alone needs
// no secret set-up and keeps its own hash as its label.
func TestEnvFromFilesReachTheContainer(t *testing.T) {
	t.Run("from a file", func(t *testing.T) {
		h := newHarness(t)
		src, _ := miscEnableSecrets(h)
		token := filepath.Join(src, "token")
		miscWriteFile(t, token, "s3cret\n")
		s := miscSpec("job", spec.ContainerSpec{Env: []spec.EnvVar{
			{Name: "PLAIN", Value: "p"}, {Name: "TOKEN", ValueFrom: &spec.EnvSource{File: token}}}})
		miscPut(h, s)
		h.reconcile("job")
		req := h.rt.lastCreate()
		if h.rt.count("create") != 1 || len(req.Env) != 1 || req.Env["TOKEN"] != "s3cret" {
			t.Fatalf("calls %v, resolved env %q; want TOKEN=s3cret", h.rt.calls(), req.Env)
		}
		if req.Labels[docker.LabelSpecHash] == s.Hash() {
			t.Fatalf("spec-hash label is the spec's own hash: the secret is not mixed in")
		}
		if st := h.status("job"); st.Phase != model.PhaseRunning {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("plain only, secrets not enabled", func(t *testing.T) {
		h := newHarness(t)
		s := miscSpec("job", spec.ContainerSpec{Env: []spec.EnvVar{{Name: "PLAIN", Value: "p"}}})
		miscPut(h, s)
		h.reconcile("job")
		req := h.rt.lastCreate()
		if st := h.status("job"); h.rt.count("create") != 1 || st.Phase != model.PhaseRunning {
			t.Fatalf("calls %v, status %+v; want the container running", h.rt.calls(), st)
		}
		if req.Labels[docker.LabelSpecHash] != s.Hash() || len(req.Env) != 0 {
			t.Fatalf("label %q, resolved env %q; want the spec's hash %s and nothing resolved",
				req.Labels[docker.LabelSpecHash], req.Env, s.Hash())
		}
	})
}

// The copy an earlier definition left (its container removed by hand, so
// the agent never removed it) goes when the next container's copy is
// written.
func TestSecretCopyOfAContainerRemovedByHandGoesWithTheNextCreate(t *testing.T) {
	h := newHarness(t)
	src, _ := miscEnableSecrets(h)
	key := filepath.Join(src, "api-key")
	miscWriteFile(t, key, "one")
	miscPut(h, miscSpec("job", spec.ContainerSpec{Secrets: []spec.SecretFile{{File: key}}}))
	h.reconcile("job")
	first := h.rt.lastCreate().Files[0].Source

	h.rt.removeByHand(ContainerName("job"))
	miscWriteFile(t, key, "two")
	miscReconcileUntil(h, "job", func() bool { return h.rt.count("create") == 2 })
	if h.rt.count("create") != 2 {
		t.Fatalf("calls %v, want the container made again", h.rt.calls())
	}
	second := h.rt.lastCreate().Files[0].Source
	if b, err := os.ReadFile(second); err != nil || string(b) != "two" {
		t.Fatalf("new copy %s: %q, %v", second, b, err)
	}
	if miscExists(filepath.Dir(first)) {
		t.Fatalf("the earlier definition's copies %s remain", filepath.Dir(first))
	}
}

// The agent's secret copies go with the container that used them, here
// replaced by one with no secrets, and with the spec when it is deleted.
// When the secrets directory cannot be cleaned (someone put a file in its
// place), the agent says so in its log, and only then.
func TestSecretCopiesGoWithTheirContainerAndSpec(t *testing.T) {
	for _, clobbered := range []bool{false, true} {
		t.Run(map[bool]string{false: "clean", true: "secrets directory replaced by a file"}[clobbered], func(t *testing.T) {
			h := newHarness(t)
			src, copies := miscEnableSecrets(h)
			logs := miscCaptureLog(h)
			key := filepath.Join(src, "api-key")
			miscWriteFile(t, key, "one")
			miscPut(h, miscSpec("job", spec.ContainerSpec{Secrets: []spec.SecretFile{{File: key}}}))
			h.reconcile("job")
			first := h.rt.lastCreate().Files[0].Source
			if !miscExists(first) {
				t.Fatalf("no copy at %s", first)
			}
			if clobbered {
				if err := os.RemoveAll(copies); err != nil {
					t.Fatal(err)
				}
				miscWriteFile(t, copies, "not a directory")
			}

			// The new definition has no secrets: nothing is written for it.
			miscPut(h, miscSpec("job", spec.ContainerSpec{Args: []string{"tick"}}))
			miscReconcileUntil(h, "job", func() bool { return h.rt.count("create") == 2 })
			if h.rt.count("remove") != 1 || h.rt.count("create") != 2 || len(h.rt.lastCreate().Files) != 0 {
				t.Fatalf("calls %v, want the container replaced by one without files", h.rt.calls())
			}
			if miscExists(filepath.Dir(first)) {
				t.Fatalf("the removed container's copies %s remain", filepath.Dir(first))
			}
			const dropWarn = "cannot remove a container's secret files"
			if got := strings.Contains(logs.String(), dropWarn); got != clobbered {
				t.Fatalf("logged %q: %v, want %v:\n%s", dropWarn, got, clobbered, logs)
			}

			if !clobbered && !miscExists(filepath.Join(copies, "job")) {
				t.Fatal("the spec's copies directory is gone before the spec")
			}
			if err := h.st.DeleteSpec("job"); err != nil {
				t.Fatal(err)
			}
			miscReconcileUntil(h, "job", func() bool { return h.rt.byName(ContainerName("job")) == nil })
			h.reconcile("job")
			if _, err := h.st.GetStatus("job"); err == nil {
				t.Fatal("the deleted spec's status remains")
			}
			if !clobbered && miscExists(filepath.Join(copies, "job")) {
				t.Fatal("the deleted spec's copies directory remains")
			}
			const forgetWarn = "cannot remove a spec's secret files"
			if got := strings.Contains(logs.String(), forgetWarn); got != clobbered {
				t.Fatalf("logged %q: %v, want %v:\n%s", forgetWarn, got, clobbered, logs)
			}
		})
	}
}

// A secret copy that cannot be put in place is an error, and leaves no
// temporary file behind.
func TestWriteFileAtomicReportsAFailedRename(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "0")
	if err := writeFileAtomic(ok, []byte("v"), 0o444); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(ok); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("written file: %v, %v; want mode 0444", fi, err)
	}

	taken := filepath.Join(dir, "1")
	if err := os.MkdirAll(filepath.Join(taken, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(taken, []byte("v"), 0o444); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	left, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("temporary files left: %v, %v", left, err)
	}
}

// The state file is written when, and only when, a start-first rollout's
// failure record changes in any field: an unchanged one (its time in
// another zone) costs no write, a changed one is never skipped.
func TestHistoryEqualSeesEveryChangeOfARolloutFailure(t *testing.T) {
	base := model.RolloutFailure{Want: "h1", ContainerID: "n1", Failures: 2, NextTryAt: t0.Add(time.Minute), Message: "unhealthy"}
	for _, tc := range []struct {
		name string
		edit func(*model.RolloutFailure)
		same bool
	}{
		{"unchanged, another zone", func(r *model.RolloutFailure) { r.NextTryAt = r.NextTryAt.In(time.FixedZone("X", 3600)) }, true},
		{"another definition", func(r *model.RolloutFailure) { r.Want = "h2" }, false},
		{"another replacement", func(r *model.RolloutFailure) { r.ContainerID = "n2" }, false},
		{"one more failure", func(r *model.RolloutFailure) { r.Failures++ }, false},
		{"later try", func(r *model.RolloutFailure) { r.NextTryAt = r.NextTryAt.Add(time.Second) }, false},
		{"another message", func(r *model.RolloutFailure) { r.Message = "exited" }, false},
	} {
		r := base
		tc.edit(&r)
		a := model.History{SpecHash: "h1", Rollout: &base}
		b := model.History{SpecHash: "h1", Rollout: &r}
		if got := historyEqual(a, b); got != tc.same {
			t.Errorf("%s: historyEqual = %v, want %v", tc.name, got, tc.same)
		}
	}
}
