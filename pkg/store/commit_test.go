package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
)

func TestCommit(t *testing.T) {
	t0 := newClock().Now()
	tests := []struct {
		name        string
		change      Change
		wantErr     string
		wantStatus  *model.Status // under "web"
		wantHistory model.History // under "web"
		wantExit    bool
		wantEvents  int
	}{
		{name: "empty change", change: Change{}},
		{
			name:       "status gets the clock when UpdatedAt is zero",
			change:     Change{Status: &model.Status{Name: "web", Phase: model.PhaseRunning}},
			wantStatus: &model.Status{Name: "web", Phase: model.PhaseRunning, UpdatedAt: t0},
		},
		{
			name:       "status keeps its own UpdatedAt",
			change:     Change{Status: &model.Status{Name: "web", UpdatedAt: t0.Add(-time.Hour)}},
			wantStatus: &model.Status{Name: "web", UpdatedAt: t0.Add(-time.Hour)},
		},
		{
			name: "history under the status name, with exit and events",
			change: Change{
				Status:  &model.Status{Name: "web", Phase: model.PhaseBackoff},
				History: &model.History{SpecHash: "h", Attempts: 2},
				Exit:    exit("web", "c1"),
				Events:  []model.Event{{Type: model.EventWarning, Reason: "BackOff", Message: "m", Spec: "web"}},
			},
			wantStatus:  &model.Status{Name: "web", Phase: model.PhaseBackoff, UpdatedAt: t0},
			wantHistory: model.History{SpecHash: "h", Attempts: 2},
			wantExit:    true,
			wantEvents:  1,
		},
		{
			name:        "history under Name without status",
			change:      Change{Name: "web", History: &model.History{Restarts: 4}},
			wantHistory: model.History{Restarts: 4},
		},
		{
			name:    "name disagrees with status",
			change:  Change{Name: "db", Status: &model.Status{Name: "web"}},
			wantErr: `status of "web" given with name "db"`,
		},
		{name: "status without name", change: Change{Status: &model.Status{}}, wantErr: "status has no name"},
		{name: "history without name", change: Change{History: &model.History{}}, wantErr: "history has no name"},
		{
			name:    "exit without container id writes nothing",
			change:  Change{Status: &model.Status{Name: "web"}, Exit: exit("web", "")},
			wantErr: "exit needs a spec name and a container id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{})
			evs, added, err := s.Commit(tt.change)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Commit error = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if added != tt.wantExit || len(evs) != tt.wantEvents {
				t.Errorf("Commit = %d events, exitAdded %v; want %d, %v", len(evs), added, tt.wantEvents, tt.wantExit)
			}
			st, err := s.GetStatus("web")
			switch {
			case tt.wantStatus == nil && !errors.Is(err, ErrNotFound):
				t.Errorf("GetStatus = %+v, %v; want ErrNotFound", st, err)
			case tt.wantStatus != nil && (err != nil || !reflect.DeepEqual(st, *tt.wantStatus)):
				t.Errorf("GetStatus = %+v, %v; want %+v", st, err, *tt.wantStatus)
			}
			if h, err := s.GetHistory("web"); err != nil || h != tt.wantHistory {
				t.Errorf("GetHistory = %+v, %v; want %+v", h, err, tt.wantHistory)
			}
		})
	}
}

func TestGetStatusMissing(t *testing.T) {
	s, _ := openTest(t, Options{})
	if _, err := s.GetStatus("nope"); !errors.Is(err, ErrNotFound) || err.Error() != `status "nope": not found` {
		t.Errorf("GetStatus(missing) = %v", err)
	}
}

func TestListStatusSortedByName(t *testing.T) {
	s, _ := openTest(t, Options{})
	for _, n := range []string{"web", "api", "db"} {
		mustCommit(t, s, Change{Status: &model.Status{Name: n, Phase: model.PhasePending}})
	}
	got, err := s.ListStatus()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range got {
		names = append(names, st.Name)
	}
	if want := []string{"api", "db", "web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListStatus names = %v, want %v", names, want)
	}
}

func TestCommitBoundsLastExitLogTail(t *testing.T) {
	s, _ := openTest(t, Options{LogTailBytes: 10})
	last := exit("web", "c1")
	last.LogTail = "first line\nlast line\n"
	mustCommit(t, s, Change{Status: &model.Status{Name: "web", LastExit: last}})
	st, err := s.GetStatus("web")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastExit.LogTail != "last line\n" {
		t.Errorf("LastExit.LogTail = %q, want the last 10 bytes", st.LastExit.LogTail)
	}
	if last.LogTail != "first line\nlast line\n" {
		t.Error("Commit changed the caller's exit")
	}
}

// TestConcurrentCommit runs under -race: 8 writers and a reader.
func TestConcurrentCommit(t *testing.T) {
	const writers, each = 8, 25
	s, _ := openTest(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+1)
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("spec-%d", w)
			for i := range each {
				_, _, err := s.Commit(Change{
					Status:  &model.Status{Name: name, Restarts: i},
					History: &model.History{Restarts: i},
					Exit:    exit(name, fmt.Sprintf("c-%d", i)),
					Events:  []model.Event{{Spec: name, Reason: "Started", Message: fmt.Sprint(i)}},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range each {
			if _, err := s.Events("", 0, 0); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs, err := s.Events("", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != writers*each {
		t.Errorf("%d events stored, want %d", len(evs), writers*each)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("Seq not increasing: %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	for w := range writers {
		name := fmt.Sprintf("spec-%d", w)
		if st, err := s.GetStatus(name); err != nil || st.Restarts != each-1 {
			t.Errorf("status %s = %+v, %v; want the last write", name, st, err)
		}
		if exits, _ := s.Exits(name, 0); len(exits) != each {
			t.Errorf("%s has %d exits, want %d", name, len(exits), each)
		}
	}
}
