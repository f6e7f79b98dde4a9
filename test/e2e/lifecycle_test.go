package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// containerLogs returns what a container printed so far, both streams.
func containerLogs(ctx context.Context, id string) string {
	rc, err := dcli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	Expect(err).NotTo(HaveOccurred())
	defer rc.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	return b.String()
}

// API returns the agent's API client.
//
// One client serves every call: a client per call leaves one idle
// keep-alive connection each, and a test polling at Gomega's 10 ms reaches
// the agent's --http-max-conns within seconds, after which calls stall for
// the idle timeout. Connections to an agent that was killed are dropped
// by the transport and dialled again.
func (a *Agent) API() *api.Client {
	a.apiOnce.Do(func() { a.api = api.NewClient(a.Socket) })
	return a.api
}

// Status returns a spec's status through the API.
func (a *Agent) Status(ctx context.Context, name string) (model.Status, error) {
	v, err := a.API().Get(ctx, name)
	if err != nil {
		return model.Status{}, err
	}
	if v.Status == nil {
		return model.Status{}, errors.New("no status yet")
	}
	return *v.Status, nil
}

// Exits returns a spec's ledger, newest first.
func (a *Agent) Exits(ctx context.Context, name string) []model.ContainerExit {
	ex, err := a.API().Exits(ctx, name, 0)
	var apiErr *api.APIError
	if errors.As(err, &apiErr) && apiErr.Status == 404 {
		return nil // not applied yet
	}
	Expect(err).NotTo(HaveOccurred())
	return ex
}

func (a *Agent) phase(ctx context.Context, name string) func() model.Phase {
	return func() model.Phase {
		st, err := a.Status(ctx, name)
		if err != nil {
			return ""
		}
		return st.Phase
	}
}

func (a *Agent) exitCount(ctx context.Context, name string) func() int {
	return func() int { return len(a.Exits(ctx, name)) }
}

