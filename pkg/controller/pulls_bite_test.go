package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// levels are the levels of the records with message msg whose attribute
// key (when key is not "") has value val.
func (b *logRecords) levels(msg, key, val string) []slog.Level {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []slog.Level
	for _, r := range b.recs {
		if r.Message != msg {
			continue
		}
		match := key == ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == val {
				match = true
			}
			return !match
		})
		if match {
			out = append(out, r.Level)
		}
	}
	return out
}

// pullsByRef answers each pull by its image reference.
type pullsByRef map[string]error

func (p pullsByRef) Pull(_ context.Context, ref string) error { return p[ref] }

// TestPullOutcomesAreCountedAndLoggedByResult: each finished pull counts
// once under its own result (two good pulls are two successes, not one),
// and the log says which failed, as a warning, and which were pulled.
func TestPullOutcomesAreCountedAndLoggedByResult(t *testing.T) {
	refs := []struct {
		ref    string
		err    error
		result string
		msg    string
		level  slog.Level
	}{
		{"img:good1", nil, metrics.PullSuccess, "image pulled", slog.LevelInfo},
		{"img:good2", nil, metrics.PullSuccess, "image pulled", slog.LevelInfo},
		{"img:missing", errors.New("manifest unknown"), metrics.PullFailure, "image pull failed", slog.LevelWarn},
		{"img:stuck", fmt.Errorf("no progress for 1m: %w", docker.ErrStalled), metrics.PullStalled, "image pull failed", slog.LevelWarn},
	}
	answers := pullsByRef{}
	for _, r := range refs {
		answers[r.ref] = r.err
	}
	m := metrics.New("", "")
	book := &logRecords{}
	var wg sync.WaitGroup
	p := newPulls(answers, 1, m, slog.New(book), &wg, func(string) {})
	for _, r := range refs {
		if !p.start(t.Context(), "spec-"+r.ref, r.ref) {
			t.Fatalf("no pull of %s started", r.ref)
		}
	}
	wg.Wait()

	for result, want := range map[string]float64{metrics.PullSuccess: 2, metrics.PullFailure: 1, metrics.PullStalled: 1} {
		if got := counterValue(t, m, "reconciler_image_pulls_total", result); got != want {
			t.Errorf("pulls{result=%s} = %v, want %v", result, got, want)
		}
	}
	for _, r := range refs {
		if got := book.levels(r.msg, "image", r.ref); !slices.Equal(got, []slog.Level{r.level}) {
			t.Errorf("%s: log %q at %v, want once at %v", r.ref, r.msg, got, r.level)
		}
		if res, ok := p.take("spec-"+r.ref, r.ref); !ok || !errors.Is(res.err, r.err) {
			t.Errorf("%s: result %+v, %v; want its own pull's answer", r.ref, res, ok)
		}
	}
}

// pullsCommitLog is the state file, keeping every change committed to it.
type pullsCommitLog struct {
	*store.Store
	mu      sync.Mutex
	changes []store.Change
}

func (l *pullsCommitLog) Commit(c store.Change) ([]model.Event, bool, error) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
	return l.Store.Commit(c)
}

// withEvent is the change that recorded an event with reason.
func (l *pullsCommitLog) withEvent(t *testing.T, reason string) store.Change {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.changes {
		for _, ev := range c.Events {
			if ev.Reason == reason {
				return c
			}
		}
	}
	t.Fatalf("no commit recorded a %s event", reason)
	return store.Change{}
}

// TestRecordingAPullRewritesTheHistoryOnlyWhenItChanged: the record of a
// failed pull writes the back-off it starts; the record of a first pull
// that worked changes no history and writes only its event.
func TestRecordingAPullRewritesTheHistoryOnlyWhenItChanged(t *testing.T) {
	h := newHarness(t)
	log := &pullsCommitLog{Store: h.st}
	h.c = New(h.rt, log, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
	h.rt.Images = map[string]bool{}
	const missing = "reconciler/missing:1"
	h.rt.PullFunc = func(_ context.Context, ref string) error {
		if ref == missing {
			return errors.New("manifest unknown")
		}
		return nil
	}
	h.putSpec("bad", func(c *spec.ContainerSpec) { c.Image = missing })
	h.put("good", spec.RestartAlways, "tick")
	for _, n := range []string{"bad", "good"} {
		h.reconcile(n) // starts the pull; the harness waits for its end
		h.reconcile(n) // records its result
	}

	failed := log.withEvent(t, "Failed")
	if failed.History == nil || failed.History.Pull == nil || failed.History.Pull.Image != missing {
		t.Fatalf("the failed pull was recorded with history %+v; want its back-off", failed.History)
	}
	pulled := log.withEvent(t, "Pulled")
	if pulled.History != nil {
		t.Fatalf("the good pull rewrote an unchanged history: %+v", *pulled.History)
	}
	if st := h.status("good"); st.Phase != model.PhaseRunning {
		t.Fatalf("after the good pull: %+v", st)
	}
}
