package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
)

func TestPutSpec(t *testing.T) {
	noName := record("", apiSource())
	tests := []struct {
		name     string
		existing *Record
		put      Record
		wantErr  error  // matched with errors.Is
		wantText string // in the error, when one is expected
	}{
		{name: "new from api", put: record("web", apiSource())},
		{name: "new from file", put: record("web", fileSource("/specs/web.yaml"))},
		{name: "api replaces api", existing: ptr(record("web", apiSource())), put: record("web", apiSource())},
		{name: "file replaces file", existing: ptr(record("web", fileSource("/specs/a.yaml"))), put: record("web", fileSource("/specs/b.yaml"))},
		{name: "file takes over api", existing: ptr(record("web", apiSource())), put: record("web", fileSource("/specs/web.yaml"))},
		{name: "api over file is a conflict", existing: ptr(record("web", fileSource("/specs/web.yaml"))), put: record("web", apiSource()),
			wantErr: ErrConflict, wantText: `spec "web" is managed by file /specs/web.yaml`},
		{name: "no spec", put: Record{Source: apiSource()}, wantText: "no spec name"},
		{name: "no name", put: noName, wantText: "no spec name"},
		{name: "unknown source", put: record("web", Source{Kind: "git"}), wantText: `unknown source kind "git"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := openTest(t, Options{})
			if tt.existing != nil {
				if err := s.PutSpec(*tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(time.Minute)
			err := s.PutSpec(tt.put)
			if tt.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("PutSpec error = %v, want %q wrapping %v", err, tt.wantText, tt.wantErr)
				}
				if tt.existing != nil {
					if got, _ := s.GetSpec(tt.existing.Spec.Metadata.Name); got.Source != tt.existing.Source {
						t.Errorf("refused put changed the stored source to %+v", got.Source)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("PutSpec: %v", err)
			}
			got, err := s.GetSpec(tt.put.Spec.Metadata.Name)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.put
			want.UpdatedAt = clk.Now()
			if got.Arrival == 0 {
				t.Errorf("GetSpec: no arrival number")
			}
			want.Arrival = got.Arrival // arrival_test.go checks its order
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GetSpec = %+v, want %+v", got, want)
			}
		})
	}
}

func TestGetSpecMissing(t *testing.T) {
	s, _ := openTest(t, Options{})
	_, err := s.GetSpec("nope")
	if !errors.Is(err, ErrNotFound) || err.Error() != `spec "nope": not found` {
		t.Errorf("GetSpec(missing) = %v, want `spec \"nope\": not found` wrapping ErrNotFound", err)
	}
}

func TestListSpecsSortedByName(t *testing.T) {
	s, _ := openTest(t, Options{})
	if got, err := s.ListSpecs(); err != nil || len(got) != 0 {
		t.Fatalf("ListSpecs on an empty store = %v, %v", got, err)
	}
	for _, n := range []string{"web", "api", "db", "cache"} {
		if err := s.PutSpec(record(n, apiSource())); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListSpecs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Spec.Metadata.Name)
	}
	if want := []string{"api", "cache", "db", "web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListSpecs names = %v, want %v", names, want)
	}
}

func TestDeleteSpec(t *testing.T) {
	tests := []struct {
		name       string
		putSpec    bool
		putStatus  bool
		wantErr    error
		wantExitsN int
	}{
		{name: "spec with status, history and exits", putSpec: true, putStatus: true, wantExitsN: 2},
		{name: "spec alone", putSpec: true},
		{name: "missing", wantErr: ErrNotFound},
		{name: "status without spec: not found", putStatus: true, wantErr: ErrNotFound, wantExitsN: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{})
			if tt.putSpec {
				if err := s.PutSpec(record("web", apiSource())); err != nil {
					t.Fatal(err)
				}
			}
			if tt.putStatus {
				mustCommit(t, s, Change{
					Status:  &model.Status{Name: "web", Phase: model.PhaseRunning},
					History: &model.History{SpecHash: "h", Attempts: 3},
					Exit:    exit("web", "c1"),
				})
				mustCommit(t, s, Change{Exit: exit("web", "c2")})
			}
			if err := s.PutSpec(record("other", apiSource())); err != nil {
				t.Fatal(err)
			}

			err := s.DeleteSpec("web")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DeleteSpec = %v, want %v", err, tt.wantErr)
			}
			if _, err := s.GetSpec("web"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetSpec after delete = %v, want ErrNotFound", err)
			}
			// Status and history outlive the spec until DeleteState: the
			// controller still has a container to stop and record.
			if _, err := s.GetStatus("web"); tt.putStatus && err != nil {
				t.Errorf("GetStatus after delete = %v, want it kept", err)
			}
			if h, err := s.GetHistory("web"); err != nil || (tt.putStatus && h.Attempts != 3) {
				t.Errorf("GetHistory after delete = %+v, %v, want it kept", h, err)
			}
			if err := s.DeleteState("web"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetStatus("web"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetStatus after DeleteState = %v, want ErrNotFound", err)
			}
			if h, err := s.GetHistory("web"); err != nil || h != (model.History{}) {
				t.Errorf("GetHistory after DeleteState = %+v, %v, want zero", h, err)
			}
			if exits, err := s.Exits("web", 0); err != nil || len(exits) != tt.wantExitsN {
				t.Errorf("Exits after delete = %d, %v, want %d kept", len(exits), err, tt.wantExitsN)
			}
			if _, err := s.GetSpec("other"); err != nil {
				t.Errorf("DeleteSpec touched another spec: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
