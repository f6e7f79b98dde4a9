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
	// Dropped counts the samples left out because they failed.
	Dropped int
}

// Names of the contenders, as the table and the chart show them.
const (
	Agent     = "agent"
	RawAPI    = "raw API"
	Compose   = "docker-compose"
	RawLoop   = "raw restart-on-die loop"
	DockerdRP = "dockerd on-failure"
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

// measure runs one sample. A sample that fails (the shared daemon has bad
// moments) is noted and counted as missing (NaN), which the summaries
// leave out, instead of ending the scenario; only Ctrl-C ends it.
func (e *Env) measure(ctx context.Context, what string, f func() (float64, error)) (float64, error) {
	v, err := f()
	switch {
	case err == nil:
		return v, nil
	case ctx.Err() != nil:
		return math.NaN(), ctx.Err()
	}
	e.Dropped++
	e.Res.Notef("%s: sample left out: %v", what, err)
	e.logf("%s: sample left out: %v", what, err)
	return math.NaN(), nil
}
