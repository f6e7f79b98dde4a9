package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// Behaviours README.md promises, each against the real daemon and the real
// agent binary. test/e2e/COVERAGE.md maps every promise to its test.
var _ = Describe("README promises", func() {
	It("--stop-on-exit stops containers with grace when the agent stops, and without it they keep running", func(ctx SpecContext) {
		tick := []string{"tick", "--interval", "200ms", "--term-exit-code", "143"}
		stopping := startAgent("--stop-on-exit")
		keeping := startAgent()
		stopped, kept := fname("soe-stopped"), fname("soe-kept")
		stopping.WriteSpec("s.yaml", Spec(stopped, tick))
		keeping.WriteSpec("k.yaml", Spec(kept, tick))
		var ids = map[string]string{}
		for _, n := range []string{stopped, kept} {
			Eventually(running(ctx, n)).WithTimeout(converge).Should(Not(BeEmpty()))
			ids[n], _ = running(ctx, n)()
			// A signal before the program's handler is set makes it exit 2.
			Eventually(func() string { return containerLogs(ctx, ids[n]) }).WithTimeout(startBudget).Should(ContainSubstring("tick 1"))
		}
		stopping.Stop()
		keeping.Stop()
		Expect(stopping.Log()).To(ContainSubstring("stopped managed containers"))
		in, err := dcli.ContainerInspect(ctx, ids[stopped])
		Expect(err).NotTo(HaveOccurred())
		Expect(in.State.Running).To(BeFalse(), "--stop-on-exit stopped the container before the agent exited")
		Expect(in.State.ExitCode).To(Equal(143), "with its stop signal, which it handled: a grace stop, not a kill")
		Expect(containerLogs(ctx, ids[stopped])).To(ContainSubstring("received SIGTERM"))
		Consistently(running(ctx, kept)).WithTimeout(resync).Should(Equal(ids[kept]), "without the flag the container keeps running")

		By("the restarted agent records the shutdown stop as its own, not as a failed run")
		stopping.Start()
		Eventually(stopping.exitCount(ctx, stopped)).WithTimeout(converge).Should(Equal(1))
		ex := stopping.Exits(ctx, stopped)[0]
		Expect(ex.ContainerID).To(Equal(ids[stopped]))
		Expect(ex.ExitCode).To(Equal(143))
		Expect(ex.Reason).To(Equal(model.ReasonStoppedByAgent))
		Eventually(running(ctx, stopped)).WithTimeout(converge).Should(Not(BeEmpty()), "and runs the spec again")
		st, err := stopping.Status(ctx, stopped)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Phase).To(Equal(model.PhaseRunning))
		Expect(st.NextTryAt).To(BeZero(), "no back-off: a shutdown stop is no failure")
	})

	It("follows imagePullPolicy: Never and IfNotPresent with a present image never pull, the others do", func(ctx SpecContext) {
		// Every pull goes through the proxy, which counts them and fails
		// them as an unreachable registry would.
		proxy := startFaultProxy()
		pulls := proxy.fail("POST", "^/images/create$", 500, "registry unreachable (e2e)")
		a := startAgent("--docker-host", proxy.host(), "--image-pull-backoff", "1s")
		absent := "reconciler/absent-" + runID + ":latest"
		present, never := fname("pull-present"), fname("pull-never")
		a.WriteSpec("quiet.yaml", Spec(present, []string{"sleep"}, "imagePullPolicy: IfNotPresent")+"---\n"+
			strings.Replace(Spec(never, []string{"sleep"}, "imagePullPolicy: Never"), images.BoxImage, absent, 1))
		Eventually(running(ctx, present)).WithTimeout(converge).Should(Not(BeEmpty()))
		Eventually(func() (model.Status, error) { return a.Status(ctx, never) }).WithTimeout(converge).Should(And(
			HaveField("Phase", model.PhaseError),
			HaveField("Message", And(ContainSubstring(absent), ContainSubstring("imagePullPolicy is Never")))))
		Consistently(pulls.hits.Load).WithTimeout(rescan+resync).Should(BeZero(), "no pull for a present image, nor under Never")

		By("positive control: IfNotPresent pulls an absent image, Always pulls a present one and runs it when the pull fails")
		missing, always := fname("pull-missing"), fname("pull-always")
		a.WriteSpec("pulls.yaml", strings.Replace(Spec(missing, []string{"sleep"}, "imagePullPolicy: IfNotPresent"), images.BoxImage, absent, 1)+
			"---\n"+Spec(always, []string{"sleep"}, "imagePullPolicy: Always"))
		Eventually(func() (model.Status, error) { return a.Status(ctx, missing) }).WithTimeout(converge).Should(And(
			HaveField("Phase", model.PhaseImagePullBackOff), HaveField("Message", ContainSubstring("registry unreachable (e2e)"))))
		Eventually(running(ctx, always)).WithTimeout(converge).Should(Not(BeEmpty()), "Always runs the image it has when the registry fails")
		Expect(pulls.hits.Load()).To(BeNumerically(">=", 2), "one pull each for %s and %s", missing, always)
	})

	It("keeps a file job's status after its TTL, and deletes an API job's (apply -f -)", func(ctx SpecContext) {
		a := startAgent()
		const ttl = 2 * time.Second
		fromFile, fromAPI := fname("ttl-file"), fname("ttl-api")
		job := func(name string) string {
			return Spec(name, []string{"exit", "--code", "0", "--after", "300ms"}, "restartPolicy: Never", "ttlAfterFinished: "+ttl.String())
		}
		a.WriteSpec("job.yaml", job(fromFile))
		res := a.runCLIStdin(ctx, strings.NewReader(job(fromAPI)), "apply", "-f", "-")
		Expect(res.code).To(Equal(0), res.stderr)
		Expect(res.stdout).To(ContainSubstring(fromAPI))
		Eventually(a.phase(ctx, fromFile)).WithTimeout(converge).Should(Equal(model.PhaseSucceeded))
		// The API job is the positive control: it ran to completion, and
		// is gone from get after the TTL (perhaps already: the TTL is short).
		Eventually(a.exitCount(ctx, fromAPI)).WithTimeout(converge).Should(Equal(1))
		Expect(a.Exits(ctx, fromAPI)[0].Reason).To(Equal(model.ReasonCompleted))
		Eventually(func() int { return a.runCLI(ctx, "get", fromAPI).code }).
			WithTimeout(ttl+resync+startBudget).ShouldNot(Equal(0), "the API job is deleted after its TTL")
		Eventually(func() int { return len(containers(ctx, fromFile)) }).WithTimeout(ttl+resync+startBudget).Should(BeZero(),
			"the file job loses its container")
		st, err := a.Status(ctx, fromFile)
		Expect(err).NotTo(HaveOccurred(), "the file job is still known after its TTL")
		Expect(st.Phase).To(Equal(model.PhaseSucceeded))
		Expect(a.mustCLI(ctx, "get", fromFile)).To(ContainSubstring("Succeeded"))
		Expect(a.Exits(ctx, fromFile)).To(HaveLen(1))
		Consistently(a.phase(ctx, fromFile)).WithTimeout(resync).Should(Equal(model.PhaseSucceeded), "and it does not run again")
	})

	It("--log-format json writes every log line as a JSON object", func(ctx SpecContext) {
		a := startAgent("--log-format", "json")
		name := fname("jsonlog")
		a.WriteSpec("j.yaml", Spec(name, []string{"exit", "--code", "1"}, "restartPolicy: Never", "env: [{name: SECRETISH, value: not-in-logs}]"))
		Eventually(a.phase(ctx, name)).WithTimeout(converge).Should(Equal(model.PhaseFailed))
		a.Stop()
		lines := strings.Split(strings.TrimRight(a.Log(), "\n"), "\n")
		Expect(len(lines)).To(BeNumerically(">=", 5), "the agent logged its start, the spec and its stop")
		msgs := map[string]bool{}
		for i, l := range lines {
			var rec map[string]any
			Expect(json.Unmarshal([]byte(l), &rec)).To(Succeed(), "line %d is not JSON: %q", i+1, l)
			Expect(rec).To(HaveKey("time"))
			Expect(rec).To(HaveKey("level"))
			Expect(rec).To(HaveKey("msg"))
			msgs[rec["msg"].(string)] = true
		}
		Expect(msgs).To(HaveKey("starting reconciler agent"))
		Expect(a.Log()).NotTo(ContainSubstring("not-in-logs"), "env values are never logged")
	})

	It("stopSignal SIGKILL ends the container at once, as a stop by the agent, not a grace kill", func(ctx SpecContext) {
		a := startAgent()
		name := fname("sigkill")
		const grace = time.Minute // far longer than any stop takes
		a.WriteSpec("k.yaml", Spec(name, []string{"tick", "--interval", "200ms", "--term-exit-code", "143"},
			"stopSignal: SIGKILL", "terminationGracePeriod: 1m"))
		Eventually(running(ctx, name)).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, name)()
		in, err := dcli.ContainerInspect(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Config.StopSignal).To(Equal("SIGKILL"))
		stopAt := time.Now()
		a.RemoveSpec("k.yaml")
		Eventually(func() int { return len(containers(ctx, name)) }).WithTimeout(rescan + resync + startBudget).Should(BeZero())
		ex := a.Exits(ctx, name)
		Expect(ex).To(HaveLen(1))
		Expect(ex[0].ExitCode).To(Equal(137))
		Expect(ex[0].Signal).To(Equal("SIGKILL"))
		Expect(ex[0].Reason).To(Equal(model.ReasonStoppedByAgent), "SIGKILL was the stop signal, not the end of a grace period")
		Expect(ex[0].FinishedAt.Sub(stopAt)).To(BeNumerically("<", grace))
		Expect(ex[0].LogTail).NotTo(ContainSubstring("received SIGTERM"))
	})

	It("/healthz fails and the systemd watchdog goes unpetted while every worker is stuck, and both recover", func(ctx SpecContext) {
		notify := listenNotify()
		proxy := startFaultProxy()
		a := newAgent("--docker-host", proxy.host(), "--workers", "2", "--docker-timeout", "create=10m")
		const watchdog = time.Second
		a.Env = []string{"NOTIFY_SOCKET=" + notify.path, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds())}
		a.Start()
		healthz := func() (int, error) {
			resp, err := http.Get("http://" + a.MetricsAddr + "/healthz")
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		Expect(healthz()).To(Equal(200))
		Eventually(notify.count).WithTimeout(4*watchdog).Should(BeNumerically(">=", 2), "the agent pets the watchdog while healthy")

		By("both workers hang in a create call")
		hang := proxy.hang("POST", "^/containers/create$")
		var names []string
		for i := range 3 {
			n := fname(fmt.Sprintf("stuck-%d", i))
			names = append(names, n)
			a.WriteSpec(n+".yaml", Spec(n, []string{"sleep"}))
		}
		Eventually(hang.hits.Load).WithTimeout(converge).Should(BeNumerically(">=", 2), "both workers are in a create call")
		// The agent calls itself unhealthy after 2 resyncs and 30 s without
		// progress, while the resync ticker goes on ticking.
		stallAfter := 2*resync + 30*time.Second
		Eventually(healthz).WithTimeout(stallAfter + resync + startBudget).Should(Equal(503))
		Eventually(a.Log).WithTimeout(watchdog).Should(ContainSubstring("no longer petting the systemd watchdog"))
		petted := notify.count()
		Consistently(notify.count).WithTimeout(3*watchdog).Should(Equal(petted), "no WATCHDOG=1 while stuck")
		Expect(a.Exited()).To(BeFalse(), "the agent leaves its restart to systemd")

		By("once the daemon answers again, the agent is healthy, pets the watchdog and converges")
		proxy.lift(hang)
		for _, n := range names {
			Eventually(running(ctx, n)).WithTimeout(converge + 3*startBudget).Should(Not(BeEmpty()))
		}
		Eventually(healthz).WithTimeout(resync + startBudget).Should(Equal(200))
		Eventually(notify.count).WithTimeout(4 * watchdog).Should(BeNumerically(">", petted))
	})

	It("runs with no flags on the make run defaults: ./specs, ./.reconciler/state.db and reconciler.sock, 127.0.0.1:9477", func(ctx SpecContext) {
		help, err := exec.Command(binPath, "agent", "--help").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", help)
		for flag, def := range map[string]string{"--specs-dir": "./specs", "--state": "./.reconciler/state.db",
			"--socket": "./.reconciler/reconciler.sock", "--metrics-addr": "127.0.0.1:9477", "--resync": "30s"} {
			Expect(string(help)).To(MatchRegexp(`(?m)^\s+%s \S+\s.*\(default "?%s"?\)`, flag, def), "the default of %s", flag)
		}

		By("one short run in a fresh directory")
		l, err := net.Listen("tcp", "127.0.0.1:9477")
		Expect(err).NotTo(HaveOccurred(), "this test runs the agent on its default metrics address 127.0.0.1:9477, "+
			"which something else holds (an agent from `make run`?): stop it and run the test again")
		Expect(l.Close()).To(Succeed())
		dir, err := os.MkdirTemp("", "rd-") // short: the socket path has a limit
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, dir)
		Expect(os.Mkdir(filepath.Join(dir, "specs"), 0o755)).To(Succeed())
		name := fname("defaults")
		Expect(os.WriteFile(filepath.Join(dir, "specs", "d.yaml"), []byte(Spec(name, []string{"sleep"})), 0o644)).To(Succeed())
		log := &syncWriter{}
		cmd := exec.Command(binPath, "agent")
		cmd.Dir, cmd.Stderr, cmd.Stdout = dir, log, GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		DeferCleanup(removeTestContainers)
		DeferCleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			Eventually(done).WithTimeout(30 * time.Second).Should(BeClosed())
		})
		Eventually(func() error {
			resp, err := http.Get("http://127.0.0.1:9477/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("readyz %d", resp.StatusCode)
			}
			return nil
		}).WithTimeout(converge).Should(Succeed(), "agent log:\n%s", log)
		Expect(filepath.Join(dir, ".reconciler", "state.db")).To(BeARegularFile())
		fi, err := os.Stat(filepath.Join(dir, ".reconciler", "reconciler.sock"))
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode() & os.ModeSocket).NotTo(BeZero())
		Eventually(running(ctx, name)).WithTimeout(converge).Should(Not(BeEmpty()), "the spec in ./specs runs")
		v, err := api.NewClient(filepath.Join(dir, ".reconciler", "reconciler.sock")).Get(ctx, name)
		Expect(err).NotTo(HaveOccurred(), "the API answers on ./.reconciler/reconciler.sock")
		Expect(v.Status).NotTo(BeNil())
	})
})

