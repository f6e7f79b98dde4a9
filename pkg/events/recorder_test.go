package events

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/store"
)

// deadline bounds waits for work that finishes at once unless it blocks.
const deadline = 5 * time.Second

func newRecorder(t *testing.T) (*Recorder, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return NewRecorder(st, slog.New(slog.NewTextHandler(io.Discard, nil))), st
}

func ev(seq uint64, spec string) model.Event {
	return model.Event{Seq: seq, Spec: spec, Type: model.EventNormal, Reason: "Started", Count: 1}
}

// drain reads what ch holds until it is closed or empty.
func drain(ch <-chan model.Event) (got []model.Event, closed bool) {
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got, true
			}
			got = append(got, e)
		default:
			return got, false
		}
	}
}

func seqs(evs []model.Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestSubscribeFiltersBySpec(t *testing.T) {
	r, _ := newRecorder(t)
	tests := []struct {
		spec string
		want []uint64
	}{
		{"", []uint64{1, 2, 3, 4}},
		{"web", []uint64{1, 3}},
		{"db", []uint64{2}},
		{"none", nil},
	}
	chans := make([]<-chan model.Event, len(tests))
	for i, tt := range tests {
		ch, cancel := r.Subscribe(tt.spec, 10)
		t.Cleanup(cancel)
		chans[i] = ch
	}
	r.Publish(ev(1, "web"), ev(2, "db"))
	r.Publish(ev(3, "web"), ev(4, ""))
	for i, tt := range tests {
		got, closed := drain(chans[i])
		if closed || fmt.Sprint(seqs(got)) != fmt.Sprint(tt.want) {
			t.Errorf("follower of %q got %v (closed %v), want %v", tt.spec, seqs(got), closed, tt.want)
		}
	}
}

func TestEventCommitsThenPublishes(t *testing.T) {
	r, st := newRecorder(t)
	ch, cancel := r.Subscribe("web", 0)
	defer cancel()
	r.Event("web", model.EventWarning, "BackOff", "restarting %s in %s", "web", "10s")
	r.Event("web", model.EventWarning, "BackOff", "restarting %s in %s", "web", "10s")

	got, _ := drain(ch)
	stored, err := st.Events("web", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(stored) != 1 || got[1] != stored[0] {
		t.Fatalf("published %+v, stored %+v: want the stored event last", got, stored)
	}
	if e := got[1]; e.Message != "restarting web in 10s" || e.Count != 2 || e.Seq != 2 {
		t.Errorf("published %+v, want the message formatted, folded to count 2, Seq 2", e)
	}
}

func TestEventCommitFailureIsLoggedNotPublished(t *testing.T) {
	r, st := newRecorder(t)
	ch, cancel := r.Subscribe("", 1)
	defer cancel()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r.Event("web", model.EventNormal, "Started", "x")
	if got, _ := drain(ch); len(got) != 0 {
		t.Errorf("published %+v after a failed commit", got)
	}
}

// publishBudget bounds how long n events take to commit and publish on
// this machine: measured (k commits to a store of its own, on the same
// disk) and four times that, at least deadline. Each event is an fsync'd
// commit, which a loaded machine makes slow: a picked bound failed a run
// at load average 20, while a Publish that blocks never ends at all.
func publishBudget(t *testing.T, n int) time.Duration {
	t.Helper()
	probe, _ := newRecorder(t)
	const k = 20
	start := time.Now()
	for i := range k {
		probe.Event("probe", model.EventNormal, "Tick", "%d", i)
	}
	return max(deadline, 4*time.Duration(n)*time.Since(start)/k)
}

// TestPublishNeverBlocks: a follower that never reads is dropped, the
// others get everything, and the dropped one resumes from the store.
func TestPublishNeverBlocks(t *testing.T) {
	const n = 500
	budget := publishBudget(t, n)
	r, st := newRecorder(t)
	stuck, cancelStuck := r.Subscribe("", 3)
	defer cancelStuck()
	fast, cancelFast := r.Subscribe("", 8)
	defer cancelFast()

	var received []model.Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for e := range fast {
			received = append(received, e)
			if len(received) == n {
				return
			}
		}
	}()
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range n {
			r.Event("web", model.EventNormal, "Tick", "%d", i)
		}
	}()
	select {
	case <-published:
	case <-time.After(budget):
		t.Fatalf("Publish blocked on a follower that does not read (%d events not published within %s)", n, budget)
	}
	select {
	case <-readerDone:
	case <-time.After(budget):
		t.Fatalf("reading follower got %d of %d events", len(received), n)
	}
	if r.Dropped() < 1 {
		t.Errorf("Dropped() = %d, want the stuck follower counted", r.Dropped())
	}

	// The stuck follower holds its buffer, then sees its channel closed ...
	got, closed := drain(stuck)
	if !closed || len(got) != 3 {
		t.Fatalf("stuck follower: %d events, closed %v; want its 3 buffered, then closed", len(got), closed)
	}
	// ... and loses nothing by resuming from the store after its last Seq.
	rest, err := st.Events("", got[len(got)-1].Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := append(got, rest...)
	if len(all) != n || all[0].Seq != 1 || all[n-1].Seq != n {
		t.Errorf("resumed follower saw %d events, Seq %d..%d; want %d, 1..%d", len(all), all[0].Seq, all[len(all)-1].Seq, n, n)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("gap after resume: Seq %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
}

func TestCancel(t *testing.T) {
	r, _ := newRecorder(t)
	ch, cancel := r.Subscribe("", 1)
	cancel()
	cancel() // twice is harmless
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	r.Publish(ev(1, "web")) // must not send on the closed channel

	// A follower dropped for lagging can still be cancelled.
	ch, cancel = r.Subscribe("", 1)
	r.Publish(ev(2, "web"), ev(3, "web"))
	cancel()
	if got, closed := drain(ch); !closed || len(got) != 1 {
		t.Errorf("dropped follower: %d events, closed %v", len(got), closed)
	}
}

// TestConcurrentUse runs under -race: publishers, followers joining and
// leaving, and readers at once.
func TestConcurrentUse(t *testing.T) {
	r, _ := newRecorder(t)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r.Publish(ev(uint64(p*1000+i), fmt.Sprint("s", i%3)))
			}
		})
	}
	for f := range 4 {
		wg.Go(func() {
			for range 50 {
				ch, cancel := r.Subscribe(fmt.Sprint("s", f%3), 4)
				drain(ch)
				cancel()
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			r.Event("s0", model.EventNormal, "Started", "%d", i)
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * deadline):
		t.Fatal("concurrent publishers and followers did not finish")
	}
}
