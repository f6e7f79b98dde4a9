package store

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/model"
)

// limitFileSize makes writes past n bytes fail in this process, as a full
// disk makes writes past what the file holds fail: RLIMIT_FSIZE refuses
// them with EFBIG (Go ignores SIGXFSZ). It is undone at cleanup.
func limitFileSize(t *testing.T, n int64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatalf("cannot limit the file size: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) })
}

// aloneEnv marks the process runAlone starts.
const aloneEnv = "STORE_TEST_ALONE"

// runAlone runs the calling test in a process of its own and reports
// whether this is that process (then the test goes on). RLIMIT_FSIZE
// limits every file of the process, and a cached `go test` (gremlins'
// runs too) has the test binary log what it reads to -test.testlogfile,
// about 1 MB for this package (bbolt reads BBOLT_VERIFY at every commit):
// in the same process the log's next write past the limit fails, and the
// whole package FAILs though every test passed. The child writes its
// coverage into the parent's -test.gocoverdir, where the parent's report
// collects it.
func runAlone(t *testing.T) bool {
	t.Helper()
	if os.Getenv(aloneEnv) == t.Name() {
		return true
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v"}
	if f := flag.Lookup("test.gocoverdir"); f != nil && f.Value.String() != "" {
		args = append(args, "-test.gocoverdir="+f.Value.String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), aloneEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s, in a process of its own: %v\n%s", t.Name(), err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s did not run in its own process:\n%s", t.Name(), out)
	}
	return false
}

func bigEvents(n int) []model.Event {
	evs := make([]model.Event, n)
	for i := range evs {
		evs[i] = model.Event{Spec: "web", Type: model.EventNormal, Reason: "Filler", Message: strings.Repeat("x", 2000) + string(rune('a'+i%26))}
	}
	return evs
}

// TestRefusedCommitIsReportedAndLosesNothing: a commit the file refuses
// returns an error, is remembered (WriteErr) until a commit succeeds, and
// rolls back whole; everything committed before stays, and the file checks
// clean.
func TestRefusedCommitIsReportedAndLosesNothing(t *testing.T) {
	if !runAlone(t) {
		return
	}
	s, _ := openTest(t, Options{})
	exit := model.ContainerExit{ContainerID: "c1", SpecName: "web", ExitCode: 1}
	h := model.History{Restarts: 1}
	if _, _, err := s.Commit(Change{Name: "web", History: &h, Exit: &exit}); err != nil {
		t.Fatal(err)
	}
	if s.WriteErr() != nil || s.WriteFailures() != 0 {
		t.Fatalf("after a good commit: %v, %d failures", s.WriteErr(), s.WriteFailures())
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}

	limitFileSize(t, fi.Size())
	exit2 := model.ContainerExit{ContainerID: "c2", SpecName: "web", ExitCode: 2}
	h2 := model.History{Restarts: 2}
	_, _, err = s.Commit(Change{Name: "web", History: &h2, Exit: &exit2, Events: bigEvents(200)})
	var we *WriteError
	// bbolt keeps the errno when a page write fails (what a full disk
	// does), only the text when growing the file fails (what EFBIG does).
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "file too large") {
		t.Fatalf("a commit past what the file may hold: %v, want a WriteError saying why", err)
	}
	if got := s.WriteErr(); got == nil || !strings.HasPrefix(got.Error(), "state file "+s.Path()+": ") ||
		!strings.HasSuffix(got.Error(), "file too large") {
		t.Fatalf("WriteErr = %v, want the reason naming the file", got)
	}
	if got := (&WriteError{Path: "/s.db", Cause: fmt.Errorf("write /s.db: %w", syscall.ENOSPC)}).Error(); got != "state file /s.db: no space left on device" {
		t.Fatalf("a failed page write reads %q", got)
	}
	if s.WriteFailures() != 1 {
		t.Fatalf("WriteFailures = %d", s.WriteFailures())
	}
	// Nothing of the refused commit landed; the one before is whole.
	if got, _ := s.GetHistory("web"); got.Restarts != 1 {
		t.Fatalf("history after the refused commit: %+v", got)
	}
	if exits, _ := s.Exits("web", 0); len(exits) != 1 || exits[0].ContainerID != "c1" {
		t.Fatalf("exits after the refused commit: %+v", exits)
	}

	// The probe asks for the room of a real commit, not a byte.
	if err := s.ProbeWrite(); err == nil || s.WriteErr() == nil {
		t.Fatalf("a probe with no room left: %v, WriteErr %v", err, s.WriteErr())
	}

	// Space returns: a probe clears the error, and the same commit goes in.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}); err != nil {
		var cur syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_FSIZE, &cur)
		cur.Cur = cur.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &cur); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ProbeWrite(); err != nil || s.WriteErr() != nil {
		t.Fatalf("probe after space returned: %v, WriteErr %v", err, s.WriteErr())
	}
	if _, added, err := s.Commit(Change{Name: "web", History: &h2, Exit: &exit2, Events: bigEvents(200)}); err != nil || !added {
		t.Fatalf("the commit again: added %v, %v", added, err)
	}
	if exits, _ := s.Exits("web", 0); len(exits) != 2 {
		t.Fatalf("exits = %d, want 2", len(exits))
	}
	checkClean(t, s)
}

func checkClean(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}
