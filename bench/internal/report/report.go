// Package report holds a benchmark run's results and writes them as a text
// table, as JSON and as a PNG chart.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reconciler/reconciler/bench/internal/stats"
)

// Samples are a contender's figures in the order taken. A failed sample
// stays in its place as NaN, so repetitions still pair by index; JSON
// cannot hold NaN, so it is written as null.
type Samples []float64

// MarshalJSON writes NaN as null.
func (s Samples) MarshalJSON() ([]byte, error) {
	out := make([]*float64, len(s))
	for i := range s {
		if !math.IsNaN(s[i]) {
			out[i] = &s[i]
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null as NaN.
func (s *Samples) UnmarshalJSON(raw []byte) error {
	var in []*float64
	if err := json.Unmarshal(raw, &in); err != nil {
		return err
	}
	*s = make(Samples, len(in))
	for i, v := range in {
		(*s)[i] = math.NaN()
		if v != nil {
			(*s)[i] = *v
		}
	}
	return nil
}

// Series is one contender's samples in one measurement.
type Series struct {
	Name    string  `json:"name"`
	Samples Samples `json:"samples"`
	// Failures say why each failed sample failed. A failed sample is a
	// miss, never a gap: its row and every target judged from it are MISS.
	Failures []string `json:"failures,omitempty"`
	// Summary describes the samples that succeeded.
	Summary stats.Summary `json:"summary"`
	// Ratio is the agent's figure over this baseline's, paired per
	// repetition (baselines only).
	Ratio *stats.Summary `json:"ratio,omitempty"`
}

// NewSeries summarises samples; failures give the reason of each NaN
// among them.
func NewSeries(name string, samples []float64, failures ...string) Series {
	return Series{Name: name, Samples: samples, Failures: failures, Summary: stats.Summarize(samples)}
}

// Row is one measured figure: the agent's, and the baselines' measured in
// the same run.
type Row struct {
	Scenario string `json:"scenario"`
	Case     string `json:"case,omitempty"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// NoAgent, when set, says what ran instead of the agent process: such
	// a row measures a part of the agent in-process, not the program.
	NoAgent   string   `json:"noAgent,omitempty"`
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

// WithoutAgent marks the row as measured without the agent process;
// what says what ran instead.
func (r Row) WithoutAgent(what string) Row {
	r.NoAgent = what
	return r
}

// Key names the row in a check (stats.Check.Row).
func (r *Row) Key() string {
	return strings.Join(slices.DeleteFunc([]string{r.Scenario, r.Case, r.Metric}, func(s string) bool { return s == "" }), " / ")
}

// Failures lists every failed sample of the row, each with its contender.
func (r *Row) Failures() []string {
	var out []string
	for _, s := range append([]Series{r.Agent}, r.Baselines...) {
		for _, f := range s.Failures {
			out = append(out, s.Name+": "+f)
		}
	}
	return out
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

// Calibration is the raw API's create+start rate at one concurrency.
type Calibration struct {
	Concurrency int `json:"concurrency"`
	// Rate holds one sample per batch, in containers started per second.
	Rate Series `json:"rate"`
}

// RawLimit is the raw API's best pace on this daemon now: the same batch
// of containers created and started directly at each concurrency, several
// times each, interleaved so the machine's drift falls on all alike.
type RawLimit struct {
	Containers int           `json:"containers"` // per batch
	MinSamples int           `json:"minSamples"` // per concurrency
	Runs       []Calibration `json:"runs"`
}

// Best is the concurrency with the highest median rate; false when no
// concurrency started its batch.
func (l *RawLimit) Best() (Calibration, bool) {
	var best Calibration
	ok := false
	for _, c := range l.Runs {
		if c.Rate.Summary.N > 0 && (!ok || c.Rate.Summary.Median > best.Rate.Summary.Median) {
			best, ok = c, true
		}
	}
	return best, ok
}

// Problems says why the calibration cannot vouch for the limit: a
// concurrency with a failed batch or fewer good samples than MinSamples.
// The best concurrency may be the one that failed, so the limit would be
// too slow and flatter the agent.
func (l *RawLimit) Problems() []string {
	var out []string
	for _, c := range l.Runs {
		for _, f := range c.Rate.Failures {
			out = append(out, fmt.Sprintf("calibration c=%d: %s", c.Concurrency, f))
		}
		if c.Rate.Summary.N < l.MinSamples {
			out = append(out, fmt.Sprintf("calibration c=%d: %d good samples, at least %d needed", c.Concurrency, c.Rate.Summary.N, l.MinSamples))
		}
	}
	return out
}

// String lists the rate at every concurrency.
func (l *RawLimit) String() string {
	var parts []string
	for _, c := range l.Runs {
		parts = append(parts, fmt.Sprintf("c=%d %s", c.Concurrency, summary(c.Rate.Summary, "/s")))
	}
	return strings.Join(parts, ", ")
}

// Results is everything one run measured.
type Results struct {
	RunID    string         `json:"runID"`
	Started  time.Time      `json:"started"`
	Duration string         `json:"duration"`
	Host     map[string]any `json:"host"`
	Flags    map[string]any `json:"flags"`
	Daemon   []Figure       `json:"daemon"`
	RawLimit *RawLimit      `json:"rawLimit,omitempty"`
	Rows     []Row          `json:"rows"`
	Checks   []stats.Check  `json:"checks"`
	// Failed holds the scenarios that did not run to their end, with why:
	// every target they judge is a MISS.
	Failed map[string]string `json:"failedScenarios,omitempty"`
	Notes  []string          `json:"notes,omitempty"`
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

// Verdict is the row's verdict for the table: MISS when a sample failed,
// else the worst verdict of the targets that judge it; empty when none
// does.
func (r *Results) Verdict(row *Row) stats.Verdict {
	if len(row.Failures()) > 0 {
		return stats.Miss
	}
	var v stats.Verdict
	for _, c := range r.Checks {
		if c.Row != row.Key() {
			continue
		}
		switch {
		case c.Verdict == stats.Miss:
			return stats.Miss
		case c.Verdict == stats.Pass || v == "":
			v = c.Verdict
		}
	}
	return v
}

// noAgentMark follows the scenario of a row that does not run the agent
// process, in the table and in the Markdown.
const noAgentMark = " [no agent process]"

func (r *Row) scenarioLabel() string {
	if r.NoAgent != "" {
		return r.Scenario + noAgentMark
	}
	return r.Scenario
}

// noAgentLegend says, once per scenario, what its marked rows ran instead.
func (r *Results) noAgentLegend() []string {
	var out []string
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if row.NoAgent != "" && !seen[row.Scenario] {
			seen[row.Scenario] = true
			out = append(out, fmt.Sprintf("%s: %s", row.Scenario, row.NoAgent))
		}
	}
	return out
}

// Write writes results.json, results.md (the table in Markdown, as the
// README shows it) and results.png into dir.
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
	var md strings.Builder
	r.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
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

// seriesFigure is a series' summary, with its failed samples counted.
func seriesFigure(s Series, unit string) string {
	out := summary(s.Summary, unit)
	if n := len(s.Failures); n > 0 {
		out += fmt.Sprintf(" (%d of %d failed)", n, len(s.Samples))
	}
	return out
}

// Table prints the results as aligned text: the measurements with their
// verdicts, the failed samples, the daemon's own figures, the targets and
// the notes.
func (r *Results) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tSCENARIO\tCASE\tMETRIC\tAGENT med [min–max]\tBASELINE\tBASELINE med [min–max]\tRATIO agent/baseline")
	for i := range r.Rows {
		row := &r.Rows[i]
		first := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Verdict(row), row.scenarioLabel(), row.Case, row.Metric, seriesFigure(row.Agent, row.Unit))
		if len(row.Baselines) == 0 {
			fmt.Fprintf(tw, "%s\t\t\t\n", first)
			continue
		}
		for i, b := range row.Baselines {
			lead := first
			if i > 0 {
				lead = "\t\t\t\t"
			}
			ratio := "-"
			if b.Ratio != nil {
				ratio = summary(*b.Ratio, "x")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", lead, b.Name, seriesFigure(b, row.Unit), ratio)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if legend := r.noAgentLegend(); len(legend) > 0 {
		fmt.Fprintln(w, "\nRows marked"+noAgentMark+" do not run the agent binary:")
		for _, l := range legend {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	if failed := r.failures(); len(failed) > 0 {
		fmt.Fprintln(w, "\nFailed samples (each makes its row MISS):")
		for _, f := range failed {
			fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(f, "\n", "\n    "))
		}
	}
	if len(r.Daemon) > 0 || r.RawLimit != nil {
		fmt.Fprintln(w, "\nDaemon baselines, measured in this run (issue 7's reference machine in brackets, not compared):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if l := r.RawLimit; l != nil {
			fmt.Fprintf(tw, "  raw create+start of %d containers, per concurrency\t%s\t(about 2/s whatever the concurrency)\n", l.Containers, l.String())
		}
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
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Verdict, c.Target, strings.ReplaceAll(c.Detail, "\n", " "))
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

// failures lists every failed sample of the run with its row.
func (r *Results) failures() []string {
	var out []string
	for i := range r.Rows {
		for _, f := range r.Rows[i].Failures() {
			out = append(out, r.Rows[i].Key()+": "+f)
		}
	}
	if r.RawLimit != nil {
		for _, c := range r.RawLimit.Runs {
			for _, f := range c.Rate.Failures {
				out = append(out, fmt.Sprintf("raw limit calibration c=%d: %s", c.Concurrency, f))
			}
		}
	}
	return out
}

// HasFailures reports a failed sample or scenario anywhere in the run.
func (r *Results) HasFailures() bool { return len(r.failures()) > 0 || len(r.Failed) > 0 }

// Markdown writes the rows and the targets as the README's tables: every
// row (every N), its verdict, and the mark of the rows that do not run
// the agent process.
func (r *Results) Markdown(w io.Writer) {
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }
	flags := make([]string, 0, len(r.Flags))
	for k, v := range r.Flags {
		flags = append(flags, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(flags)
	fmt.Fprintf(w, "Run %s, %s, %s.\n\n", r.RunID, r.Started.Format(time.DateOnly), strings.Join(flags, " "))
	fmt.Fprintln(w, "| verdict | scenario | case | metric | agent, median [min–max] | baselines, same run (ratio agent/baseline) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for i := range r.Rows {
		row := &r.Rows[i]
		var base []string
		for _, b := range row.Baselines {
			x := fmt.Sprintf("%s %s", b.Name, seriesFigure(b, row.Unit))
			if b.Ratio != nil && b.Ratio.N > 0 {
				x += fmt.Sprintf(" (%s)", stats.Format(b.Ratio.Median, "x"))
			}
			base = append(base, x)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Verdict(row), cell(row.scenarioLabel()), cell(row.Case), cell(row.Metric),
			cell(seriesFigure(row.Agent, row.Unit)), cell(strings.Join(base, "; ")))
	}
	if legend := r.noAgentLegend(); len(legend) > 0 {
		fmt.Fprintf(w, "\nRows marked%s do not run the agent binary: %s.\n", noAgentMark, strings.Join(legend, "; "))
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\n| verdict | target | figures, same run |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, c := range r.Checks {
			fmt.Fprintf(w, "| %s | %s | %s |\n", c.Verdict, cell(c.Target), cell(c.Detail))
		}
	}
	if failed := r.failures(); len(failed) > 0 {
		fmt.Fprintln(w, "\nFailed samples (each makes its row MISS):")
		for _, f := range failed {
			fmt.Fprintf(w, "- %s\n", cell(f))
		}
	}
}
