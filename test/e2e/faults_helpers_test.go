package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/images"
)

// soakEnv set to 1 runs the long variants of the fault scenarios (`make soak`).
const soakEnv = "RECONCILER_SOAK"

// soaking picks the long variant of a scenario parameter under RECONCILER_SOAK=1.
func soaking[T any](short, long T) T {
	if os.Getenv(soakEnv) == "1" {
		return long
	}
	return short
}

// faultSummary is the line each fault scenario prints: what it tried and
// what it found.
type faultSummary struct {
	Scenario                  string
	Faults                    int
	Converged, Specs          int
	Duplicates, Orphans, Lost int
	Notes                     []string
}

func (s *faultSummary) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

func (s *faultSummary) String() string {
	line := fmt.Sprintf("faults[%s]: faults injected %d, specs converged %d/%d, duplicates %d, orphans %d, records lost %d",
		s.Scenario, s.Faults, s.Converged, s.Specs, s.Duplicates, s.Orphans, s.Lost)
	if len(s.Notes) > 0 {
		line += " (" + strings.Join(s.Notes, "; ") + ")"
	}
	return line
}

// print writes the summary to the run's output and to the report.
func (s *faultSummary) print() {
	line := s.String()
	fmt.Fprintln(GinkgoWriter, line)
	AddReportEntry(s.Scenario, ReportEntryVisibilityAlways, line)
}

// setupBudget bounds the waits that set a scenario up, not the ones that
// check what it is about: a daemon on a busy machine may take many seconds
// per start. Derived from startBudget in deriveBudgets.
var setupBudget time.Duration

// fname makes a spec name of this run: container names are the daemon's
// to share, and other suites (or runs) on the same daemon use plain ones.
func fname(name string) string { return "f" + runID[len(runID)-4:] + "-" + name }

// relaunch runs the agent process again on its directories without
// waiting for /readyz: an agent with many containers to catch up on is
// not ready until its first full sync is done.
func (a *Agent) relaunch() { a.relaunchUnder() }

// relaunchUnder is relaunch with the agent's command line run by the
// wrapper command (which must exec it).
func (a *Agent) relaunchUnder(wrapper ...string) {
	a.MetricsAddr = freeAddr()
	args := append([]string{binPath, "agent",
		"--specs-dir", a.SpecsDir, "--state", a.State, "--socket", a.Socket,
		"--metrics-addr", a.MetricsAddr, "--resync", resync.String(), "--rescan", rescan.String(),
		"--log-level", "debug"}, a.ExtraArgs...)
	args = append(wrapper, args...)
	a.cmd = exec.Command(args[0], args[1:]...)
	a.log = &syncWriter{}
	a.cmd.Stdout = GinkgoWriter
	a.cmd.Stderr = a.log
	Expect(a.cmd.Start()).To(Succeed())
	a.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(a.cmd, a.exited)
}

// instance is the agent's id, found on its containers' labels.
func (a *Agent) instance(ctx context.Context) string {
	v, err := a.API().Version(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(v.Instance).NotTo(BeEmpty())
	return v.Instance
}

// procStatus reads a field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
func (a *Agent) procStatus(field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, a.cmd.Process.Pid)
}

// decoy is a container the agent must never stop, remove or rename.
type decoy struct {
	ID, Name, What string
	StartedAt      string
}

// makeDecoys creates and starts three containers that look like the
// agent's but are not: no labels at all (but the suite's), another agent
// instance's labels for a spec name in use, and a look-alike name. With
// restartAlways the daemon itself restarts them when it comes back.
func makeDecoys(ctx context.Context, cli *client.Client, specName string, restartAlways bool) []decoy {
	GinkgoHelper()
	kinds := []struct {
		name, what string
		labels     map[string]string
	}{
		{"decoy-plain-" + runID, "no labels", nil},
		{"decoy-other-" + runID, "another instance's labels", map[string]string{
			"reconciler.managed": "true", "reconciler.instance": "0ther1n57ance000",
			"reconciler.spec": specName, "reconciler.spec-hash": "0123456789ab"}},
		{"reconciler-" + specName + "-x", "look-alike name", map[string]string{"reconciler.spec": specName}},
	}
	var out []decoy
	for _, k := range kinds {
		labels := map[string]string{testLabel: runID}
		for key, v := range k.labels {
			labels[key] = v
		}
		hc := &container.HostConfig{NetworkMode: "none"}
		if restartAlways {
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
		}
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: images.BoxImage, Cmd: []string{"sleep"}, Labels: labels},
			hc, nil, nil, k.name)
		Expect(err).NotTo(HaveOccurred())
		Expect(cli.ContainerStart(ctx, c.ID, container.StartOptions{})).To(Succeed())
		in, err := cli.ContainerInspect(ctx, c.ID)
		Expect(err).NotTo(HaveOccurred())
		out = append(out, decoy{ID: c.ID, Name: k.name, What: k.what, StartedAt: in.State.StartedAt})
	}
	return out
}

