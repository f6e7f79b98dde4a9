package controller

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// fullStore is a state file on a disk that can be made full: every commit
// is refused, as bbolt refuses one whose pages cannot be written.
type fullStore struct {
	*store.Store
	full atomic.Bool
}

func (f *fullStore) refused() error {
	return &store.WriteError{Path: "state.db", Cause: fmt.Errorf("write state.db: %w", syscall.ENOSPC)}
}

func (f *fullStore) Commit(c store.Change) ([]model.Event, bool, error) {
	if f.full.Load() {
		return nil, false, fmt.Errorf("commit: %w", f.refused())
	}
	return f.Store.Commit(c)
}

func (f *fullStore) WriteErr() error {
	if f.full.Load() {
		return f.refused()
	}
	return f.Store.WriteErr()
}

// TestFullStateFileChangesNoContainer: while the state file refuses
// commits, no exit is lost and no container is started, stopped or
// created; once it takes writes again everything catches up.
func TestFullStateFileChangesNoContainer(t *testing.T) {
	h := newHarness(t)
	fs := &fullStore{Store: h.st}
	h.c = New(h.rt, fs, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	try := func(name string) error {
		h.c.cache.dirty(name)
		_, err := h.c.Reconcile(context.Background(), name)
		h.c.wg.Wait()
		return err
	}
	exits := func() int { e, _ := h.st.Exits("web", 0); return len(e) }

	h.put("web", spec.RestartAlways, "crash")
	h.put("db", spec.RestartAlways, "sleep")
	h.reconcile("web")
	h.reconcile("db")

	// Positive control: with room on the disk, a crash is recorded and the
	// container restarted after its back-off.
	h.rt.exit("reconciler-web", 2)
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	h.now = h.now.Add(time.Minute)
	h.reconcile("web")
	if h.rt.count("start") != 3 || exits() != 1 {
		t.Fatalf("before the disk fills: %d starts, %d exits; want 3 and 1", h.rt.count("start"), exits())
	}
	hist, _ := h.st.GetHistory("web")

	// Desired state written before the disk filled, not reconciled yet: a
	// new job, and a changed spec for db (its container must be replaced).
	h.put("job", spec.RestartNever, "exit")
	s, _ := h.st.GetSpec("db")
	s2 := *s.Spec
	s2.Spec.Args = []string{"tick"}
	if err := h.st.PutSpec(store.Record{Spec: &s2, Hash: s2.Hash(), Source: s.Source}); err != nil {
		t.Fatal(err)
	}
	fs.full.Store(true)
	h.rt.exit("reconciler-web", 3)
	for range 3 {
		h.now = h.now.Add(10 * time.Minute) // far past any back-off
		for _, n := range []string{"web", "db", "job"} {
			if err := try(n); err == nil || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("reconcile %s on a full disk: %v, want the reason", n, err)
			}
		}
	}
	if n := h.rt.count("start"); n != 3 {
		t.Errorf("%d starts on a full disk: a crash whose exit cannot be recorded was restarted", n-3)
	}
	if n := h.rt.count("stop"); n != 0 {
		t.Errorf("a container was stopped whose stop could not be recorded")
	}
	if n := h.rt.count("create"); n != 2 {
		t.Errorf("a container was created while the state file took no writes")
	}
	if got, _ := h.st.GetHistory("web"); !historyEqual(got, hist) || exits() != 1 {
		t.Errorf("the stored history or ledger moved on a failed commit: %+v, %d exits", got, exits())
	}

	fs.full.Store(false)
	for range 4 {
		h.now = h.now.Add(10 * time.Minute)
		for _, n := range []string{"web", "db", "job"} {
			h.reconcile(n)
		}
	}
	if exits() != 2 || h.rt.byName("reconciler-web").State != "running" {
		t.Errorf("after space returned: %d exits (want 2), web %s", exits(), h.rt.byName("reconciler-web").State)
	}
	if h.rt.count("stop") != 1 || h.rt.count("create") < 4 {
		t.Errorf("after space returned: %v, want db replaced and job created", h.rt.calls())
	}
}

// TestFailedReconcileBacksOffUntilItSucceeds: the worker's requeue policy.
// A reconcile that fails comes back after a per-name delay that doubles;
// one that succeeds ends the back-off.
func TestFailedReconcileBacksOffUntilItSucceeds(t *testing.T) {
	h := newHarness(t)
	fs := &fullStore{Store: h.st}
	h.c = New(h.rt, fs, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	var delays []time.Duration
	var due []func()
	h.c.queue.afterFunc = func(d time.Duration, f func()) { delays, due = append(delays, d), append(due, f) }
	h.put("web", spec.RestartAlways, "sleep")
	run := func() {
		t.Helper()
		for _, f := range due {
			f() // the back-off has passed
		}
		due = nil
		h.c.queue.Add("web")
		if !h.c.processNext(context.Background()) {
			t.Fatal("queue shut down")
		}
		h.c.wg.Wait()
	}
	fs.full.Store(true)
	run()
	run()
	if len(delays) != 2 || delays[0] != RateLimitBase || delays[1] != 2*RateLimitBase || h.c.queue.NumRequeues("web") != 2 {
		t.Fatalf("after two failures: delays %v, requeues %d; want %s then %s", delays, h.c.queue.NumRequeues("web"), RateLimitBase, 2*RateLimitBase)
	}
	fs.full.Store(false)
	run()
	if n := h.c.queue.NumRequeues("web"); n != 0 || h.rt.count("start") != 1 {
		t.Fatalf("after a success: %d requeues, calls %v; want the back-off forgotten and the container started", n, h.rt.calls())
	}
}
