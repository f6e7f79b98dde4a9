package scenario

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// latencySamples is how many samples the latency scenarios take per
// repetition: each is about a second, and a p50 needs more than three.
func (e *Env) latencySamples() int {
	if e.Quick {
		return 3
	}
	return 5 * e.Reps
}

// Change is scenario 2: edit one spec and time until its replacement runs,
// against the raw stop+remove+create+start sequence.
func Change(ctx context.Context, e *Env) error {
	a, err := e.startAgent(ctx, "change")
	if err != nil {
		return err
	}
	defer e.clean(ctx, a)
	name := e.H.RunID + "-chg"
	file := name + ".yaml"
	ctName := ownership.ContainerName(name)
	specOf := func(v int) string {
		return e.H.SpecYAML(name, sleepArgs, fmt.Sprintf("env: [{name: BENCH_VERSION, value: %q}]", fmt.Sprint(v)))
	}
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	if err := a.WriteSpec(file, specOf(0)); err != nil {
		return err
	}
	if _, err := w.Starts(ctx, 1, startTimeout(1), nil); err != nil {
		w.Close()
		return fmt.Errorf("change: first container: %w", err)
	}
	w.Close()

	rawName := e.H.RunID + "-chg-raw"
	if _, err := e.rawStart(ctx, rawName, specOf(0)); err != nil {
		return err
	}
	m0, err := a.Scrape(ctx)
	if err != nil {
		return err
	}
	var agent, raw samples
	for k := range e.latencySamples() {
		what := fmt.Sprintf("change sample %d", k+1)
		if _, err := e.measure(ctx, what+" "+Agent, &agent, func() (float64, error) { return e.changeAgent(ctx, a, file, ctName, specOf(k+1)) }); err != nil {
			return err
		}
		d, err := e.measure(ctx, what+" "+RawAPI, &raw, func() (float64, error) { return e.changeRaw(ctx, rawName, specOf(k+1)) })
		if err != nil {
			return err
		}
		if math.IsNaN(d) {
			// Start the next sample from a running container again.
			_ = e.H.Cli.ContainerRemove(ctx, rawName, container.RemoveOptions{Force: true})
			if _, err := e.rawStart(ctx, rawName, specOf(k+1)); err != nil {
				return err
			}
		}
	}
	m1, err := a.Scrape(ctx)
	if err != nil {
		return err
	}
	e.Res.Notef("change: the agent's Docker calls per spec edit: %s", callsNote(m0, m1, len(agent.vals)))
	e.logf("change: agent %v ms, raw %v ms", rounded(agent.vals), rounded(raw.vals))
	e.Res.Rows = append(e.Res.Rows, report.NewRow("change", "p50", changeMetric, "ms",
		agent.series(Agent), raw.series(RawAPI+" stop+rm+create+start")))
	return nil
}

const changeMetric = "spec edit to replacement running"

// changeAgent rewrites the spec file and returns the milliseconds from the
// write to the replacement's start (the daemon's StartedAt).
func (e *Env) changeAgent(ctx context.Context, a *harness.Agent, file, ctName, content string) (float64, error) {
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	defer w.Close()
	if err := a.WriteSpec(file, content); err != nil {
		return math.NaN(), err
	}
	// The replacement is the container of that name created after the
	// write; the old one's stop, die and destroy come before it.
	var id string
	err := w.Until(ctx, startTimeout(1)+10*time.Second, func(ev harness.Event) bool {
		if ev.Action == "create" && ev.Name == ctName {
			id = ev.ID
		}
		return ev.Action == "start" && id != "" && ev.ID == id
	})
	if err != nil {
		return math.NaN(), fmt.Errorf("change: agent replacement: %w", err)
	}
	started, _, err := e.H.RunTimes(ctx, id)
	if err != nil {
		return math.NaN(), err
	}
	return millis(started.Sub(t0)), nil
}

// changeRaw replaces the container called name the way the agent must:
// stop (with the spec's grace), remove, create, start. It returns the
// milliseconds to the new container's StartedAt.
func (e *Env) changeRaw(ctx context.Context, name, content string) (float64, error) {
	raw, err := e.H.RawFor(content)
	if err != nil {
		return math.NaN(), err
	}
	t0 := time.Now()
	grace := 10
	if err := e.H.Cli.ContainerStop(ctx, name, container.StopOptions{Timeout: &grace}); err != nil {
		return math.NaN(), fmt.Errorf("change: raw stop: %w", err)
	}
	if err := e.H.Cli.ContainerRemove(ctx, name, container.RemoveOptions{}); err != nil {
		return math.NaN(), fmt.Errorf("change: raw remove: %w", err)
	}
	id, err := raw.Create(ctx, name)
	if err != nil {
		return math.NaN(), err
	}
	if _, err := e.H.Start(ctx, id); err != nil {
		return math.NaN(), err
	}
	started, _, err := e.H.RunTimes(ctx, id)
	if err != nil {
		return math.NaN(), err
	}
	return millis(started.Sub(t0)), nil
}

// rawStart creates and starts a container of the spec directly.
func (e *Env) rawStart(ctx context.Context, name, content string) (string, error) {
	raw, err := e.H.RawFor(content)
	if err != nil {
		return "", err
	}
	id, err := raw.Create(ctx, name)
	if err != nil {
		return "", err
	}
	_, err = e.H.Start(ctx, id)
	return id, err
}

func rounded(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x)
	}
	return out
}
