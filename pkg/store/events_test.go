package store

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
)

func warn(spec, reason, msg string) model.Event {
	return model.Event{Type: model.EventWarning, Spec: spec, Reason: reason, Message: msg}
}

func TestEventAggregation(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the commit
		ev    model.Event
	}
	backoff := warn("web", "BackOff", "restarting failed container")
	tests := []struct {
		name       string
		steps      []step
		wantCounts []int // stored events, oldest first
	}{
		{"repeat folds into one", []step{{0, backoff}, {time.Minute, backoff}, {time.Minute, backoff}}, []int{3}},
		{"repeat at exactly 10 minutes folds", []step{{0, backoff}, {10 * time.Minute, backoff}}, []int{2}},
		{"repeat after 10 minutes is new", []step{{0, backoff}, {10*time.Minute + time.Second, backoff}}, []int{1, 1}},
		{"another message is new", []step{{0, backoff}, {0, warn("web", "BackOff", "other")}}, []int{1, 1}},
		{"another reason is new", []step{{0, backoff}, {0, warn("web", "Failed", backoff.Message)}}, []int{1, 1}},
		{"another type is new", []step{{0, backoff}, {0, model.Event{Type: model.EventNormal, Spec: "web", Reason: "BackOff", Message: backoff.Message}}}, []int{1, 1}},
		{"only the newest event of the spec folds", []step{{0, backoff}, {0, warn("web", "Started", "")}, {0, backoff}}, []int{1, 1, 1}},
		{"other specs do not interrupt", []step{{0, backoff}, {0, warn("db", "Started", "")}, {0, backoff}}, []int{1, 2}},
		{"same event of another spec is separate", []step{{0, backoff}, {0, warn("db", backoff.Reason, backoff.Message)}}, []int{1, 1}},
		{"agent events fold too", []step{{0, warn("", "DockerDown", "x")}, {0, warn("", "DockerDown", "x")}}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := openTest(t, Options{})
			start := clk.Now()
			var last model.Event
			for _, st := range tt.steps {
				clk.Advance(st.after)
				last = mustCommit(t, s, Change{Events: []model.Event{st.ev}})[0]
			}
			got, err := s.Events("", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var counts []int
			for _, ev := range got {
				counts = append(counts, ev.Count)
			}
			if fmt.Sprint(counts) != fmt.Sprint(tt.wantCounts) {
				t.Fatalf("counts = %v, want %v", counts, tt.wantCounts)
			}
			newest := got[len(got)-1]
			if newest != last {
				t.Errorf("Commit returned %+v, stored %+v", last, newest)
			}
			if newest.Seq != uint64(len(tt.steps)) {
				t.Errorf("newest Seq = %d, want %d: every commit gets a new Seq", newest.Seq, len(tt.steps))
			}
			if newest.LastTime != clk.Now() {
				t.Errorf("LastTime = %v, want %v", newest.LastTime, clk.Now())
			}
			if newest.Count > 1 && newest.FirstTime != start {
				t.Errorf("folded FirstTime = %v, want the first occurrence %v", newest.FirstTime, start)
			}
		})
	}
}

func TestEventsQuery(t *testing.T) {
	s, _ := openTest(t, Options{})
	var evs []model.Event
	for i := range 6 {
		spec := []string{"web", "db", ""}[i%3]
		evs = append(evs, model.Event{Spec: spec, Reason: "R", Message: fmt.Sprint(i)})
	}
	stored := mustCommit(t, s, Change{Events: evs})
	for i, ev := range stored {
		if ev.Seq != uint64(i+1) || ev.Type != model.EventNormal || ev.Count != 1 || ev.FirstTime.IsZero() {
			t.Errorf("stored[%d] = %+v: want Seq %d, type Normal, count 1, times set", i, ev, i+1)
		}
	}
	tests := []struct {
		spec     string
		afterSeq uint64
		limit    int
		wantSeqs []uint64
	}{
		{"", 0, 0, []uint64{1, 2, 3, 4, 5, 6}},
		{"", 4, 0, []uint64{5, 6}},
		{"", 0, 2, []uint64{1, 2}},
		{"", 6, 0, nil},
		{"", math.MaxUint64, 0, nil},
		{"web", 0, 0, []uint64{1, 4}},
		{"web", 1, 0, []uint64{4}},
		{"db", 0, 1, []uint64{2}},
		{"nope", 0, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.Events(tt.spec, tt.afterSeq, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, ev := range got {
			seqs = append(seqs, ev.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) {
			t.Errorf("Events(%q, %d, %d) = %v, want %v", tt.spec, tt.afterSeq, tt.limit, seqs, tt.wantSeqs)
		}
	}
}

func TestEventRetention(t *testing.T) {
	s, _ := openTest(t, Options{MaxEvents: 5})
	mustCommit(t, s, Change{Events: []model.Event{warn("old", "Failed", "x")}})
	for i := range 9 {
		mustCommit(t, s, Change{Events: []model.Event{warn("web", "Started", fmt.Sprint(i))}})
	}
	got, err := s.Events("", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Seq != 6 || got[4].Seq != 10 {
		t.Errorf("kept %d events from Seq %d: want the newest 5, Seq 6..10", len(got), got[0].Seq)
	}
	// The dropped event no longer folds a repeat: it starts afresh.
	ev := mustCommit(t, s, Change{Events: []model.Event{warn("old", "Failed", "x")}})[0]
	if ev.Count != 1 || ev.Seq != 11 {
		t.Errorf("repeat of a dropped event = %+v, want a new event with count 1", ev)
	}
	if _, _, events, _, _ := s.Stats(); events != 5 {
		t.Errorf("Stats events = %d, want 5", events)
	}
}

func TestEventsInOneCommitFold(t *testing.T) {
	s, _ := openTest(t, Options{})
	e := warn("web", "BackOff", "m")
	stored := mustCommit(t, s, Change{Events: []model.Event{e, e}})
	if len(stored) != 2 || stored[1].Count != 2 || stored[1].Seq != 2 {
		t.Fatalf("stored = %+v", stored)
	}
	if got, _ := s.Events("", 0, 0); len(got) != 1 || got[0] != stored[1] {
		t.Errorf("Events = %+v, want the folded one only", got)
	}
}
