package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/model"
)

// probeBody asks one of the agent's probes and returns its code and text.
func (a *Agent) probeBody(path string) func() (string, error) {
	return func() (string, error) {
		resp, err := http.Get("http://" + a.MetricsAddr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), err
	}
}

// mountForTest mounts a filesystem on a fresh directory and unmounts it
// when the test ends. Register it before the agent that uses it, so that
// the agent stops first. It needs root, as the suite has.
func mountForTest(args ...string) string {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	out, err := exec.Command("mount", append(args, dir)...).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "mount %s %s (the scenario needs root and mount): %s", strings.Join(args, " "), dir, out)
	DeferCleanup(func() {
		out, err := exec.Command("umount", dir).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "umount %s: %s", dir, out)
	})
	return dir
}

// fillDisk writes zeros to a file in dir until the filesystem refuses
// more, and returns the file's path and size.
func fillDisk(dir string) (string, int64) {
	GinkgoHelper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return path, n
		}
		Expect(err).NotTo(HaveOccurred())
	}
}

// allocated is what a file takes on its filesystem (bbolt grows its file
// sparsely ahead of its data).
func allocated(path string) int64 {
	GinkgoHelper()
	var st syscall.Stat_t
	Expect(syscall.Stat(path, &st)).To(Succeed())
	return st.Blocks * 512
}

