package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/model"
)

// eventLossScenario runs the agent with its event stream and waits
// suppressed: a hand-removed container, a hand-killed one and a new spec
// must all converge within one resync period plus a start.
func eventLossScenario(ctx SpecContext) {
	const period = 3 * time.Second
	rounds := soaking(2, 10)
	sum := &faultSummary{Scenario: "event loss"}
	// The event stream and container waits are held unanswered.
	px := startFaultProxy()
	held := []*faultRule{px.hang("", `^/events$`), px.hang("", `^/containers/[^/]+/wait$`)}
	heldCount := func() int64 { return held[0].hits.Load() + held[1].hits.Load() }
	web, killed := fname("web"), fname("killed")
	decoys := makeDecoys(ctx, dcli, web, false)
	a := startAgent("--docker-host", px.host(), "--resync", period.String())
	tick := []string{"tick", "--interval", "1s"}
	instance := a.instance(ctx)
	running := func(ctx context.Context, spec string) func() (string, error) {
		return runningOf(ctx, dcli, instance, spec)
	}
	desired := map[string]bool{web: true, killed: true}
	a.WriteSpec(web+".yaml", Spec(web, tick))
	// Killed every round: a short back-off cap keeps its restarts inside
	// the bound checked below.
	a.WriteSpec(killed+".yaml", Spec(killed, tick, "backoff: {max: 1s}"))
	for _, n := range []string{web, killed} {
		Eventually(running(ctx, n)).WithTimeout(setupBudget).Should(Not(BeEmpty()))
	}
	Expect(heldCount()).To(BeNumerically(">", 0), "the agent asked for events and got none")

	var slowest time.Duration
	within := period + startBudget
	for round := range rounds {
		By(fmt.Sprintf("round %d: a container removed, one killed, a spec added, with no event delivered", round+1))
		webID, err := running(ctx, web)()
		Expect(err).NotTo(HaveOccurred())
		killedID, err := running(ctx, killed)()
		Expect(err).NotTo(HaveOccurred())
		exitsBefore := len(a.Exits(ctx, killed))
		late := fname(fmt.Sprintf("late-%d", round))
		desired[late] = true

		at := time.Now()
		Expect(dcli.ContainerRemove(ctx, webID, container.RemoveOptions{Force: true})).To(Succeed())
		Expect(dcli.ContainerKill(ctx, killedID, "SIGKILL")).To(Succeed())
		a.WriteSpec(late+".yaml", Spec(late, tick))
		sum.Faults += 2

		Eventually(func() error {
			if id, err := running(ctx, web)(); err != nil || id == webID {
				return fmt.Errorf("%s not recreated yet: %v", web, err)
			}
			if _, err := running(ctx, late)(); err != nil {
				return err
			}
			ex := a.Exits(ctx, killed)
			if len(ex) <= exitsBefore {
				return errors.New("the kill is not recorded yet")
			}
			if ex[0].ContainerID != killedID || ex[0].ExitCode != 137 || ex[0].Reason == model.ReasonLost {
				return fmt.Errorf("the kill is recorded as %d (%s)", ex[0].ExitCode, ex[0].Reason)
			}
			if _, err := running(ctx, killed)(); err != nil {
				return err
			}
			return nil
		}).WithTimeout(within).WithPolling(100*time.Millisecond).Should(Succeed(),
			"converged within one resync period (%s) plus a start, from the re-list alone", period)
		slowest = max(slowest, time.Since(at))
	}
	m := a.Metrics()
	events := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "reconciler_docker_events_total") {
			events += v
		}
	}
	Expect(events).To(BeZero(), "no Docker event reached the agent")
	// Each held subscription runs out of its deadline and is made again;
	// none of them delivered anything.
	reconnects := m["reconciler_event_stream_reconnects_total"]
	Expect(checkDecoys(ctx, dcli, decoys, true)).To(Succeed())

	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Specs = len(desired)
	sum.Converged = sum.Specs
	sum.Duplicates, sum.Orphans = f.duplicates(), len(f.orphans(desired))
	sum.note("events and waits held unanswered (%d requests, %v resubscriptions after their deadline); slowest convergence %s with resync %s; 0 events received; decoys untouched",
		heldCount(), reconnects, slowest.Round(10*time.Millisecond), period)
	sum.print()
	Expect(sum.Duplicates + sum.Orphans).To(BeZero())
}
