package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

// daemonEvent is one container event of the daemon, as the test saw it.
type daemonEvent struct {
	action string
	id     string
	name   string
	at     int64 // unix nanoseconds
}

func (e daemonEvent) String() string { return fmt.Sprintf("%s %s (%s)", e.action, e.id[:12], e.name) }

// specEvents lists the daemon's events for a spec's containers (filtered by
// the suite's test label) between since and now, in the daemon's order.
func specEvents(ctx context.Context, specName string, since time.Time) []daemonEvent {
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", testLabel+"="+runID),
		filters.Arg("label", "reconciler.spec="+specName))
	msgs, errs := dcli.Events(ctx, events.ListOptions{Filters: f,
		Since: since.Format(time.RFC3339Nano), Until: time.Now().Format(time.RFC3339Nano)})
	var out []daemonEvent
	for {
		select {
		case m := <-msgs:
			out = append(out, daemonEvent{action: string(m.Action), id: m.Actor.ID, name: m.Actor.Attributes["name"], at: m.TimeNano})
		case err := <-errs:
			if err != nil && !errors.Is(err, io.EOF) {
				Expect(err).NotTo(HaveOccurred())
			}
			return out
		}
	}
}

// startedBeforeStopped checks, in the daemon's event order, that newID
// started before oldID got its first kill, die or stop.
func startedBeforeStopped(evs []daemonEvent, oldID, newID string) {
	started, stopped := -1, -1
	for i, e := range evs {
		if e.id == newID && e.action == "start" && started < 0 {
			started = i
		}
		if e.id == oldID && (e.action == "kill" || e.action == "die" || e.action == "stop") && stopped < 0 {
			stopped = i
		}
	}
	ExpectWithOffset(1, started).To(BeNumerically(">=", 0), "no start of the new container %s in %v", newID[:12], evs)
	ExpectWithOffset(1, stopped).To(BeNumerically(">=", 0), "no stop of the old container %s in %v", oldID[:12], evs)
	ExpectWithOffset(1, started).To(BeNumerically("<", stopped),
		"the new container must start before the old one is stopped; the daemon's events: %v", evs)
	ExpectWithOffset(1, evs[started].at).To(BeNumerically("<=", evs[stopped].at))
}

// canonical checks that the spec has one container, running, under the
// canonical name, and returns its id.
func canonical(ctx context.Context, name string) func() (string, error) {
	return func() (string, error) {
		c, err := runningContainer(ctx, name)
		if err != nil {
			return "", err
		}
		if len(c.Names) != 1 || c.Names[0] != "/reconciler-"+name {
			return "", fmt.Errorf("container %s is named %v", c.ID[:12], c.Names)
		}
		return c.ID, nil
	}
}

// waitCLI runs `reconciler wait NAME --for=COND --timeout D` with room for
// D (runCLI's own bound is shorter than the suite's budgets) and returns
// its exit code and stderr.
func (a *Agent) waitCLI(ctx context.Context, name, cond string, d time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, d+cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "wait", name, "--for="+cond, "--timeout", d.String())
	cmd.Env = append(os.Environ(), "RECONCILER_SOCKET="+a.Socket)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = GinkgoWriter, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		Fail("running reconciler wait: " + err.Error())
	}
	GinkgoWriter.Printf("$ reconciler wait %s --for=%s --timeout %s => %d\n%s", name, cond, d, code, errb.String())
	return code, errb.String()
}

// healthcheckOn is a healthcheck passing once file exists in the
// container. Its long start period keeps a container without the file
// "starting" rather than unhealthy (which the agent would restart).
func healthcheckOn(file string) string {
	return fmt.Sprintf("healthcheck: {test: [CMD, /box, health, --file, %s], interval: 1s, timeout: 1s, retries: 1, startPeriod: 1h}", file)
}

