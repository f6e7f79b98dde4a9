package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

func (h *harness) putSpec(name string, mod func(*spec.ContainerSpec)) {
	h.t.Helper()
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"tick"}, RestartPolicy: spec.RestartAlways}}
	mod(&s.Spec)
	s.Default()
	if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) removeByHand(name string) {
	h.t.Helper()
	if !h.rt.removeByHand(ContainerName(name)) {
		h.t.Fatalf("no container for %s", name)
	}
}

func (h *harness) events(name, reason string) []model.Event {
	h.t.Helper()
	evs, err := h.st.Events(name, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []model.Event
	for _, e := range evs {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestReconcileUnderAPolicyTightenedAndLoosened(t *testing.T) {
	h := newHarness(t)
	loose := &spec.Policy{AllowPrivileged: true}
	cur := spec.NewCurrentPolicy(loose)
	h.c.opts.Policy = cur
	h.putSpec("web", func(c *spec.ContainerSpec) { c.Privileged = true })
	refusals := func() float64 { return testutil.ToFloat64(h.c.m.PolicyRefusals.WithLabelValues("allowPrivileged")) }

	// Positive control: under the loose policy it runs, and a container
	// removed by hand is created again.
	h.reconcile("web")
	h.removeByHand("web")
	h.reconcile("web")
	if h.rt.count("create") != 2 || h.status("web").Phase != model.PhaseRunning {
		t.Fatalf("loose policy: %v, status %+v; want two creates and Running", h.rt.calls(), h.status("web"))
	}

	cur.Set(spec.DefaultPolicy())
	for range 3 { // resyncs: reported once
		h.now = h.now.Add(time.Minute)
		h.reconcile("web")
	}
	st := h.status("web")
	if st.Phase != model.PhaseRefused || !strings.Contains(st.Message, "runs under a spec the policy now refuses") ||
		!strings.Contains(st.Message, "allowPrivileged") || st.ContainerID == "" {
		t.Fatalf("tightened: status %+v", st)
	}
	if n := h.rt.count("stop") + h.rt.count("remove"); n != 0 {
		t.Fatalf("the running container was touched: %v", h.rt.calls())
	}
	if evs := h.events("web", "Refused"); len(evs) != 1 || evs[0].Type != model.EventWarning || refusals() != 1 {
		t.Fatalf("Refused events %+v, metric %v; want one of each", evs, refusals())
	}

	h.removeByHand("web")
	h.reconcile("web")
	h.reconcile("web")
	st = h.status("web")
	if h.rt.count("create") != 2 || st.Phase != model.PhaseRefused || !strings.HasPrefix(st.Message, "refused by policy: spec.privileged:") {
		t.Fatalf("hand-removed under the strict policy: %v, status %+v; want no create", h.rt.calls(), st)
	}
	if len(h.events("web", "Refused")) != 1 || refusals() != 1 {
		t.Fatalf("reported again while still refused: metric %v", refusals())
	}

	cur.Set(loose)
	h.reconcile("web")
	if h.rt.count("create") != 3 || h.status("web").Phase != model.PhaseRunning {
		t.Fatalf("loosened: %v, status %+v; want it created and Running", h.rt.calls(), h.status("web"))
	}
}

func TestReconcileGivesDockerTheBindSourceResolvedAtCreate(t *testing.T) {
	h := newHarness(t)
	root := t.TempDir()
	viaLink := filepath.Join(t.TempDir(), "work")
	if err := os.Symlink(root, viaLink); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "repo", "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.c.opts.Policy = spec.NewCurrentPolicy(&spec.Policy{AllowedBindPaths: []string{viaLink}})
	h.putSpec("job", func(c *spec.ContainerSpec) {
		c.Mounts = []spec.Mount{{Type: "tmpfs", Target: "/tmp"}, {Type: "bind", Source: viaLink + "/repo/src", Target: "/src"}}
	})

	h.reconcile("job")
	if got := h.rt.lastCreate().BindSources; len(got) != 1 || got[1] != filepath.Join(root, "repo", "src") {
		t.Fatalf("bind sources %v, want mount 1 from %s", got, filepath.Join(root, "repo", "src"))
	}

	// A link planted after the create: the container is left running,
	// and once it is gone nothing is created from the link.
	if err := os.Rename(filepath.Join(root, "repo"), filepath.Join(root, "repo.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "repo")); err != nil {
		t.Fatal(err)
	}
	h.reconcile("job")
	if st := h.status("job"); st.Phase != model.PhaseRefused || h.rt.count("stop") != 0 {
		t.Fatalf("after the link: status %+v, calls %v", st, h.rt.calls())
	}
	h.removeByHand("job")
	h.reconcile("job")
	st := h.status("job")
	if h.rt.count("create") != 1 || st.Phase != model.PhaseRefused ||
		!strings.Contains(st.Message, filepath.Join(root, "repo")+" is a symlink") || !strings.Contains(st.Message, "allowedBindPaths") {
		t.Fatalf("after removal: calls %v, status %+v", h.rt.calls(), st)
	}
}

// The policy is checked again right before the create, whatever the
// reconcile saw when it started.
func TestCreateChecksThePolicyInForce(t *testing.T) {
	h := newHarness(t)
	h.putSpec("web", func(c *spec.ContainerSpec) { c.Privileged = true })
	cur := spec.NewCurrentPolicy(&spec.Policy{AllowPrivileged: true})
	h.c.opts.Policy = cur
	d, err := h.c.desired("web")
	if err != nil || len(d.Refused) != 0 {
		t.Fatalf("desired: %+v, %v", d.Refused, err)
	}
	cur.Set(spec.DefaultPolicy()) // reloaded in between
	s := &step{name: "web", d: d, a: Action{Kind: ActCreate, Phase: model.PhasePending}}
	done, err := h.c.create(t.Context(), s)
	if err != nil || !done || s.o.Container != nil || h.rt.count("create") != 0 {
		t.Fatalf("create = %v, %v, %v; calls %v; want nothing created", done, s.o.Container, err, h.rt.calls())
	}
	if st := h.status("web"); st.Phase != model.PhaseRefused || len(h.events("web", "Refused")) != 1 {
		t.Fatalf("status %+v", st)
	}
}
