package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

func TestWaitForConditions(t *testing.T) {
	a := startJobAgent(t)
	a.put(t, &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "db"},
		Spec: spec.ContainerSpec{Image: "i"}})
	rec, err := a.st.GetSpec("db")
	if err != nil {
		t.Fatal(err)
	}
	a.commit(t, model.Status{Name: "db", Phase: model.PhaseRunning, SpecHash: rec.Hash, Health: "starting"}, nil)

	// Running, but its container is being replaced: not yet.
	a.commit(t, model.Status{Name: "db", Phase: model.PhaseRunning, SpecHash: rec.Hash, Updating: true}, nil)
	_, errOut, err := a.reconciler("wait", "db", "--for=running", "--timeout", "30ms")
	if exitCodeOf(err) != 1 || !strings.Contains(errOut, "its container is being replaced") {
		t.Errorf("--for=running while updating: code %d, stderr %q", exitCodeOf(err), errOut)
	}
	a.commit(t, model.Status{Name: "db", Phase: model.PhaseRunning, SpecHash: rec.Hash, Health: "starting"}, nil)
	out, _, err := a.reconciler("wait", "db", "--for=running", "--timeout", "5s")
	if err != nil || out != "db condition met (running)\n" {
		t.Errorf("--for=running: %q %v", out, err)
	}
	// Not healthy yet: exit 1 at the timeout, saying what was seen.
	_, errOut, err = a.reconciler("wait", "db", "--for=healthy", "--timeout", "50ms")
	if exitCodeOf(err) != 1 || !strings.Contains(errOut, "timed out after 50ms waiting for db to be healthy: phase Running (health starting)") {
		t.Errorf("--for=healthy, starting: code %d, stderr %q", exitCodeOf(err), errOut)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := a.reconciler("wait", "db", "--for=healthy", "--timeout", "10s")
		done <- err
	}()
	for before := a.gets.Load(); a.gets.Load() < before+3; {
		time.Sleep(time.Millisecond)
	}
	a.commit(t, model.Status{Name: "db", Phase: model.PhaseRunning, SpecHash: rec.Hash, Health: "healthy"}, nil)
	if err := <-done; err != nil {
		t.Errorf("--for=healthy once healthy: %v", err)
	}
	// A status of an older definition does not count.
	a.commit(t, model.Status{Name: "db", Phase: model.PhaseSucceeded, SpecHash: "older"}, nil)
	if _, _, err := a.reconciler("wait", "db", "--for=succeeded", "--timeout", "30ms"); exitCodeOf(err) != 1 {
		t.Errorf("--for=succeeded on an older status: %v, want exit 1", err)
	}
	if _, _, err := a.reconciler("wait", "db", "--for=ready"); err == nil || !strings.Contains(err.Error(), "use running, healthy, succeeded or deleted") {
		t.Errorf("--for=ready: %v", err)
	}
	// The spec exists: not deleted.
	if _, errOut, err := a.reconciler("wait", "db", "--for=deleted", "--timeout", "30ms"); exitCodeOf(err) != 1 || !strings.Contains(errOut, "the spec exists") {
		t.Errorf("--for=deleted while it exists: %v %q", err, errOut)
	}
}

func TestDescribeShowsStrategyDependenciesAndUpdating(t *testing.T) {
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "web"},
		Spec: spec.ContainerSpec{Image: "i",
			UpdateStrategy: &spec.UpdateStrategy{Type: spec.StartFirst, MinReady: spec.Duration{Duration: 5 * time.Second}},
			DependsOn:      []spec.Dependency{{Name: "db", Condition: spec.DependsHealthy}, {Name: "cache"}}}}
	var b bytes.Buffer
	d := description{SpecView: api.SpecView{Name: "web", Spec: s,
		Status: &model.Status{Phase: model.PhaseRunning, Health: "healthy", Updating: true}}}
	if err := writeDescription(&b, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Strategy:     StartFirst (minReady 5s)\n", "Depends on:   db (Healthy), cache (Started)\n",
		"Health:       healthy\n", "Updating:     yes: the container is not of this definition yet"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe:\n%s\nwant %q", b.String(), want)
		}
	}
	// The default strategy and no dependencies add nothing.
	b.Reset()
	d.Spec = &spec.Spec{Metadata: spec.Metadata{Name: "web"}, Spec: spec.ContainerSpec{Image: "i"}}
	d.Status = &model.Status{Phase: model.PhaseRunning}
	if err := writeDescription(&b, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "Strategy") || strings.Contains(out, "Depends on") || strings.Contains(out, "Updating") {
		t.Errorf("describe of a plain spec:\n%s", out)
	}
}
