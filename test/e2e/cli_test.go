package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

// cliTimeout bounds one CLI command that does not follow a stream.
const cliTimeout = 30 * time.Second

// cliResult is one run of the binary's client side.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs `reconciler ARGS...` against the agent a, found through
// RECONCILER_SOCKET as a user's shell would.
func (a *Agent) runCLI(ctx context.Context, args ...string) cliResult {
	return a.runCLIStdin(ctx, nil, args...)
}

// runCLIStdin is runCLI with stdin (nil: none).
func (a *Agent) runCLIStdin(ctx context.Context, stdin io.Reader, args ...string) cliResult {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "RECONCILER_SOCKET="+a.Socket)
	cmd.Dir, cmd.Stdin = a.Dir, stdin
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		Fail("running reconciler " + strings.Join(args, " ") + ": " + err.Error())
	}
	GinkgoWriter.Printf("$ reconciler %s  => %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	return res
}

// mustCLI runs a command that has to succeed and returns its stdout.
func (a *Agent) mustCLI(ctx context.Context, args ...string) string {
	res := a.runCLI(ctx, args...)
	ExpectWithOffset(1, res.code).To(Equal(0), "reconciler %s failed: %s", strings.Join(args, " "), res.stderr)
	return res.stdout
}

// followCLI starts a command that streams (logs -f, events -w) and returns
// its stdout lines as they come; the test's cleanup stops it.
func (a *Agent) followCLI(args ...string) <-chan string {
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "RECONCILER_SOCKET="+a.Socket)
	cmd.Stderr = GinkgoWriter
	out, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	lines := make(chan string, 1000)
	go func() {
		defer GinkgoRecover()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			GinkgoWriter.Printf("[%s] %s\n", args[0], sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return lines
}

// writeFile writes a file under the agent's directory (not its specs
// directory) and returns its path.
func (a *Agent) writeFile(name, content string) string {
	p := filepath.Join(a.Dir, name)
	Expect(os.WriteFile(p, []byte(content), 0o644)).To(Succeed())
	return p
}

// cliSpec is Spec without networking: nothing here needs it, and the
// tests then do not depend on the daemon's bridge.
func cliSpec(name string, args []string, more ...string) string {
	return Spec(name, args, append(more, "network: none")...)
}

var tickLine = regexp.MustCompile(`^tick (\d+) `)

// tickNumber reads box tick's counter from one of its lines.
func tickNumber(line string) int {
	m := tickLine.FindStringSubmatch(line)
	Expect(m).NotTo(BeNil(), "not a tick line: %q", line)
	n, _ := strconv.Atoi(m[1])
	return n
}

var _ = Describe("CLI", func() {
	It("drives a spec through its life: validate, apply, get, logs -f, exec, describe, events -w, delete", func(ctx SpecContext) {
		a := startAgent()
		web := fname("web")
		file := a.writeFile("web.yaml", cliSpec(web, []string{"tick", "--interval", "200ms"}))

		By("validating offline")
		Expect(a.mustCLI(ctx, "validate", file)).To(ContainSubstring(web + " ok"))

		By("applying: a dry run changes nothing, then it is created, then unchanged")
		Expect(a.mustCLI(ctx, "apply", "-f", file, "--dry-run")).To(Equal(web + " created (dry run)\n"))
		res := a.runCLI(ctx, "get")
		Expect(res.code).To(Equal(0))
		Expect(res.stderr).To(ContainSubstring("No specs found."))
		Expect(a.mustCLI(ctx, "apply", "-f", file)).To(Equal(web + " created\n"))
		Expect(a.mustCLI(ctx, "apply", "-f", file)).To(Equal(web + " unchanged\n"))

		By("watching it converge with get")
		Eventually(func() string { return a.mustCLI(ctx, "get") }).WithTimeout(converge).WithPolling(250 * time.Millisecond).
			Should(MatchRegexp(`(?m)^NAME\s+PHASE\s+RESTARTS\s+AGE\s+CONTAINER\s+MESSAGE\n^` + web + `\s+Running\s+0\s+\d+s\s+[0-9a-f]{12}\s`))
		var views []api.SpecView
		Expect(json.Unmarshal([]byte(a.mustCLI(ctx, "get", "-o", "json")), &views)).To(Succeed())
		Expect(views).To(HaveLen(1))
		Expect(views[0].Status.Phase).To(Equal(model.PhaseRunning))
		Expect(a.mustCLI(ctx, "get", web, "-o", "yaml")).To(ContainSubstring("phase: Running"))

		By("following logs: lines arrive while the container runs")
		lines := a.followCLI("logs", "-f", "--tail", "0", web)
		var first string
		Eventually(lines).WithTimeout(10 * time.Second).Should(Receive(&first))
		var second string
		Eventually(lines).WithTimeout(10 * time.Second).Should(Receive(&second))
		Expect(tickNumber(second)).To(BeNumerically(">", tickNumber(first)))
		Expect(a.mustCLI(ctx, "logs", "--tail", "2", web)).To(MatchRegexp(`^tick \d+ .*\ntick \d+ .*\n$`))

		By("running commands with exec: output and exit code pass through")
		res = a.runCLI(ctx, "exec", web, "--", "/box", "exit", "--code", "7", "--stderr", "exec says no")
		Expect(res.code).To(Equal(7))
		Expect(res.stderr).To(ContainSubstring("exec says no"))
		res = a.runCLI(ctx, "exec", web, "--", "/box", "exit", "--code", "0")
		Expect(res.code).To(Equal(0))
		Expect(res.stdout).To(ContainSubstring("exiting with 0"))

		By("describing it")
		desc := a.mustCLI(ctx, "describe", web)
		Expect(desc).To(MatchRegexp(`Name:\s+` + web))
		Expect(desc).To(MatchRegexp(`Source:\s+api`))
		Expect(desc).To(MatchRegexp(`Phase:\s+Running`))
		Expect(desc).To(ContainSubstring("Exits (newest first):\n  <none>"))
		Expect(desc).To(MatchRegexp(`Normal\s+Started\s+1\s+Started container`))

		By("following events while deleting it")
		events := a.followCLI("events", "-w", web)
		Eventually(events).WithTimeout(10 * time.Second).Should(Receive(MatchRegexp(`^TIME\s+TYPE\s+REASON`)))
		Eventually(events).WithTimeout(10 * time.Second).Should(Receive(MatchRegexp(`Normal\s+Started\s+` + web)))
		Expect(a.mustCLI(ctx, "delete", web)).To(Equal(web + " deleted\n"))
		Eventually(events).WithTimeout(10 * time.Second).Should(Receive(MatchRegexp(`Normal\s+Deleted\s+` + web)))
		Eventually(events).WithTimeout(startBudget).Should(Receive(MatchRegexp(`Killing\s+` + web)))
		Eventually(func() int { return len(containers(ctx, web)) }).WithTimeout(resync + startBudget).Should(BeZero())
		Eventually(lines).WithTimeout(10*time.Second).Should(BeClosed(), "logs -f ends when the container is gone")
		res = a.runCLI(ctx, "get", web)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(Equal(fmt.Sprintf("error: spec %q: not found\n", web)))
	})

	It("reads the exit ledger after a crash, also after the spec is deleted", func(ctx SpecContext) {
		a := startAgent()
		file := a.writeFile("crash.yaml", cliSpec("crash", []string{"exit", "--code", "3", "--after", "300ms", "--stderr", "out of cheese"},
			"restartPolicy: Never"))
		Expect(a.mustCLI(ctx, "apply", "-f", file)).To(Equal("crash created\n"))
		Eventually(func() string { return a.mustCLI(ctx, "get", "crash") }).WithTimeout(converge).
			Should(MatchRegexp(`crash\s+Failed`))

		out := a.mustCLI(ctx, "exits", "crash")
		Expect(out).To(MatchRegexp(`(?m)^FINISHED\s+CODE\s+REASON\s+RAN\s+RESTARTS\s+CONTAINER\s+ERROR\n.*ago\s+3\s+Error\s`))
		var exits []model.ContainerExit
		Expect(json.Unmarshal([]byte(a.mustCLI(ctx, "exits", "crash", "-o", "json")), &exits)).To(Succeed())
		Expect(exits).To(HaveLen(1))
		Expect(exits[0].ExitCode).To(Equal(3))
		Expect(exits[0].LogTail).To(ContainSubstring("out of cheese"))

		desc := a.mustCLI(ctx, "describe", "crash")
		Expect(desc).To(MatchRegexp(`Phase:\s+Failed`))
		Expect(desc).To(MatchRegexp(`Exits \(newest first\):\n\s+FINISHED.*\n.*ago\s+3\s+Error`))
		Expect(desc).To(ContainSubstring("out of cheese"))
		Expect(desc).To(MatchRegexp(`Warning\s+Error\s+1\s+Container [0-9a-f]{12} exited with code 3`))

		Expect(a.mustCLI(ctx, "delete", "crash")).To(Equal("crash deleted\n"))
		Eventually(func() int { return len(containers(ctx, "crash")) }).WithTimeout(resync + startBudget).Should(BeZero())
		Expect(a.mustCLI(ctx, "exits", "crash")).To(MatchRegexp(`ago\s+3\s+Error`))
		Expect(a.mustCLI(ctx, "events")).To(MatchRegexp(`Normal\s+Deleted\s+crash`))
	})

	It("answers bad input with one clear error and keeps what is stored", func(ctx SpecContext) {
		a := startAgent()
		good := a.writeFile("good.yaml", cliSpec("good", []string{"sleep"}))
		Expect(a.mustCLI(ctx, "apply", "-f", good)).To(Equal("good created\n"))

		By("a spec with a typo, a wrong type and a bad value")
		bad := a.writeFile("bad.yaml", cliSpec("good", []string{"sleep"}, "imagee: x", "restartPolicy: [Always]", "resources: {memory: 12x}"))
		res := a.runCLI(ctx, "apply", "-f", bad)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring(bad + `:10: spec.imagee: unknown field "imagee"`))
		Expect(res.stderr).To(ContainSubstring(bad + ":11: spec.restartPolicy:"))
		Expect(res.stderr).To(ContainSubstring(bad + `:12: spec.resources.memory: "12x" is not a quantity`))
		Expect(a.runCLI(ctx, "validate", bad).code).To(Equal(1))

		By("malformed YAML")
		broken := a.writeFile("broken.yaml", "apiVersion: reconciler/v1\nkind: [Container\n")
		res = a.runCLI(ctx, "apply", "-f", broken)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(HavePrefix(broken + ":"))
		Expect(res.stderr).To(ContainSubstring("invalid YAML"))

		By("names that are not DNS labels, or unknown")
		res = a.runCLI(ctx, "get", "../../etc")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring("is not a spec name"))
		res = a.runCLI(ctx, "logs", "nope")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(Equal("error: spec \"nope\": not found\n"))
		res = a.runCLI(ctx, "exec", "nope")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring("usage: reconciler exec NAME -- CMD"))

		By("a spec owned by a file is read-only through the API")
		a.WriteSpec("owned.yaml", cliSpec("owned", []string{"sleep"}))
		Eventually(func() string { return a.mustCLI(ctx, "get") }).WithTimeout(converge).Should(ContainSubstring("owned"))
		again := a.writeFile("owned.yaml", cliSpec("owned", []string{"tick"}))
		res = a.runCLI(ctx, "apply", "-f", again)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring(filepath.Join(a.SpecsDir, "owned.yaml")))
		Expect(res.stderr).To(ContainSubstring("read-only"))
		res = a.runCLI(ctx, "delete", "owned")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring("read-only"))

		By("a refused spec file shows under get")
		a.WriteSpec("typo.yaml", cliSpec("typo", []string{"sleep"}, "imagee: x"))
		Eventually(func() string { return a.runCLI(ctx, "get").stderr }).WithTimeout(converge).
			Should(ContainSubstring("typo.yaml is refused"))

		var view api.SpecView
		Expect(json.Unmarshal([]byte(a.mustCLI(ctx, "get", "good", "-o", "json")), &view)).To(Succeed())
		Expect(view.Spec.Spec.Args).To(Equal([]string{"sleep"}), "refused applies changed nothing")
	})

	It("names the agent it looked for and how to start it when none answers", func(ctx SpecContext) {
		a := startAgent()
		Expect(a.mustCLI(ctx, "version")).To(MatchRegexp(`(?m)^reconciler .*\n^agent .* \(instance [0-9a-f]+\) at ` + regexp.QuoteMeta(a.Socket)))

		missing := filepath.Join(a.Dir, "nowhere.sock")
		res := a.runCLI(ctx, "get", "--socket", missing)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(Equal("error: cannot reach the agent at " + missing +
			" (connect: no such file or directory): start it with 'reconciler agent' or 'make run', or pass --socket\n"))

		a.Stop()
		res = a.runCLI(ctx, "get")
		Expect(res.code).To(Equal(1))
		Expect(strings.Count(res.stderr, "\n")).To(Equal(1), "one line")
		Expect(res.stderr).To(ContainSubstring("cannot reach the agent at " + a.Socket))
		res = a.runCLI(ctx, "version")
		Expect(res.code).To(Equal(0))
		Expect(res.stdout).To(HavePrefix("reconciler "))
		Expect(res.stderr).To(ContainSubstring("cannot reach the agent"))
	})

	It("serves the API on TCP only with a bearer token", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		addr := freeAddr()
		res := (&Agent{Dir: dir}).runCLI(ctx, "agent", "--api-addr", addr, "--state", filepath.Join(dir, "state.db"),
			"--socket", filepath.Join(dir, "api.sock"), "--specs-dir", dir, "--metrics-addr", freeAddr())
		Expect(res.code).NotTo(BeZero())
		Expect(res.stderr).To(ContainSubstring("--api-addr needs --api-tokens or --api-token-file"))

		tokenFile := filepath.Join(dir, "token")
		Expect(os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)).To(Succeed())
		a := startAgent("--api-addr", addr, "--api-token-file", tokenFile)
		web := fname("web")
		a.mustCLI(ctx, "apply", "-f", a.writeFile("web.yaml", cliSpec(web, []string{"sleep"})))
		Expect(a.mustCLI(ctx, "get", "--server", "http://"+addr, "--token", "s3cret")).To(MatchRegexp(`(?m)^` + web + `\s`))
		res = a.runCLI(ctx, "get", "--server", "http://"+addr, "--token", "wrong")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring("a bearer token is required"))
	})
})
