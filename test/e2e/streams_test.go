package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
)

// streamTeardown bounds how long the agent takes to release a stream whose
// client is gone. It notices at once (its end of the connection reads
// EOF); the rest is headroom for a machine shared with other jobs.
const streamTeardown = 10 * time.Second

var _ = Describe("Streams", func() {
	It("50 abandoned streams (exec, logs -f, events -w, wait) leave no fd open in the agent", func(ctx SpecContext) {
		a := startAgent()
		name := fname("streams")
		a.mustCLI(ctx, "apply", "-f", a.writeFile("streams.yaml", cliSpec(name, []string{"tick", "--interval", "200ms"})))
		Eventually(func() error { _, err := runningContainer(ctx, name); return err }).
			WithTimeout(converge).Should(Succeed())
		ct, err := runningContainer(ctx, name)
		Expect(err).NotTo(HaveOccurred())

		By("a baseline once every kind of call has been made")
		var wg sync.WaitGroup
		for range 4 { // concurrent, so the Docker client's idle pool fills
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				a.mustCLI(ctx, "exec", name, "--", "/box", "exit", "--code", "0")
			}()
		}
		wg.Wait()
		a.mustCLI(ctx, "logs", "--tail", "1", name)
		a.mustCLI(ctx, "events", name)
		baseline := 0
		for range 5 {
			baseline = max(baseline, a.fds())
			time.Sleep(200 * time.Millisecond)
		}
		execsBefore := execCount(ctx, ct.ID)

		By("50 clients start streams and then die without closing them")
		kinds := [][]string{
			{"exec", name, "--", "/box", "sleep"},
			{"logs", "-f", "--tail", "1", name},
			{"events", "-w", name},
			{"wait", name},
		}
		count := map[string]int{}
		var clients []*streamClient
		for i := range 50 {
			args := kinds[i%len(kinds)]
			count[args[0]]++
			clients = append(clients, a.startStream(args...))
		}
		for _, c := range clients {
			switch c.kind {
			case "logs":
				Eventually(c.lines).WithTimeout(streamTeardown).Should(Receive(), "a logs -f line")
			case "events":
				Eventually(c.lines).WithTimeout(streamTeardown).Should(Receive(MatchRegexp(`Normal\s+\w+\s+`+name)), "an event row")
			}
		}
		Eventually(func() int { return execCount(ctx, ct.ID) - execsBefore }).WithTimeout(streamTeardown).
			Should(Equal(count["exec"]), "every exec reached the daemon")
		// Each exec, logs -f and events -w holds at least its client's
		// connection (exec and logs a daemon connection too).
		open := a.fds()
		Expect(open).To(BeNumerically(">=", baseline+count["exec"]+count["logs"]+count["events"]),
			"fds while the streams are open (baseline %d)", baseline)
		for _, c := range clients {
			Expect(c.exited()).To(BeFalse(), "%s client still running before it is killed", c.kind)
			c.kill()
		}

		By("the agent releases all of them")
		start := time.Now()
		Eventually(a.fds).WithTimeout(streamTeardown).WithPolling(100*time.Millisecond).
			Should(BeNumerically("<=", baseline), "agent fds after the clients died")
		took := time.Since(start)
		res := a.runCLI(ctx, "exec", name, "--", "/box", "exit", "--code", "0")
		Expect(res.code).To(Equal(0), "an exec after the abandoned ones: %s", res.stderr)
		line := fmt.Sprintf("streams: 50 abandoned (%d exec, %d logs -f, %d events -w, %d wait); agent fds %d at baseline, %d while open, back to <= %d in %s",
			count["exec"], count["logs"], count["events"], count["wait"], baseline, open, baseline, took.Round(10*time.Millisecond))
		fmt.Fprintln(GinkgoWriter, line)
		AddReportEntry("abandoned streams", ReportEntryVisibilityAlways, line)
	}, SpecTimeout(5*time.Minute))

	It("exec: the cap-th runs and one more gets 429; one past --exec-max-duration is ended, saying why", func(ctx SpecContext) {
		const limit = 2
		a := startAgent("--exec-max-concurrent", strconv.Itoa(limit))
		name := fname("execlimits")
		a.mustCLI(ctx, "apply", "-f", a.writeFile("execlimits.yaml", cliSpec(name, []string{"sleep"})))
		Eventually(func() error { _, err := runningContainer(ctx, name); return err }).
			WithTimeout(converge).Should(Succeed())
		ct, err := runningContainer(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		cl := api.NewClient(a.Socket)

		By("the limit's worth of execs run")
		before := execCount(ctx, ct.ID)
		var running []*streamClient
		for range limit {
			running = append(running, a.startStream("exec", name, "--", "/box", "sleep"))
		}
		Eventually(func() int { return execCount(ctx, ct.ID) - before }).WithTimeout(cliTimeout).Should(Equal(limit))

		By("one more is refused with 429, saying why")
		_, err = cl.Exec(ctx, name, []string{"/box", "exit", "--code", "0"})
		var ae *api.APIError
		Expect(errors.As(err, &ae)).To(BeTrue(), "exec beyond the cap: %v", err)
		Expect(ae.Status).To(Equal(http.StatusTooManyRequests))
		Expect(ae.Message).To(ContainSubstring("--exec-max-concurrent"))

		By("once one client leaves, its place is free again")
		running[0].kill()
		Eventually(func() error {
			_, err := cl.Exec(ctx, name, []string{"/box", "exit", "--code", "0"})
			return err
		}).WithTimeout(streamTeardown).Should(Succeed())
		for _, c := range running {
			c.kill()
		}

		By("with --exec-max-duration, a sleep is ended after it, and its client told why")
		const maxDuration = 2 * time.Second
		a.Stop()
		a.ExtraArgs = []string{"--exec-max-duration", maxDuration.String()}
		a.Start()
		res := a.runCLI(ctx, "exec", name, "--", "/box", "sleep")
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stderr).To(ContainSubstring("longer than the agent's limit of 2s (--exec-max-duration)"))
		line := fmt.Sprintf("exec limits: --exec-max-concurrent %d ran %d, refused one more with 429, took one after a client died; --exec-max-duration %s ended a sleep with its reason",
			limit, limit, maxDuration)
		fmt.Fprintln(GinkgoWriter, line)
		AddReportEntry("exec limits", ReportEntryVisibilityAlways, line)
	}, SpecTimeout(5*time.Minute))
})

// execCount is the number of execs the daemon keeps for a container
// (running ones, and ended ones until it forgets them).
func execCount(ctx context.Context, id string) int {
	ins, err := dcli.ContainerInspect(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	return len(ins.ExecIDs)
}

// fds counts the agent process's open file descriptors.
func (a *Agent) fds() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.cmd.Process.Pid))
	Expect(err).NotTo(HaveOccurred(), "the test reads the agent's fds from /proc")
	return len(ents)
}

// streamClient is a CLI process following a stream.
type streamClient struct {
	kind  string
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// startStream starts `reconciler ARGS...` and collects its stdout lines;
// kill drops its connection as a crash would.
func (a *Agent) startStream(args ...string) *streamClient {
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "RECONCILER_SOCKET="+a.Socket)
	cmd.Stderr = GinkgoWriter
	out, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	c := &streamClient{kind: args[0], cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		for sc := bufio.NewScanner(out); sc.Scan(); {
			if !strings.HasPrefix(sc.Text(), "TIME ") { // the events header comes before any request
				c.lines <- sc.Text()
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	DeferCleanup(c.kill)
	return c
}

func (c *streamClient) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill ends the client with SIGKILL: it closes nothing itself.
func (c *streamClient) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}
