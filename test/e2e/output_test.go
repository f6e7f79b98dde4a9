package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/model"
)

// quietCLI runs `reconciler ARGS...` like runCLI, without echoing its
// output (tens of thousands of lines) into the test's log.
func (a *Agent) quietCLI(ctx context.Context, args ...string) (stdout, stderr string) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "RECONCILER_SOCKET="+a.Socket)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	GinkgoWriter.Printf("$ reconciler %s  => %v (%d bytes out, %d err)\n", strings.Join(args, " "), err, out.Len(), errb.Len())
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "reconciler %s: %s", strings.Join(args, " "), errb.String())
	return out.String(), errb.String()
}

// splitLines cuts output into its lines, without the last newline.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// tickTimes reads the times box tick printed, checking that its ticks
// count 1..n.
func tickTimes(lines []string, n int) []time.Time {
	ExpectWithOffset(1, lines).To(HaveLen(n+1), "want the tick header and %d ticks: %q", n, lines)
	ExpectWithOffset(1, lines[0]).To(HavePrefix("ticking every"))
	var ts []time.Time
	for i, l := range lines[1:] {
		ExpectWithOffset(1, tickNumber(l)).To(Equal(i+1), "ticks out of order: %q", lines)
		t, err := time.Parse(time.RFC3339Nano, strings.Fields(l)[2])
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		ts = append(ts, t)
	}
	return ts
}

