package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// claudeCodeImage is built from docker/claude-code, which needs registries
// this machine may not reach.
const claudeCodeImage = "reconciler/claude-code:2.0.31"

// runJob is `reconciler run` of the box image with the suite's label. The
// jobs need no network, and get none, as a careful operator would do.
func (a *Agent) runJob(ctx SpecContext, name string, flags []string, args ...string) cliResult {
	cmd := append([]string{"run", name, "--image", images.BoxImage, "--label", testLabel + "=" + runID, "--network", "none"}, flags...)
	return a.runCLI(ctx, append(append(cmd, "--"), args...)...)
}

var _ = Describe("Jobs", func() {
	It("runs a one-off job through the CLI: run, logs -f to the end, wait with the job's exit code, exits", func(ctx SpecContext) {
		a := startAgent()

		By("a job that succeeds")
		res := a.runJob(ctx, "countdown", nil, "countdown", "--from", "3", "--interval", "200ms")
		Expect(res.code).To(Equal(0), res.stderr)
		Expect(res.stdout).To(Equal("countdown\n"), "run prints the spec name")
		logs := a.runCLI(ctx, "logs", "-f", "countdown")
		Expect(logs.code).To(Equal(0), logs.stderr)
		Expect(logs.stdout).To(Equal("counting down from 3\n3\n2\n1\nliftoff\n"), "logs -f follows to the end")
		wait := a.runCLI(ctx, "wait", "countdown", "--timeout", converge.String())
		Expect(wait.code).To(Equal(0), wait.stderr)
		Expect(wait.stdout).To(HavePrefix("countdown Succeeded: exit code 0 (Completed)"))
		Expect(a.mustCLI(ctx, "exits", "countdown")).To(MatchRegexp(`(?m)^\S.*\s0\s+Completed\s`))
		st, err := a.Status(ctx, "countdown")
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Phase).To(Equal(model.PhaseSucceeded))

		By("a job that exits 3")
		res = a.runJob(ctx, "fails", nil, "exit", "--code", "3", "--after", "500ms")
		Expect(res.code).To(Equal(0), res.stderr)
		wait = a.runCLI(ctx, "wait", "fails", "--timeout", converge.String())
		Expect(wait.code).To(Equal(3), "wait exits with the job's exit code; stderr: %s", wait.stderr)
		Expect(wait.stdout).To(HavePrefix("fails Failed: exit code 3 (Error)"))
		Expect(a.mustCLI(ctx, "exits", "fails")).To(MatchRegexp(`(?m)^\S.*\s3\s+Error\s`))
		exits := a.Exits(ctx, "fails")
		Expect(exits).To(HaveLen(1), "restartPolicy Never runs once")
		Expect(exits[0].LogTail).To(ContainSubstring("exiting with 3"))

		By("wait gives up with 124 on a job that outlasts --timeout")
		res = a.runJob(ctx, "sleeper", []string{"--grace", "1s"}, "sleep", "--for", "1m")
		Expect(res.code).To(Equal(0), res.stderr)
		wait = a.runCLI(ctx, "wait", "sleeper", "--timeout", "1s")
		Expect(wait.code).To(Equal(124))
		Expect(wait.stderr).To(ContainSubstring("timed out after 1s waiting for sleeper to finish (phase Running)"))
	})

	It("garbage-collects a finished job after its TTL and keeps its exit records", func(ctx SpecContext) {
		a := startAgent()
		shortlived := fname("shortlived")
		const ttl = 3 * time.Second
		res := a.runJob(ctx, shortlived, []string{"--ttl", ttl.String()}, "exit", "--code", "0", "--after", "300ms")
		Expect(res.code).To(Equal(0), res.stderr)
		Expect(a.runCLI(ctx, "wait", shortlived, "--timeout", converge.String()).code).To(Equal(0))
		Expect(a.mustCLI(ctx, "get", shortlived)).To(ContainSubstring("Succeeded"))
		// The TTL runs from the job's end as the daemon recorded it, so
		// the deletion, seen after it happened, comes at least ttl later:
		// a bound that holds however late the test looks.
		finished := a.Exits(ctx, shortlived)[0].FinishedAt

		Eventually(func() int { return a.runCLI(ctx, "get", shortlived).code }).
			WithTimeout(ttl+resync+startBudget).WithPolling(250*time.Millisecond).ShouldNot(Equal(0), "the spec is gone from get after its TTL")
		Expect(time.Since(finished)).To(BeNumerically(">=", ttl), "not before the TTL")
		Expect(a.runCLI(ctx, "get", shortlived).stderr).To(ContainSubstring("not found"))
		Eventually(func() int { return len(containers(ctx, shortlived)) }).WithTimeout(resync + startBudget).Should(BeZero())

		exits := a.mustCLI(ctx, "exits", shortlived)
		Expect(exits).To(MatchRegexp(`(?m)^\S.*\s0\s+Completed\s`), "the ledger record stays")
		wait := a.runCLI(ctx, "wait", shortlived)
		Expect(wait.code).To(Equal(0), "wait on a collected job answers from its record: %s", wait.stderr)
		Expect(wait.stdout).To(ContainSubstring("already deleted"))
	})

	It("runs `claude --version` in the Claude Code image", func(ctx SpecContext) {
		if _, err := dcli.ImageInspect(ctx, claudeCodeImage); client.IsErrNotFound(err) {
			Skip(fmt.Sprintf("image %s is not present: build it with `docker build -t %s docker/claude-code` first "+
				"(that needs the node base image and the npm registry, which this machine cannot reach)", claudeCodeImage, claudeCodeImage))
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		a := startAgent()
		res := a.runCLI(ctx, "run", "claude-version", "--image", claudeCodeImage, "--label", testLabel+"="+runID,
			"--network", "none", "--memory", "512Mi", "--cpus", "1", "--pids", "256", "--deadline", "2m", "--", "--version")
		Expect(res.code).To(Equal(0), res.stderr)
		wait := a.runCLI(ctx, "wait", "claude-version", "--timeout", (converge + time.Minute).String())
		Expect(wait.code).To(Equal(0), wait.stderr)
		logs := a.mustCLI(ctx, "logs", "claude-version")
		Expect(logs).To(MatchRegexp(`(?m)^` + regexp.QuoteMeta("2.0.31") + `\b`))
		Expect(strings.ToLower(logs)).To(ContainSubstring("claude code"))
	})
})
