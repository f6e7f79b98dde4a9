// Package metrics owns the agent's Prometheus collectors. Every label value
// comes from a small fixed set; none carries a container id or error text.
package metrics

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reconciler/reconciler/pkg/model"
)

// Reconcile results.
const (
	ResultSuccess = "success"
	ResultError   = "error"
	ResultRequeue = "requeue"
)

// Metrics is the set of collectors the agent updates.
type Metrics struct {
	Registry *prometheus.Registry

	ReconcileTotal      *prometheus.CounterVec
	ReconcileDuration   prometheus.Histogram
	QueueDepth          prometheus.Gauge
	QueueAdds           prometheus.Counter
	QueueWait           prometheus.Histogram
	Specs               *prometheus.GaugeVec
	Restarts            prometheus.Counter
	Exits               *prometheus.CounterVec
	SpecErrors          prometheus.Gauge
	DockerEvents        *prometheus.CounterVec
	StreamReconnects    prometheus.Counter
	Convergence         prometheus.Histogram
	DockerRequests      *prometheus.HistogramVec
	DockerErrors        *prometheus.CounterVec
	ContainerOperations *prometheus.CounterVec
	PolicyRefusals      *prometheus.CounterVec
	ImagePulls          *prometheus.CounterVec
	ImageUpdates        *prometheus.CounterVec
	ImagePullDuration   prometheus.Histogram
	Admission           Admission

	// The agent's own probes, read at scrape time so that an alert sees
	// what /readyz and /healthz would answer (Prometheus cannot scrape those).
	ready, healthy atomic.Pointer[func() error]
	// stateWriteErrors reads the store's count of refused commits.
	stateWriteErrors atomic.Pointer[func() uint64]
}

// DockerOps are the daemon operations measured, pre-created at zero.
var DockerOps = []string{"ping", "list", "inspect", "create", "start", "stop", "remove",
	"wait", "logs", "exec_create", "exec_attach", "exec_inspect", "image_inspect", "pull", "events",
	"distribution_inspect", "image_tag"}

// Image pull results.
const (
	PullSuccess = "success"
	PullFailure = "failure"
	PullStalled = "stalled"

	// Results of reconciler_image_updates_total.
	UpdateChecked    = "checked"
	UpdateUpdated    = "updated"
	UpdateRolledBack = "rolled_back"
	UpdateFailed     = "failed"
)

// ContainerOps are the changes the agent makes to containers.
var ContainerOps = []string{"create", "start", "stop", "remove"}

// Docker event actions counted by name; anything else is "other", so the
// label stays bounded.
var eventActions = map[string]bool{"create": true, "start": true, "die": true, "stop": true,
	"kill": true, "destroy": true, "oom": true, "health_status": true, "pause": true, "unpause": true, "restart": true}

