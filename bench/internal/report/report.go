// Package report holds a benchmark run's results and writes them as a text
// table, as JSON and as a PNG chart.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reconciler/reconciler/bench/internal/stats"
)

// Series is one contender's samples in one measurement.
type Series struct {
	Name    string        `json:"name"`
	Samples []float64     `json:"samples"`
	Summary stats.Summary `json:"summary"`
	// Ratio is the agent's figure over this baseline's, paired per
	// repetition (baselines only).
	Ratio *stats.Summary `json:"ratio,omitempty"`
}

// NewSeries summarises samples.
func NewSeries(name string, samples []float64) Series {
	return Series{Name: name, Samples: samples, Summary: stats.Summarize(samples)}
}

// Row is one measured figure: the agent's, and the baselines' measured in
// the same run.
type Row struct {
	Scenario  string   `json:"scenario"`
	Case      string   `json:"case,omitempty"`
	Metric    string   `json:"metric"`
	Unit      string   `json:"unit"`
	Agent     Series   `json:"agent"`
	Baselines []Series `json:"baselines,omitempty"`
}

// NewRow builds a row and pairs the agent's samples with each baseline's.
func NewRow(scenario, cse, metric, unit string, agent Series, baselines ...Series) Row {
	for i := range baselines {
		r := stats.Summarize(stats.Ratios(agent.Samples, baselines[i].Samples))
		baselines[i].Ratio = &r
	}
	return Row{Scenario: scenario, Case: cse, Metric: metric, Unit: unit, Agent: agent, Baselines: baselines}
}

// Figure is a property of the daemon itself, re-measured in every run.
type Figure struct {
	Name    string        `json:"name"`
	Unit    string        `json:"unit"`
	Summary stats.Summary `json:"summary"`
	// Issue is what issue 7 measured on the reference machine, for the
	// reader only: nothing is compared with it.
	Issue string `json:"issue"`
}

// Results is everything one run measured.
type Results struct {
	RunID    string         `json:"runID"`
	Started  time.Time      `json:"started"`
	Duration string         `json:"duration"`
	Host     map[string]any `json:"host"`
	Flags    map[string]any `json:"flags"`
	Daemon   []Figure       `json:"daemon"`
	Rows     []Row          `json:"rows"`
	Checks   []stats.Check  `json:"checks"`
	Notes    []string       `json:"notes,omitempty"`
}

// Find returns the row of scenario, case and metric, or nil.
func (r *Results) Find(scenario, cse, metric string) *Row {
	for i := range r.Rows {
		if x := &r.Rows[i]; x.Scenario == scenario && x.Case == cse && x.Metric == metric {
			return x
		}
	}
	return nil
}

// Baseline returns the row's baseline called name, or nil.
func (r *Row) Baseline(name string) *Series {
	for i := range r.Baselines {
		if r.Baselines[i].Name == name {
			return &r.Baselines[i]
		}
	}
	return nil
}

// Notef adds a note to the closing section.
func (r *Results) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Write writes results.json and results.png into dir.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "results.png"))
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := Chart(r, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func summary(s stats.Summary, unit string) string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 {
		return stats.Format(s.Median, unit)
	}
	return fmt.Sprintf("%s [%s–%s]", stats.Format(s.Median, unit), stats.Format(s.Min, ""), stats.Format(s.Max, ""))
}

// Table prints the results as aligned text: the measurements, the daemon's
// own figures, the targets and the notes.
func (r *Results) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCASE\tMETRIC\tAGENT med [min–max]\tBASELINE\tBASELINE med [min–max]\tRATIO agent/baseline")
	for _, row := range r.Rows {
		first := fmt.Sprintf("%s\t%s\t%s\t%s", row.Scenario, row.Case, row.Metric, summary(row.Agent.Summary, row.Unit))
		if len(row.Baselines) == 0 {
			fmt.Fprintf(tw, "%s\t\t\t\n", first)
			continue
		}
		for i, b := range row.Baselines {
			lead := first
			if i > 0 {
				lead = "\t\t\t"
			}
			ratio := "-"
			if b.Ratio != nil {
				ratio = summary(*b.Ratio, "x")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", lead, b.Name, summary(b.Summary, row.Unit), ratio)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Daemon) > 0 {
		fmt.Fprintln(w, "\nDaemon baselines, measured in this run (issue 7's reference machine in brackets, not compared):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range r.Daemon {
			fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", f.Name, summary(f.Summary, f.Unit), f.Issue)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\nTargets:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range r.Checks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Verdict, c.Target, c.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(n, "\n", "\n    "))
		}
	}
	return nil
}
