package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// privateDaemon is a dockerd owned by one test: its own socket, data-root,
// exec-root, pidfile, config file and managed containerd, no bridge and no
// iptables, so the machine's daemon and network are never touched. It can
// be stopped and started again on the same directories.
type privateDaemon struct {
	dir, host string
	cli       *client.Client
	cmd       *exec.Cmd
	exited    chan struct{}
}

// daemonStartBudget is what dockerd takes to answer after a start
// (about 1 s here; more with a busy machine or containers to restore).
const daemonStartBudget = 30 * time.Second

// startPrivateDaemon starts a dockerd in a fresh directory and loads the
// box image into it. A machine that cannot run one fails the test with
// what is missing. Each prepare func runs on the directory before dockerd
// starts (e.g. to mount a small filesystem on its data-root, dir/data).
func startPrivateDaemon(ctx context.Context, prepare ...func(dir string)) *privateDaemon {
	GinkgoHelper()
	for _, bin := range []string{"dockerd", "containerd", "containerd-shim-runc-v2", "runc"} {
		_, err := exec.LookPath(bin)
		Expect(err).NotTo(HaveOccurred(),
			"the daemon-restart scenario runs a dockerd of its own and needs %s on PATH (Debian: apt-get install docker.io)", bin)
	}
	// Under /tmp, short: the managed containerd's socket lives below the
	// exec-root, and a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "rfd-")
	Expect(err).NotTo(HaveOccurred())
	d := &privateDaemon{dir: dir, host: "unix://" + filepath.Join(dir, "d.sock")}
	DeferCleanup(d.destroy)
	// Its own config file: /etc/docker/daemon.json belongs to the machine's
	// daemon (its data-root would clash with ours).
	Expect(os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(`{"storage-driver": "vfs"}`), 0o600)).To(Succeed())
	for _, p := range prepare {
		p(dir)
	}
	d.start(ctx)
	d.cli, err = client.NewClientWithOpts(client.WithHost(d.host), client.WithAPIVersionNegotiation())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.cli.Close)

	img, err := dcli.ImageSave(ctx, []string{images.BoxImage})
	Expect(err).NotTo(HaveOccurred())
	defer img.Close()
	resp, err := d.cli.ImageLoad(ctx, img)
	Expect(err).NotTo(HaveOccurred(), "loading %s into the private dockerd", images.BoxImage)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	_, err = d.cli.ImageInspect(ctx, images.BoxImage)
	Expect(err).NotTo(HaveOccurred(), "%s in the private dockerd", images.BoxImage)
	return d
}

// start runs dockerd (again) and waits until it answers.
func (d *privateDaemon) start(ctx context.Context) {
	GinkgoHelper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	Expect(err).NotTo(HaveOccurred())
	defer logf.Close()
	// Its own network namespace: a dockerd with --bridge=none deletes the
	// docker0 link it finds, which would take the machine's daemon's
	// bridge away.
	d.cmd = exec.Command("unshare", "--net", "--", "dockerd",
		"--config-file", filepath.Join(d.dir, "daemon.json"),
		"--host", d.host,
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "x"),
		"--pidfile", filepath.Join(d.dir, "d.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false",
		"--containerd-namespace", "rtest", "--containerd-plugins-namespace", "rtest-plugins")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	Expect(d.cmd.Start()).To(Succeed(), "starting dockerd")
	d.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(d.cmd, d.exited)

	ping, err := client.NewClientWithOpts(client.WithHost(d.host), client.WithAPIVersionNegotiation())
	Expect(err).NotTo(HaveOccurred())
	defer ping.Close()
	Eventually(func() error {
		select {
		case <-d.exited:
			StopTrying("dockerd exited at start; the end of its log:\n" + d.logTail())
		default:
		}
		_, err := ping.Ping(ctx)
		return err
	}).WithTimeout(daemonStartBudget).WithPolling(200*time.Millisecond).Should(Succeed(),
		func() string { return "the private dockerd did not answer; its log:\n" + d.logTail() })
}

