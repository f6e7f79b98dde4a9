package report

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
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