var _ = Describe("kept output", func() {
	It("keeps all 20,000 lines of a removeOnExit job, both streams in order, after its container is gone", func(ctx SpecContext) {
		a := startAgent()
		name := fname("lines")
		a.WriteSpec("lines.yaml", cliSpec(name, []string{"lines", "--count", "20000", "--stderr-every", "7"},
			"restartPolicy: Never", "removeOnExit: true"))
		Eventually(a.phase(ctx, name)).WithTimeout(converge).Should(Equal(model.PhaseSucceeded))
		Eventually(func() int { return len(containers(ctx, name)) }).WithTimeout(resync+startBudget).Should(BeZero(),
			"removeOnExit removes the container")
		exits := a.Exits(ctx, name)
		Expect(exits).To(HaveLen(1))
		Expect(len(exits[0].LogTail)).To(BeNumerically("<=", 8<<10), "the record keeps its short tail")

		stdout, stderr := a.quietCLI(ctx, "logs", name)
		outs, errs := splitLines(stdout), splitLines(stderr)
		Expect(len(outs)+len(errs)).To(Equal(20000), "every line read back")
		o, e := 0, 0
		for i := 1; i <= 20000; i++ {
			want := fmt.Sprintf("line %d", i)
			if i%7 == 0 {
				Expect(errs[e]).To(Equal(want), "stderr line %d", e)
				e++
			} else {
				Expect(outs[o]).To(Equal(want), "stdout line %d", o)
				o++
			}
		}

		// --tail 100 with timestamps: the last 100 lines of the saved run.
		// The daemon writes the two streams from separate copiers, so how
		// they interleave at the end varies (under load all of the last
		// 100 may be stderr): each stream's tail is the end of that
		// stream, and its times never go back.
		fullOut, fullErr := a.quietCLI(ctx, "logs", name, "--timestamps")
		tailOut, tailErr := a.quietCLI(ctx, "logs", name, "--timestamps", "--tail", "100")
		to, te := splitLines(tailOut), splitLines(tailErr)
		Expect(len(to)+len(te)).To(Equal(100), "--tail 100 gives 100 lines over both streams")
		for _, st := range []struct {
			name       string
			tail, full []string
		}{{"stdout", to, splitLines(fullOut)}, {"stderr", te, splitLines(fullErr)}} {
			Expect(len(st.full)).To(BeNumerically(">=", len(st.tail)))
			Expect(strings.Join(st.tail, "\n")).To(Equal(strings.Join(st.full[len(st.full)-len(st.tail):], "\n")), "%s: the tail is the end of the stream", st.name)
			var last time.Time
			for _, l := range st.tail {
				f := strings.Fields(l)
				t, err := time.Parse(time.RFC3339Nano, f[0])
				Expect(err).NotTo(HaveOccurred(), "line %q", l)
				Expect(t.Before(last)).To(BeFalse(), "%s: time goes back at %q", st.name, l)
				last = t
			}
		}
		Expect(splitLines(fullOut)[len(splitLines(fullOut))-1]).To(HaveSuffix(" line 20000"))

		// Compressed, beside the state file, private.
		files, err := filepath.Glob(filepath.Join(a.Dir, "output", name, "*.log.gz"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		fi, err := os.Stat(files[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Size()).To(BeNumerically("<", 200000), "gzip: about 250 kB of output")
		di, err := os.Stat(filepath.Join(a.Dir, "output", name))
		Expect(err).NotTo(HaveOccurred())
		Expect(di.Mode().Perm()).To(Equal(os.FileMode(0o700)))
	})

	It("prints the run before the current one with logs --previous, and the latest with logs", func(ctx SpecContext) {
		a := startAgent()
		name := fname("twice")
		// Two runs of one container (OnFailure restarts it in place, the
		// first time at once), each printing a header and five ticks.
		a.WriteSpec("twice.yaml", cliSpec(name, []string{"tick", "--interval", "100ms", "--count", "5", "--exit-code", "3"},
			"restartPolicy: OnFailure", "maxRestarts: 1", "removeOnExit: true"))
		Eventually(a.phase(ctx, name)).WithTimeout(converge + 2*startBudget).Should(Equal(model.PhaseFailed))
		Eventually(func() int { return len(containers(ctx, name)) }).WithTimeout(resync + startBudget).Should(BeZero())
		exits := a.Exits(ctx, name)
		Expect(exits).To(HaveLen(2), "two runs recorded")
		Expect(exits[0].ContainerID).To(Equal(exits[1].ContainerID), "restarted in place")

		latestOut, _ := a.quietCLI(ctx, "logs", name)
		prevOut, _ := a.quietCLI(ctx, "logs", name, "--previous")
		latest := tickTimes(splitLines(latestOut), 5)
		prev := tickTimes(splitLines(prevOut), 5)
		Expect(prev[4].Before(latest[0])).To(BeTrue(), "--previous is the earlier run: %s vs %s", prev, latest)
		Expect(latest[0].After(exits[1].FinishedAt)).To(BeTrue(), "logs is the latest run, after the first exit")

		// The usual flags apply to a saved run.
		res := a.runCLI(ctx, "logs", name, "--previous", "--tail", "1")
		Expect(res.code).To(Equal(0))
		Expect(res.stdout).To(HavePrefix("tick 5 " + prev[4].Format(time.RFC3339Nano)))
	})

	It("saves the output of a run that ended while the agent was killed, before removing its container", func(ctx SpecContext) {
		a := startAgent()
		name := fname("crash")
		a.WriteSpec("crash.yaml", cliSpec(name, []string{"tick", "--interval", "100ms", "--count", "30"},
			"restartPolicy: Never", "removeOnExit: true"))
		var id string
		Eventually(func() (err error) {
			c, err := runningContainer(ctx, name)
			id = c.ID
			return err
		}).WithTimeout(converge).Should(Succeed())
		a.Kill9()
		// The run ends while no agent watches: nothing records it, saves
		// its output or removes its container.
		wait, errc := dcli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
		select {
		case <-wait:
		case err := <-errc:
			Fail("waiting for the container: " + err.Error())
		}
		Expect(containers(ctx, name)).To(HaveLen(1), "the container is still there while the agent is down")
		Expect(filepath.Glob(filepath.Join(a.Dir, "output", name, "*.log.gz"))).To(BeEmpty())

		a.Start()
		Eventually(func() int { return len(containers(ctx, name)) }).WithTimeout(converge).Should(BeZero())
		out, _ := a.quietCLI(ctx, "logs", name)
		tickTimes(splitLines(out), 30)
		Expect(a.Exits(ctx, name)).To(HaveLen(1))
	})
})
