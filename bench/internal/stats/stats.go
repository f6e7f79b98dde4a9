// Package stats summarises repeated measurements and judges them against
// targets. Every figure the benchmark prints is a median over repetitions,
// shown with its min and max, because one run on a shared daemon proves
// little.
package stats

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Summary is the median, min and max of a set of samples.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Summarize describes xs; NaN samples (a run that failed) are left out.
// No samples give the zero Summary.
func Summarize(xs []float64) Summary {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Quantile is the q-quantile (0..1) of xs by the nearest-rank method; NaN
// for no samples.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Ratios pairs a[i] with b[i] (the agent's and a baseline's figure from the
// same repetition, run back to back) and returns a[i]/b[i]. Pairing by
// repetition cancels the slow drift of a shared machine's load. Pairs with
// a missing or non-positive side are left out.
func Ratios(a, b []float64) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if math.IsNaN(a[i]) || math.IsNaN(b[i]) || b[i] <= 0 {
			continue
		}
		out = append(out, a[i]/b[i])
	}
	return out
}

// Verdict is the outcome of one target.
type Verdict string

const (
	Pass Verdict = "PASS"
	Miss Verdict = "MISS"
	// NA: the run did not measure what the target needs.
	NA Verdict = "n/a"
)

// Check is one target judged.
type Check struct {
	Target  string  `json:"target"`
	Verdict Verdict `json:"verdict"`
	// Detail gives the figures the verdict was drawn from.
	Detail string `json:"detail"`
	// Row names the table row the target judges (see report.Row.Key),
	// so the table can show the verdict beside the figures.
	Row string `json:"row,omitempty"`
}

// FailedSamples turns c into a MISS when any sample it rests on failed: a
// failed sample is a sample that did not meet the target, not one to leave
// out. The reasons go first in the detail, the figures of the samples that
// did succeed after them.
func (c Check) FailedSamples(reasons []string) Check {
	if len(reasons) == 0 {
		return c
	}
	c.Verdict = Miss
	d := fmt.Sprintf("%d failed sample(s): %s", len(reasons), strings.Join(reasons, "; "))
	if c.Detail != "" && c.Detail != "not measured" {
		d += "; the others: " + c.Detail
	}
	c.Detail = d
	return c
}

// AtMost passes when got <= limit; an empty summary is NA.
func AtMost(target string, got Summary, limit float64, unit string) Check {
	c := Check{Target: target, Verdict: NA, Detail: "not measured"}
	if got.N == 0 {
		return c
	}
	c.Verdict = Miss
	if got.Median <= limit {
		c.Verdict = Pass
	}
	c.Detail = fmt.Sprintf("median %s against at most %s", Format(got.Median, unit), Format(limit, unit))
	return c
}

// Below passes when got < limit; an empty summary is NA.
func Below(target string, got Summary, limit float64, unit string) Check {
	c := AtMost(target, got, limit, unit)
	if c.Verdict == Pass && got.Median == limit {
		c.Verdict = Miss
	}
	if got.N > 0 {
		c.Detail = fmt.Sprintf("median %s against under %s", Format(got.Median, unit), Format(limit, unit))
	}
	return c
}

// Format prints v in unit with a precision that suits its size.
func Format(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		s = "0"
	case a >= 100:
		s = fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	switch unit {
	case "", "x":
		return s + unit
	}
	return s + " " + unit
}
