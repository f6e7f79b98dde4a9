package scenario

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
)

// The targets of issue 13. Each is judged from one run alone: the agent's
// figure against its baselines measured back to back with it, never
// against a figure from another run or machine.
const (
	// CrashOverRaw: crash to running, the agent's p50 at most the raw
	// restart-on-die loop's p50 plus this (and below dockerd's).
	CrashOverRaw = 20.0 // ms
	// ChangeOverRaw: spec edit to running, the agent's p50 at most the raw
	// stop+rm+create+start's p50 plus this.
	ChangeOverRaw = 20.0 // ms
	// NoopLimit: one no-op reconcile of 10,000 specs takes less than this.
	NoopLimit = 0.1 // s
	// ColdRatio: a cold start of ColdN specs takes at most this times the
	// raw API's at its best concurrency.
	ColdRatio = 1.05
	ColdN     = 100
)

// Judge judges a run's results against the targets. It reads the results
// only, so a saved run is judged as the live one was. A failed sample, a
// failed scenario or a raw-limit calibration short of samples makes the
// targets that rest on it MISS, with the reason in the detail; a scenario
// not chosen leaves its targets n/a.
func Judge(r *report.Results) []stats.Check {
	out := judgeCold(r)
	out = append(out, judgeChange(r))
	out = append(out, judgeCrash(r)...)
	out = append(out, judgeNoop(r))
	// A scenario that stopped early may have judged nothing at all.
	names := make([]string, 0, len(r.Failed))
	for name := range r.Failed {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, stats.Check{Target: "scenario " + name + " ran to its end", Verdict: stats.Miss, Detail: r.Failed[name]})
	}
	return out
}

// missing judges a target whose row is absent: MISS when its scenario
// failed, n/a when it was not run.
func missing(r *report.Results, target, scenario string) stats.Check {
	if why, ok := r.Failed[scenario]; ok {
		return stats.Check{Target: target, Verdict: stats.Miss, Detail: "scenario " + scenario + " failed before measuring it: " + why}
	}
	return stats.Check{Target: target, Verdict: stats.NA, Detail: "not run"}
}

// finish ties c to row and makes it MISS for every failed sample of the
// row, every extra reason and the failure of the row's scenario.
func finish(r *report.Results, c stats.Check, row *report.Row, extra ...string) stats.Check {
	c.Row = row.Key()
	reasons := append(row.Failures(), extra...)
	if why, ok := r.Failed[row.Scenario]; ok {
		reasons = append(reasons, "scenario "+row.Scenario+" failed: "+why)
	}
	return c.FailedSamples(reasons)
}

// overRaw: the agent's p50 at most the baseline's p50 plus over (ms).
func overRaw(target string, row *report.Row, b *report.Series, over float64) stats.Check {
	c := stats.Check{Target: target, Verdict: stats.NA, Detail: "not measured"}
	if b == nil || b.Summary.N == 0 || row.Agent.Summary.N == 0 {
		return c
	}
	a, base := row.Agent.Summary.Median, b.Summary.Median
	c = stats.AtMost(target, row.Agent.Summary, base+over, "ms")
	c.Detail = fmt.Sprintf("agent p50 %s, %s p50 %s: %s ms against at most +%.0f ms",
		stats.Format(a, "ms"), b.Name, stats.Format(base, "ms"), delta(a-base, over), over)
	return c
}

// delta prints d to 0.1 ms, or finer where that would round it onto the
// limit and make a MISS read like a PASS.
func delta(d, limit float64) string {
	s := fmt.Sprintf("%+.1f", d)
	if d != limit && s == fmt.Sprintf("%+.1f", limit) {
		s = fmt.Sprintf("%+.3f", d)
	}
	return s
}

func judgeChange(r *report.Results) stats.Check {
	target := fmt.Sprintf("spec edit to running p50: at most raw + %.0f ms", ChangeOverRaw)
	row := r.Find("change", "p50", changeMetric)
	if row == nil {
		return missing(r, target, "change")
	}
	var raw *report.Series
	if len(row.Baselines) > 0 {
		raw = &row.Baselines[0]
	}
	return finish(r, overRaw(target, row, raw, ChangeOverRaw), row)
}

