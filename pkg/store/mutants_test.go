package store

// Tests written against mutants that lived (`make mutate`, gremlins):
// each asserts what a caller of the store sees.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
)

// A repeat whose own time lies up to aggregateWindow before the newest
// event's still folds into it (events replayed late), and keeps the
// later LastTime; one further back is an event of its own.
func TestRepeatStampedBeforeTheNewestFoldsWithinTheWindow(t *testing.T) {
	for _, tt := range []struct {
		back      time.Duration
		wantCount []int
	}{
		{aggregateWindow, []int{2}},
		{aggregateWindow + time.Second, []int{1, 1}},
	} {
		t.Run(tt.back.String(), func(t *testing.T) {
			s, clk := openTest(t, Options{})
			ev := warn("web", "BackOff", "restarting failed container")
			mustCommit(t, s, Change{Events: []model.Event{ev}})
			late := ev
			late.LastTime = clk.Now().Add(-tt.back)
			mustCommit(t, s, Change{Events: []model.Event{late}})
			got, err := s.Events("web", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var counts []int
			for _, e := range got {
				counts = append(counts, e.Count)
			}
			if fmt.Sprint(counts) != fmt.Sprint(tt.wantCount) {
				t.Fatalf("a repeat stamped %s before the newest: counts %v, want %v", tt.back, counts, tt.wantCount)
			}
			if len(got) == 1 && !got[0].LastTime.Equal(clk.Now()) {
				t.Errorf("folded LastTime = %v, want the later %v", got[0].LastTime, clk.Now())
			}
		})
	}
}

// One commit can pass a bound by many (a burst of events; a bound lowered
// across a restart): everything beyond it goes at once.
func TestBoundsDropEverythingBeyondThemAtOnce(t *testing.T) {
	t.Run("events", func(t *testing.T) {
		s, _ := openTest(t, Options{MaxEvents: 3})
		var evs []model.Event
		for i := range 7 {
			evs = append(evs, warn("web", "Started", fmt.Sprint(i)))
		}
		mustCommit(t, s, Change{Events: evs})
		got, err := s.Events("", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 7 {
			t.Fatalf("kept %d events (%+v), want the newest 3, Seq 5..7", len(got), got)
		}
	})
	t.Run("exits, bound lowered on reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		s, err := Open(path, Options{ExitsPerSpec: 10})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			mustCommit(t, s, Change{Exit: exit("web", fmt.Sprintf("c%d", i))})
		}
		s.Close()
		s, err = Open(path, Options{ExitsPerSpec: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustCommit(t, s, Change{Exit: exit("web", "c6")})
		got, err := s.Exits("web", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ContainerID != "c6" || got[1].ContainerID != "c5" {
			t.Fatalf("ledger holds %d exits (%+v), want c6, c5", len(got), got)
		}
		// The dropped runs' index entries went with them: c0 is new again.
		if _, added, err := s.Commit(Change{Exit: exit("web", "c0")}); err != nil || !added {
			t.Errorf("exit of a dropped run: added %v, %v; want it recorded again", added, err)
		}
	})
}

// A reopen must not enter the deleted specs' ledgers a second time: each
// would count twice towards GoneLedgers, and a ledger within the bound
// would go.
func TestReopenKeepsTheDeletedSpecsBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	opts := Options{GoneLedgers: 2}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	del := func(name string) {
		t.Helper()
		mustCommit(t, s, Change{Exit: exit(name, "c-"+name)})
		if err := s.DeleteState(name); err != nil {
			t.Fatal(err)
		}
	}
	del("a")
	del("b")
	s.Close()
	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	del("c")
	for name, kept := range map[string]bool{"a": false, "b": true, "c": true} {
		ex, err := s.Exits(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if (len(ex) == 1) != kept {
			t.Errorf("%s keeps %d exits; want kept=%v (the 2 most recently deleted specs keep theirs)", name, len(ex), kept)
		}
	}
}

// An empty file (created ahead by an operator or an installer) is a new
// state file, not a corrupt one.
func TestOpenEmptyFileStartsAfresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	defer s.Close()
	if err := s.PutSpec(record("web", apiSource())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSpec("web"); err != nil {
		t.Errorf("GetSpec: %v", err)
	}
}

// A file whole in length whose pages do not add up (one page neither in
// use nor free) is refused on open: every page is checked, not only the
// length, up to and including maxCheckBytes (a sparse file of exactly
// that size costs no disk and no reading: only used pages are checked).
func TestOpenChecksEveryPage(t *testing.T) {
	for name, size := range map[string]int64{"as written": 0, "of maxCheckBytes": maxCheckBytes} {
		t.Run(name, func(t *testing.T) { openWithAPageAstray(t, size) })
	}
}

func openWithAPageAstray(t *testing.T, size int64) {
	path, _ := filledFile(t, 60)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The newer meta page (by txid) names the freelist page; dropping the
	// last id from that list leaves a page that is neither.
	page := int(binary.LittleEndian.Uint32(data[16+8:]))
	meta := 0
	if binary.LittleEndian.Uint64(data[page+64:]) > binary.LittleEndian.Uint64(data[64:]) {
		meta = page
	}
	fl := int(binary.LittleEndian.Uint64(data[meta+48:])) * page
	count := binary.LittleEndian.Uint16(data[fl+10:])
	if count == 0 || count == 0xffff {
		t.Fatalf("setup: the freelist holds %d ids; want a few", count)
	}
	binary.LittleEndian.PutUint16(data[fl+10:], count-1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if size > 0 {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("a file with a page neither in use nor free opened")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
}

// RequestRestart writes only the request: definition, hash and source
// stay, and a new definition put afterwards keeps the request.
func TestRequestRestart(t *testing.T) {
	s, clk := openTest(t, Options{})
	if _, err := s.RequestRestart("web", clk.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("restart of a missing spec = %v, want ErrNotFound", err)
	}
	if err := s.PutSpec(record("web", fileSource("/specs/web.yaml"))); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	got, err := s.RequestRestart("web", at)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RestartedAt.Equal(at) || got.RestartedAt.Location() != time.UTC {
		t.Errorf("RestartedAt = %v, want %v in UTC", got.RestartedAt, at)
	}
	stored, err := s.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if !stored.RestartedAt.Equal(at) || stored.Source != fileSource("/specs/web.yaml") || stored.Hash != "h-web" {
		t.Errorf("stored after a restart request: %+v", stored)
	}
	next := record("web", fileSource("/specs/web.yaml"))
	next.Hash = "h-web-2"
	if err := s.PutSpec(next); err != nil {
		t.Fatal(err)
	}
	if stored, _ := s.GetSpec("web"); !stored.RestartedAt.Equal(at) || stored.Hash != "h-web-2" {
		t.Errorf("a new definition after the request: RestartedAt %v, hash %s; want the request kept", stored.RestartedAt, stored.Hash)
	}
}

// The spec cache's promise (a no-op resync costs no decoding and no
// transaction): a spec read again with no write in between is served
// from memory, also after writes that left it alone or changed it
// without PutSpec. bbolt's TxN counts the read transactions opened.
func TestSpecReadsWithoutAWriteBetweenOpenNoTransaction(t *testing.T) {
	s, clk := openTest(t, Options{})
	for _, n := range []string{"a", "b"} {
		if err := s.PutSpec(record(n, apiSource())); err != nil {
			t.Fatal(err)
		}
	}
	reads := func() int { return s.db.Stats().TxN }
	twice := func(what string, read func() error) {
		t.Helper()
		if err := read(); err != nil {
			t.Fatal(err)
		}
		before := reads()
		if err := read(); err != nil {
			t.Fatal(err)
		}
		if n := reads() - before; n != 0 {
			t.Errorf("%s read again with no write between: %d transactions, want none", what, n)
		}
	}
	list := func() error { _, err := s.ListSpecs(); return err }
	get := func() error { _, err := s.GetSpec("a"); return err }

	// Positive control: the first read after a write does read the file.
	before := reads()
	if err := list(); err != nil {
		t.Fatal(err)
	}
	if reads() == before {
		t.Fatal("ListSpecs after a write opened no transaction: TxN does not count reads")
	}
	twice("ListSpecs", list)
	mustCommit(t, s, Change{Status: &model.Status{Name: "a", Phase: model.PhaseRunning}})
	twice("ListSpecs after a status write", list)
	mustCommit(t, s, Change{Status: &model.Status{Name: "b", Phase: model.PhaseRunning}})
	twice("GetSpec after a status write", get)
	if _, err := s.RequestRestart("a", clk.Now()); err != nil {
		t.Fatal(err)
	}
	twice("GetSpec after a restart request", get)
	if r, _ := s.GetSpec("a"); !r.RestartedAt.Equal(clk.Now()) {
		t.Errorf("GetSpec after a restart request: RestartedAt %v, want %v", r.RestartedAt, clk.Now())
	}
}

// With no LockTimeout a second agent on the file gives up after the
// default 2 s with ErrLocked; it does not wait for ever.
func TestOpenLockedGivesUpAfterTheDefaultTimeout(t *testing.T) {
	first, _ := openTest(t, Options{})
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		s, err := Open(first.Path(), Options{})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open of a locked file = %v, want ErrLocked", err)
		}
		if !strings.Contains(err.Error(), "no lock after 2s") {
			t.Errorf("error %q does not name the default 2s", err)
		}
		// bbolt polls the lock: it may give up a poll early.
		if elapsed := time.Since(start); elapsed < time.Second {
			t.Errorf("gave up after %s, well before the default 2s", elapsed)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second Open of a locked file still waiting after 30s: no default lock timeout")
	}
}

// With no LogTailBytes an exit keeps the last 8 KiB of its output, in
// the ledger and in the status's LastExit.
func TestDefaultLogTailIs8KiB(t *testing.T) {
	s, _ := openTest(t, Options{})
	e := exit("web", "c1")
	e.LogTail = strings.Repeat("early output\n", 2000) + "panic: the reason\n"
	mustCommit(t, s, Change{Status: &model.Status{Name: "web", LastExit: e}, Exit: e})
	got, err := s.Exits("web", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Exits = %v, %v", got, err)
	}
	st, err := s.GetStatus("web")
	if err != nil {
		t.Fatal(err)
	}
	for what, tail := range map[string]string{"ledger": got[0].LogTail, "status": st.LastExit.LogTail} {
		if len(tail) != 8<<10 || !strings.HasSuffix(tail, "panic: the reason\n") {
			t.Errorf("%s LogTail is %d bytes; want the last 8 KiB, ending with the panic", what, len(tail))
		}
	}
}
