package scenario

import (
	"math"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
)

// check finds the judged target whose name starts with prefix.
func check(t *testing.T, cs []stats.Check, prefix string) stats.Check {
	t.Helper()
	for _, c := range cs {
		if strings.HasPrefix(c.Target, prefix) {
			return c
		}
	}
	t.Fatalf("no target %q among %+v", prefix, cs)
	return stats.Check{}
}

func crashRow(agent, loop, native []float64, agentFailures ...string) report.Row {
	return report.NewRow("crash", "p50", crashMetric, "ms", report.NewSeries(Agent, agent, agentFailures...),
		report.NewSeries(RawLoop, loop), report.NewSeries(DockerdRP, native))
}

func TestJudgeCrashAgainstBothBaselinesOfTheSameRun(t *testing.T) {
	tests := []struct {
		name              string
		agent             float64
		wantLoop, wantNat stats.Verdict
	}{
		{"within loop + 20 ms and below dockerd", 615, stats.Pass, stats.Pass},
		{"exactly loop + 20 ms is at most", 620, stats.Pass, stats.Pass},
		{"loop + 21 ms", 621, stats.Miss, stats.Pass},
		{"a hair over loop + 20 ms", 620.01, stats.Miss, stats.Pass},
		{"equal to dockerd is not below it", 650, stats.Miss, stats.Miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report.Results{Rows: []report.Row{crashRow([]float64{tt.agent, tt.agent, tt.agent}, []float64{600, 590, 610}, []float64{650, 640, 660})}}
			cs := Judge(r)
			loop, nat := check(t, cs, "crash to running p50: at most"), check(t, cs, "crash to running p50: below")
			if loop.Verdict != tt.wantLoop || nat.Verdict != tt.wantNat {
				t.Errorf("verdicts %s / %s, want %s / %s (%s; %s)", loop.Verdict, nat.Verdict, tt.wantLoop, tt.wantNat, loop.Detail, nat.Detail)
			}
			// Each verdict prints its figure and its baseline.
			if !strings.Contains(loop.Detail, "raw restart-on-die loop p50 600 ms") || !strings.Contains(nat.Detail, "dockerd on-failure p50 650 ms") {
				t.Errorf("details lack the baselines: %q; %q", loop.Detail, nat.Detail)
			}
			if tt.wantLoop == stats.Miss && strings.Contains(loop.Detail, "+20.0 ms") {
				t.Errorf("a MISS reads like the limit: %q", loop.Detail)
			}
			if loop.Row != r.Rows[0].Key() {
				t.Errorf("check tied to row %q, want %q", loop.Row, r.Rows[0].Key())
			}
		})
	}
}

func TestJudgeAFailedSampleIsAMissNotAGap(t *testing.T) {
	// Positive control: the same good samples pass.
	good := &report.Results{Rows: []report.Row{crashRow([]float64{600, 600}, []float64{600, 600}, []float64{700, 700})}}
	if c := check(t, Judge(good), "crash to running p50: at most"); c.Verdict != stats.Pass {
		t.Fatalf("control: %s %s, want PASS", c.Verdict, c.Detail)
	}
	// A third sample failed: leaving it out would still pass.
	bad := &report.Results{Rows: []report.Row{crashRow([]float64{600, 600, math.NaN()}, []float64{600, 600, 600}, []float64{700, 700, 700},
		"crash sample 3 agent: no matching event within 1m35s")}}
	cs := Judge(bad)
	for _, c := range []stats.Check{check(t, cs, "crash to running p50: at most"), check(t, cs, "crash to running p50: below")} {
		if c.Verdict != stats.Miss || !strings.Contains(c.Detail, "crash sample 3 agent: no matching event within 1m35s") {
			t.Errorf("%s: %s %q, want MISS with the failure's reason", c.Target, c.Verdict, c.Detail)
		}
	}
	// A failed baseline sample too: the baseline is then not the one
	// the target is stated against.
	base := &report.Results{Rows: []report.Row{report.NewRow("change", "p50", changeMetric, "ms", report.NewSeries(Agent, []float64{500, 500}),
		report.NewSeries(RawAPI, []float64{600, math.NaN()}, "change sample 2 raw API: change: raw stop: timeout"))}}
	if c := judgeChange(base); c.Verdict != stats.Miss || !strings.Contains(c.Detail, "raw stop: timeout") {
		t.Errorf("failed baseline sample: %s %q, want MISS with the reason", c.Verdict, c.Detail)
	}
}

