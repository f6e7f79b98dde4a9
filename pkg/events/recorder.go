// Package events records Kubernetes-style events through the store and
// fans them out to followers once they are committed.
package events

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/store"
)

// defaultBuffer is a follower's channel buffer when Subscribe is given none.
const defaultBuffer = 64

// Recorder commits events to the store and fans committed events out to
// followers. Fan-out never blocks: a follower that falls a buffer behind is
// dropped (its channel closed) and catches up from the store with
// store.Events after its last Seq, so it loses nothing.
type Recorder struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	subs    map[*follower]struct{}
	dropped atomic.Uint64
}

type follower struct {
	spec string
	ch   chan model.Event
}

// NewRecorder returns a Recorder writing to st.
func NewRecorder(st *store.Store, log *slog.Logger) *Recorder {
	return &Recorder{st: st, log: log, subs: make(map[*follower]struct{})}
}

// Event commits one event alone, then publishes it. A failed commit is
// logged: an event is never worth failing the work it describes.
func (r *Recorder) Event(spec string, typ model.EventType, reason, format string, args ...any) {
	ev := model.Event{Spec: spec, Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)}
	stored, _, err := r.st.Commit(store.Change{Events: []model.Event{ev}})
	if err != nil {
		r.log.Error("event not recorded", "spec", spec, "type", typ, "reason", reason, "message", ev.Message, "err", err)
		return
	}
	r.Publish(stored...)
}

// Publish fans committed events out to the followers. Whoever committed
// them calls it after store.Commit returns.
func (r *Recorder) Publish(evs ...model.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		r.log.Debug("event", "spec", ev.Spec, "type", ev.Type, "reason", ev.Reason,
			"message", ev.Message, "count", ev.Count, "seq", ev.Seq)
		for f := range r.subs {
			if f.spec != "" && f.spec != ev.Spec {
				continue
			}
			select {
			case f.ch <- ev:
			default:
				r.unsubscribe(f)
				r.dropped.Add(1)
			}
		}
	}
}

// Subscribe follows the events of one spec, or all with spec == "", from
// now on. The channel closes when cancel is called or when the follower
// falls buffer events behind (then resume from store.Events). buffer <= 0
// means 64.
func (r *Recorder) Subscribe(spec string, buffer int) (<-chan model.Event, func()) {
	if buffer <= 0 {
		buffer = defaultBuffer
	}
	f := &follower{spec: spec, ch: make(chan model.Event, buffer)}
	r.mu.Lock()
	r.subs[f] = struct{}{}
	r.mu.Unlock()
	return f.ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.unsubscribe(f)
	}
}

// Dropped counts followers dropped for falling behind.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// unsubscribe closes f's channel once; r.mu is held.
func (r *Recorder) unsubscribe(f *follower) {
	if _, ok := r.subs[f]; ok {
		delete(r.subs, f)
		close(f.ch)
	}
}