// Behaviours only unit tests covered before, now end to end.
var _ = Describe("README promises end to end", func() {
	It("restarts a container whose healthcheck fails, and leaves a healthy one alone", func(ctx SpecContext) {
		a := startAgent()
		sick, well := fname("hc-sick"), fname("hc-well")
		hc := func(file string) string {
			return fmt.Sprintf(`healthcheck: {test: [CMD, /box, health, --file, %s], interval: 1s, timeout: 1s, retries: 1}`, file)
		}
		tick := []string{"tick", "--interval", "500ms", "--term-exit-code", "143"}
		a.WriteSpec("hc.yaml", Spec(sick, tick, hc("/nonexistent"))+"---\n"+Spec(well, tick, hc("/box")))
		Eventually(running(ctx, well)).WithTimeout(converge).Should(Not(BeEmpty()))
		wellID, _ := running(ctx, well)()
		Eventually(a.exitCount(ctx, sick)).WithTimeout(converge + 5*time.Second).Should(BeNumerically(">=", 1))
		ex := a.Exits(ctx, sick)[0]
		Expect(ex.Error).To(ContainSubstring("unhealthy"), "the agent says why it stopped the container")
		Eventually(func() int { st, _ := a.Status(ctx, sick); return st.Restarts }).WithTimeout(converge).Should(BeNumerically(">=", 1))
		in, err := dcli.ContainerInspect(ctx, wellID)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.State.Health).NotTo(BeNil())
		Expect(in.State.Health.Status).To(Equal("healthy"))
		Expect(a.Exits(ctx, well)).To(BeEmpty(), "the healthy one was never stopped")
		Expect(running(ctx, well)()).To(Equal(wellID))
	})

	It("publishes ports, mounts tmpfs and a named volume, and keeps the root filesystem read-only", func(ctx SpecContext) {
		hostAddr := freeAddr()
		_, hostPort, err := net.SplitHostPort(hostAddr)
		Expect(err).NotTo(HaveOccurred())
		vol := runID + "-data"
		DeferCleanup(removeVolume, vol)
		policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedHostPorts: [%q]\nallowedVolumes: [%s]\n", hostPort, vol)), 0o600)).To(Succeed())
		a := startAgent("--policy", policy)
		name := fname("mounts")
		a.WriteSpec("m.yaml", Spec(name, []string{"serve", "--addr", ":8080"},
			fmt.Sprintf("ports: [{containerPort: 8080, hostPort: %s, hostIP: 127.0.0.1}]", hostPort),
			fmt.Sprintf("mounts: [{type: tmpfs, target: /scratch}, {type: volume, source: %s, target: /data}]", vol),
			"readOnlyRootFilesystem: true"))
		Eventually(running(ctx, name)).WithTimeout(converge).Should(Not(BeEmpty()))
		Eventually(func() (string, error) {
			resp, err := http.Get("http://" + hostAddr + "/")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b := make([]byte, 16)
			n, _ := resp.Body.Read(b)
			return string(b[:n]), nil
		}).WithTimeout(startBudget).Should(Equal("ok"), "the container port answers on the host port")
		touch := func(file string) int {
			res, err := a.API().Exec(ctx, name, []string{"/box", "touch", "--file", file})
			Expect(err).NotTo(HaveOccurred())
			return res.ExitCode
		}
		Expect(touch("/scratch/f")).To(Equal(0), "tmpfs is writable")
		Expect(touch("/data/f")).To(Equal(0), "the volume is writable")
		Expect(touch("/f")).NotTo(Equal(0), "the root filesystem is read-only")
		id, _ := running(ctx, name)()
		in, err := dcli.ContainerInspect(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.HostConfig.ReadonlyRootfs).To(BeTrue())
		Expect(in.HostConfig.Mounts).To(ContainElement(And(HaveField("Type", BeEquivalentTo("tmpfs")), HaveField("Target", "/scratch"))))
		var volSeen bool
		for _, m := range in.Mounts {
			if m.Type == "volume" && m.Name == vol && m.Destination == "/data" {
				volSeen = true
			}
		}
		Expect(volSeen).To(BeTrue(), "volume %s mounted at /data: %+v", vol, in.Mounts)
	})

	It("applies a directory (apply -f DIR), runs a job with --command, and exports what the agent runs", func(ctx SpecContext) {
		a := startAgent()
		dir := GinkgoT().TempDir()
		one, two := fname("dir-one"), fname("dir-two")
		Expect(os.WriteFile(filepath.Join(dir, "one.yaml"), []byte(Spec(one, []string{"sleep"})), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "two.yml"), []byte(Spec(two, []string{"sleep"})), 0o644)).To(Succeed())
		out := a.mustCLI(ctx, "apply", "-f", dir)
		Expect(out).To(And(ContainSubstring(one), ContainSubstring(two)))
		for _, n := range []string{one, two} {
			Eventually(running(ctx, n)).WithTimeout(converge).Should(Not(BeEmpty()))
		}

		By("run --command replaces the entrypoint")
		job := fname("cmd-job")
		res := a.runJob(ctx, job, []string{"--command"}, "/box", "exit", "--code", "4")
		Expect(res.code).To(Equal(0), res.stderr)
		wait := a.runCLI(ctx, "wait", job, "--timeout", converge.String())
		Expect(wait.code).To(Equal(4), wait.stderr)
		v, err := a.API().Get(ctx, job)
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Spec.Spec.Command).To(Equal([]string{"/box", "exit", "--code", "4"}))

		By("export reads the specs from the live agent")
		exp := a.runCLI(ctx, "export", "--format", "kubernetes", one, two)
		Expect(exp.code).To(Equal(0), exp.stderr)
		Expect(exp.stdout).To(MatchRegexp(`(?m)^kind: Deployment$`))
		Expect(exp.stdout).To(ContainSubstring("name: " + one))
		Expect(exp.stdout).To(ContainSubstring("name: " + two))
		Expect(exp.stdout).To(ContainSubstring(images.BoxImage))
		missing := a.runCLI(ctx, "export", "--format", "kubernetes", fname("no-such-spec"))
		Expect(missing.code).NotTo(Equal(0))
		Expect(missing.stderr).To(ContainSubstring("not found"))
	})

	It("wait exits 1 for a job its deadline stopped", func(ctx SpecContext) {
		a := startAgent()
		job := fname("deadline-job")
		res := a.runJob(ctx, job, []string{"--deadline", "2s", "--grace", "1s"}, "tick", "--interval", "200ms", "--term-exit-code", "0")
		Expect(res.code).To(Equal(0), res.stderr)
		wait := a.runCLI(ctx, "wait", job, "--timeout", (converge + 2*time.Second).String())
		Expect(wait.code).To(Equal(1), "a passed deadline is a failure even when the job exits 0: %s %s", wait.stdout, wait.stderr)
		Expect(wait.stdout).To(ContainSubstring("DeadlineExceeded"))
		ex := a.Exits(ctx, job)
		Expect(ex).To(HaveLen(1))
		Expect(ex[0].Reason).To(Equal(model.ReasonDeadlineExceeded))
		Expect(ex[0].ExitCode).To(Equal(0), "the job ended on its own SIGTERM handler, with 0")
	})
})

// notifySocket stands in for systemd's notify socket and counts WATCHDOG=1.
type notifySocket struct {
	path string
	mu   sync.Mutex
	pets int
}

func listenNotify() *notifySocket {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "nfy-") // short: a socket path has a limit
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	n := &notifySocket{path: filepath.Join(dir, "notify")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				if line == "WATCHDOG=1" {
					n.mu.Lock()
					n.pets++
					n.mu.Unlock()
				}
			}
		}
	}()
	return n
}

func (n *notifySocket) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pets
}

// removeVolume removes a named volume a test caused.
func removeVolume(ctx context.Context, name string) {
	err := dcli.VolumeRemove(ctx, name, true)
	if err != nil && !cerrdefs.IsNotFound(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}
