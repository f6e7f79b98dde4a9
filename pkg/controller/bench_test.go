package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// BenchmarkReconcileNoop measures the control plane alone: one resync pass
// (one List, every name queued, the default workers reconciling until the
// queue is empty) over specs that are all converged, with a real bbolt
// store and a fake runtime. One op is one whole pass; p99-ns is the p99 of
// a single reconcile. The setup writes every spec, status and history (two
// fsyncs each): point TMPDIR at a tmpfs to keep it short.
//
//	go test -run '^$' -bench ReconcileNoop -count 6 ./pkg/controller | tee new.txt
func BenchmarkReconcileNoop(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("specs=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			c, st, rt := benchController(b, ctx, n)
			defer func() { cancel(); c.wg.Wait() }()
			writes, calls := st.commits.Load(), rt.changes()
			lat := make([]time.Duration, 0, n)
			for b.Loop() {
				lat = benchPass(b, ctx, c, n, lat)
			}
			b.StopTimer()
			if w := st.commits.Load() - writes; w > 0 {
				b.Fatalf("no-op passes wrote to the store %d times", w)
			}
			if u := rt.changes() - calls; u > 0 {
				b.Fatalf("%d calls to the runtime beyond List and Wait", u)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "specs/s")
		})
	}
}

// benchController returns a controller whose n specs are stored and whose
// containers all run as desired, after one pass that recorded their
// statuses, so that every later pass has nothing to do.
func benchController(b *testing.B, ctx context.Context, n int) (*Controller, *countingStore, *fakeRuntime) {
	b.Helper()
	s, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	rt := newFakeRuntime(time.Now)
	for i := range n {
		name := fmt.Sprintf("spec-%05d", i)
		sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
			Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"sleep"}}}
		sp.Default()
		hash := sp.Hash()
		err := s.PutSpec(store.Record{Spec: sp, Hash: hash, Source: store.Source{Kind: store.SourceFile, Path: "/specs/" + name + ".yaml"}})
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("%064x", i)
		rt.add(docker.Container{
			ID: id, Name: ContainerName(name), Image: sp.Spec.Image, State: "running",
			Labels: map[string]string{docker.LabelManaged: "true", docker.LabelSpec: name, docker.LabelSpecHash: hash,
				docker.LabelInstance: "bench", labelGrace: "10s", labelStopSignal: "SIGTERM"},
		})
	}
	st := &countingStore{Store: s}
	c := New(rt, st, nil, Options{Instance: "bench"})
	// As in Run: the reconciles open a Wait per running container.
	c.runCtx = ctx
	benchPass(b, ctx, c, n, nil)
	return c, st, rt
}

// benchPass runs one resync pass and appends every reconcile's latency.
func benchPass(b *testing.B, ctx context.Context, c *Controller, n int, lat []time.Duration) []time.Duration {
	if err := c.resync(ctx); err != nil {
		b.Fatal(err)
	}
	if got := c.queue.Len(); got != n {
		b.Fatalf("resync queued %d names, want %d", got, n)
	}
	took := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	// Exactly n names are queued and nothing else adds any, so n calls of
	// processNext drain the queue without ever blocking.
	for range c.opts.Workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				t := time.Now()
				c.processNext(ctx)
				took[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	if got := c.queue.Len(); got != 0 {
		b.Fatalf("%d names left in the queue after a pass", got)
	}
	return append(lat, took...)
}

// countingStore is the state file with its commits counted (each one
// bbolt write transaction): a no-op pass must make none.
type countingStore struct {
	*store.Store
	commits atomic.Int64
}

func (s *countingStore) Commit(c store.Change) ([]model.Event, bool, error) {
	s.commits.Add(1)
	return s.Store.Commit(c)
}
