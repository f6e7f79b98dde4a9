package export

import (
	"fmt"
	"math"
	"strings"

	"github.com/reconciler/reconciler/pkg/spec"
)

// strategy maps updateStrategy onto a Deployment's: StopFirst is Recreate
// (the old pod goes first), StartFirst is a RollingUpdate that surges one
// pod and keeps the old one until the new one is ready; minReady is
// minReadySeconds.
func (m *mapper) strategy() (deploymentStrategy, int32) {
	c := &m.spec.Spec
	if !c.IsStartFirst() {
		return deploymentStrategy{Type: "Recreate"}, 0
	}
	var minReady int32
	if d := c.UpdateStrategy.MinReady.Duration; d > 0 {
		minReady = int32(min(seconds(d), math.MaxInt32))
	}
	if c.Healthcheck == nil {
		m.warn("spec.updateStrategy", "StartFirst without a healthcheck: the agent waits minReady; Kubernetes counts a pod ready once it runs (no readinessProbe) and then waits minReadySeconds")
	}
	return deploymentStrategy{Type: "RollingUpdate", RollingUpdate: &rollingUpdate{MaxSurge: 1, MaxUnavailable: 0}}, minReady
}

// noStrategyForJobs warns of an updateStrategy on a spec that becomes a
// Job: a Job's pod is not replaced when the Job changes.
func (m *mapper) noStrategyForJobs() {
	if m.spec.Spec.UpdateStrategy != nil {
		m.warn("spec.updateStrategy", "not mapped: a Job's pod template cannot be changed, so there is nothing to replace (delete and re-create the Job)")
	}
}

// dependencies warns of dependsOn: Kubernetes has no ordering between
// pods.
func (m *mapper) dependencies() {
	deps := m.spec.Spec.DependsOn
	if len(deps) == 0 {
		return
	}
	what := make([]string, len(deps))
	for i, d := range deps {
		what[i] = fmt.Sprintf("%s %s", d.Name, d.Cond())
	}
	hint := "use an init container that waits for it (e.g. until its Service answers)"
	for _, d := range deps {
		if d.Cond() == spec.DependsSucceeded {
			hint += "; for a Succeeded dependency, an init container that runs the job's work itself, or wait for the Job's completion"
			break
		}
	}
	m.warn("spec.dependsOn", "not mapped (%s): Kubernetes has no ordering between pods; %s", strings.Join(what, ", "), hint)
}
