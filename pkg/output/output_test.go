package output

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// frame is one log message as the daemon sends it with timestamps on.
type frame struct {
	stream string
	at     time.Time
	text   string // with its newline, or without for a piece of a long line
}

// mux builds what ContainerLogs returns for frames.
func mux(t *testing.T, fs []frame) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	out, errw := stdcopy.NewStdWriter(&buf, stdcopy.Stdout), stdcopy.NewStdWriter(&buf, stdcopy.Stderr)
	for _, f := range fs {
		w := out
		if f.stream == Stderr {
			w = errw
		}
		if _, err := w.Write([]byte(f.at.Format(time.RFC3339Nano) + " " + f.text)); err != nil {
			t.Fatal(err)
		}
	}
	return &buf
}

func newStore(t *testing.T, run, spec int64) *Store {
	t.Helper()
	s, err := New(Options{Dir: filepath.Join(t.TempDir(), "output"), MaxRunBytes: run, MaxSpecBytes: spec})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, s *Store, saved Saved) []Line {
	t.Helper()
	r, err := s.Open(saved)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Line
	for {
		l, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
}

func latest(t *testing.T, s *Store, spec string) Saved {
	t.Helper()
	sv, ok, err := s.Latest(spec)
	if err != nil || !ok {
		t.Fatalf("latest of %s: %v %v", spec, ok, err)
	}
	return sv
}

func TestSaveKeepsStreamsTimesAndOrder(t *testing.T) {
	s := newStore(t, 1<<20, 1<<20)
	fs := []frame{
		{Stdout, t0, "line 1\n"},
		{Stderr, t0.Add(1), "line 2\n"},
		{Stdout, t0.Add(2), "line 3\n"},
		{Stdout, t0.Add(3), "\n"},
		// A long line the daemon split: it keeps its first piece's time.
		{Stderr, t0.Add(4), "part a "},
		{Stdout, t0.Add(5), "line 5\n"},
		{Stderr, t0.Add(6), "part b\n"},
		{Stdout, t0.Add(7), "no newline at the end"},
	}
	run := Run{Spec: "job", ContainerID: strings.Repeat("ab", 32), StartedAt: t0}
	res, err := s.Save(run, mux(t, fs))
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != 7 || res.Truncated() {
		t.Errorf("result %s, want 7 lines, not truncated", res)
	}
	got := readAll(t, s, latest(t, s, "job"))
	want := []Line{
		{t0, Stdout, "line 1"}, {t0.Add(1), Stderr, "line 2"}, {t0.Add(2), Stdout, "line 3"},
		{t0.Add(3), Stdout, ""}, {t0.Add(5), Stdout, "line 5"}, {t0.Add(4), Stderr, "part a part b"},
		{t0.Add(7), Stdout, "no newline at the end"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("saved\n%v\nwant\n%v", got, want)
	}
	if !s.Has(run) {
		t.Error("Has says the saved run is not saved")
	}
	fi, err := os.Stat(filepath.Join(s.Dir(), "job"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("spec directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func lines(n int) []frame {
	fs := make([]frame, n)
	for i := range fs {
		st := Stdout
		if (i+1)%7 == 0 {
			st = Stderr
		}
		fs[i] = frame{st, t0.Add(time.Duration(i) * time.Millisecond), fmt.Sprintf("line %05d\n", i+1)} // 11 bytes
	}
	return fs
}

func TestSaveWithinBudgetKeepsEverything(t *testing.T) {
	s := newStore(t, 11*1000, 1<<20)
	res, err := s.Save(Run{Spec: "job", ContainerID: "c1", StartedAt: t0}, mux(t, lines(1000)))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, latest(t, s, "job"))
	if res.Truncated() || len(got) != 1000 || got[0].Text != "line 00001" || got[999].Text != "line 01000" {
		t.Fatalf("result %s, %d lines saved; want all 1000", res, len(got))
	}
	if got[6].Stream != Stderr || got[7].Stream != Stdout {
		t.Errorf("streams of lines 7, 8: %s %s", got[6].Stream, got[7].Stream)
	}
}

func TestSaveOverBudgetKeepsTheEndAndSaysSo(t *testing.T) {
	const budget = 11 * 100 // 100 lines; segments of 25
	s := newStore(t, budget, 1<<20)
	res, err := s.Save(Run{Spec: "job", ContainerID: "c1", StartedAt: t0}, mux(t, lines(1000)))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, latest(t, s, "job"))
	if !res.Truncated() {
		t.Fatalf("result %s: want truncated", res)
	}
	notice, kept := got[0], got[1:]
	if notice.Stream != Notice || !strings.Contains(notice.Text, "output truncated") ||
		!strings.Contains(notice.Text, fmt.Sprintf("first %d lines", res.DroppedLines)) {
		t.Errorf("first line %+v: want the truncation notice", notice)
	}
	var keptBytes int64
	for i, l := range kept {
		keptBytes += int64(len(l.Text) + 1)
		if want := fmt.Sprintf("line %05d", int(res.DroppedLines)+i+1); l.Text != want {
			t.Fatalf("kept line %d is %q, want %q", i, l.Text, want)
		}
	}
	if kept[len(kept)-1].Text != "line 01000" {
		t.Errorf("last line %q: the end must be kept", kept[len(kept)-1].Text)
	}
	if keptBytes > budget || keptBytes < budget*3/4 {
		t.Errorf("kept %d bytes of output; want between %d and %d", keptBytes, budget*3/4, budget)
	}
	if res.DroppedBytes+keptBytes != res.Bytes || res.Bytes != 11000 {
		t.Errorf("result %s, kept %d: the counts do not add up", res, keptBytes)
	}
	if !notice.Time.Equal(kept[0].Time) {
		t.Errorf("notice time %s, want the first kept line's %s", notice.Time, kept[0].Time)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "job")); len(ents) != 1 {
		t.Errorf("spec directory holds %d entries, want only the saved file", len(ents))
	}
}

func TestSaveCutsVeryLongLines(t *testing.T) {
	s := newStore(t, 1<<20, 1<<20)
	long := strings.Repeat("x", MaxLine+10)
	if _, err := s.Save(Run{Spec: "job", ContainerID: "c1", StartedAt: t0}, mux(t, []frame{{Stdout, t0, long + "\n"}})); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, latest(t, s, "job"))
	if len(got) != 2 || len(got[0].Text) != MaxLine || len(got[1].Text) != 10 {
		t.Fatalf("got %d lines; want a line of %d and one of 10", len(got), MaxLine)
	}
}

func TestEmptyRunIsSaved(t *testing.T) {
	s := newStore(t, 1<<20, 1<<20)
	run := Run{Spec: "job", ContainerID: "c1", StartedAt: t0}
	if _, err := s.Save(run, mux(t, nil)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, latest(t, s, "job")); len(got) != 0 || !s.Has(run) {
		t.Fatalf("empty run: %d lines, saved %v", len(got), s.Has(run))
	}
}

func TestSpecBudgetDropsOldestRunsFirst(t *testing.T) {
	s := newStore(t, 1<<20, 1) // every run but the newest is over the spec's budget
	for i := range 3 {
		run := Run{Spec: "job", ContainerID: fmt.Sprintf("c%d", i), StartedAt: t0.Add(time.Duration(i) * time.Minute)}
		if _, err := s.Save(run, mux(t, lines(10))); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs("job")
	if err != nil || len(runs) != 1 || runs[0].ContainerID != "c2" {
		t.Fatalf("runs kept: %v %v; want only the newest, c2", runs, err)
	}

	s = newStore(t, 1<<20, 1<<20)
	for i := range 3 {
		run := Run{Spec: "job", ContainerID: fmt.Sprintf("c%d", i), StartedAt: t0.Add(time.Duration(i) * time.Minute)}
		if _, err := s.Save(run, mux(t, lines(10))); err != nil {
			t.Fatal(err)
		}
	}
	runs, _ = s.Runs("job")
	var total int64
	for _, r := range runs[1:] {
		total += r.Size
	}
	s.opts.MaxSpecBytes = total // room for the newest two exactly
	if err := s.trim("job"); err != nil {
		t.Fatal(err)
	}
	runs, _ = s.Runs("job")
	if len(runs) != 2 || runs[0].ContainerID != "c1" || runs[1].ContainerID != "c2" {
		t.Fatalf("runs kept %v; want c1 and c2", runs)
	}
}

func TestPreviousSelection(t *testing.T) {
	s := newStore(t, 1<<20, 1<<20)
	r1 := Run{Spec: "job", ContainerID: "aaaaaaaaaaaaaaaa", StartedAt: t0}
	r2 := Run{Spec: "job", ContainerID: "aaaaaaaaaaaaaaaa", StartedAt: t0.Add(time.Minute)} // restarted in place
	r3 := Run{Spec: "job", ContainerID: "bbbbbbbbbbbbbbbb", StartedAt: t0.Add(2 * time.Minute)}
	if _, ok, err := s.Previous("job", nil); ok || err != nil {
		t.Fatalf("previous of nothing saved: %v %v", ok, err)
	}
	for _, r := range []Run{r1, r2, r3} {
		if _, err := s.Save(r, mux(t, lines(1))); err != nil {
			t.Fatal(err)
		}
	}
	r4 := Run{Spec: "job", ContainerID: "bbbbbbbbbbbbbbbb", StartedAt: t0.Add(3 * time.Minute)}
	cases := []struct {
		name    string
		current *Run
		want    *Run
	}{
		{"no container: the run before the newest saved", nil, &r2},
		{"container exited, its run saved: the run before it", &r3, &r2},
		{"container running again in place: its last saved run", &r4, &r3},
		{"the first run has none before it", &r1, nil},
		{"a run between: the saved one before it", &Run{Spec: "job", ContainerID: "cc", StartedAt: t0.Add(90 * time.Second)}, &r2},
	}
	for _, c := range cases {
		got, ok, err := s.Previous("job", c.current)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == nil && ok:
			t.Errorf("%s: got %s, want none", c.name, got.Key())
		case c.want != nil && (!ok || !got.Same(*c.want)):
			t.Errorf("%s: got %s (%v), want %s", c.name, got.Key(), ok, c.want.Key())
		}
	}
	if l := latest(t, s, "job"); !l.Same(r3) {
		t.Errorf("latest %s, want %s", l.Key(), r3.Key())
	}
}

func TestPruneRemovesWhatKeepLetsGo(t *testing.T) {
	keep := map[string]bool{"kept": true}
	s, err := New(Options{Dir: t.TempDir(), Keep: func(n string) bool { return keep[n] }})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kept", "gone"} {
		if _, err := s.Save(Run{Spec: n, ContainerID: "c", StartedAt: t0}, mux(t, lines(3))); err != nil {
			t.Fatal(err)
		}
	}
	// A save under way (the directory just written) is left alone.
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.Runs("gone"); len(runs) != 1 {
		t.Fatal("a spec directory written to a moment ago was pruned")
	}
	age(t, s.Dir(), "gone", "kept")
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.Runs("kept"); len(runs) != 1 {
		t.Errorf("kept spec has %d runs, want 1", len(runs))
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "gone")); !os.IsNotExist(err) {
		t.Errorf("gone spec's output still there: %v", err)
	}
}

func TestSaveAgainReplacesAndLeavesNoTemporaries(t *testing.T) {
	s := newStore(t, 1<<20, 1<<20)
	run := Run{Spec: "job", ContainerID: "c1", StartedAt: t0}
	// A save cut short by a crash leaves its segments behind.
	stale := filepath.Join(s.Dir(), "job", "."+run.Key()+".tmp")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, 3} {
		if _, err := s.Save(run, mux(t, lines(n))); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, s, latest(t, s, "job")); len(got) != 3 {
		t.Errorf("%d lines; want the second save's 3", len(got))
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "job"))
	if len(ents) != 1 {
		t.Errorf("spec directory holds %v; want only the saved file", ents)
	}
}

// age makes the spec directories look written to long ago.
func age(t *testing.T, dir string, specs ...string) {
	t.Helper()
	old := time.Now().Add(-2 * recentSave)
	for _, n := range specs {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
}
