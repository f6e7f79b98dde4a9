package store

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openTest opens a store in a fresh directory, closed at cleanup.
func openTest(t testing.TB, opts Options) (*Store, *fakeClock) {
	t.Helper()
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	s, err := Open(filepath.Join(t.TempDir(), "state", "state.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func record(name string, src Source) Record {
	return Record{
		Spec: &spec.Spec{
			APIVersion: spec.APIVersion,
			Kind:       spec.KindContainer,
			Metadata:   spec.Metadata{Name: name},
			Spec:       spec.ContainerSpec{Image: "reconciler/box:latest"},
		},
		Hash:   "h-" + name,
		Source: src,
	}
}

func apiSource() Source             { return Source{Kind: SourceAPI} }
func fileSource(path string) Source { return Source{Kind: SourceFile, Path: path} }

func exit(spec, id string) *model.ContainerExit {
	return &model.ContainerExit{ContainerID: id, SpecName: spec, ExitCode: 1, Reason: model.ReasonError}
}

func mustCommit(t testing.TB, s *Store, c Change) []model.Event {
	t.Helper()
	evs, _, err := s.Commit(c)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return evs
}
