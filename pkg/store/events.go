package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/model"
)

// aggregateWindow is how close a repeat must follow the spec's newest event
// to be folded into it, as Kubernetes' event aggregator does.
const aggregateWindow = 10 * time.Minute

// Events returns up to limit events with Seq > afterSeq, oldest first, for
// one spec or for all (spec == ""). limit <= 0 means all kept.
func (s *Store) Events(spec string, afterSeq uint64, limit int) ([]model.Event, error) {
	var out []model.Event
	if afterSeq == math.MaxUint64 {
		return out, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, raw := c.Seek(seqKey(afterSeq + 1)); k != nil && (limit <= 0 || len(out) < limit); k, raw = c.Next() {
			var ev model.Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			if spec == "" || ev.Spec == spec {
				out = append(out, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

// putEvent stores ev with a new Seq. A repeat of the spec's newest event
// within aggregateWindow replaces it with a higher Count, so a crash loop
// makes one event, and followers still see the new Seq.
func putEvent(tx *bolt.Tx, ev model.Event, now time.Time) (model.Event, error) {
	if ev.Type == "" {
		ev.Type = model.EventNormal
	}
	if ev.LastTime.IsZero() {
		ev.LastTime = now
	}
	if ev.FirstTime.IsZero() {
		ev.FirstTime = ev.LastTime
	}
	ev.FirstTime, ev.LastTime = ev.FirstTime.UTC(), ev.LastTime.UTC()
	ev.Count = max(ev.Count, 1)

	events, latest := tx.Bucket(bucketEvents), tx.Bucket(bucketEventLatest)
	if prevKey := latest.Get(latestKey(ev.Spec)); prevKey != nil {
		var prev model.Event
		found, err := get(events, prevKey, &prev)
		if err != nil {
			return ev, err
		}
		if found && repeats(prev, ev) {
			ev.Count += prev.Count
			ev.FirstTime = prev.FirstTime
			if ev.LastTime.Before(prev.LastTime) {
				ev.LastTime = prev.LastTime
			}
			if err := events.Delete(prevKey); err != nil {
				return ev, err
			}
		}
	}
	seq, err := events.NextSequence()
	if err != nil {
		return ev, err
	}
	ev.Seq = seq
	if err := put(events, seqKey(seq), ev); err != nil {
		return ev, err
	}
	return ev, latest.Put(latestKey(ev.Spec), seqKey(seq))
}

func repeats(prev, ev model.Event) bool {
	d := ev.LastTime.Sub(prev.LastTime)
	return prev.Type == ev.Type && prev.Reason == ev.Reason && prev.Message == ev.Message &&
		d >= -aggregateWindow && d <= aggregateWindow
}

// trimEvents drops the oldest events beyond keep, with the aggregation
// index entries that point at them.
func trimEvents(tx *bolt.Tx, keep int) error {
	latest := tx.Bucket(bucketEventLatest)
	return dropOldest(tx.Bucket(bucketEvents), keep, func(k, raw []byte) error {
		var ev model.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode event %x: %w", k, err)
		}
		if lk := latestKey(ev.Spec); bytes.Equal(latest.Get(lk), k) {
			return latest.Delete(lk)
		}
		return nil
	})
}