// diskFullScenario runs a crash-looping container with its agent's state
// file on a small tmpfs, fills the tmpfs, and empties it again. While the
// file refuses commits the agent must be not ready with the reason, must
// not restart the container whose exit it cannot record, and must lose no
// record; once space returns it must recover by itself and record every
// run.
func diskFullScenario(ctx SpecContext) {
	const tmpfsSize = 4 << 20
	sum := &faultSummary{Scenario: "disk full", Specs: 1}
	mnt := mountForTest("-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsSize), "tmpfs")
	a := newAgent("--exits-per-spec", "1000")
	a.State = filepath.Join(mnt, "state.db")
	a.Start()
	instance := a.instance(ctx)
	tally := tallyEvents(ctx, dcli)
	loop := fname("diskfull")
	// Each exit carries a 4 KB log tail: its record needs new pages.
	a.WriteSpec(loop+".yaml", Spec(loop, []string{"exit", "--code", "3", "--stderr", strings.Repeat("x", 4000)},
		"backoff: {initial: 1s, max: 2s}"))
	// One run of the loop: a back-off at its cap, a start, a resync.
	cycle := 2*time.Second + startBudget + resync
	exits := func() (int, error) {
		res := a.runCLI(ctx, "exits", loop, "-o", "json")
		if res.code != 0 {
			return 0, fmt.Errorf("reconciler exits: %s", res.stderr)
		}
		var es []model.ContainerExit
		if err := json.Unmarshal([]byte(res.stdout), &es); err != nil {
			return 0, err
		}
		return len(es), nil
	}
	// recorded holds when every run that ended (a die event) has its
	// record: the loop sits in its back-off, or its next run is under way.
	recorded := func() (int, error) {
		dies := tally.count(loop, "die")
		n, err := exits()
		switch {
		case err != nil:
			return 0, err
		case n != dies:
			return 0, fmt.Errorf("%d exits recorded, %d runs ended", n, dies)
		}
		return n, nil
	}

	By("positive control: with room on the disk the loop restarts and every exit is recorded")
	Eventually(func() int { return tally.count(loop, "start") }).WithTimeout(setupBudget + 3*cycle).Should(BeNumerically(">=", 3))
	Eventually(recorded).WithTimeout(2 * cycle).Should(BeNumerically(">=", 2))
	Expect(a.probeBody("/readyz")()).To(Equal("200 ok"))
	before := a.Metrics()["reconciler_state_write_errors_total"]

	By("filling the state file's filesystem")
	dbBefore, dbAlloc := fileSize(a.State), allocated(a.State)
	filler, fillerSize := fillDisk(mnt)
	sum.Faults++
	Eventually(a.probeBody("/readyz")).WithTimeout(3 * cycle).Should(
		And(HavePrefix("503 "), ContainSubstring("state file "+a.State+": no space left on device")))
	Expect(a.Metrics()["reconciler_state_write_errors_total"]).To(BeNumerically(">", before))
	// The run that ended when the disk filled is on Docker's side only.
	Eventually(func() error {
		if _, err := runningOf(ctx, dcli, instance, loop)(); err == nil {
			return errors.New("still running")
		}
		return nil
	}).WithTimeout(cycle).Should(Succeed())
	startsFull := tally.count(loop, "start")
	recordedFull, err := exits()
	Expect(err).NotTo(HaveOccurred())
	Expect(tally.count(loop, "die")).To(BeNumerically(">", recordedFull), "a run ended that is not recorded yet")

	By("while the file refuses commits, the container whose exit cannot be recorded is not restarted")
	// With room, the agent restarts it within one back-off at its cap plus
	// one retry delay (at most a resync): three of those pass.
	quiet := 3 * (2*time.Second + resync)
	Consistently(func() int { return tally.count(loop, "start") }).WithTimeout(quiet).Should(Equal(startsFull))
	Expect(a.probeBody("/readyz")()).To(HavePrefix("503 "))
	Expect(a.probeBody("/healthz")()).To(Equal("200 ok"), "a full disk is not a reason to restart the agent")
	n, err := exits()
	Expect(err).NotTo(HaveOccurred())
	Expect(n).To(Equal(recordedFull), "no record may come or go while the disk is full")
	Expect(a.Log()).To(ContainSubstring("state file refuses writes"))

	By("space returns: the agent recovers by itself")
	Expect(os.Remove(filler)).To(Succeed())
	Eventually(a.probeBody("/readyz")).WithTimeout(10*time.Second + 2*cycle).Should(Equal("200 ok"))
	Eventually(func() int { return tally.count(loop, "start") }).WithTimeout(2 * cycle).Should(BeNumerically(">=", startsFull+2))
	Eventually(recorded).WithTimeout(2 * cycle).Should(BeNumerically(">", recordedFull))
	Expect(a.Log()).To(ContainSubstring("state file takes writes again"))

	By("the loop's spec removed: every run it had ends recorded")
	a.RemoveSpec(loop + ".yaml")
	Eventually(func() int { return len(containers(ctx, loop)) }).WithTimeout(2 * cycle).Should(BeZero())
	final, err := 0, error(nil)
	Eventually(func() error { final, err = recorded(); return err }).WithTimeout(cycle).Should(Succeed())
	starts, dies := tally.count(loop, "start"), tally.count(loop, "die")

	a.Stop()
	st, err := readStateFile(a.State)
	Expect(err).NotTo(HaveOccurred(), "bbolt check after the disk filled and emptied")
	Expect(st.Ledgers[loop]).To(Equal(final))
	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Duplicates = f.duplicates()
	sum.Orphans = len(f.orphans(map[string]bool{}))
	sum.Lost = dies - st.Ledgers[loop]
	sum.Converged = 1
	sum.note("tmpfs %d KiB; state file %d KiB (%d KiB allocated) when filled with a %d KiB filler; %d runs started before the disk filled, none in %s while full (readyz 503 with the reason), %d starts and %d ended runs in all, %d exits recorded; recovered by itself; bbolt check clean",
		tmpfsSize>>10, dbBefore>>10, dbAlloc>>10, fillerSize>>10, startsFull, quiet, starts, dies, st.Ledgers[loop])
	sum.print()
	Expect(sum.Duplicates).To(BeZero())
	Expect(sum.Lost).To(BeZero())
}

func fileSize(path string) int64 {
	GinkgoHelper()
	fi, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return fi.Size()
}

// fifoScenario drops a FIFO into the spec directory, and renames one over
// a good spec file: each is reported as a spec-file error at once, the
// good file's last specs stay in force, and specs added afterwards
// converge.
func fifoScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "FIFO spec files", Specs: 3}
	a := startAgent()
	instance := a.instance(ctx)
	kept, before, after := fname("fifo-kept"), fname("fifo-before"), fname("fifo-after")
	a.WriteSpec("kept.yaml", Spec(kept, tickArgs))
	a.WriteSpec("before.yaml", Spec(before, tickArgs))
	var keptID string
	Eventually(func() (err error) { keptID, err = runningOf(ctx, dcli, instance, kept)(); return err }).WithTimeout(setupBudget).Should(Succeed())
	Eventually(runningOf(ctx, dcli, instance, before)).WithTimeout(setupBudget).Should(Not(BeEmpty()))

	By("a FIFO dropped in, and one renamed over a good file")
	fifo := filepath.Join(a.SpecsDir, "pipe.yaml")
	Expect(syscall.Mkfifo(fifo, 0o644)).To(Succeed())
	tmp := filepath.Join(a.SpecsDir, ".swap")
	Expect(syscall.Mkfifo(tmp, 0o644)).To(Succeed())
	Expect(os.Rename(tmp, filepath.Join(a.SpecsDir, "kept.yaml"))).To(Succeed())
	sum.Faults = 2
	Eventually(func() (map[string]string, error) {
		errs, err := a.API().FileErrors(ctx)
		out := map[string]string{}
		for _, e := range errs {
			out[filepath.Base(e.Path)] = e.Error
		}
		return out, err
	}).WithTimeout(converge).Should(And(
		HaveKeyWithValue("pipe.yaml", ContainSubstring("is a FIFO")),
		HaveKeyWithValue("kept.yaml", ContainSubstring("is a FIFO")),
		HaveLen(2)))
	Eventually(a.Metrics).WithTimeout(converge).Should(HaveKeyWithValue("reconciler_spec_errors", 2.0))

	By("specs added after the FIFOs converge; the refused file's last spec stays in force")
	a.WriteSpec("after.yaml", Spec(after, tickArgs))
	Eventually(runningOf(ctx, dcli, instance, after)).WithTimeout(converge + startBudget).Should(Not(BeEmpty()))
	Expect(runningOf(ctx, dcli, instance, kept)()).To(Equal(keptID))
	Expect(a.probeBody("/healthz")()).To(Equal("200 ok"))
	Expect(a.Exited()).To(BeFalse())
	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Duplicates = f.duplicates()
	sum.Orphans = len(f.orphans(map[string]bool{kept: true, before: true, after: true}))
	sum.Converged = 3
	sum.note("both FIFOs reported as spec-file errors; a spec added afterwards converged; the refused file's container kept running")
	sum.print()
	Expect(sum.Duplicates).To(BeZero())
	Expect(sum.Orphans).To(BeZero())
}

