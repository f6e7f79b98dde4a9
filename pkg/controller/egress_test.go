package controller

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/spec"
)

type fakeEgress struct {
	err      error
	ensured  map[string][]string
	released []string
}

func (f *fakeEgress) Ensure(_ context.Context, s *spec.Spec) (string, map[string]string, error) {
	name, allow := s.Metadata.Name, s.Spec.Egress.Allow
	if f.err != nil {
		return "", nil, f.err
	}
	if f.ensured == nil {
		f.ensured = map[string][]string{}
	}
	f.ensured[name] = allow
	return "net-" + name, map[string]string{"HTTPS_PROXY": "http://egress-proxy:3128"}, nil
}

func (f *fakeEgress) Release(_ context.Context, name string) error {
	f.released = append(f.released, name)
	return nil
}

func TestWithEgress(t *testing.T) {
	mk := func(e *spec.Egress) *docker.CreateRequest {
		return &docker.CreateRequest{Spec: &spec.Spec{Metadata: spec.Metadata{Name: "job"}, Spec: spec.ContainerSpec{Image: "i", Egress: e}},
			Env: map[string]string{"TOKEN": "from-a-secret"}}
	}
	fe := &fakeEgress{}
	c := New(nil, nil, nil, Options{Egress: fe})

	req := mk(nil)
	orig := req.Spec
	if f := c.withEgress(t.Context(), "web", req); f != nil || req.Spec != orig || len(fe.ensured) != 0 {
		t.Fatalf("no egress: failure %v, spec replaced %v, ensured %v", f, req.Spec != orig, fe.ensured)
	}

	req = mk(&spec.Egress{Allow: []string{}})
	orig = req.Spec
	if f := c.withEgress(t.Context(), "job", req); f != nil || req.Spec.Spec.Network != "none" || len(fe.ensured) != 0 {
		t.Fatalf("allow []: failure %v, network %q, ensured %v", f, req.Spec.Spec.Network, fe.ensured)
	}
	if orig.Spec.Network != "" {
		t.Error("withEgress changed the stored spec, not a copy")
	}

	req = mk(&spec.Egress{Allow: []string{"a.io:443"}})
	if f := c.withEgress(t.Context(), "job", req); f != nil {
		t.Fatal(f)
	}
	if req.Spec.Spec.Network != "net-job" || !slices.Equal(fe.ensured["job"], []string{"a.io:443"}) {
		t.Errorf("network %q, ensured %v", req.Spec.Spec.Network, fe.ensured)
	}
	if req.Env["HTTPS_PROXY"] == "" || req.Env["TOKEN"] != "from-a-secret" {
		t.Errorf("env = %v, want the proxy and the resolved secret", req.Env)
	}

	fe.err = errors.New("image missing")
	if f := c.withEgress(t.Context(), "job", mk(&spec.Egress{Allow: []string{"a.io:443"}})); f == nil || f.Reason != "EgressUnavailable" || f.Message != "image missing" {
		t.Errorf("failed Ensure: %+v", f)
	}
	off := New(nil, nil, nil, Options{})
	if f := off.withEgress(t.Context(), "job", mk(&spec.Egress{Allow: []string{"a.io:443"}})); f == nil || f.Reason != "EgressUnavailable" {
		t.Errorf("no egress manager: %+v", f)
	}
	c.releaseEgress(t.Context(), "job")
	if !slices.Equal(fe.released, []string{"job"}) {
		t.Errorf("released %v", fe.released)
	}
}

// TestEgressProxyIsNotASpecContainer: a proxy carries the agent's
// ownership labels but no spec label. Resync does not take it for a spec,
// and --stop-on-exit leaves it (it has no grace, history or spec of its
// own) while it stops the spec's container.
func TestEgressProxyIsNotASpecContainer(t *testing.T) {
	h := newHarness(t)
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, StopOnExit: true, Resync: time.Hour})
	h.put("web", spec.RestartAlways, "sleep")
	h.rt.add(docker.Container{ID: "proxy1", Name: "reconciler-web.egress-proxy", State: "running",
		Labels: map[string]string{docker.LabelManaged: "true", docker.LabelInstance: "test", "reconciler.egress-proxy": "web"}})
	stop := runController(t, h.c)
	waitFor(t, "web running", func() bool { return h.rt.state("reconciler-web") == "running" })
	stop()
	if h.rt.state("reconciler-web") != "exited" {
		t.Fatalf("the spec's container was not stopped: %q", h.rt.state("reconciler-web"))
	}
	if h.rt.state("reconciler-web.egress-proxy") != "running" || h.rt.count("stop") != 1 {
		t.Fatalf("proxy %q, calls %v: want the proxy left alone", h.rt.state("reconciler-web.egress-proxy"), h.rt.calls())
	}
	if _, err := h.st.GetStatus(""); err == nil {
		t.Error("a status was written for the empty spec name")
	}
}