// New registers every collector on a fresh registry, with Go and process
// collectors and build info.
func New(version, revision string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		ReconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_reconcile_total", Help: "Reconcile calls by result."}, []string{"result"}),
		ReconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_reconcile_duration_seconds", Help: "Time spent in one reconcile call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_workqueue_depth", Help: "Spec names waiting in the work queue."}),
		QueueAdds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_workqueue_adds_total", Help: "Spec names added to the work queue."}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_workqueue_queue_duration_seconds", Help: "Time a name waits in the queue before a worker takes it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		Specs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_specs", Help: "Specs by phase."}, []string{"phase"}),
		Restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_container_restarts_total", Help: "Containers restarted under their restart policy."}),
		Exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_container_exits_total", Help: "Container exits recorded, by reason."}, []string{"reason"}),
		SpecErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_spec_errors", Help: "Spec files or specs currently refused (invalid or denied by policy)."}),
		DockerEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_docker_events_total", Help: "Docker container events received, by action."}, []string{"action"}),
		StreamReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_event_stream_reconnects_total", Help: "Times the Docker event stream was subscribed again after it ended."}),
		Convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_convergence_seconds", Help: "Time from a desired-state change to the container running as desired.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		DockerRequests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reconciler_docker_request_duration_seconds", Help: "Latency of Docker API calls, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}, []string{"operation"}),
		DockerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_docker_request_errors_total", Help: "Failed Docker API calls, by operation."}, []string{"operation"}),
		ContainerOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_container_operations_total", Help: "Container changes made by the agent, by operation."}, []string{"operation"}),
		PolicyRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_policy_refusals_total",
			Help: "Specs that became refused by the policy in force, by the policy field that would allow them."}, []string{"rule"}),
		ImagePulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_image_pulls_total", Help: "Image pulls by result: success, failure, stalled (no progress for the pull timeout)."},
			[]string{"result"}),
		ImageUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_image_updates_total",
			Help: "autoUpdate outcomes: checked (the registry answered), updated (a new image adopted), rolled_back, failed (the check or pull failed)."},
			[]string{"result"}),
		ImagePullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_image_pull_duration_seconds", Help: "Time an image pull took, whatever its result.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 10)}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reconciler_build_info", Help: "Build information; always 1."}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	ready := probeGauge("reconciler_ready", "1 when the agent is ready (as /readyz): state open, Docker reachable, first full sync done.", &m.ready)
	healthy := probeGauge("reconciler_healthy", "1 when the reconcile loop makes progress (as /healthz).", &m.healthy)
	stateWriteErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "reconciler_state_write_errors_total",
		Help: "Commits the state file refused (no space left, an I/O error); /readyz is 503 until one succeeds again."},
		func() float64 {
			if f := m.stateWriteErrors.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		})
	reg.MustRegister(stateWriteErrors)
	m.Admission = newAdmission(reg)
	reg.MustRegister(m.ReconcileTotal, m.ReconcileDuration, m.QueueDepth, m.QueueAdds, m.QueueWait,
		m.Specs, m.Restarts, m.Exits, m.SpecErrors, m.DockerEvents, m.StreamReconnects, m.Convergence,
		m.DockerRequests, m.DockerErrors, m.ContainerOperations, m.PolicyRefusals, m.ImagePulls, m.ImageUpdates, m.ImagePullDuration, buildInfo, ready, healthy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{ResultSuccess, ResultError, ResultRequeue} {
		m.ReconcileTotal.WithLabelValues(r)
	}
	for _, p := range model.Phases {
		m.Specs.WithLabelValues(string(p))
	}
	for _, r := range model.ExitReasons {
		m.Exits.WithLabelValues(string(r))
	}
	for _, op := range DockerOps {
		m.DockerRequests.WithLabelValues(op)
		m.DockerErrors.WithLabelValues(op)
	}
	for _, r := range []string{UpdateChecked, UpdateUpdated, UpdateRolledBack, UpdateFailed} {
		m.ImageUpdates.WithLabelValues(r)
	}
	for _, r := range []string{PullSuccess, PullFailure, PullStalled} {
		m.ImagePulls.WithLabelValues(r)
	}
	for _, op := range ContainerOps {
		m.ContainerOperations.WithLabelValues(op)
	}
	for a := range eventActions {
		m.DockerEvents.WithLabelValues(a)
	}
	m.DockerEvents.WithLabelValues("other")
	return m
}

// SetProbes makes reconciler_ready and reconciler_healthy report ready and
// healthy; until then both are 0.
func (m *Metrics) SetProbes(ready, healthy func() error) {
	m.ready.Store(&ready)
	m.healthy.Store(&healthy)
}

// SetStateWriteErrors makes reconciler_state_write_errors_total read n.
func (m *Metrics) SetStateWriteErrors(n func() uint64) {
	m.stateWriteErrors.Store(&n)
}

func probeGauge(name, help string, probe *atomic.Pointer[func() error]) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		if f := probe.Load(); f != nil && (*f)() == nil {
			return 1
		}
		return 0
	})
}

// ObserveDocker records one Docker API call; it fits docker.Options.Observe.
// A call the agent cancelled itself (a wait it no longer needs, shutdown)
// is not a daemon error.
func (m *Metrics) ObserveDocker(op string, d time.Duration, err error) {
	m.DockerRequests.WithLabelValues(op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, context.Canceled) {
		m.DockerErrors.WithLabelValues(op).Inc()
	}
}

// DockerEvent counts one event; health_status actions carry their status
// after a colon and are counted as one action.
func (m *Metrics) DockerEvent(action string) {
	for i := 0; i < len(action); i++ {
		if action[i] == ':' {
			action = action[:i]
			break
		}
	}
	if !eventActions[action] {
		action = "other"
	}
	m.DockerEvents.WithLabelValues(action).Inc()
}
