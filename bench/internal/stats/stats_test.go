package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"odd count takes the middle", []float64{3, 1, 2}, Summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, Summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"one sample", []float64{7}, Summary{Median: 7, Min: 7, Max: 7, N: 1}},
		{"failed runs (NaN) are left out", []float64{5, math.NaN(), 1}, Summary{Median: 3, Min: 1, Max: 5, N: 2}},
		{"nothing measured", nil, Summary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.in); got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("Summarize reordered its input: %v", in)
	}
}

func TestQuantileNearestRank(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100 .. 1, unsorted on purpose
	}
	for _, tt := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := Quantile(xs, tt.q); got != tt.want {
			t.Errorf("Quantile(1..100, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := Quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("Quantile(nil) = %v, want NaN", got)
	}
}

func TestRatiosPairByRepetition(t *testing.T) {
	agent := []float64{10, 12, math.NaN(), 9, 4}
	base := []float64{5, 0, 3, 9}
	got := Ratios(agent, base)
	want := []float64{2, 1} // rep 2 has a zero baseline, rep 3 failed, rep 5 has no baseline
	if len(got) != len(want) {
		t.Fatalf("Ratios = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Ratios = %v, want %v", got, want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	s := func(med float64) Summary { return Summary{Median: med, Min: med, Max: med, N: 1} }
	tests := []struct {
		name string
		c    Check
		want Verdict
	}{
		{"at most: under the limit", AtMost("t", s(1.05), 1.10, "x"), Pass},
		{"at most: on the limit", AtMost("t", s(1.10), 1.10, "x"), Pass},
		{"at most: over the limit", AtMost("t", s(1.2), 1.10, "x"), Miss},
		{"below: under the limit", Below("t", s(0.4), 0.5, "%"), Pass},
		{"below: on the limit", Below("t", s(0.5), 0.5, "%"), Miss},
		{"below: over the limit", Below("t", s(0.6), 0.5, "%"), Miss},
		{"nothing measured", AtMost("t", Summary{}, 1, "s"), NA},
		{"nothing measured, below", Below("t", Summary{}, 1, "s"), NA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.c.Verdict != tt.want {
				t.Errorf("verdict %s (%s), want %s", tt.c.Verdict, tt.c.Detail, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0, "s", "0 s"},
		{0.1234, "s", "0.123 s"},
		{1.234, "x", "1.23x"},
		{12.34, "ms", "12.3 ms"},
		{1234.5, "", "1234"},
	}
	for _, tt := range tests {
		if got := Format(tt.v, tt.unit); got != tt.want {
			t.Errorf("Format(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
