package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/reconciler/reconciler/pkg/model"
)

func TestRegistryPassesLint(t *testing.T) {
	m := New("v1.2.3", "abc123")
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Dashboards and alert rules rely on these names (DESIGN.md's operator
// contract); renaming one breaks them.
func TestContractNamesAreRegistered(t *testing.T) {
	m := New("", "")
	for _, n := range []string{
		"reconciler_reconcile_total", "reconciler_reconcile_duration_seconds", "reconciler_workqueue_depth",
		"reconciler_workqueue_adds_total", "reconciler_workqueue_queue_duration_seconds",
		"reconciler_specs", "reconciler_container_restarts_total", "reconciler_container_exits_total",
		"reconciler_spec_errors", "reconciler_docker_events_total", "reconciler_event_stream_reconnects_total",
		"reconciler_convergence_seconds", "reconciler_build_info", "reconciler_docker_request_duration_seconds",
		"reconciler_docker_request_errors_total", "reconciler_container_operations_total",
		"reconciler_ready", "reconciler_healthy", "go_goroutines", "process_resident_memory_bytes",
	} {
		family(t, m, n)
	}
}

// A series that only appears at its first increment hides that increment
// from rate() and increase(); every bounded label value exists from the start.
func TestLabelsArePreCreatedAtZero(t *testing.T) {
	m := New("", "")
	for name, want := range map[string]int{
		"reconciler_reconcile_total":             3,
		"reconciler_specs":                       len(model.Phases),
		"reconciler_container_exits_total":       len(model.ExitReasons),
		"reconciler_container_operations_total":  len(ContainerOps),
		"reconciler_docker_request_errors_total": len(DockerOps),
		"reconciler_docker_events_total":         len(eventActions) + 1,
	} {
		if got := len(family(t, m, name).GetMetric()); got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}
	if got := value(t, m, "reconciler_container_exits_total", "reason", "Error"); got != 0 {
		t.Errorf("exits{reason=Error} = %v before any exit", got)
	}
}

func TestBuildInfo(t *testing.T) {
	m := New("v1.2.3", "abc123")
	s := family(t, m, "reconciler_build_info").GetMetric()[0]
	labels := map[string]string{}
	for _, l := range s.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v1.2.3" || labels["revision"] != "abc123" || !strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("build info labels = %v", labels)
	}
	if v := s.GetGauge().GetValue(); v != 1 {
		t.Errorf("build info = %v, want 1", v)
	}
}

func TestObserveDocker(t *testing.T) {
	m := New("", "")
	m.ObserveDocker("start", 20*time.Millisecond, nil)
	m.ObserveDocker("start", 30*time.Millisecond, errors.New("no such image"))
	m.ObserveDocker("wait", time.Minute, fmt.Errorf("wait: %w", context.Canceled))

	if got := value(t, m, "reconciler_docker_request_errors_total", "operation", "start"); got != 1 {
		t.Errorf("start errors = %v, want 1", got)
	}
	if got := value(t, m, "reconciler_docker_request_errors_total", "operation", "wait"); got != 0 {
		t.Errorf("a wait the agent cancelled counted as a daemon error (%v)", got)
	}
	if n := series(t, m, "reconciler_docker_request_duration_seconds", "operation", "start").GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("start latency samples = %d, want 2", n)
	}
}

func TestDockerEventActionsStayBounded(t *testing.T) {
	m := New("", "")
	for _, a := range []string{"die", "health_status: unhealthy", "health_status: healthy", "exec_start: sh -c x", "attach"} {
		m.DockerEvent(a)
	}
	for action, want := range map[string]float64{"die": 1, "health_status": 2, "other": 2} {
		if got := value(t, m, "reconciler_docker_events_total", "action", action); got != want {
			t.Errorf("events{action=%q} = %v, want %v", action, got, want)
		}
	}
	if got := len(family(t, m, "reconciler_docker_events_total").GetMetric()); got != len(eventActions)+1 {
		t.Errorf("%d action series after unknown actions, want %d", got, len(eventActions)+1)
	}
}

func TestProbesAreReadAtScrapeTime(t *testing.T) {
	m := New("", "")
	if value(t, m, "reconciler_ready", "", "") != 0 || value(t, m, "reconciler_healthy", "", "") != 0 {
		t.Error("probes report 1 before the agent set them")
	}
	readyErr := errors.New("docker daemon unreachable")
	m.SetProbes(func() error { return readyErr }, func() error { return nil })
	if value(t, m, "reconciler_ready", "", "") != 0 || value(t, m, "reconciler_healthy", "", "") != 1 {
		t.Error("want ready 0, healthy 1")
	}
	readyErr = nil
	if value(t, m, "reconciler_ready", "", "") != 1 {
		t.Error("ready did not follow its probe")
	}
}

func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("%s is not registered", name)
	return nil
}

// series returns the series of name whose label is val; an empty label
// means the family's only series.
func series(t *testing.T, m *Metrics, name, label, val string) *dto.Metric {
	t.Helper()
	for _, s := range family(t, m, name).GetMetric() {
		if label == "" {
			return s
		}
		for _, l := range s.GetLabel() {
			if l.GetName() == label && l.GetValue() == val {
				return s
			}
		}
	}
	t.Fatalf("%s{%s=%q} not found", name, label, val)
	return nil
}

func value(t *testing.T, m *Metrics, name, label, val string) float64 {
	t.Helper()
	s := series(t, m, name, label, val)
	if s.GetCounter() != nil {
		return s.GetCounter().GetValue()
	}
	return s.GetGauge().GetValue()
}