func TestJudgeChangeAndNoop(t *testing.T) {
	change := func(agent float64) stats.Check {
		return judgeChange(&report.Results{Rows: []report.Row{report.NewRow("change", "p50", changeMetric, "ms",
			report.NewSeries(Agent, []float64{agent}), report.NewSeries(RawAPI, []float64{900}))}})
	}
	if c := change(920); c.Verdict != stats.Pass {
		t.Errorf("raw + 20 ms: %s %s, want PASS", c.Verdict, c.Detail)
	}
	if c := change(921); c.Verdict != stats.Miss || !strings.Contains(c.Detail, "+21.0 ms against at most +20 ms") {
		t.Errorf("raw + 21 ms: %s %q, want MISS saying by how much", c.Verdict, c.Detail)
	}
	noop := func(s float64) stats.Check {
		return judgeNoop(&report.Results{Rows: []report.Row{report.NewRow("controlplane", noopCase, noopMetric, "s",
			report.NewSeries(InProcess, []float64{s})).WithoutAgent(controlPlaneRuns)}})
	}
	if c := noop(0.09); c.Verdict != stats.Pass || !strings.Contains(c.Detail, "no agent process") {
		t.Errorf("0.09 s: %s %q, want PASS saying it ran no agent process", c.Verdict, c.Detail)
	}
	if c := noop(0.1); c.Verdict != stats.Miss {
		t.Errorf("0.1 s: %s, want MISS (under 0.1 s)", c.Verdict)
	}
}

// calibrated is a complete calibration whose best concurrency is c=2.
func calibrated() *report.RawLimit {
	l := &report.RawLimit{Containers: 16, MinSamples: 3}
	for c, rate := range map[int]float64{1: 1.0, 2: 1.3, 4: 1.2, 8: 1.1} {
		l.Runs = append(l.Runs, report.Calibration{Concurrency: c, Rate: report.NewSeries("", []float64{rate, rate, rate})})
	}
	return l
}

func coldRun(l *report.RawLimit, ratios map[int]float64) *report.Results {
	r := &report.Results{RawLimit: l}
	for _, n := range []int{10, 50, 100} {
		raw := float64(n)
		r.Rows = append(r.Rows, report.NewRow("cold", coldCase(n), coldMetric, "s", report.NewSeries(Agent, []float64{raw * ratios[n]}),
			report.NewSeries("raw API (c=2)", []float64{raw}), report.NewSeries(Compose, []float64{raw * 1.2})))
	}
	return r
}

func TestJudgeColdAtN100AgainstTheCalibratedBest(t *testing.T) {
	// N=10 is far off; the target is for N=100.
	c := check(t, Judge(coldRun(calibrated(), map[int]float64{10: 2, 50: 1, 100: 1.04})), "cold start of 100: at most")
	if c.Verdict != stats.Pass || c.Row != "cold / N=100 / time to all running" {
		t.Errorf("%s on %q (%s), want PASS on the N=100 row", c.Verdict, c.Row, c.Detail)
	}
	if !strings.Contains(c.Detail, "raw API (c=2) 100 s") || !strings.Contains(c.Detail, "against at most 1.05x") {
		t.Errorf("detail lacks the baseline and the limit: %q", c.Detail)
	}
	if c := check(t, Judge(coldRun(calibrated(), map[int]float64{100: 1.06})), "cold start of 100: at most"); c.Verdict != stats.Miss {
		t.Errorf("1.06x: %s, want MISS", c.Verdict)
	}

	// A calibration short of samples cannot vouch for the baseline.
	short := calibrated()
	short.Runs[0].Rate = report.NewSeries("", []float64{1, math.NaN(), 1}, "round 2: create: conflict")
	c = check(t, Judge(coldRun(short, map[int]float64{100: 1})), "cold start of 100: at most")
	if c.Verdict != stats.Miss || !strings.Contains(c.Detail, "round 2: create: conflict") || !strings.Contains(c.Detail, "2 good samples, at least 3 needed") {
		t.Errorf("short calibration: %s %q, want MISS with why", c.Verdict, c.Detail)
	}
	if c := check(t, Judge(coldRun(nil, map[int]float64{100: 1})), "cold start of 100: at most"); c.Verdict != stats.Miss {
		t.Errorf("no calibration: %s %q, want MISS", c.Verdict, c.Detail)
	}
}

func TestJudgeColdWithoutN100SaysWhichNItJudged(t *testing.T) {
	r := coldRun(calibrated(), map[int]float64{100: 1})
	r.Rows = r.Rows[:2]
	c := check(t, Judge(r), "cold start of 100: at most")
	if !strings.Contains(c.Target, "(measured at N=50 only)") || c.Row != "cold / N=50 / time to all running" {
		t.Errorf("target %q on %q, want it judged at N=50 and saying so", c.Target, c.Row)
	}
}

func TestJudgeAFailedScenarioIsAMissAndOneNotRunIsNA(t *testing.T) {
	r := &report.Results{Failed: map[string]string{"crash": "agent crash: not ready within 1m0s"}}
	cs := Judge(r)
	for _, c := range cs {
		crash := strings.HasPrefix(c.Target, "crash") || c.Target == "scenario crash ran to its end"
		switch {
		case crash && (c.Verdict != stats.Miss || !strings.Contains(c.Detail, "not ready within 1m0s")):
			t.Errorf("%s: %s %q, want MISS with the scenario's error", c.Target, c.Verdict, c.Detail)
		case !crash && c.Verdict != stats.NA:
			t.Errorf("%s: %s, want n/a (not run)", c.Target, c.Verdict)
		}
	}
	check(t, cs, "scenario crash ran to its end")
}
