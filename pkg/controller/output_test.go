package controller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/output"
	"github.com/reconciler/reconciler/pkg/spec"
)

// withOutput gives the harness's controller a store of saved output, and
// its fake daemon a log per container: one stdout and one stderr line per
// start of it, stamped at the start.
func withOutput(h *harness) *output.Store {
	h.t.Helper()
	out, err := output.New(output.Options{Dir: filepath.Join(h.t.TempDir(), "output"),
		Keep: func(name string) bool {
			if _, err := h.st.GetSpec(name); err == nil {
				return true
			}
			exits, _ := h.st.Exits(name, 1)
			return len(exits) > 0
		}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Output: out})
	var mu sync.Mutex
	starts := map[string][]time.Time{}
	h.rt.OnStart = func(c docker.Container) {
		mu.Lock()
		defer mu.Unlock()
		if n := len(starts[c.ID]); c.Running() && (n == 0 || starts[c.ID][n-1] != c.StartedAt) {
			starts[c.ID] = append(starts[c.ID], c.StartedAt)
		}
	}
	h.rt.LogsFunc = func(id string, opts docker.LogOptions) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		var buf bytes.Buffer
		o, e := stdcopy.NewStdWriter(&buf, stdcopy.Stdout), stdcopy.NewStdWriter(&buf, stdcopy.Stderr)
		for i, at := range starts[id] {
			if (!opts.Since.IsZero() && at.Before(opts.Since)) || (!opts.Until.IsZero() && at.After(opts.Until)) {
				continue
			}
			ts := at.UTC().Format(time.RFC3339Nano)
			fmt.Fprintf(o, "%s run %d out\n", ts, i+1)
			fmt.Fprintf(e, "%s run %d err\n", ts, i+1)
		}
		return io.NopCloser(&buf), nil
	}
	return out
}

// failWhole answers as logs does, but fails every whole read with err.
func failWhole(logs func(string, docker.LogOptions) (io.ReadCloser, error), err error) func(string, docker.LogOptions) (io.ReadCloser, error) {
	return func(id string, opts docker.LogOptions) (io.ReadCloser, error) {
		if opts.Whole {
			return nil, err
		}
		return logs(id, opts)
	}
}

func savedLines(t *testing.T, out *output.Store, sv output.Saved) []string {
	t.Helper()
	r, err := out.Open(sv)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for {
		l, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Stream+" "+l.Text)
	}
}

// TestOutputSavedBeforeRemoveOnExit: a job with removeOnExit keeps its
// output: it is read whole, from the start, before the container goes.
func TestOutputSavedBeforeRemoveOnExit(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	h.putSpec("job", func(c *spec.ContainerSpec) {
		c.RestartPolicy = spec.RestartNever
		c.RemoveOnExit = true
	})
	h.reconcile("job")
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-job", 0)
	mark := len(h.rt.ops())
	h.reconcile("job")

	ops := h.rt.ops()[mark:]
	if h.rt.byName("reconciler-job") != nil {
		t.Fatalf("calls %v; want the container removed", ops)
	}
	reads := h.rt.logOpts()
	whole := slices.IndexFunc(reads, func(o docker.LogOptions) bool { return o.Whole })
	if whole < 0 || !reads[whole].Timestamps || !reads[whole].Since.IsZero() {
		t.Fatalf("log reads %+v; want one whole read with timestamps from the start", reads)
	}
	if last := slices.Index(ops, "remove"); last < 0 || slices.Index(ops, "logs") > last || h.rt.count("logs") != 2 {
		t.Fatalf("calls after the exit: %v; want the tail and the whole output read before the removal", ops)
	}
	sv, ok, err := out.Latest("job")
	if err != nil || !ok {
		t.Fatalf("no saved output: %v", err)
	}
	if got := savedLines(t, out, sv); !slices.Equal(got, []string{"stdout run 1 out", "stderr run 1 err"}) {
		t.Fatalf("saved %q", got)
	}
	if exits, _ := h.st.Exits("job", 0); len(exits) != 1 || !sv.Same(output.Run{Spec: "job", ContainerID: exits[0].ContainerID, StartedAt: exits[0].StartedAt}) {
		t.Fatalf("saved run %s does not match the recorded exit %+v", sv.Key(), exits)
	}
}

// TestOutputOfARestartInPlace: a container its policy restarts at once is
// restarted first; each run's output is saved after, from the end of the
// run before (the container's log holds all its runs) to its own exit.
func TestOutputOfARestartInPlace(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	h.put("web", spec.RestartAlways, "crash")
	h.reconcile("web")
	for i := range 2 {
		h.now = h.now.Add(time.Minute)
		h.rt.exit("reconciler-web", 2)
		mark := len(h.rt.ops())
		h.now = h.now.Add(50 * time.Millisecond)
		h.reconcile("web")
		ops := h.rt.ops()[mark:]
		if start, logs := slices.Index(ops, "start"), slices.Index(ops, "logs"); i == 0 && (start < 0 || logs < start) {
			t.Fatalf("calls after the crash: %v; want the restart before any log read", ops)
		}
	}
	h.now = h.now.Add(time.Minute) // the second crash's back-off
	h.reconcile("web")
	if h.rt.count("start") != 3 {
		t.Fatalf("calls %v; want the third run started", h.rt.ops())
	}
	runs, err := out.Runs("web")
	if err != nil || len(runs) != 2 {
		t.Fatalf("saved runs %v, %v; want 2", runs, err)
	}
	for i, r := range runs {
		want := []string{fmt.Sprintf("stdout run %d out", i+1), fmt.Sprintf("stderr run %d err", i+1)}
		if got := savedLines(t, out, r); !slices.Equal(got, want) {
			t.Errorf("run %d saved %q, want %q", i+1, got, want)
		}
	}
	exits, _ := h.st.Exits("web", 0) // newest first
	var since []time.Time
	for _, o := range h.rt.logOpts() {
		if o.Whole {
			since = append(since, o.Since)
		}
	}
	if len(since) != 2 || !since[0].IsZero() || !since[1].After(exits[1].FinishedAt) || !since[1].Before(exits[0].StartedAt) {
		t.Fatalf("whole reads since %v; want the start, then between the first run's exit %v and the second's start %v",
			since, exits[1].FinishedAt, exits[0].StartedAt)
	}
	prev, ok, _ := out.Previous("web", &output.Run{Spec: "web", ContainerID: exits[0].ContainerID, StartedAt: h.rt.byName("reconciler-web").StartedAt})
	if !ok || !prev.Same(runs[1].Run) {
		t.Fatalf("previous of the running third run: %s; want the second", prev.Key())
	}
}

