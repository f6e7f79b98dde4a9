package controller

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// TestARefusalNamesTheSpecFileItCameFrom: a spec from a file that the
// policy refuses says which file in its status; one from the API names
// none.
func TestARefusalNamesTheSpecFileItCameFrom(t *testing.T) {
	h := newHarness(t)
	for name, src := range map[string]store.Source{
		"fromfile": {Kind: store.SourceFile, Path: "/specs/fromfile.yaml"},
		"fromapi":  {Kind: store.SourceAPI},
	} {
		s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
			Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Privileged: true, RestartPolicy: spec.RestartAlways}}
		s.Default()
		if err := h.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: src}); err != nil {
			t.Fatal(err)
		}
		h.reconcile(name)
	}
	for name, want := range map[string]string{
		"fromfile": "refused by policy: /specs/fromfile.yaml: spec.privileged: privileged containers are refused",
		"fromapi":  "refused by policy: spec.privileged: privileged containers are refused",
	} {
		if st := h.status(name); st.Phase != model.PhaseRefused || !strings.HasPrefix(st.Message, want) {
			t.Errorf("%s: status %s %q; want Refused, %q...", name, st.Phase, st.Message, want)
		}
	}
	if h.rt.count("create") != 0 {
		t.Fatalf("calls %v; a refused spec was created", h.rt.calls())
	}
}

// observeInspectFails is the fake daemon with an inspect that fails with
// err while err is set.
type observeInspectFails struct {
	*fakeRuntime
	err error
}

func (r *observeInspectFails) Inspect(ctx context.Context, id string) (docker.Container, error) {
	if r.err != nil {
		return docker.Container{}, r.err
	}
	return r.fakeRuntime.Inspect(ctx, id)
}

// TestAListingOlderThanADieIsCheckedByInspect: the daemon's listing lags
// its events; a container listed as running after its die event was seen
// is inspected. While the inspect fails the reconcile fails and nothing
// is done; once it answers, the exit is recorded and the container
// restarted.
func TestAListingOlderThanADieIsCheckedByInspect(t *testing.T) {
	h := newHarness(t)
	rt := &observeInspectFails{fakeRuntime: h.rt}
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	id := h.rt.byName("reconciler-web").ID
	listed, err := h.rt.List(t.Context(), map[string]string{docker.LabelSpec: "web"})
	if err != nil || len(listed) != 1 || !listed[0].Running() {
		t.Fatalf("listing %+v, %v; want the running container", listed, err)
	}

	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 3)
	h.c.notes.record(dockerEvent("die", id, h.now))
	h.c.cache.put("web", h.c.cache.begin("web"), listed) // the listing from before the die

	rt.err = errors.New("inspect container: permission denied")
	if _, err := h.c.Reconcile(t.Context(), "web"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Reconcile = %v; want the inspect's failure", err)
	}
	if exits, _ := h.st.Exits("web", 0); len(exits) != 0 || h.rt.count("start") != 1 {
		t.Fatalf("exits %+v, calls %v; want nothing done while the inspect fails", exits, h.rt.calls())
	}

	rt.err = nil
	if _, err := h.c.Reconcile(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	if h.rt.count("list") != 2 { // the test's listing and the harness's first
		t.Fatalf("calls %v; want the listing taken from the cache", h.rt.calls())
	}
	exits, _ := h.st.Exits("web", 0)
	if len(exits) != 1 || exits[0].ExitCode != 3 || exits[0].ContainerID != id || h.rt.count("start") != 2 {
		t.Fatalf("exits %+v, calls %v; want the exit recorded and a restart", exits, h.rt.calls())
	}
}

// TestOutputSavesAndPrunesAreLoggedAsTheyWent: a saved output is logged
// as saved; one whose log cannot be read is a warning, never "saved"; a
// prune that fails is a warning, and one that works says nothing.
func TestOutputSavesAndPrunesAreLoggedAsTheyWent(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	book := &logRecords{}
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Output: out, Log: slog.New(book)})
	logs := h.rt.LogsFunc
	for _, name := range []string{"job", "bad"} {
		h.put(name, spec.RestartNever, "run")
		h.reconcile(name)
		h.now = h.now.Add(time.Minute)
		h.rt.exit(ContainerName(name), 0)
		if name == "bad" {
			h.rt.LogsFunc = failWhole(logs, errors.New("unreadable log"))
		}
		h.reconcile(name)
		if exits, _ := h.st.Exits(name, 0); len(exits) != 1 {
			t.Fatalf("%s: exits %+v; want the run recorded", name, exits)
		}
	}
	for _, c := range []struct {
		msg, spec string
		want      []slog.Level
	}{
		{"output saved", "job", []slog.Level{slog.LevelInfo}},
		{"output not saved", "job", nil},
		{"output not saved", "bad", []slog.Level{slog.LevelWarn}},
		{"output saved", "bad", nil},
	} {
		if got := book.levels(c.msg, "spec", c.spec); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q logged at %v, want %v", c.spec, c.msg, got, c.want)
		}
	}

	h.c.pruneOutput()
	if got := book.levels("prune saved output", "", ""); len(got) != 0 {
		t.Fatalf("a prune that worked logged %v", got)
	}
	if err := os.RemoveAll(out.Dir()); err != nil {
		t.Fatal(err)
	}
	h.c.pruneOutput()
	if got := book.levels("prune saved output", "", ""); !slices.Equal(got, []slog.Level{slog.LevelWarn}) {
		t.Fatalf("a prune that failed logged %v; want one warning", got)
	}
}

// TestAHealthcheckedContainerIsNotJudgedWithoutItsInspect: a spec with a
// healthcheck needs its running container inspected; while that fails the
// reconcile fails and the container is left alone.
func TestAHealthcheckedContainerIsNotJudgedWithoutItsInspect(t *testing.T) {
	h := newHarness(t)
	rt := &observeInspectFails{fakeRuntime: h.rt}
	h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.putSpec("web", func(c *spec.ContainerSpec) { c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}} })
	h.reconcile("web")
	h.rt.edit("reconciler-web", func(c *docker.Container) { c.Health = "healthy" })
	inspects := h.rt.count("inspect")
	h.reconcile("web")
	if st := h.status("web"); h.rt.count("inspect") != inspects+1 || st.Health != "healthy" {
		t.Fatalf("calls %v, status %+v; want the container inspected and its health shown", h.rt.calls(), st)
	}

	rt.err = errors.New("inspect container: permission denied")
	h.c.cache.dirty("web")
	if _, err := h.c.Reconcile(t.Context(), "web"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Reconcile = %v; want the inspect's failure", err)
	}
	if c := h.rt.calls(); c["stop"]+c["remove"] != 0 || c["create"] != 1 || c["start"] != 1 || h.status("web").Health != "healthy" {
		t.Fatalf("calls %v; want the container left alone", h.rt.calls())
	}
}
