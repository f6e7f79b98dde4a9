package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// corruptStateScenario damages a stopped agent's state file in several
// ways: each time the agent must exit non-zero within seconds, name the
// file and say what to do, and touch no container, although its spec
// directory asks for a new one.
func corruptStateScenario(ctx SpecContext) {
	a := startAgent()
	instance := a.instance(ctx)
	keep, fresh := fname("keep"), fname("fresh")
	a.WriteSpec(keep+".yaml", Spec(keep, tickArgs))
	var id string
	Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, keep)(); return err }).WithTimeout(setupBudget).Should(Succeed())
	a.Stop()
	good, err := os.ReadFile(a.State)
	Expect(err).NotTo(HaveOccurred())
	a.WriteSpec(fresh+".yaml", Spec(fresh, tickArgs))

	rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 7))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	page := os.Getpagesize()
	variants := []struct {
		name string
		data func() []byte
	}{
		{"garbage", func() []byte { return garbage(len(good)) }},
		{"truncated to a third", func() []byte { return good[:len(good)/3] }},
		{"shorter than its meta pages", func() []byte { return good[:page] }},
		{"meta pages intact, every other page garbage", func() []byte {
			return append(append([]byte{}, good[:2*page]...), garbage(len(good)-2*page)...)
		}},
		{"meta pages garbage", func() []byte {
			return append(garbage(2*page), good[2*page:]...)
		}},
	}
	tally := tallyEvents(ctx, dcli)
	var slowest time.Duration
	for _, v := range variants {
		By("state file " + v.name)
		Expect(os.WriteFile(a.State, v.data(), 0o600)).To(Succeed())
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res := exec2(rctx, "agent", "--specs-dir", a.SpecsDir, "--state", a.State, "--socket", a.Socket,
			"--metrics-addr", freeAddr(), "--resync", resync.String(), "--rescan", rescan.String())
		cancel()
		Expect(res.err).To(HaveOccurred(), "the agent refused to start on a state file %s; its log:\n%s", v.name, res.stderr)
		Expect(res.elapsed).To(BeNumerically("<", 10*time.Second))
		Expect(res.stderr).To(And(ContainSubstring(a.State), ContainSubstring("corrupt"),
			ContainSubstring("mv "+a.State+" "+a.State+".corrupt")), "the error names the file and what to do")
		Expect(res.stderr).NotTo(ContainSubstring("connected to docker"), "it stopped before talking to Docker")
		slowest = max(slowest, res.elapsed)
		fmt.Fprintf(GinkgoWriter, "%s: exit after %s: %s\n", v.name, res.elapsed.Round(time.Millisecond),
			lastLine(res.stderr))
	}
	Expect(runningOf(ctx, dcli, instance, keep)()).To(Equal(id), "the running container was not touched")
	for _, n := range []string{keep, fresh} {
		for _, action := range []string{"create", "start", "kill", "stop", "die", "destroy"} {
			Expect(tally.count(n, action)).To(BeZero(), "%s %s while the state file was corrupt", n, action)
		}
	}

	By("the file moved aside as the message says, the agent starts afresh and adopts its container")
	Expect(os.Rename(a.State, a.State+".corrupt")).To(Succeed())
	Expect(os.WriteFile(a.State, good, 0o600)).To(Succeed()) // the operator's backup: same instance id
	a.Start()
	Eventually(runningOf(ctx, dcli, instance, fresh)).WithTimeout(converge).Should(Not(BeEmpty()))
	Expect(runningOf(ctx, dcli, instance, keep)()).To(Equal(id))
	sum := &faultSummary{Scenario: "corrupt state file", Faults: len(variants), Specs: 2, Converged: 2}
	sum.note("each refused within %s naming the file and the mv to do; 0 container events meanwhile", slowest.Round(10*time.Millisecond))
	sum.print()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// stateGrowthScenario churns: crash loops with no back-off, a flood of
// fresh file errors (each a Warning event), and short-lived API jobs with
// unique names. The state file must level off once the ledger and event
// bounds are reached.
func stateGrowthScenario(ctx SpecContext) {
	duration := soaking(40*time.Second, 10*time.Minute)
	const exitsPerSpec, maxEvents = 5, 2000 // the flag below; the store's default
	a := startAgent("--exits-per-spec", fmt.Sprint(exitsPerSpec))
	var loops []string
	for i := range 3 {
		n := fname(fmt.Sprintf("crashloop-%d", i))
		loops = append(loops, n)
		a.WriteSpec(n+".yaml", Spec(n, []string{"exit", "--code", "1", "--stderr", strings.Repeat("x", 200)},
			"backoff: {max: 1ms}"))
	}
	type sample struct {
		at   time.Duration
		size int64
	}
	var samples []sample
	start := time.Now()
	round, jobs := 0, 0
	for time.Since(start) < duration {
		// A hundred files, each with an error it never had: a hundred events.
		for i := range 100 {
			a.WriteSpec(fmt.Sprintf("churn-%03d.yaml", i), Spec(fname(fmt.Sprintf("churn-%03d", i)), tickArgs,
				fmt.Sprintf("unknownField%d: 1", round)))
		}
		job := fname(fmt.Sprintf("job-%d", round))
		if _, err := a.API().Apply(ctx, []byte(Spec(job, []string{"exit", "--code", "0"}, "restartPolicy: Never")),
			"application/yaml", false); err == nil {
			jobs++
		}
		if round > 0 {
			_ = a.API().Delete(ctx, fname(fmt.Sprintf("job-%d", round-1)))
		}
		round++
		time.Sleep(time.Second)
		fi, err := os.Stat(a.State)
		Expect(err).NotTo(HaveOccurred())
		samples = append(samples, sample{time.Since(start).Round(time.Second), fi.Size()})
	}
	Expect(a.Exited()).To(BeFalse())
	exitsTotal := 0.0
	for k, v := range a.Metrics() {
		if strings.HasPrefix(k, "reconciler_container_exits_total") {
			exitsTotal += v
		}
	}
	a.Stop()
	st, err := readStateFile(a.State)
	Expect(err).NotTo(HaveOccurred(), "bbolt check after the churn")

	var series []string
	for _, s := range samples {
		series = append(series, fmt.Sprintf("%s:%dK", s.at, s.size>>10))
	}
	fmt.Fprintf(GinkgoWriter, "state file size over time: %s\n", strings.Join(series, " "))
	for _, n := range loops {
		Expect(st.Ledgers[n]).To(BeNumerically("<=", exitsPerSpec), "ledger of %s", n)
	}
	Expect(st.Events).To(BeNumerically("<=", maxEvents))
	half := samples[len(samples)/2].size
	final := samples[len(samples)-1].size
	// bbolt grows its file in steps (doubling while small) and reuses
	// freed pages: once the bounds are reached, at most one more step.
	Expect(final).To(BeNumerically("<=", 2*half), "the file keeps growing after the bounds were reached")
	sum := &faultSummary{Scenario: "state file growth", Faults: int(exitsTotal) + round*100 + jobs, Specs: len(loops), Converged: len(loops)}
	sum.note("%s of churn: %.0f exits, ~%d file-error events, %d API jobs created and deleted; kept %d events (bound %d), ledgers <= %d; file %d KiB at half-time, %d KiB at the end (data %d KiB)",
		duration, exitsTotal, round*100, jobs, st.Events, maxEvents, exitsPerSpec, half>>10, final>>10, st.HighWater>>10)
	sum.print()
}
