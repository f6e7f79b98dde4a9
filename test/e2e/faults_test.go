package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
)

// The fault scenarios of issue 6. Each prints one summary line: faults
// injected, specs converged, duplicates, orphans, records lost. Short
// variants run in `make test`; RECONCILER_SOAK=1 (`make soak`) runs the
// long ones. The spec timeouts are backstops for a machine far busier than
// planned; every wait inside derives from the agent's intervals.
var _ = Describe("Faults", Label("faults"), func() {
	It("agent crash: kill -9 at random moments while converging, repeated", func(ctx SpecContext) {
		crashScenario(ctx)
	}, SpecTimeout(soaking(8*time.Minute, 40*time.Minute)))

	It("docker daemon restart: SIGTERM and SIGKILL of a private dockerd under the agent", func(ctx SpecContext) {
		daemonRestartScenario(ctx)
	}, SpecTimeout(soaking(5*time.Minute, 20*time.Minute)))

	It("event loss: with the event stream and waits suppressed, the periodic resync alone converges", func(ctx SpecContext) {
		eventLossScenario(ctx)
	}, SpecTimeout(soaking(5*time.Minute, 10*time.Minute)))

	It("policy: specs beyond the baseline are refused unless the agent's policy file allows them", func(ctx SpecContext) {
		policyScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("secrets: an env value from an agent-only file reaches the container and nothing else", func(ctx SpecContext) {
		secretsScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("a restart whose bind source is gone is refused by the policy, not tried in a loop", func(ctx SpecContext) {
		refusedRestartScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("state file: a corrupt one stops the agent before it touches a container", func(ctx SpecContext) {
		corruptStateScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("state file: churn levels off at the ledger and event bounds", func(ctx SpecContext) {
		stateGrowthScenario(ctx)
	}, SpecTimeout(soaking(5*time.Minute, 15*time.Minute)))

	It("disk full: the state file on a full tmpfs stops container changes until space returns", func(ctx SpecContext) {
		diskFullScenario(ctx)
	}, SpecTimeout(6*time.Minute))

	It("FIFO spec files: refused at once, the directory keeps converging", func(ctx SpecContext) {
		fifoScenario(ctx)
	}, SpecTimeout(4*time.Minute))

	It("stuck source: a spec-directory loop wedged on a frozen state file fails /healthz", func(ctx SpecContext) {
		stuckSourceScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("API: socket 0660 without a race, TCP only with the token, no browser", func(ctx SpecContext) {
		apiScenario(ctx)
	}, SpecTimeout(3*time.Minute))

	It("bad files at scale: a thousand malformed or hostile spec files beside 20 good specs", func(ctx SpecContext) {
		badFilesScenario(ctx)
	}, SpecTimeout(soaking(5*time.Minute, 10*time.Minute)))
})
