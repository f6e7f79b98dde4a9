package report

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/bench/internal/stats"
)

func sampleResults() *Results {
	r := &Results{RunID: "rbtest"}
	r.Rows = append(r.Rows,
		NewRow("cold", "N=10", "time to all running", "s", NewSeries("agent", []float64{5.5, 5, 6}),
			NewSeries("raw API", []float64{5, 5, 5}), NewSeries("docker-compose", []float64{11, 10, 12})),
		NewRow("idle", "100 running", "agent RSS", "MiB", NewSeries("agent", []float64{20})))
	return r
}

func TestNewRowPairsRatios(t *testing.T) {
	row := sampleResults().Rows[0]
	raw := row.Baseline("raw API")
	if raw == nil || raw.Ratio == nil {
		t.Fatal("no ratio against the raw API")
	}
	if raw.Ratio.Median != 1.1 || raw.Ratio.Min != 1 || raw.Ratio.Max != 1.2 {
		t.Errorf("ratio = %+v, want median 1.1 in [1, 1.2]", *raw.Ratio)
	}
}

func TestTableShowsEveryBaseline(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResults().Table(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"raw API", "docker-compose", "1.10x [1.00–1.20]", "5.50 s [5.00–6.00]"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestChartIsAPNGWithAPanelPerScenario(t *testing.T) {
	var b bytes.Buffer
	if err := Chart(sampleResults(), &b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Dx(); got != chartCols*panelW {
		t.Errorf("chart width %d, want %d", got, chartCols*panelW)
	}
	if ps := panels(sampleResults()); len(ps) != 2 {
		t.Errorf("%d panels, want one per scenario (2)", len(ps))
	}
}

func TestSamplesKeepAFailedSampleInPlaceThroughJSON(t *testing.T) {
	in := Samples{1.5, math.NaN(), 3}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != "[1.5,null,3]" {
		t.Errorf("JSON = %s, want [1.5,null,3]", raw)
	}
	var out Samples
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0] != 1.5 || !math.IsNaN(out[1]) || out[2] != 3 {
		t.Errorf("read back %v, want [1.5 NaN 3]", out)
	}
}

// failedRun has one cold row per N, one of whose raw samples failed, and a
// control-plane row that does not run the agent process.
func failedRun() *Results {
	r := &Results{RunID: "rbtest"}
	for _, n := range []string{"N=10", "N=50", "N=100"} {
		raw := NewSeries("raw API (c=2)", []float64{5, 5, 5})
		if n == "N=50" {
			raw = NewSeries("raw API (c=2)", []float64{5, math.NaN(), 5}, "cold N=50 rep 2 raw API: create rb-raw-3: daemon busy")
		}
		r.Rows = append(r.Rows, NewRow("cold", n, "time to all running", "s", NewSeries("agent", []float64{5, 5, 5}), raw))
	}
	r.Rows = append(r.Rows, NewRow("controlplane", "specs=10000", "no-op reconcile of all specs", "s",
		NewSeries("in-process", []float64{0.05})).WithoutAgent("the controller in-process against a fake runtime"))
	r.Checks = []stats.Check{
		{Target: "cold N=100", Verdict: stats.Pass, Row: r.Rows[2].Key()},
		{Target: "no-op", Verdict: stats.Pass, Row: r.Rows[3].Key()},
	}
	return r
}

func TestAFailedSampleMakesItsRowMissWithItsReason(t *testing.T) {
	r := failedRun()
	// Positive control: the rows without a failure are judged by their
	// checks, or carry no verdict.
	if v := r.Verdict(&r.Rows[2]); v != stats.Pass {
		t.Errorf("N=100 row verdict %q, want PASS from its check", v)
	}
	if v := r.Verdict(&r.Rows[0]); v != "" {
		t.Errorf("N=10 row verdict %q, want none (no target, no failure)", v)
	}
	if v := r.Verdict(&r.Rows[1]); v != stats.Miss {
		t.Errorf("N=50 row verdict %q, want MISS for its failed sample", v)
	}
	if s := r.Rows[1].Baselines[0].Summary; s.N != 2 {
		t.Errorf("N=50 raw summary over %d samples, want the 2 that succeeded", s.N)
	}
	for name, out := range renderings(t, r) {
		for _, want := range []string{"(1 of 3 failed)", "cold / N=50 / time to all running: raw API (c=2): cold N=50 rep 2 raw API: create rb-raw-3: daemon busy"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, out)
			}
		}
		line := lineWith(out, "N=50")
		if !strings.Contains(line, "MISS") {
			t.Errorf("%s: the N=50 row is not MISS: %q", name, line)
		}
	}
	if !r.HasFailures() {
		t.Error("HasFailures is false with a failed sample")
	}
}

func TestReportShowsEveryNAndMarksRowsWithoutTheAgent(t *testing.T) {
	r := failedRun()
	for name, out := range renderings(t, r) {
		for _, n := range []string{"N=10", "N=50", "N=100"} {
			if lineWith(out, n+" ") == "" && lineWith(out, n+" |") == "" {
				t.Errorf("%s has no row for %s:\n%s", name, n, out)
			}
		}
		if line := lineWith(out, "specs=10000"); !strings.Contains(line, "controlplane [no agent process]") {
			t.Errorf("%s: control-plane row not marked: %q", name, line)
		}
		if line := lineWith(out, "N=100"); strings.Contains(line, "no agent process") {
			t.Errorf("%s: the cold row, which runs the agent, is marked: %q", name, line)
		}
		if !strings.Contains(out, "controlplane: the controller in-process against a fake runtime") {
			t.Errorf("%s does not say what the marked rows run:\n%s", name, out)
		}
	}
	// results.json keeps the mark.
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"noAgent":"the controller in-process against a fake runtime"`) {
		t.Errorf("results.json lacks the mark: %s", raw)
	}
}

func TestRawLimitBestConcurrencyAndProblems(t *testing.T) {
	l := &RawLimit{Containers: 16, MinSamples: 3, Runs: []Calibration{
		{Concurrency: 1, Rate: NewSeries("c=1", []float64{1.0, 1.1, 0.9})},
		{Concurrency: 2, Rate: NewSeries("c=2", []float64{1.3, 1.2, 1.25})},
		// The fastest single batch, but not the best median.
		{Concurrency: 4, Rate: NewSeries("c=4", []float64{2.0, 0.8, 0.9})},
		{Concurrency: 8, Rate: NewSeries("c=8", []float64{1.0, math.NaN(), 1.1}, "round 2: start: timeout")},
	}}
	best, ok := l.Best()
	if !ok || best.Concurrency != 2 {
		t.Errorf("best = c=%d (%v), want c=2, the highest median", best.Concurrency, ok)
	}
	got := l.Problems()
	want := []string{"calibration c=8: round 2: start: timeout", "calibration c=8: 2 good samples, at least 3 needed"}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	l.Runs[3].Rate = NewSeries("c=8", []float64{1.0, 1.05, 1.1})
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("a complete calibration has problems: %q", p)
	}
	if _, ok := (&RawLimit{Runs: []Calibration{{Concurrency: 1, Rate: NewSeries("c=1", []float64{math.NaN()}, "x")}}}).Best(); ok {
		t.Error("Best found a concurrency when none started its batch")
	}
}

// renderings are the printed table and the Markdown of r.
func renderings(t *testing.T, r *Results) map[string]string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Table(&b); err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	r.Markdown(&md)
	return map[string]string{"table": b.String(), "markdown": md.String()}
}

// lineWith is the first line of out containing s, or "".
func lineWith(out, s string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
