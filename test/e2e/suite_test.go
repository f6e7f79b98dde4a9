// Package e2e runs the real agent binary against the real Docker daemon.
// Every container a test causes carries the suite's test label and is
// removed by the test; nothing else on the daemon is touched.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/images"
)

// Intervals the agents under test run with; every Eventually timeout is
// derived from them, or from what the suite measured on this machine.
const (
	resync = 2 * time.Second
	rescan = time.Second
)

// startBudgetFloor is the least a create+start is given: about 0.5 s each
// when idle, but a start waits behind every other start in flight (about 2
// per second on 2 cores), so an idle machine running the suite's parallel
// agents still needs this much.
const startBudgetFloor = 20 * time.Second

// startBudgetFactor scales the probe's p90 (one create+start with nothing
// else of the suite in flight) to what a start may take while the suite's
// agents start theirs: the floor is 40 idle starts.
const startBudgetFactor = 40

var (
	// startBudget is what one create+start may take on this daemon:
	// measured at suite start (probeStarts), never below the floor.
	startBudget = startBudgetFloor
	// converge is the time a spec change needs to show up as running
	// containers: a rescan, a resync, and a start.
	converge time.Duration
	// startP90 is the probe's p90 of one create+start on this machine,
	// the unit of scheduling noise the suite's timing bounds allow.
	startP90 time.Duration
)

const testLabel = "reconciler.test"

var (
	binPath string
	runID   string // value of testLabel for this run
	dcli    *client.Client
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "reconciler e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	runID = "e2e-" + hex.EncodeToString(b)

	var err error
	dcli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	Expect(err).NotTo(HaveOccurred())
	_, err = dcli.Ping(ctx)
	Expect(err).NotTo(HaveOccurred(), "the e2e suite needs a running Docker daemon (start dockerd)")

	dir, err := os.MkdirTemp("", "reconciler-e2e-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	binPath = filepath.Join(dir, "reconciler")
	build := exec.Command("go", "build", "-o", binPath, "github.com/reconciler/reconciler/cmd/reconciler")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "building the agent: %s", out)

	// The registry specs need a registry built from the module proxy: a
	// first build takes minutes, so it starts now, beside the other specs.
	prebuildRegistry()
	Expect(images.EnsureBox(ctx, dcli, images.BoxImage, GinkgoWriter)).To(Succeed(),
		"the e2e suite needs the reconciler/box image, built from cmd/box")
	// Every agent builds the egress proxy's image at start when it is
	// missing; made here once, no agent of the suite does.
	Expect(images.EnsureEgressProxy(ctx, dcli, images.EgressProxyImage, GinkgoWriter)).To(Succeed(),
		"the e2e suite needs the reconciler/egress-proxy image, built from cmd/egress-proxy")

	samples := probeStarts(ctx, 5)
	startP90 = p90(samples)
	deriveBudgets(startP90)
	// Straight to stderr: the figures belong in every run's output, not
	// only in a failing one's.
	fmt.Fprintf(os.Stderr, "e2e: start-latency probe: %d create+start on this daemon took %s; p90 %s; startBudget %s (floor %s, %dx p90); converge %s\n",
		len(samples), durations(samples), startP90.Round(time.Millisecond), startBudget, startBudgetFloor, startBudgetFactor, converge)
}, NodeTimeout(5*time.Minute))

// A create the agent had in flight when it was stopped can land after its
// spec's cleanup listed the containers: the daemon finishes a create whose
// client has gone (one such container was found after a run). The suite
// sweeps its label once more at the end, and says what it found.
var _ = AfterSuite(func(ctx SpecContext) {
	if dcli == nil {
		return
	}
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+runID))
	cs, err := dcli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cs {
		fmt.Fprintf(os.Stderr, "e2e: removing %s (%s), left after its spec's cleanup\n", strings.Join(c.Names, ","), c.State)
	}
	removeTestContainers(ctx)
}, NodeTimeout(2*time.Minute))

// deriveBudgets sets startBudget from the probe's p90, and every budget
// derived from it.
func deriveBudgets(p90 time.Duration) {
	startBudget = max(startBudgetFloor, startBudgetFactor*p90)
	converge = rescan + resync + startBudget
	setupBudget = converge + 3*startBudget
}

// probeStarts creates, starts and removes n labelled containers one after
// another and returns how long each create+start took.
func probeStarts(ctx context.Context, n int) []time.Duration {
	var out []time.Duration
	for i := range n {
		t0 := time.Now()
		c, err := dcli.ContainerCreate(ctx, &container.Config{Image: images.BoxImage, Cmd: []string{"sleep", "--for", "1m"},
			Labels: map[string]string{testLabel: runID}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, fmt.Sprintf("%s-probe-%d", runID, i))
		Expect(err).NotTo(HaveOccurred(), "start-latency probe: create")
		err = dcli.ContainerStart(ctx, c.ID, container.StartOptions{})
		d := time.Since(t0)
		Expect(dcli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})).To(Succeed())
		Expect(err).NotTo(HaveOccurred(), "start-latency probe: start")
		out = append(out, d)
	}
	return out
}

// p90 is the 90th percentile of ds (nearest rank).
func p90(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*9+9)/10-1]
}

func durations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	return strings.Join(parts, " ")
}

// Agent is one agent process under test with its own directories.
type Agent struct {
	Dir, SpecsDir, State, Socket, MetricsAddr string
	ExtraArgs                                 []string
	// Env is added to the agent process's environment.
	Env    []string
	cmd    *exec.Cmd
	log    *syncWriter
	exited chan struct{}
	// api is the one API client of this agent (see API).
	apiOnce sync.Once
	api     *api.Client
}