// stop sends sig to dockerd and waits for it to exit. SIGKILL leaves the
// containers' shims and processes running (its managed containerd dies
// with it).
func (d *privateDaemon) stop(sig syscall.Signal) {
	GinkgoHelper()
	Expect(d.cmd.Process.Signal(sig)).To(Succeed())
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		Fail(fmt.Sprintf("dockerd did not exit within 30s of %v", sig))
	}
}

// crash kills every process the stopped daemon left behind (containerd,
// the shims, the containers' processes) and wipes its exec-root and
// pidfile, as a host crash and reboot would (/run is a tmpfs). The daemon
// then finds its containers dead on restart: exit 255, no die event. It
// returns the number of processes killed.
func (d *privateDaemon) crash() int {
	n := d.killProcesses()
	d.unmount(filepath.Join(d.dir, "x"))
	Expect(os.RemoveAll(filepath.Join(d.dir, "x"))).To(Succeed())
	Expect(os.RemoveAll(filepath.Join(d.dir, "d.pid"))).To(Succeed())
	return n
}

// killProcesses kills containerd and its shims started for this daemon,
// and the shims' children. This machine's init reaps no orphans, so a
// killed containerd stays a zombie whose pid looks alive to the next
// dockerd: crash wipes its pidfile too.
func (d *privateDaemon) killProcesses() int {
	procs := processes()
	var kill []int
	for pid, p := range procs {
		// The agent's own command line names the daemon's socket: match
		// containerd and its shims only.
		if strings.Contains(p.cmdline, d.dir) && strings.Contains(p.cmdline, "containerd") {
			kill = append(kill, pid)
			for child, c := range procs {
				if c.ppid == pid {
					kill = append(kill, child)
				}
			}
		}
	}
	for _, pid := range kill {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(kill)
}

// unmount detaches every mount at or below dir, innermost first.
func (d *privateDaemon) unmount(dir string) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	var mounts []string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	slices.Reverse(mounts)
	for _, m := range mounts {
		Expect(syscall.Unmount(m, syscall.MNT_DETACH)).To(Succeed(), "unmount %s", m)
	}
}

// destroy stops the daemon and everything it started, unmounts what it
// mounted and removes its directory.
func (d *privateDaemon) destroy() {
	if d.cmd != nil && d.cmd.Process != nil {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(20 * time.Second):
				_ = d.cmd.Process.Kill()
				<-d.exited
			}
		}
	}
	d.killProcesses()
	d.unmount(d.dir)
	Expect(os.RemoveAll(d.dir)).To(Succeed())
}