// checkDecoys returns what happened to decoys that should not have:
// gone, renamed, not running, or (when sameRun) restarted.
func checkDecoys(ctx context.Context, cli *client.Client, ds []decoy, sameRun bool) error {
	var errs []error
	for _, d := range ds {
		in, err := cli.ContainerInspect(ctx, d.ID)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("decoy %s (%s): %w", d.Name, d.What, err))
		case in.Name != "/"+d.Name:
			errs = append(errs, fmt.Errorf("decoy %s (%s) was renamed to %s", d.Name, d.What, in.Name))
		case !in.State.Running:
			errs = append(errs, fmt.Errorf("decoy %s (%s) is %s", d.Name, d.What, in.State.Status))
		case sameRun && in.State.StartedAt != d.StartedAt:
			errs = append(errs, fmt.Errorf("decoy %s (%s) was restarted", d.Name, d.What))
		}
	}
	return errors.Join(errs...)
}

// fleet is what one daemon shows of an agent instance's containers.
type fleet struct {
	bySpec map[string][]container.Summary
}

func listFleet(ctx context.Context, cli *client.Client, instance string) (fleet, error) {
	f := filters.NewArgs(filters.Arg("label", "reconciler.instance="+instance), filters.Arg("label", "reconciler.managed=true"))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fleet{}, err
	}
	out := fleet{bySpec: map[string][]container.Summary{}}
	for _, c := range cs {
		n := c.Labels["reconciler.spec"]
		out.bySpec[n] = append(out.bySpec[n], c)
	}
	return out, nil
}

// duplicates counts containers beyond the first of each spec.
func (f fleet) duplicates() int {
	n := 0
	for _, cs := range f.bySpec {
		n += max(0, len(cs)-1)
	}
	return n
}

// orphans lists the specs with containers that no desired spec owns
// (after the agent had time to remove them).
func (f fleet) orphans(desired map[string]bool) []string {
	var out []string
	for n := range f.bySpec {
		if !desired[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// stateFile is what a stopped agent's state file holds, read without the
// agent's code: bbolt opened read-only, every page checked.
type stateFile struct {
	Specs   map[string]bool
	Ledgers map[string]int // exits kept per spec name
	Events  int
	Size    int64
	// HighWater is the size of the data the file holds (bbolt's page
	// high-water mark); the file itself grows in steps ahead of it.
	HighWater int64
}

func readStateFile(path string) (stateFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stateFile{}, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return stateFile{}, fmt.Errorf("open %s read-only: %w", path, err)
	}
	defer db.Close()
	out := stateFile{Specs: map[string]bool{}, Ledgers: map[string]int{}, Size: fi.Size()}
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check of %s: %w", path, errors.Join(errs...))
		}
		specs := tx.Bucket([]byte("specs"))
		evs := tx.Bucket([]byte("events"))
		ledgers := tx.Bucket([]byte("exits"))
		if specs == nil || evs == nil || ledgers == nil {
			return fmt.Errorf("%s lacks the specs, events or exits bucket", path)
		}
		if err := specs.ForEach(func(k, _ []byte) error { out.Specs[string(k)] = true; return nil }); err != nil {
			return err
		}
		out.Events = evs.Stats().KeyN
		out.HighWater = tx.Size()
		return ledgers.ForEachBucket(func(name []byte) error {
			if l := ledgers.Bucket(name).Bucket([]byte("ledger")); l != nil {
				out.Ledgers[string(name)] = l.Stats().KeyN
			}
			return nil
		})
	})
	return out, err
}

// eventTally follows a daemon's events for this run's containers and
// counts them per spec name and action. The daemon replays only its last
// 256 events, so a scenario longer than that cannot ask afterwards.
type eventTally struct {
	mu     sync.Mutex
	counts map[string]map[string]int
	err    error
}

// tallyEvents counts from now until the test ends.
func tallyEvents(ctx context.Context, cli *client.Client) *eventTally {
	t := &eventTally{counts: map[string]map[string]int{}}
	ctx, cancel := context.WithCancel(ctx)
	DeferCleanup(cancel)
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", testLabel+"="+runID))
	// since makes the daemon replay what happens before the stream is open.
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: f, Since: time.Now().Format(time.RFC3339Nano)})
	go func() {
		for {
			select {
			case m := <-msgs:
				t.mu.Lock()
				n := m.Actor.Attributes["reconciler.spec"]
				if t.counts[n] == nil {
					t.counts[n] = map[string]int{}
				}
				t.counts[n][string(m.Action)]++
				t.mu.Unlock()
			case err := <-errs:
				t.mu.Lock()
				if ctx.Err() == nil {
					t.err = err
				}
				t.mu.Unlock()
				return
			}
		}
	}()
	return t
}

// count returns how often spec's containers saw action so far.
func (t *eventTally) count(spec, action string) int {
	GinkgoHelper()
	t.mu.Lock()
	defer t.mu.Unlock()
	Expect(t.err).NotTo(HaveOccurred(), "the daemon's event stream broke")
	return t.counts[spec][action]
}

// runningOf is running for the containers of one agent instance only: the
// suite's running counts every container of the run labelled with the
// spec, decoys included.
func runningOf(ctx context.Context, cli *client.Client, instance, spec string) func() (string, error) {
	return func() (string, error) {
		f, err := listFleet(ctx, cli, instance)
		if err != nil {
			return "", err
		}
		cs := f.bySpec[spec]
		if len(cs) != 1 || cs[0].State != "running" {
			return "", fmt.Errorf("spec %s has %d containers, want 1 running", spec, len(cs))
		}
		return cs[0].ID, nil
	}
}