var _ = Describe("Lifecycle", func() {
	It("applies restart policies as kubelet does: policy x outcome, and an agent restart runs nothing again", func(ctx SpecContext) {
		a := startAgent()
		outcomes := []struct {
			name   string
			args   []string
			more   []string
			reason model.ExitReason
			code   int
			ok     bool
		}{
			{"exit0", []string{"exit", "--code", "0", "--after", "1s"}, nil, model.ReasonCompleted, 0, true},
			{"exit1", []string{"exit", "--code", "1", "--after", "1s"}, nil, model.ReasonError, 1, false},
			{"signal", []string{"signal", "--sig", "KILL"}, nil, model.ReasonSignaled, 137, false},
			// The OOM run waits a second first, as the others do: killed in
			// its first milliseconds, a container dies before the runtime
			// watches its cgroup, and the daemon never reports the kill
			// (seen here under load: no oom event, OOMKilled false).
			{"oom", []string{"oom", "--step", "8Mi", "--after", "1s"}, []string{"resources: {memory: 16Mi}"}, model.ReasonOOMKilled, 137, false},
		}
		policies := map[string]bool{"Always": true, "OnFailure": false, "Never": false} // restarts a success?
		var names []string
		for policy := range policies {
			var docs []string
			for _, oc := range outcomes {
				name := strings.ToLower(policy) + "-" + oc.name
				names = append(names, name)
				docs = append(docs, Spec(name, oc.args, append([]string{"restartPolicy: " + policy, "maxRestarts: 1"}, oc.more...)...))
			}
			a.WriteSpec(strings.ToLower(policy)+".yaml", strings.Join(docs, "---\n"))
		}
		// 12 specs, up to two runs each, at about 2 starts a second.
		budget := converge + 12*2*time.Second
		for policy, restartsSuccess := range policies {
			for _, oc := range outcomes {
				name := strings.ToLower(policy) + "-" + oc.name
				restarts := policy == "Always" || (policy == "OnFailure" && !oc.ok) || (restartsSuccess && oc.ok)
				By(fmt.Sprintf("%s: %s", name, map[bool]string{true: "restarted", false: "not restarted"}[restarts]))
				want := model.PhaseSucceeded
				if !oc.ok || restarts {
					want = model.PhaseFailed // with maxRestarts 1, a restarting spec ends Failed after its second run
				}
				Eventually(a.phase(ctx, name)).WithTimeout(budget).Should(Equal(want), name)
				exits := a.Exits(ctx, name)
				first := exits[len(exits)-1]
				Expect(first.Reason).To(Equal(oc.reason), name)
				Expect(first.ExitCode).To(Equal(oc.code), name)
				Expect(first.OOMKilled).To(Equal(oc.reason == model.ReasonOOMKilled), name)
				Expect(first.SpecName).To(Equal(name))
				Expect(first.SpecHash).NotTo(BeEmpty())
				Expect(first.ContainerID).NotTo(BeEmpty())
				Expect(first.FinishedAt).To(BeTemporally(">=", first.StartedAt))
				Expect(first.Duration).NotTo(BeEmpty())
				if oc.code > 128 {
					Expect(first.Signal).To(Equal("SIGKILL"))
				}
				if restarts {
					Expect(exits).To(HaveLen(2), name+" ran twice")
					Expect(exits[0].RestartCount).To(Equal(1))
				} else {
					Expect(exits).To(HaveLen(1), name+" ran once")
				}
			}
		}
		By("an agent restart runs no finished spec again")
		a.Stop()
		since := time.Now()
		a.Start()
		Consistently(func() int {
			total := 0
			for _, n := range names {
				_, starts := countEvents(ctx, n, since, time.Now())
				total += starts
			}
			return total
		}).WithTimeout(2 * resync).Should(BeZero())
	})

	It("backs off with growing, capped delays, shown in status, and continues after an agent restart", func(ctx SpecContext) {
		a := startAgent("--exits-per-spec", "4")
		crash := fname("crash")
		const limit = 4 * time.Second
		a.WriteSpec("crash.yaml", Spec(crash, []string{"exit", "--code", "1"}, "backoff: {max: 4s, resetAfter: 1m}"))
		// Delays 0, 1s, 2s, 4s, 4s: five exits take about 11 s of back-off plus the runs.
		Eventually(a.exitCount(ctx, crash)).WithTimeout(converge + 30*time.Second).Should(BeNumerically(">=", 4))
		Eventually(func() (model.Status, error) { return a.Status(ctx, crash) }).WithTimeout(10 * time.Second).
			Should(And(HaveField("Phase", model.PhaseBackoff), HaveField("NextTryAt", Not(BeZero()))))

		exits := a.Exits(ctx, crash) // newest first, at most 4 kept
		Expect(exits).To(HaveLen(4))
		// The run after the one with RestartCount k waited Delay(k): 0, 1s,
		// 2s, then 4s (the cap). A start may take longer on a busy daemon,
		// so the delay bounds the gap from below, and the cap plus one start
		// from above.
		backoff := spec.Backoff{Max: spec.Duration{Duration: limit}}
		for i := len(exits) - 1; i > 0; i-- {
			prev, next := exits[i], exits[i-1]
			gap := next.StartedAt.Sub(prev.FinishedAt)
			want := backoff.Delay(prev.RestartCount)
			By(fmt.Sprintf("after run %d: waited %s, back-off %s", prev.RestartCount+1, gap.Round(time.Millisecond), want))
			Expect(gap).To(BeNumerically(">=", want-100*time.Millisecond), "never restarted before its back-off")
			Expect(gap).To(BeNumerically("<", want+startBudget), "and not long after it")
			Expect(next.RestartCount).To(Equal(prev.RestartCount + 1))
		}
		Expect(exits[0].RestartCount).To(BeNumerically(">=", 3), "the sequence reached the cap")

		By("an agent restart mid crash-loop keeps the back-off")
		// Kill the agent in a back-off at the cap. What tells a kept
		// history from a reset one is the delay after the new agent's first
		// exit: the cap if the history carried on, Delay(0) = 0 if it was
		// reset. That gap lies wholly inside the new agent's life, so the
		// time the agent was down cannot hide a reset.
		Eventually(func() (model.Status, error) { return a.Status(ctx, crash) }).WithTimeout(limit + startBudget).
			Should(And(HaveField("Phase", model.PhaseBackoff), HaveField("Restarts", BeNumerically(">=", 4))))
		last := a.Exits(ctx, crash)[0] // the old agent's last recorded run
		r0 := last.RestartCount
		a.Kill9()
		a.Start()
		// first and second are the two runs after it (first may have been
		// started by the old agent just before the kill: then the delay
		// after it is still the new agent's first). A history reset by
		// the restart shows as a restart count that starts over, or as
		// no back-off between them.
		var first, second model.ContainerExit
		Eventually(func() error {
			ex := a.Exits(ctx, crash)
			var after []model.ContainerExit
			for _, e := range ex {
				if e.RestartCount > r0 {
					after = append(after, e)
				}
			}
			slices.SortFunc(after, func(x, y model.ContainerExit) int { return x.RestartCount - y.RestartCount })
			if len(after) < 2 {
				return fmt.Errorf("want two runs counted after run %d (the count carries on): %+v", r0, ex)
			}
			first, second = after[0], after[1]
			return nil
		}).WithTimeout(converge + 3*(limit+startBudget)).Should(Succeed())
		Expect(second.RestartCount).To(Equal(first.RestartCount + 1))
		Expect(first.StartedAt.Sub(last.FinishedAt)).To(BeNumerically(">=", limit-100*time.Millisecond),
			"the back-off after the old agent's last run was kept")
		gap := second.StartedAt.Sub(first.FinishedAt)
		By(fmt.Sprintf("after the new agent's first exit: waited %s", gap.Round(time.Millisecond)))
		Expect(gap).To(BeNumerically(">=", limit-100*time.Millisecond), "the delay stays at the cap, not reset to 0")
	})

	It("resets the back-off after a run that lasted resetAfter, and not after a shorter one", func(ctx SpecContext) {
		a := startAgent()
		reset, climbing := fname("steady"), fname("climbing")
		// Both fail after 3 s. steady's resetAfter (2s) is shorter than its
		// runs, so every restart is the first of a new sequence: Delay(0) =
		// 0, and no back-off at all. climbing's (1m) is longer: its delays
		// climb 0, 1s, 2s, each one a BackOff event naming it. That is the
		// positive control: the same events for steady would show the
		// reset did not happen.
		run := []string{"exit", "--code", "1", "--after", "3s"}
		a.WriteSpec("steady.yaml", Spec(reset, run, "backoff: {max: 1m, resetAfter: 2s}")+"---\n"+
			Spec(climbing, run, "backoff: {max: 1m, resetAfter: 1m}"))
		const runs = 4 // delays 0, 1s, 2s after the first three
		budget := converge + runs*(3*time.Second+startBudget) + 3*time.Second
		Eventually(a.exitCount(ctx, climbing)).WithTimeout(budget).Should(BeNumerically(">=", runs))
		Eventually(a.exitCount(ctx, reset)).WithTimeout(budget).Should(BeNumerically(">=", runs))
		backoffs := func(name string) []string {
			evs, err := a.API().Events(ctx, api.EventQuery{Spec: name})
			Expect(err).NotTo(HaveOccurred())
			var out []string
			for _, e := range evs {
				if e.Reason == "BackOff" {
					out = append(out, e.Message)
				}
			}
			return out
		}
		Expect(backoffs(climbing)).To(ContainElements(HavePrefix("Back-off 1s"), HavePrefix("Back-off 2s")),
			"without a reset the delay climbs")
		Expect(backoffs(reset)).To(BeEmpty(), "each run lasted resetAfter, so each restart came without a back-off")
		steady := a.Exits(ctx, reset)
		for _, ex := range steady {
			Expect(ex.FinishedAt.Sub(ex.StartedAt)).To(BeNumerically(">=", 2*time.Second), "every run lasted resetAfter")
		}
	})

	It("stops with grace: SIGTERM ends a cooperative process at once, an ignoring one is killed after the grace period", func(ctx SpecContext) {
		a := startAgent()
		polite, stubborn, interrupt := fname("polite"), fname("stubborn"), fname("interrupt")
		// What a stop may take besides the grace period: the rescan that
		// sees the file gone, and the stop call on a busy daemon (as slow
		// as a start).
		stopLatency := rescan + startBudget
		// polite's grace is longer than any stop could take without it,
		// so a stop within it was not a grace kill.
		politeGrace := 2 * stopLatency
		const stubbornGrace = 3 * time.Second
		a.WriteSpec("grace.yaml", Spec(polite, []string{"tick", "--interval", "200ms", "--term-exit-code", "143"},
			fmt.Sprintf("terminationGracePeriod: %s", politeGrace))+"---\n"+
			Spec(stubborn, []string{"tick", "--interval", "200ms", "--ignore-sigterm"}, fmt.Sprintf("terminationGracePeriod: %s", stubbornGrace))+"---\n"+
			Spec(interrupt, []string{"tick", "--interval", "200ms", "--term-exit-code", "130"}, "stopSignal: SIGINT"))
		for _, n := range []string{polite, stubborn, interrupt} {
			Eventually(running(ctx, n)).WithTimeout(converge).Should(Not(BeEmpty()))
			// A signal that reaches a Go program before its handler is set
			// makes it exit 2: stop only programs that tick.
			id, _ := running(ctx, n)()
			Eventually(func() string { return containerLogs(ctx, id) }).WithTimeout(startBudget).Should(ContainSubstring("tick 1"))
		}
		stopAt := time.Now()
		a.RemoveSpec("grace.yaml")
		for _, n := range []string{polite, stubborn, interrupt} {
			Eventually(func() int { return len(containers(ctx, n)) }).WithTimeout(stubbornGrace + stopLatency + resync).Should(BeZero())
		}
		p := a.Exits(ctx, polite)[0]
		Expect(p.ExitCode).To(Equal(143))
		Expect(p.Reason).To(Equal(model.ReasonStoppedByAgent))
		Expect(p.FinishedAt.Sub(stopAt)).To(BeNumerically("<", politeGrace), "stopped by SIGTERM, not killed after its grace")
		Expect(p.LogTail).To(ContainSubstring("received SIGTERM"))

		st := a.Exits(ctx, stubborn)[0]
		Expect(st.ExitCode).To(Equal(137))
		Expect(st.Reason).To(Equal(model.ReasonGraceExpired))
		Expect(st.LogTail).To(ContainSubstring("ignoring SIGTERM"))
		killedAfter := st.FinishedAt.Sub(stopAt)
		Expect(killedAfter).To(BeNumerically(">=", stubbornGrace), "not before the grace period")
		Expect(killedAfter).To(BeNumerically("<", stubbornGrace+stopLatency), "and not later than the grace plus one stop")

		in := a.Exits(ctx, interrupt)[0]
		Expect(in.ExitCode).To(Equal(130), "the spec's stopSignal was used")
		Expect(in.LogTail).To(ContainSubstring("received SIGINT"))
	})

	It("records a hand-stopped container as External and restarts it under its policy", func(ctx SpecContext) {
		a := startAgent()
		web := fname("web")
		a.WriteSpec("web.yaml", Spec(web, []string{"tick", "--interval", "1s", "--term-exit-code", "143"}))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, web)()
		// Stop it only once it ticks: a signal that reaches a Go program
		// before its handler is set makes it exit 2.
		Eventually(func() string { return containerLogs(ctx, id) }).WithTimeout(startBudget).Should(ContainSubstring("tick 1"))
		timeout := 1
		Expect(dcli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})).To(Succeed())
		Eventually(a.exitCount(ctx, web)).WithTimeout(resync + startBudget).Should(Equal(1))
		ex := a.Exits(ctx, web)[0]
		Expect(ex.Reason).To(Equal(model.ReasonExternal))
		Expect(ex.ExitCode).To(Equal(143))
		Eventually(running(ctx, web)).WithTimeout(resync+startBudget).Should(Equal(id), "restarted in place under Always")
	})

	It("applies resource limits, verified by inspecting the container", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("limits.yaml", Spec("limits", []string{"sleep"}, `resources: {memory: 48Mi, cpus: "0.5", pids: 64}`))
		Eventually(running(ctx, "limits")).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, "limits")()
		in, err := dcli.ContainerInspect(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.HostConfig.Memory).To(Equal(int64(48 << 20)))
		Expect(in.HostConfig.NanoCPUs).To(Equal(int64(500_000_000)))
		Expect(*in.HostConfig.PidsLimit).To(Equal(int64(64)))
		Expect(in.Config.StopSignal).To(Equal("SIGTERM"))
	})

	It("runs jobs: activeDeadline stops a run that lasts too long, removeOnExit removes the container and keeps the record", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("jobs.yaml", Spec("slow-job", []string{"tick", "--interval", "500ms"},
			"restartPolicy: Never", "activeDeadline: 3s")+"---\n"+
			Spec("quick-job", []string{"countdown", "--from", "2", "--interval", "100ms"}, "restartPolicy: Never", "removeOnExit: true"))
		Eventually(a.phase(ctx, "slow-job")).WithTimeout(converge + 3*time.Second + 3*time.Second).Should(Equal(model.PhaseFailed))
		slow := a.Exits(ctx, "slow-job")
		Expect(slow).To(HaveLen(1))
		Expect(slow[0].Reason).To(Equal(model.ReasonDeadlineExceeded))
		Expect(slow[0].FinishedAt.Sub(slow[0].StartedAt)).To(BeNumerically("~", 3*time.Second, 2*time.Second))

		Eventually(a.phase(ctx, "quick-job")).WithTimeout(converge).Should(Equal(model.PhaseSucceeded))
		Eventually(func() int { return len(containers(ctx, "quick-job")) }).WithTimeout(resync + startBudget).Should(BeZero())
		quick := a.Exits(ctx, "quick-job")
		Expect(quick).To(HaveLen(1))
		Expect(quick[0].Reason).To(Equal(model.ReasonCompleted))
		Expect(quick[0].LogTail).To(ContainSubstring("liftoff"))
		Expect(a.phase(ctx, "quick-job")()).To(Equal(model.PhaseSucceeded), "a removed job stays Succeeded")
	})

	Describe("the proof of concept's checks", func() {
		It("reaches the daemon: its containers appear there, and without a daemon it is not ready", func(ctx SpecContext) {
			a := startAgent()
			name := fname("reach")
			a.WriteSpec("reach.yaml", Spec(name, []string{"sleep"}))
			Eventually(running(ctx, name)).WithTimeout(converge).Should(Not(BeEmpty()))
			id, _ := running(ctx, name)()
			in, err := dcli.ContainerInspect(ctx, id)
			Expect(err).NotTo(HaveOccurred())
			Expect(in.Config.Labels).To(HaveKeyWithValue("reconciler.managed", "true"))
			Expect(in.Config.Labels).To(HaveKeyWithValue("reconciler.spec", name))
			st, err := a.Status(ctx, name)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.ContainerID).To(Equal(id), "the agent reports the container the daemon runs")
			Expect(a.Ready()).To(Succeed())

			By("an agent whose daemon does not answer is not ready, and starts nothing")
			gone := filepath.Join(GinkgoT().TempDir(), "no-docker.sock")
			b := launchAgent("--docker-host", "unix://"+gone)
			other := fname("unreached")
			b.WriteSpec("unreached.yaml", Spec(other, []string{"sleep"}))
			Eventually(func() error { _, err := b.API().List(ctx); return err }).WithTimeout(startBudget).Should(Succeed(), "its API answers")
			Consistently(b.Ready).WithTimeout(resync + rescan).Should(HaveOccurred())
			Expect(containers(ctx, other)).To(BeEmpty())
		})

		It("streams a countdown's log lines at their real one-second cadence, with timestamps", func(ctx SpecContext) {
			a := startAgent()
			countdown := fname("countdown")
			a.WriteSpec("countdown.yaml", Spec(countdown, []string{"countdown", "--from", "5", "--interval", "1s"}, "restartPolicy: Never"))
			Eventually(func() error {
				_, err := a.Status(ctx, countdown)
				return err
			}).WithTimeout(converge).Should(Succeed())
			var arrived, stamped []time.Time
			var lines []string
			Eventually(func() error {
				lines, arrived, stamped = nil, nil, nil
				return a.API().Logs(ctx, countdown, api.LogQuery{Follow: true, Timestamps: true}, func(l api.LogLine) error {
					lines = append(lines, l.Line)
					arrived = append(arrived, time.Now())
					if l.Time != nil {
						stamped = append(stamped, *l.Time)
					}
					return nil
				})
			}).WithTimeout(converge).Should(Succeed())
			Expect(lines).To(ContainElement(ContainSubstring("liftoff")))
			Expect(stamped).To(HaveLen(len(lines)), "every line has its timestamp")
			// Lines 5..1 are one second apart at the source, and were delivered
			// as they came, not in one burst at the end.
			// The box writes a line, sleeps 1s, writes the next: the stamps
			// are 1s apart give or take how late a process on this machine
			// gets to run, which the probe measured.
			jitter := max(300*time.Millisecond, startP90)
			for i := 2; i < len(stamped)-1; i++ {
				Expect(stamped[i].Sub(stamped[i-1])).To(BeNumerically("~", time.Second, jitter))
			}
			Expect(arrived[len(arrived)-1].Sub(arrived[1])).To(BeNumerically(">", 3*time.Second), "streamed live")
		})

		It("stops a long-running container after its third tick: not through the API (its file owns it), by removing the file, 143 and StoppedByAgent", func(ctx SpecContext) {
			a := startAgent()
			ticker := fname("ticker")
			a.WriteSpec("ticker.yaml", Spec(ticker, []string{"tick", "--interval", "1s", "--term-exit-code", "143"}))
			Eventually(running(ctx, ticker)).WithTimeout(converge).Should(Not(BeEmpty()))
			ticks := 0
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_ = a.API().Logs(lctx, ticker, api.LogQuery{Follow: true}, func(l api.LogLine) error {
				if strings.HasPrefix(l.Line, "tick ") {
					ticks++
				}
				if ticks == 3 {
					return errors.New("third tick")
				}
				return nil
			})
			Expect(ticks).To(Equal(3))
			By("the API refuses to delete a spec a file owns, and the container keeps running")
			id, err := running(ctx, ticker)()
			Expect(err).NotTo(HaveOccurred())
			err = a.API().Delete(ctx, ticker)
			var apiErr *api.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue(), "delete of a file-owned spec: %v", err)
			Expect(apiErr.Status).To(Equal(409))
			Expect(apiErr.Message).To(ContainSubstring("comes from file " + filepath.Join(a.SpecsDir, "ticker.yaml")))
			Consistently(running(ctx, ticker)).WithTimeout(rescan + resync).Should(Equal(id))

			By("removing its file stops it with SIGTERM, which it handles")
			a.RemoveSpec("ticker.yaml")
			Eventually(func() int { return len(containers(ctx, ticker)) }).WithTimeout(converge).Should(BeZero())
			ex := a.Exits(ctx, ticker)
			Expect(ex).To(HaveLen(1))
			Expect(ex[0].ExitCode).To(Equal(143), "ended by its SIGTERM handler, not killed")
			Expect(ex[0].Reason).To(Equal(model.ReasonStoppedByAgent))
			Expect(ex[0].LogTail).To(ContainSubstring("received SIGTERM"))
		})
	})
})