func judgeCrash(r *report.Results) []stats.Check {
	tLoop := fmt.Sprintf("crash to running p50: at most the %s + %.0f ms", RawLoop, CrashOverRaw)
	tNative := fmt.Sprintf("crash to running p50: below %s", DockerdRP)
	row := r.Find("crash", "p50", crashMetric)
	if row == nil {
		return []stats.Check{missing(r, tLoop, "crash"), missing(r, tNative, "crash")}
	}
	loop := overRaw(tLoop, row, row.Baseline(RawLoop), CrashOverRaw)
	native := stats.Check{Target: tNative, Verdict: stats.NA, Detail: "not measured"}
	if b := row.Baseline(DockerdRP); b != nil && b.Summary.N > 0 && row.Agent.Summary.N > 0 {
		a, d := row.Agent.Summary.Median, b.Summary.Median
		native = stats.Below(tNative, row.Agent.Summary, d, "ms")
		native.Detail = fmt.Sprintf("agent p50 %s, %s p50 %s: %s ms against below 0", stats.Format(a, "ms"), b.Name, stats.Format(d, "ms"), delta(a-d, 0))
	}
	return []stats.Check{finish(r, loop, row), finish(r, native, row)}
}

func judgeNoop(r *report.Results) stats.Check {
	target := fmt.Sprintf("control plane: 10,000 specs no-op reconcile under %s", stats.Format(NoopLimit, "s"))
	row := r.Find("controlplane", noopCase, noopMetric)
	if row == nil {
		return missing(r, target, "controlplane")
	}
	c := stats.Below(target, row.Agent.Summary, NoopLimit, "s")
	if row.NoAgent != "" {
		c.Detail += " (no agent process: " + row.NoAgent + ")"
	}
	return finish(r, c, row)
}

// coldRow is the cold row the targets judge: N=ColdN, or the largest N run.
func coldRow(r *report.Results) (*report.Row, int) {
	var best *report.Row
	n := 0
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Scenario != "cold" || row.Metric != coldMetric {
			continue
		}
		v, err := strconv.Atoi(strings.TrimPrefix(row.Case, "N="))
		if err != nil {
			continue
		}
		if v == ColdN {
			return row, v
		}
		if v > n {
			best, n = row, v
		}
	}
	return best, n
}

func judgeCold(r *report.Results) []stats.Check {
	tRaw := fmt.Sprintf("cold start of %d: at most %.2fx the raw API at its best concurrency", ColdN, ColdRatio)
	tCompose := fmt.Sprintf("cold start of %d: faster than docker-compose up -d", ColdN)
	row, n := coldRow(r)
	if row == nil {
		return []stats.Check{missing(r, tRaw, "cold"), missing(r, tCompose, "cold")}
	}
	if n != ColdN {
		note := fmt.Sprintf(" (measured at N=%d only)", n)
		tRaw, tCompose = tRaw+note, tCompose+note
	}
	// The calibration vouches for the baseline: were its best concurrency
	// missing a sample, the baseline could be slower than the real limit.
	var calibration []string
	limit := "not calibrated"
	if r.RawLimit == nil {
		calibration = append(calibration, "the raw limit was not calibrated in this run")
	} else {
		calibration, limit = r.RawLimit.Problems(), r.RawLimit.String()
	}
	// The paired ratio (agent over baseline, repetition by repetition)
	// cancels the slow drift of a shared machine's load.
	ratioCheck := func(target string, b *report.Series, below bool, limit float64, extra string) stats.Check {
		if b == nil || b.Ratio == nil || b.Ratio.N == 0 {
			return stats.Check{Target: target, Verdict: stats.NA, Detail: "not measured"}
		}
		c, against := stats.AtMost(target, *b.Ratio, limit, "x"), "at most"
		if below {
			c, against = stats.Below(target, *b.Ratio, limit, "x"), "under"
		}
		c.Detail = fmt.Sprintf("agent %s, %s %s: paired ratio median %s against %s %s%s",
			stats.Format(row.Agent.Summary.Median, row.Unit), b.Name, stats.Format(b.Summary.Median, row.Unit),
			stats.Format(b.Ratio.Median, "x"), against, stats.Format(limit, "x"), extra)
		return c
	}
	var raw *report.Series
	if len(row.Baselines) > 0 {
		raw = &row.Baselines[0]
	}
	out := []stats.Check{finish(r, ratioCheck(tRaw, raw, false, ColdRatio, "; raw limit "+limit), row, calibration...)}
	if b := row.Baseline(Compose); b != nil {
		out = append(out, finish(r, ratioCheck(tCompose, b, true, 1, ""), row))
	} else {
		out = append(out, stats.Check{Target: tCompose, Verdict: stats.NA, Detail: "docker-compose not installed", Row: row.Key()})
	}
	return out
}
