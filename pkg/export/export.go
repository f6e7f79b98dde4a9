// Package export turns specs into the manifests another orchestrator would
// run them with. It is pure (no Kubernetes dependency: it writes the field
// names itself) so the agent binary stays small; test/conformance checks
// the output against the real Kubernetes API types.
//
// Whatever a manifest cannot express is returned as a Warning, never
// dropped silently.
package export

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/reconciler/reconciler/pkg/spec"
)

// Warning is one thing of a spec that the manifests do not carry as the
// agent does, and what the operator should know or do about it.
type Warning struct {
	Spec    string // spec name
	Field   string // field path in the spec, e.g. spec.resources.pids
	Message string
}

// String reads "<spec>: <field>: <message>".
func (w Warning) String() string { return fmt.Sprintf("%s: %s: %s", w.Spec, w.Field, w.Message) }

// NameLabel is the label that ties a Deployment's selector to its pods.
const NameLabel = "app.kubernetes.io/name"

// Kubernetes writes one manifest per spec, as multi-document YAML, chosen by
// restart policy the way a Kubernetes user would run the same workload:
//
//	Always    -> apps/v1 Deployment (1 replica, Recreate: the agent stops
//	             the old container before starting the new one)
//	OnFailure -> batch/v1 Job, pod restartPolicy OnFailure, backoffLimit =
//	             maxRestarts
//	Never     -> batch/v1 Job, pod restartPolicy Never, backoffLimit 0
//
// Specs are expected decoded (defaulted and validated), as from spec.Decode
// or the agent's API.
func Kubernetes(specs []*spec.Spec) (manifests []byte, warnings []Warning, err error) {
	return KubernetesWith(specs, Options{})
}

// KubernetesWith is Kubernetes with what the agent knows besides the
// specs (its registry credentials).
func KubernetesWith(specs []*spec.Spec, opts Options) (manifests []byte, warnings []Warning, err error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	seen := map[string]bool{}
	for _, s := range specs {
		if s == nil {
			return nil, nil, fmt.Errorf("export: nil spec")
		}
		name := s.Metadata.Name
		if seen[name] {
			return nil, nil, fmt.Errorf("export: spec %q given twice", name)
		}
		seen[name] = true
		m := &mapper{spec: s, opts: opts}
		obj := m.object()
		if err := enc.Encode(obj); err != nil {
			return nil, nil, fmt.Errorf("export: spec %q: %w", name, err)
		}
		warnings = append(warnings, m.warnings...)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	return buf.Bytes(), warnings, nil
}

// mapper maps one spec and collects its warnings.
type mapper struct {
	spec       *spec.Spec
	opts       Options
	warnings   []Warning
	secretKeys map[string]bool // keys of SecretName's Secret already used
}

func (m *mapper) warn(field, format string, args ...any) {
	m.warnings = append(m.warnings, Warning{Spec: m.spec.Metadata.Name, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (m *mapper) object() object {
	s := m.spec
	c := &s.Spec
	labels := maps.Clone(s.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if labels[NameLabel] == "" {
		labels[NameLabel] = s.Metadata.Name
	}
	meta := objectMeta{Name: s.Metadata.Name, Labels: labels}
	m.priority(&meta)
	tmpl := podTemplateSpec{Metadata: objectMeta{Labels: labels}, Spec: m.pod()}

	m.restarts()
	m.dependencies()
	m.loggingAndInit()
	if c.RestartPolicy == spec.RestartAlways {
		m.notForServices()
		strategy, minReady := m.strategy()
		return object{APIVersion: "apps/v1", Kind: "Deployment", Metadata: meta, Spec: deploymentSpec{
			Replicas:        1,
			MinReadySeconds: minReady,
			Selector:        labelSelector{MatchLabels: map[string]string{NameLabel: labels[NameLabel]}},
			Strategy:        strategy,
			Template:        tmpl,
		}}
	}
	m.noStrategyForJobs()
	job := jobSpec{Template: tmpl}
	switch {
	case c.RestartPolicy == spec.RestartNever:
		job.BackoffLimit = ptr(int32(0))
	case c.MaxRestarts != nil:
		job.BackoffLimit = ptr(int32(min(*c.MaxRestarts, math.MaxInt32)))
	default:
		m.warn("spec.maxRestarts", "unset: the agent retries forever, a Kubernetes Job gives up after backoffLimit (default 6)")
	}
	if d := c.ActiveDeadline.Duration; d > 0 {
		job.ActiveDeadlineSeconds = ptr(seconds(d))
		if c.RestartPolicy == spec.RestartOnFailure {
			m.warn("spec.activeDeadline", "the agent bounds each run; activeDeadlineSeconds bounds the Job with all its retries")
		}
	}
	if d := c.TTLAfterFinished.Duration; d > 0 {
		job.TTLSecondsAfterFinished = ptr(int32(min(seconds(d), math.MaxInt32)))
	}
	if c.RemoveOnExit {
		m.warn("spec.removeOnExit", "a finished Job keeps its pod until ttlSecondsAfterFinished removes the Job")
	}
	return object{APIVersion: "batch/v1", Kind: "Job", Metadata: meta, Spec: job}
}

// notForServices reports the job-only fields of a spec that becomes a
// Deployment.
func (m *mapper) notForServices() {
	c := &m.spec.Spec
	if c.MaxRestarts != nil {
		m.warn("spec.maxRestarts", "a Deployment restarts its pod forever; there is no restart limit")
	}
	if c.ActiveDeadline.Duration > 0 {
		m.warn("spec.activeDeadline", "a Deployment has no deadline (a pod's activeDeadlineSeconds would only make it replace the pod)")
	}
	if c.TTLAfterFinished.Duration > 0 {
		m.warn("spec.ttlAfterFinished", "a Deployment never finishes; ttlSecondsAfterFinished exists for Jobs only")
	}
	if c.RemoveOnExit {
		m.warn("spec.removeOnExit", "a Deployment's pod restarts its container in place")
	}
}

// restarts reports a back-off that differs from the defaults on a spec
// that restarts: Kubernetes has its own CrashLoopBackOff.
func (m *mapper) restarts() {
	c := &m.spec.Spec
	if c.RestartPolicy == spec.RestartNever {
		return
	}
	b := c.Backoff
	if b.Initial.Duration != 0 || b.Max.Duration != spec.DefaultBackoffMax || b.ResetAfter.Duration != spec.DefaultBackoffResetAfter {
		m.warn("spec.backoff", "not mapped: the kubelet's CrashLoopBackOff applies (10s doubling to 5m, reset after 10m of running)")
	}
}

func ptr[T any](v T) *T { return &v }

// seconds rounds up, so that a grace period or deadline is never shortened.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