var _ = Describe("start-first and dependencies", func() {
	It("replaces start-first (new started before the old stops, the name kept), restarts on request and across an agent restart, and keeps the old one when the new one fails", func(ctx SpecContext) {
		a := startAgent()
		web := fname("sf")
		const minReady = 2 * time.Second
		strategy := fmt.Sprintf("updateStrategy: {type: StartFirst, minReady: %s}", minReady)
		rollout := converge + minReady + startBudget // a create+start beside, minReady, the old one's stop

		By("running the first version")
		a.WriteSpec("sf.yaml", cliSpec(web, []string{"tick", "--interval", "500ms"}, strategy))
		Eventually(canonical(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		oldID, _ := canonical(ctx, web)()

		By("changing the spec: the new container starts beside the old one, which stops only then")
		since := time.Now()
		a.WriteSpec("sf.yaml", cliSpec(web, []string{"tick", "--interval", "300ms"}, strategy))
		Eventually(func() int { return len(containers(ctx, web)) }).WithTimeout(rollout).Should(Equal(2),
			"the old and the new container run side by side")
		Expect(a.waitCLI(ctx, web, "running", rollout)).To(Equal(0), "wait --for=running waits for the rollout")
		newID, err := canonical(ctx, web)()
		Expect(err).NotTo(HaveOccurred())
		Expect(newID).NotTo(Equal(oldID), "wait --for=running returned once the new container took over")
		startedBeforeStopped(specEvents(ctx, web, since), oldID, newID)
		Expect(a.Exits(ctx, web)).To(ContainElement(HaveField("ContainerID", oldID)), "the old one's exit is recorded")

		By("reconciler restart: replaced by the same strategy")
		oldID, since = newID, time.Now()
		Expect(a.mustCLI(ctx, "restart", web)).To(Equal(web + " restarted\n"))
		Eventually(func() (string, error) {
			id, err := canonical(ctx, web)()
			if err == nil && id == oldID {
				return "", errors.New("still the old container")
			}
			return id, err
		}).WithTimeout(rollout).Should(Not(BeEmpty()))
		newID, _ = canonical(ctx, web)()
		startedBeforeStopped(specEvents(ctx, web, since), oldID, newID)

		By("restarting again, and killing the agent while the replacement runs beside the old one")
		oldID, since = newID, time.Now()
		Expect(a.mustCLI(ctx, "restart", web)).To(Equal(web + " restarted\n"))
		Eventually(func() int { return len(containers(ctx, web)) }).WithTimeout(rollout).Should(Equal(2))
		a.Kill9()
		a.Start()
		Eventually(func() (string, error) {
			id, err := canonical(ctx, web)()
			if err == nil && id == oldID {
				return "", errors.New("still the old container")
			}
			return id, err
		}).WithTimeout(rollout).Should(Not(BeEmpty()), "the restarted agent finishes the rollout")
		newID, _ = canonical(ctx, web)()
		startedBeforeStopped(specEvents(ctx, web, since), oldID, newID)

		By("a new version that exits: the old container keeps running, the failure is recorded")
		oldID, since = newID, time.Now()
		a.WriteSpec("sf.yaml", cliSpec(web, []string{"exit", "--code", "1", "--after", "200ms"}, strategy))
		Eventually(func() []string {
			var reasons []string
			evs, err := a.API().Events(ctx, apiEventsOf(web))
			Expect(err).NotTo(HaveOccurred())
			for _, e := range evs {
				reasons = append(reasons, e.Reason)
			}
			return reasons
		}).WithTimeout(rollout).Should(ContainElement("RolloutFailed"))
		var failed model.ContainerExit
		Eventually(func() []model.ContainerExit { return a.Exits(ctx, web) }).WithTimeout(converge).
			Should(ContainElement(And(HaveField("ExitCode", 1), Not(HaveField("ContainerID", oldID))), &failed),
				"the failed replacement's exit is in the ledger")
		Eventually(func() (string, error) { st, err := a.Status(ctx, web); return st.Message, err }).WithTimeout(converge).
			Should(ContainSubstring("the old container keeps running"))
		Eventually(func() error { _, err := dcli.ContainerInspect(ctx, failed.ContainerID); return err }).WithTimeout(converge).
			Should(MatchError(ContainSubstring("No such container")), "the failed replacement is removed")

		By("retrying the failed definition only after a growing back-off, the old container running throughout")
		nextName := "reconciler-" + web + "-next"
		attempts := func() (creates, dies []int64) {
			for _, e := range specEvents(ctx, web, since) {
				if e.name != nextName {
					continue
				}
				switch e.action {
				case "create":
					creates = append(creates, e.at)
				case "die":
					dies = append(dies, e.at)
				}
			}
			return creates, dies
		}
		// Three tries: the first, then after 1s and 2s of back-off.
		Eventually(func() int { c, d := attempts(); return min(len(c), len(d)+1) }).WithTimeout(rollout + 3*time.Second).
			Should(BeNumerically(">=", 3))
		creates, dies := attempts()
		Expect(time.Duration(creates[1]-dies[0])).To(BeNumerically(">=", time.Second), "the second try waits 1s after the first failed")
		Expect(time.Duration(creates[2]-dies[1])).To(BeNumerically(">=", 2*time.Second), "the third try waits 2s after the second failed")
		in, err := dcli.ContainerInspect(ctx, oldID)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.State.Running).To(BeTrue(), "the old container still runs")
		Expect(in.Name).To(Equal("/reconciler-"+web), "under the canonical name")
		st, err := a.Status(ctx, web)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Phase).To(Equal(model.PhaseRunning))
		Expect(st.ContainerID).To(Equal(oldID))
		Expect(st.Updating).To(BeTrue(), "the desired version is not running")
		for _, e := range specEvents(ctx, web, since) {
			if e.id == oldID {
				Expect(e.action).NotTo(BeElementOf("kill", "die", "stop"), "the old container was stopped: %v", e)
			}
		}
	})

	It("starts Healthy dependencies in order (a <- b <- c), refuses cycles in validate and the API, and waits --for=healthy and --for=deleted", func(ctx SpecContext) {
		a := startAgent()
		na, nb, nc := fname("dep-a"), fname("dep-b"), fname("dep-c")
		tick := []string{"tick", "--interval", "500ms"}
		// a turns healthy only when the test says so; b as soon as it runs.
		specA := cliSpec(na, tick, healthcheckOn("/tmp/healthy"))
		specB := cliSpec(nb, append(tick, "--healthy-file", "/tmp/healthy"), healthcheckOn("/tmp/healthy"),
			fmt.Sprintf("dependsOn: [{name: %s, condition: Healthy}]", na))
		specC := cliSpec(nc, tick, fmt.Sprintf("dependsOn: [{name: %s, condition: Healthy}]", nb))
		file := a.writeFile("chain.yaml", specC+"---\n"+specB+"---\n"+specA)

		By("validating and applying the chain")
		Expect(a.mustCLI(ctx, "validate", file)).To(ContainSubstring(nc + " ok"))
		a.mustCLI(ctx, "apply", "-f", file)

		By("b and c wait while a is not healthy")
		Eventually(running(ctx, na)).WithTimeout(converge).Should(Not(BeEmpty()))
		Eventually(func() (string, error) { st, err := a.Status(ctx, nb); return string(st.Phase) + ": " + st.Message, err }).
			WithTimeout(converge).Should(And(HavePrefix("Waiting: "), ContainSubstring(fmt.Sprintf("dependency %q to be Healthy", na))))
		Eventually(func() (string, error) { st, err := a.Status(ctx, nc); return string(st.Phase) + ": " + st.Message, err }).
			WithTimeout(converge).Should(And(HavePrefix("Waiting: "), ContainSubstring(fmt.Sprintf("dependency %q to be Healthy", nb))))
		code, stderr := a.waitCLI(ctx, na, "healthy", 2*time.Second)
		Expect(code).To(Equal(1), "wait --for=healthy times out with 1")
		Expect(stderr).To(ContainSubstring("timed out after 2s waiting for " + na + " to be healthy"))
		Expect(containers(ctx, nb)).To(BeEmpty(), "b is not started while a is unhealthy")
		Expect(containers(ctx, nc)).To(BeEmpty())

		By("a turns healthy: b starts, turns healthy, then c starts")
		touched := time.Now()
		ex, err := a.API().Exec(ctx, na, []string{"/box", "touch", "--file", "/tmp/healthy"})
		Expect(err).NotTo(HaveOccurred())
		Expect(ex.ExitCode).To(Equal(0))
		Expect(a.waitCLI(ctx, na, "healthy", converge)).To(Equal(0))
		Expect(a.waitCLI(ctx, nc, "running", 2*converge)).To(Equal(0), "c starts")
		Expect(a.waitCLI(ctx, nb, "healthy", converge)).To(Equal(0))
		started := func(name string) time.Time {
			id, err := running(ctx, name)()
			Expect(err).NotTo(HaveOccurred())
			in, err := dcli.ContainerInspect(ctx, id)
			Expect(err).NotTo(HaveOccurred())
			at, err := time.Parse(time.RFC3339Nano, in.State.StartedAt)
			Expect(err).NotTo(HaveOccurred())
			return at
		}
		sa, sb, sc := started(na), started(nb), started(nc)
		Expect(sa).To(BeTemporally("<", sb), "a started before b")
		Expect(sb).To(BeTemporally("<", sc), "b started before c")
		Expect(sb).To(BeTemporally(">", touched), "b started only once a could turn healthy")

		By("a dependsOn cycle is refused by validate and by the API")
		x, y := fname("cyc-x"), fname("cyc-y")
		fx := a.writeFile("x.yaml", cliSpec(x, tick, fmt.Sprintf("dependsOn: [{name: %s}]", y)))
		fy := a.writeFile("y.yaml", cliSpec(y, tick, fmt.Sprintf("dependsOn: [{name: %s}]", x)))
		res := a.runCLI(ctx, "validate", fx, fy)
		Expect(res.code).To(Equal(1))
		cycle := fmt.Sprintf("dependsOn cycle: %s -> %s -> %s", x, y, x)
		Expect(res.stderr).To(And(ContainSubstring(cycle), ContainSubstring("x.yaml:"), ContainSubstring("y.yaml:")))
		Expect(a.mustCLI(ctx, "apply", "-f", fx)).To(Equal(x+" created\n"), "alone, x is no cycle")
		Eventually(func() (string, error) { st, err := a.Status(ctx, x); return string(st.Phase) + ": " + st.Message, err }).
			WithTimeout(converge).Should(And(HavePrefix("Waiting: "), ContainSubstring(fmt.Sprintf("there is no spec %q", y))))
		res = a.runCLI(ctx, "apply", "-f", fy)
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stderr).To(ContainSubstring(cycle))
		_, err = a.API().Get(ctx, y)
		Expect(err).To(HaveOccurred(), "y was not stored")

		By("wait --for=deleted")
		code, stderr = a.waitCLI(ctx, nc, "deleted", time.Second)
		Expect(code).To(Equal(1), "c exists")
		Expect(stderr).To(ContainSubstring("the spec exists"))
		a.mustCLI(ctx, "delete", nc)
		Expect(a.waitCLI(ctx, nc, "deleted", converge)).To(Equal(0), "wait --for=deleted")
		Expect(containers(ctx, nc)).To(BeEmpty(), "deleted means the container is gone too")
	})
})

// apiEventsOf asks for a spec's events.
func apiEventsOf(name string) api.EventQuery { return api.EventQuery{Spec: name} }
