// Package scenario holds the benchmark's scenarios (issue 7). Each runs the
// agent as a real process next to its baselines, back to back within every
// repetition, and adds its rows, daemon figures and target checks to the
// results.
package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
)

// Env is what every scenario runs with.
type Env struct {
	H    *harness.Harness
	Reps int
	// Quick shrinks every scenario to smoke-test the program.
	Quick bool
	// Compose is the docker-compose command, nil when it is not installed.
	Compose []string
	Log     io.Writer
	Res     *report.Results
}

// Names of the contenders, as the table and the chart show them.
const (
	Agent     = "agent"
	RawAPI    = "raw API"
	Compose   = "docker-compose"
	RawLoop   = "raw restart-on-die loop"
	DockerdRP = "dockerd on-failure"
	// InProcess names the figures of the rows that run a part of the
	// agent inside the benchmark, not the agent process.
	InProcess = "in-process"
)

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.Log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// sleepArgs keep a box container running until it is stopped.
var sleepArgs = []string{"sleep"}

// wait sleeps for d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clean stops the agents given and removes every container of the run, so
// the next measurement starts on a quiet daemon.
func (e *Env) clean(ctx context.Context, agents ...*harness.Agent) error {
	for _, a := range agents {
		if err := a.Stop(); err != nil {
			return err
		}
	}
	_, err := e.H.RemoveAll(ctx)
	return err
}

// startAgent starts a fresh agent and waits for it to be ready.
func (e *Env) startAgent(ctx context.Context, name string, extra ...string) (*harness.Agent, error) {
	a, err := e.H.NewAgent(name, extra...)
	if err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		return nil, err
	}
	if err := a.WaitReady(ctx, 60*time.Second); err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	return a, nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// samples are one contender's samples in one measurement, in the order
// taken.
type samples struct {
	vals     []float64
	failures []string
}

func (s *samples) series(name string) report.Series {
	return report.NewSeries(name, s.vals, s.failures...)
}

// measure takes one sample into s. A sample that fails (the shared daemon
// has bad moments) does not end the scenario, and is not left out either:
// it stays in place as NaN with its reason, and makes its row and every
// target judged from it MISS. Only Ctrl-C ends the scenario.
func (e *Env) measure(ctx context.Context, what string, s *samples, f func() (float64, error)) (float64, error) {
	v, err := f()
	switch {
	case err == nil:
		s.vals = append(s.vals, v)
		return v, nil
	case ctx.Err() != nil:
		return math.NaN(), ctx.Err()
	}
	s.vals = append(s.vals, math.NaN())
	s.failures = append(s.failures, fmt.Sprintf("%s: %v", what, err))
	e.logf("%s: sample FAILED (counts as a miss): %v", what, err)
	return math.NaN(), nil
}
