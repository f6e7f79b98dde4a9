package store

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestExits(t *testing.T) {
	s, _ := openTest(t, Options{ExitsPerSpec: 5})
	for i := range 8 {
		mustCommit(t, s, Change{Exit: exit("web", fmt.Sprintf("c%d", i))})
	}
	mustCommit(t, s, Change{Exit: exit("db", "d0")})
	tests := []struct {
		spec  string
		limit int
		want  []string
	}{
		{"web", 0, []string{"c7", "c6", "c5", "c4", "c3"}},
		{"web", -1, []string{"c7", "c6", "c5", "c4", "c3"}},
		{"web", 2, []string{"c7", "c6"}},
		{"web", 100, []string{"c7", "c6", "c5", "c4", "c3"}},
		{"db", 0, []string{"d0"}},
		{"never", 0, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s limit %d", tt.spec, tt.limit), func(t *testing.T) {
			got, err := s.Exits(tt.spec, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ContainerID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Errorf("Exits = %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestExitRecordedOncePerContainer(t *testing.T) {
	s, _ := openTest(t, Options{})
	first := exit("web", "c1")
	first.ExitCode = 3
	again := exit("web", "c1")
	again.ExitCode = 99 // the same exit seen through wait after the event
	restarted := exit("web", "c1")
	restarted.StartedAt = first.StartedAt.Add(time.Minute)
	for i, tt := range []struct {
		change    Change
		wantAdded bool
	}{
		{Change{Exit: first}, true},
		{Change{Exit: again}, false},
		{Change{Exit: restarted}, true}, // the same container run again in place
		{Change{Exit: exit("web", "c2")}, true},
		{Change{Exit: exit("db", "c1")}, true}, // another spec's ledger
	} {
		if _, added, err := s.Commit(tt.change); err != nil || added != tt.wantAdded {
			t.Errorf("commit %d: exitAdded = %v, %v; want %v", i, added, err, tt.wantAdded)
		}
	}
	got, err := s.Exits("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].ContainerID != "c1" || got[2].ExitCode != 3 {
		t.Errorf("Exits = %+v, want c2, c1 restarted, then c1 with its first exit code", got)
	}
}

func TestExitLogTailKeepsTheEnd(t *testing.T) {
	s, _ := openTest(t, Options{LogTailBytes: 8 << 10})
	e := exit("web", "c1")
	e.LogTail = strings.Repeat("early output\n", 2000) + "panic: the reason\n"
	mustCommit(t, s, Change{Exit: e})
	got, err := s.Exits("web", 1)
	if err != nil {
		t.Fatal(err)
	}
	tail := got[0].LogTail
	if len(tail) != 8<<10 || !strings.HasSuffix(tail, "panic: the reason\n") {
		t.Errorf("LogTail is %d bytes ending %q; want 8 KiB ending with the panic", len(tail), tail[len(tail)-20:])
	}
}

func TestTruncateTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789", 4, "6789"},
		{"ab€cd", 4, "cd"}, // no half rune at the start
		{"ab€cd", 5, "€cd"},
		{"€€", 2, ""},
		{"\xff\x80\x80\x80\x80ok", 6, "\x80ok"}, // not UTF-8: at most 3 bytes dropped
		{"\x80ok", 3, "\x80ok"},                 // binary output that fits is kept as it is
	}
	for _, tt := range tests {
		got := truncateTail(tt.in, tt.n)
		if got != tt.want || len(got) > tt.n {
			t.Errorf("truncateTail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestLedgerBound fills the ledgers far past their bound with 8 KiB log
// tails and reports the file size an operator would see.
func TestLedgerBound(t *testing.T) {
	s, _ := openTest(t, Options{})
	s.db.NoSync = true // the bound, not the disk, is under test
	tail := strings.Repeat("x", 8<<10)
	commit := func(spec string, i int) {
		e := exit(spec, fmt.Sprintf("%s-%d", spec, i))
		e.LogTail = tail
		mustCommit(t, s, Change{Exit: e})
	}
	for i := range 2_000 {
		commit("crashloop", i)
	}
	for spec := range 20 {
		for i := range 100 {
			commit(fmt.Sprintf("spec-%03d", spec), i)
		}
	}
	specs, exits, _, size, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if specs != 0 || exits != 21*50 {
		t.Errorf("Stats = %d specs, %d exits; want 0, %d", specs, exits, 21*50)
	}
	if got, _ := s.Exits("crashloop", 0); len(got) != 50 || got[0].ContainerID != "crashloop-1999" {
		t.Errorf("crashloop ledger holds %d exits, newest %q", len(got), got[0].ContainerID)
	}
	if size > 48<<20 {
		t.Errorf("file is %d MiB for 1,050 exits of 8 KiB", size>>20)
	}
	t.Logf("%d exits kept of 4,000 written; state file %.1f MiB", exits, float64(size)/(1<<20))
	fi, _ := os.Stat(s.Path())
	t.Logf("file on disk: %d bytes", fi.Size())
}