// stuckSourceScenario wedges the spec-directory loop for real, with no
// code hook: the state file lives on an ext4 filesystem that is frozen
// (fsfreeze), so the source's store write of a new spec never returns.
// /healthz must turn 503 naming the source, and everything must go on
// once the filesystem thaws. The reconcile loop, which writes nothing
// while its spec is settled, stays healthy.
func stuckSourceScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "stuck source", Specs: 2}
	img := filepath.Join(GinkgoT().TempDir(), "state.img")
	Expect(os.WriteFile(img, nil, 0o600)).To(Succeed())
	Expect(os.Truncate(img, 32<<20)).To(Succeed())
	out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "mkfs.ext4 (the scenario needs e2fsprogs): %s", out)
	mnt := mountForTest("-o", "loop", img)
	a := newAgent()
	a.State = filepath.Join(mnt, "state.db")
	frozen := false
	thaw := func() {
		if frozen {
			out, err := exec.Command("fsfreeze", "--unfreeze", mnt).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "fsfreeze --unfreeze: %s", out)
			frozen = false
		}
	}
	DeferCleanup(thaw) // before the agent stops: a frozen write cannot be interrupted
	a.Start()
	instance := a.instance(ctx)
	first, second := fname("stuck-first"), fname("stuck-second")
	a.WriteSpec("first.yaml", Spec(first, tickArgs))
	var id string
	Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, first)(); return err }).WithTimeout(setupBudget).Should(Succeed())
	Expect(a.probeBody("/healthz")()).To(Equal("200 ok"))

	By("freezing the state file's filesystem, then adding a spec file")
	out, err = exec.Command("fsfreeze", "--freeze", mnt).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "fsfreeze --freeze (the scenario needs util-linux): %s", out)
	frozen = true
	sum.Faults = 1
	start := time.Now()
	a.WriteSpec("second.yaml", Spec(second, tickArgs))
	stall := 2*rescan + 30*time.Second // the agent's limit for the source loop
	Eventually(a.probeBody("/healthz")).WithTimeout(stall + 2*rescan + 10*time.Second).Should(And(
		HavePrefix("503 "), ContainSubstring("spec directory source ("+a.SpecsDir+") made no progress"),
		Not(ContainSubstring("reconcile loop"))))
	took := time.Since(start)
	Expect(a.Metrics()).To(HaveKeyWithValue("reconciler_healthy", 0.0))
	Expect(runningOf(ctx, dcli, instance, first)()).To(Equal(id), "the settled spec is left alone")

	By("thawing: the source moves again and the new spec converges")
	thaw()
	Eventually(a.probeBody("/healthz")).WithTimeout(2*rescan + 10*time.Second).Should(Equal("200 ok"))
	Eventually(runningOf(ctx, dcli, instance, second)).WithTimeout(converge + startBudget).Should(Not(BeEmpty()))
	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Duplicates = f.duplicates()
	sum.Orphans = len(f.orphans(map[string]bool{first: true, second: true}))
	sum.Converged = 2
	sum.note("healthz 503 naming the source %s after the freeze (limit %s), the reconcile loop still healthy then; after the thaw the new spec converged", took.Round(time.Second), stall)
	sum.print()
	Expect(sum.Duplicates).To(BeZero())
	Expect(sum.Orphans).To(BeZero())
}
