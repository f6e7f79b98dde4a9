package api_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/output"
)

var runStart = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// savedFixture is the API with saved output: runs 1 to n of spec web, each
// saved with three lines ("run i line j"), the second on stderr.
func savedFixture(t *testing.T, n int) (*fixture, *output.Store, []output.Run) {
	t.Helper()
	out, err := output.New(output.Options{Dir: filepath.Join(t.TempDir(), "output"), MaxRunBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(d *api.Deps) { d.Output = out })
	f.apply(specYAML("web", "box"))
	var runs []output.Run
	for i := 1; i <= n; i++ {
		run := output.Run{Spec: "web", ContainerID: fmt.Sprintf("c%d", i), StartedAt: runStart.Add(time.Duration(i) * time.Minute)}
		var buf bytes.Buffer
		for j := 1; j <= 3; j++ {
			w := stdcopy.NewStdWriter(&buf, stdcopy.Stdout)
			if j == 2 {
				w = stdcopy.NewStdWriter(&buf, stdcopy.Stderr)
			}
			fmt.Fprintf(w, "%s run %d line %d\n", run.StartedAt.Add(time.Duration(j)*time.Second).Format(time.RFC3339Nano), i, j)
		}
		if _, err := out.Save(run, &buf); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return f, out, runs
}

func logLines(t *testing.T, f *fixture, q api.LogQuery) []string {
	t.Helper()
	var got []string
	err := f.c.Logs(t.Context(), "web", q, func(l api.LogLine) error {
		s := l.Stream + " " + l.Line
		if l.Time != nil {
			s = l.Time.Format(time.RFC3339) + " " + s
		}
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatalf("logs %+v: %v", q, err)
	}
	return got
}

func TestLogsAfterTheContainerIsGoneServeTheLatestRun(t *testing.T) {
	f, _, _ := savedFixture(t, 2)
	got := logLines(t, f, api.LogQuery{})
	want := []string{"stdout run 2 line 1", "stderr run 2 line 2", "stdout run 2 line 3"}
	if !slices.Equal(got, want) {
		t.Fatalf("logs %q, want %q", got, want)
	}
	if got := logLines(t, f, api.LogQuery{Tail: "1", Timestamps: true}); !slices.Equal(got, []string{"2026-11-30T12:02:03Z stdout run 2 line 3"}) {
		t.Errorf("tail 1 with timestamps: %q", got)
	}
	if got := logLines(t, f, api.LogQuery{Since: "2026-11-30T12:02:02Z"}); len(got) != 2 {
		t.Errorf("since the second line: %q", got)
	}
	if got := logLines(t, f, api.LogQuery{Tail: "0"}); len(got) != 0 {
		t.Errorf("tail 0: %q", got)
	}
	// follow has nothing more to wait for.
	if got := logLines(t, f, api.LogQuery{Follow: true}); len(got) != 3 {
		t.Errorf("follow: %q", got)
	}
}

func TestLogsPrevious(t *testing.T) {
	f, _, runs := savedFixture(t, 3)
	// No container: the run before the latest saved.
	if got := logLines(t, f, api.LogQuery{Previous: true}); len(got) != 3 || !strings.HasSuffix(got[0], "run 2 line 1") {
		t.Fatalf("previous without a container: %q", got)
	}
	// The container of the third run, exited, is still there: its previous
	// is the second; and logs without --previous is the container's own.
	c := managed(runs[2].ContainerID, "web", "exited")
	c.StartedAt = runs[2].StartedAt
	log := f.rt.Add(c)
	log.Write(stdcopy.Stdout, "live line\n")
	log.End()
	if got := logLines(t, f, api.LogQuery{Previous: true}); len(got) != 3 || !strings.HasSuffix(got[0], "run 2 line 1") {
		t.Fatalf("previous of the exited third run: %q", got)
	}
	if got := logLines(t, f, api.LogQuery{}); !slices.Equal(got, []string{"stdout live line"}) {
		t.Fatalf("logs with a container: %q; want the container's own", got)
	}
	// Restarted in place: the run before the running one is the third.
	if err := f.rt.Remove(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	c.State, c.StartedAt = "running", runs[2].StartedAt.Add(time.Hour)
	f.rt.Add(c)
	if got := logLines(t, f, api.LogQuery{Previous: true}); len(got) != 3 || !strings.HasSuffix(got[0], "run 3 line 1") {
		t.Fatalf("previous of a run restarted in place: %q", got)
	}
}

func TestLogsPreviousWithoutOne(t *testing.T) {
	f, _, _ := savedFixture(t, 1)
	e := f.wantError("GET", "/v1/specs/web/logs?previous=true", "", 404)
	if e.Field != "previous" || !strings.Contains(e.Message, "no saved run before") {
		t.Fatalf("previous of the only run: %+v", e)
	}
	if e := f.wantError("GET", "/v1/specs/web/logs?previous=maybe", "", 400); e.Field != "previous" {
		t.Fatalf("bad previous: %+v", e)
	}
	// Without saved output the answer is as before: no container.
	f2 := newFixture(t)
	f2.apply(specYAML("web", "box"))
	if e := f2.wantError("GET", "/v1/specs/web/logs", "", 404); !strings.Contains(e.Message, "no container") {
		t.Fatalf("no container, nothing saved: %+v", e)
	}
}

func TestLogsOfATruncatedRunSayIt(t *testing.T) {
	out, err := output.New(output.Options{Dir: filepath.Join(t.TempDir(), "output"), MaxRunBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(d *api.Deps) { d.Output = out })
	f.apply(specYAML("web", "box"))
	var buf bytes.Buffer
	w := stdcopy.NewStdWriter(&buf, stdcopy.Stdout)
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(w, "%s line %03d\n", runStart.Format(time.RFC3339Nano), i)
	}
	if _, err := out.Save(output.Run{Spec: "web", ContainerID: "c1", StartedAt: runStart}, &buf); err != nil {
		t.Fatal(err)
	}
	got := logLines(t, f, api.LogQuery{})
	if !strings.HasPrefix(got[0], api.Notice+" output truncated") || got[len(got)-1] != "stdout line 200" {
		t.Fatalf("first %q, last %q; want the notice first and the end kept", got[0], got[len(got)-1])
	}
}

// --tail over a saved run longer than the tail: the last lines, in order,
// whatever the tail (the lines go round a ring of that size).
func TestLogsTailOfASavedRunKeepsTheLastLinesInOrder(t *testing.T) {
	f, out, _ := savedFixture(t, 0)
	run := output.Run{Spec: "web", ContainerID: "c1", StartedAt: runStart}
	var buf bytes.Buffer
	w := stdcopy.NewStdWriter(&buf, stdcopy.Stdout)
	for j := 1; j <= 7; j++ {
		fmt.Fprintf(w, "%s line %d\n", runStart.Add(time.Duration(j)*time.Second).Format(time.RFC3339Nano), j)
	}
	if _, err := out.Save(run, &buf); err != nil {
		t.Fatal(err)
	}
	for tail := 1; tail <= 8; tail++ {
		var want []string
		for j := max(1, 8-tail); j <= 7; j++ {
			want = append(want, fmt.Sprintf("stdout line %d", j))
		}
		if got := logLines(t, f, api.LogQuery{Tail: fmt.Sprint(tail)}); !slices.Equal(got, want) {
			t.Errorf("tail %d: %q, want %q", tail, got, want)
		}
	}
}