func (d *privateDaemon) logTail() string {
	raw, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

type proc struct {
	ppid    int
	cmdline string
}

// processes reads every process's parent and command line from /proc.
func processes() map[int]proc {
	out := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		p := proc{cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")}
		if f, err := os.Open(filepath.Join("/proc", e.Name(), "status")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
					p.ppid, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
			f.Close()
		}
		out[pid] = p
	}
	return out
}

// daemonRestartScenario stops the agent's (private) Docker daemon under
// it, with SIGTERM (the daemon stops its containers) and with SIGKILL
// plus the death of every container process (a crash: they come back
// exited 255 with no die event). The agent must stay up, say not ready,
// reconnect, record the exits it missed and converge again.
func daemonRestartScenario(ctx SpecContext) {
	rounds := soaking(1, 5)
	nSpecs := soaking(5, 15)
	sum := &faultSummary{Scenario: "docker daemon restart", Specs: nSpecs}
	d := startPrivateDaemon(ctx)
	decoys := makeDecoys(ctx, d.cli, "svc-0", true)

	a := startAgent("--docker-host", d.host)
	instance := a.instance(ctx)
	var names []string
	for i := range nSpecs {
		n := fmt.Sprintf("svc-%d", i)
		names = append(names, n)
		a.WriteSpec(n+".yaml", Spec(n, []string{"tick", "--interval", "1s", "--term-exit-code", "143"},
			"network: none", "backoff: {max: 2s}"))
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	ids := map[string]string{}
	converged := func() error {
		if err := a.Ready(); err != nil {
			return err
		}
		f, err := listFleet(ctx, d.cli, instance)
		if err != nil {
			return err
		}
		for _, n := range names {
			cs := f.bySpec[n]
			if len(cs) != 1 || cs[0].State != "running" {
				return fmt.Errorf("%s: %d containers, want 1 running", n, len(cs))
			}
			ids[n] = cs[0].ID
		}
		if o := f.orphans(want); len(o) > 0 {
			return fmt.Errorf("orphans: %v", o)
		}
		sum.Duplicates = f.duplicates()
		return nil
	}
	Eventually(converged).WithTimeout(setupBudget + time.Duration(nSpecs)*time.Second).Should(Succeed())
	// After a daemon restart each spec may take two starts (one refused by
	// a daemon that stopped in the middle of it, then a fresh container),
	// and the daemon's first answers come slowly while it restores.
	budget := converge + startBudget + time.Duration(2*nSpecs)*time.Second

	reasons := map[string]int{}
	for round := range rounds {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			By(fmt.Sprintf("round %d: dockerd stopped with %v", round+1, sig))
			before := map[string]string{}
			for n, id := range ids {
				before[n] = id
			}
			reconnects := a.Metrics()[`reconciler_event_stream_reconnects_total`]
			stoppedAt := time.Now()
			d.stop(sig)
			if sig == syscall.SIGKILL {
				Expect(d.crash()).To(BeNumerically(">", nSpecs), "containerd, shims and container processes killed")
			}
			sum.Faults++
			Eventually(a.probe("/readyz")).WithTimeout(resync+startBudget).Should(Equal(503),
				"not ready while the daemon is away")
			Expect(a.probe("/healthz")()).To(Equal(200), "alive while the daemon is away")
			Expect(a.Exited()).To(BeFalse())

			d.start(ctx)
			Eventually(a.probe("/readyz")).WithTimeout(reconnectMax+resync+startBudget).Should(Equal(200),
				"ready once the daemon is back")
			Eventually(converged).WithTimeout(budget).Should(Succeed(),
				func() string { return "converged after the daemon came back; the daemon's log:\n" + d.logTail() })
			Expect(a.Metrics()[`reconciler_event_stream_reconnects_total`]).To(BeNumerically(">", reconnects),
				"the event stream was subscribed again (and the containers re-listed)")

			for _, n := range names {
				Eventually(func() error {
					exits := a.Exits(ctx, n)
					slices.Reverse(exits) // oldest first: the run the daemon's stop ended
					for _, ex := range exits {
						if ex.ContainerID != before[n] || ex.FinishedAt.Before(stoppedAt.Add(-time.Second)) {
							continue
						}
						if sig == syscall.SIGKILL && (ex.ExitCode != 255 || ex.Reason != model.ReasonLost) {
							return fmt.Errorf("%s: exit %d (%s), want 255 Lost", n, ex.ExitCode, ex.Reason)
						}
						reasons[fmt.Sprintf("%v:%d/%s", sig, ex.ExitCode, ex.Reason)]++
						return nil
					}
					return fmt.Errorf("%s: no exit recorded for %s after the daemon stopped", n, before[n][:12])
				}).WithTimeout(resync + startBudget).Should(Succeed())
			}
			Expect(checkDecoys(ctx, d.cli, decoys, false)).To(Succeed(),
				"decoys (restarted by the daemon itself) are untouched by the agent")
		}
	}
	sum.Converged = nSpecs // and no record lost: the waits above fail on one
	sum.note("exits recorded: %v; decoys untouched", reasons)
	sum.print()
}