// TestOutputSavedOnceWhenTheRecordIsRetried: the record's commit is
// refused after the save (a full disk); the retried record does not read
// the output again.
func TestOutputSavedOnceWhenTheRecordIsRetried(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	fs := &fullStore{Store: h.st}
	h.c = New(h.rt, fs, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Output: out})
	h.put("job", spec.RestartNever, "run")
	h.reconcile("job")
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-job", 1)
	fs.full.Store(true)
	h.c.cache.dirty("job")
	if _, err := h.c.Reconcile(t.Context(), "job"); err == nil {
		t.Fatal("the record was committed to a full store")
	}
	if _, ok, _ := out.Latest("job"); !ok {
		t.Fatal("output not saved before the commit")
	}
	fs.full.Store(false)
	mark := len(h.rt.logOpts())
	h.reconcile("job")
	for _, o := range h.rt.logOpts()[mark:] {
		if o.Whole {
			t.Fatalf("the retried record read the whole output again")
		}
	}
	if exits, _ := h.st.Exits("job", 0); len(exits) != 1 {
		t.Fatalf("exits %+v; want the record", exits)
	}
}

// TestOutputGoesWithTheExitLedger: a forgotten spec keeps its output while
// its exit ledger stays; the output of a spec whose ledger went is pruned.
func TestOutputGoesWithTheExitLedger(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	h.put("job", spec.RestartNever, "run")
	h.reconcile("job")
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-job", 0)
	h.reconcile("job")
	if err := h.st.DeleteSpec("job"); err != nil {
		t.Fatal(err)
	}
	h.reconcile("job") // removes the container and forgets the spec
	if _, ok, _ := out.Latest("job"); !ok {
		t.Fatal("output dropped while the exit ledger stays")
	}
	// Another spec's saved output whose ledger is gone (none was ever
	// kept here) goes at the next forget.
	if _, err := out.Save(output.Run{Spec: "old", ContainerID: "c0", StartedAt: t0}, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"old", "job"} {
		long := time.Now().Add(-time.Hour) // saves under way are left alone
		if err := os.Chtimes(filepath.Join(out.Dir(), n), long, long); err != nil {
			t.Fatal(err)
		}
	}
	h.c.pruneOutput()
	if _, ok, _ := out.Latest("old"); ok {
		t.Fatal("output of a spec without spec or exit ledger kept")
	}
	if _, ok, _ := out.Latest("job"); !ok {
		t.Fatal("output of a spec whose ledger stays dropped")
	}
}

// TestOutputSaveWaitsForTheDaemon: a daemon that does not answer the read
// holds the record (and the removal) back until it does; a log that cannot
// be read for another reason does not.
func TestOutputSaveWaitsForTheDaemon(t *testing.T) {
	h := newHarness(t)
	out := withOutput(h)
	h.putSpec("job", func(c *spec.ContainerSpec) {
		c.RestartPolicy = spec.RestartNever
		c.RemoveOnExit = true
	})
	h.reconcile("job")
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-job", 0)
	logs := h.rt.LogsFunc
	h.rt.LogsFunc = failWhole(logs, fmt.Errorf("read: %w", docker.ErrUnavailable))
	h.c.cache.dirty("job")
	if _, err := h.c.Reconcile(t.Context(), "job"); err == nil {
		t.Fatal("the record went on without the output while the daemon did not answer")
	}
	if exits, _ := h.st.Exits("job", 0); len(exits) != 0 || h.rt.byName("reconciler-job") == nil {
		t.Fatalf("exits %+v, container removed %v; want neither before the save", exits, h.rt.byName("reconciler-job") == nil)
	}
	h.rt.LogsFunc = logs
	h.reconcile("job")
	if _, ok, _ := out.Latest("job"); !ok || h.rt.byName("reconciler-job") != nil {
		t.Fatalf("saved %v, container still there %v; want saved, then removed", ok, h.rt.byName("reconciler-job") != nil)
	}

	// Another job whose log cannot be read at all is recorded anyway.
	h.putSpec("bad", func(c *spec.ContainerSpec) { c.RestartPolicy = spec.RestartNever })
	h.reconcile("bad")
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-bad", 0)
	h.rt.LogsFunc = failWhole(logs, errors.New("unreadable log"))
	h.reconcile("bad")
	if exits, _ := h.st.Exits("bad", 0); len(exits) != 1 {
		t.Fatalf("exits %+v; want the record without the output", exits)
	}
}