// startAgent starts an agent with fresh directories and waits until it is
// ready; the test's cleanup stops it and removes every container the test
// caused.
func startAgent(extra ...string) *Agent {
	a := newAgent(extra...)
	a.Start()
	return a
}

// launchAgent is startAgent without the wait for /readyz, for an agent
// that cannot be ready yet.
func launchAgent(extra ...string) *Agent {
	a := newAgent(extra...)
	a.Launch()
	return a
}

func newAgent(extra ...string) *Agent {
	dir := GinkgoT().TempDir()
	a := &Agent{
		Dir:       dir,
		SpecsDir:  filepath.Join(dir, "specs"),
		State:     filepath.Join(dir, "state.db"),
		Socket:    filepath.Join(dir, "api.sock"),
		ExtraArgs: extra,
	}
	Expect(os.MkdirAll(a.SpecsDir, 0o755)).To(Succeed())
	DeferCleanup(removeTestContainers)
	DeferCleanup(a.Stop)
	return a
}

// Start runs the agent process (again) on its directories and waits until
// it is ready.
func (a *Agent) Start() {
	a.Launch()
	Eventually(a.Ready).WithTimeout(startBudget).WithPolling(100*time.Millisecond).Should(Succeed(),
		"agent did not become ready; its log:\n%s", a.Log)
}

// Launch runs the agent process on its directories.
func (a *Agent) Launch() {
	a.MetricsAddr = freeAddr()
	args := append([]string{"agent",
		"--specs-dir", a.SpecsDir, "--state", a.State, "--socket", a.Socket,
		"--metrics-addr", a.MetricsAddr, "--resync", resync.String(), "--rescan", rescan.String(),
		"--log-level", "debug"}, a.ExtraArgs...)
	a.cmd = exec.Command(binPath, args...)
	a.cmd.Env = append(os.Environ(), a.Env...)
	a.log = &syncWriter{}
	a.cmd.Stdout = GinkgoWriter
	a.cmd.Stderr = a.log
	Expect(a.cmd.Start()).To(Succeed())
	a.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(a.cmd, a.exited)
}

// Ready asks /readyz.
func (a *Agent) Ready() error {
	resp, err := http.Get("http://" + a.MetricsAddr + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

// Log returns what the agent logged so far.
func (a *Agent) Log() string { return a.log.String() }

// Stop sends SIGTERM and waits for the agent to exit.
func (a *Agent) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
		Fail("agent did not stop within 30s of SIGTERM")
	}
}

// Kill9 kills the agent with SIGKILL, as a crash would.
func (a *Agent) Kill9() {
	Expect(a.cmd.Process.Kill()).To(Succeed())
	<-a.exited
}

// Exited reports whether the process has ended.
func (a *Agent) Exited() bool {
	select {
	case <-a.exited:
		return true
	default:
		return false
	}
}

// WriteSpec writes a spec file atomically (write aside, then rename), as
// careful tools and editors do.
func (a *Agent) WriteSpec(file, content string) {
	tmp := filepath.Join(a.SpecsDir, "."+file+".tmp")
	Expect(os.WriteFile(tmp, []byte(content), 0o644)).To(Succeed())
	Expect(os.Rename(tmp, filepath.Join(a.SpecsDir, file))).To(Succeed())
}

// RemoveSpec deletes a spec file.
func (a *Agent) RemoveSpec(file string) {
	Expect(os.Remove(filepath.Join(a.SpecsDir, file))).To(Succeed())
}

// Metrics scrapes /metrics into "name{l1="v1",...}" -> value.
func (a *Agent) Metrics() map[string]float64 {
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Spec renders a spec document carrying the suite's test label. args are
// the box program's arguments; more is raw YAML appended under spec:.
func Spec(name string, args []string, more ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: reconciler/v1\nkind: Container\nmetadata:\n  name: %s\n  labels: {%s: %s}\n", name, testLabel, runID)
	fmt.Fprintf(&b, "spec:\n  image: %s\n  args: [", images.BoxImage)
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", a)
	}
	b.WriteString("]\n")
	if !strings.Contains(strings.Join(more, "\n"), "terminationGracePeriod:") {
		b.WriteString("  terminationGracePeriod: 2s\n")
	}
	for _, m := range more {
		b.WriteString("  " + m + "\n")
	}
	return b.String()
}

// containers lists the containers of a spec (running or not) that carry
// the suite's label.
func containers(ctx context.Context, specName string) []container.Summary {
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+runID),
		filters.Arg("label", "reconciler.spec="+specName))
	cs, err := dcli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	Expect(err).NotTo(HaveOccurred())
	return cs
}

// runningContainer returns the one running container of a spec, failing
// when there are none or more.
func runningContainer(ctx context.Context, specName string) (container.Summary, error) {
	cs := containers(ctx, specName)
	if len(cs) != 1 {
		return container.Summary{}, fmt.Errorf("spec %s has %d containers, want 1", specName, len(cs))
	}
	if cs[0].State != "running" {
		return container.Summary{}, fmt.Errorf("spec %s: container %s is %s", specName, cs[0].ID[:12], cs[0].State)
	}
	return cs[0], nil
}

// removeTestContainers removes every container carrying this run's label.
func removeTestContainers(ctx SpecContext) {
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+runID))
	cs, err := dcli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cs {
		// The agent may be removing it at the same moment (409: removal
		// in progress): wait for that to finish instead.
		Eventually(func() error {
			err := dcli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			if err == nil || cerrdefs.IsNotFound(err) {
				return nil
			}
			return err
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// syncWriter lets the test read a log the agent process is writing.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	_, _ = GinkgoWriter.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
