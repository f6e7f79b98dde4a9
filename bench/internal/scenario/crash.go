package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// crashArgs make a box container exit with code 1 a second after it
// starts: long enough to be seen running, short enough to loop quickly.
var crashArgs = []string{"exit", "--code", "1", "--after", "1s"}

// restart is one measured crash: the first restart of a fresh container,
// by the daemon's clock.
type restart struct {
	exitToStart float64 // ms from FinishedAt of the crashed run to StartedAt of the next
	exitToDie   float64 // ms from FinishedAt to the die event
}

// Crash is scenario 3: a container exits(1) shortly after start; the time
// from the exit to the replacement running, for the agent (restartPolicy
// Always, zero initial backoff), dockerd's own on-failure policy and a raw
// restart-on-die loop. Every sample is the first restart of a fresh
// container: the agent's and dockerd's later restarts back off on purpose.
func Crash(ctx context.Context, e *Env) error {
	a, err := e.startAgent(ctx, "crash")
	if err != nil {
		return err
	}
	defer e.clean(ctx, a)
	var agent, native, loop samples
	var die []float64
	var m0, m1 harness.Metrics // the agent's, around its samples
	for k := range e.latencySamples() {
		for _, c := range []struct {
			name string
			into *samples
			run  func() (restart, error)
		}{
			{Agent, &agent, func() (restart, error) { return e.crashAgent(ctx, a, k, &m0, &m1) }},
			{DockerdRP, &native, func() (restart, error) { return e.crashNative(ctx, k) }},
			{RawLoop, &loop, func() (restart, error) { return e.crashLoop(ctx, k) }},
		} {
			_, err := e.measure(ctx, fmt.Sprintf("crash sample %d %s", k+1, c.name), c.into, func() (float64, error) {
				r, err := c.run()
				if err == nil {
					die = append(die, r.exitToDie)
				}
				return r.exitToStart, err
			})
			if err != nil {
				return err
			}
		}
	}
	e.Res.Notef("crash: the agent's Docker calls per sample, from the spec's creation to its first restart: %s",
		callsNote(m0, m1, len(agent.vals)))
	e.logf("crash: agent %v ms, raw loop %v ms, dockerd %v ms", rounded(agent.vals), rounded(loop.vals), rounded(native.vals))
	row := report.NewRow("crash", "p50", crashMetric, "ms", agent.series(Agent), loop.series(RawLoop), native.series(DockerdRP))
	e.Res.Rows = append(e.Res.Rows, row)
	e.Res.Daemon = append(e.Res.Daemon,
		report.Figure{Name: "process exit to die event", Unit: "ms", Summary: stats.Summarize(die), Issue: "about 80 ms"},
		report.Figure{Name: "dockerd on-failure: exit to running again", Unit: "ms", Summary: row.Baseline(DockerdRP).Summary, Issue: "about 640 ms"})
	return nil
}

const crashMetric = "process exit to replacement running"

func (e *Env) crashSpec(name string) string {
	return e.H.SpecYAML(name, crashArgs, "restartPolicy: Always", "backoff: {initial: 0s}",
		"terminationGracePeriod: 1s")
}

// crashAgent adds a crashing spec, measures its first restart and deletes
// the spec again.
// The agent's call counters are added up into before and after, around
// the part measured.
func (e *Env) crashAgent(ctx context.Context, a *harness.Agent, k int, before, after *harness.Metrics) (restart, error) {
	name := fmt.Sprintf("%s-crash%d", e.H.RunID, k)
	w := e.H.Watch(ctx, time.Now())
	defer w.Close()
	m0, err := a.Scrape(ctx)
	if err != nil {
		return restart{}, err
	}
	if err := a.WriteSpec(name+".yaml", e.crashSpec(name)); err != nil {
		return restart{}, err
	}
	ctName := ownership.ContainerName(name)
	r, id, err := e.firstRestart(ctx, w, func(ev harness.Event) bool { return ev.Name == ctName }, nil)
	if m1, serr := a.Scrape(ctx); err == nil && serr == nil {
		*before, *after = add(*before, m0), add(*after, m1)
	}
	if rerr := a.RemoveSpec(name + ".yaml"); err == nil {
		err = rerr
	}
	if err != nil {
		return r, fmt.Errorf("crash: agent: %w", err)
	}
	// The agent removes the container; wait for that, so the next sample
	// starts on a quiet daemon.
	err = w.Until(ctx, 30*time.Second, func(ev harness.Event) bool { return ev.Action == "destroy" && ev.ID == id })
	if err != nil {
		return r, fmt.Errorf("crash: agent did not remove its container: %w", err)
	}
	return r, nil
}

// crashNative lets dockerd restart the container (policy on-failure).
func (e *Env) crashNative(ctx context.Context, k int) (restart, error) {
	raw, err := e.H.RawFor(e.crashSpec("native"))
	if err != nil {
		return restart{}, err
	}
	raw.Host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure}
	return e.crashRaw(ctx, raw, fmt.Sprintf("%s-native%d", e.H.RunID, k), false)
}

// crashLoop restarts the container itself the moment its die event arrives.
func (e *Env) crashLoop(ctx context.Context, k int) (restart, error) {
	raw, err := e.H.RawFor(e.crashSpec("loop"))
	if err != nil {
		return restart{}, err
	}
	return e.crashRaw(ctx, raw, fmt.Sprintf("%s-loop%d", e.H.RunID, k), true)
}

func (e *Env) crashRaw(ctx context.Context, raw *harness.Raw, name string, restartOnDie bool) (restart, error) {
	w := e.H.Watch(ctx, time.Now())
	defer w.Close()
	id, err := raw.Create(ctx, name)
	if err != nil {
		return restart{}, err
	}
	defer e.H.Cli.ContainerRemove(context.WithoutCancel(ctx), id, container.RemoveOptions{Force: true})
	if _, err := e.H.Start(ctx, id); err != nil {
		return restart{}, err
	}
	var onDie func() error
	if restartOnDie {
		onDie = func() error { _, err := e.H.Start(ctx, id); return err }
	}
	r, _, err := e.firstRestart(ctx, w, func(ev harness.Event) bool { return ev.ID == id }, onDie)
	if err != nil {
		return r, fmt.Errorf("crash: %s: %w", name, err)
	}
	return r, nil
}

// firstRestart follows one container (picked by keep) through start, die
// and start again; onDie, when set, runs as the die event arrives. The
// times come from the daemon: StartedAt of the second run and FinishedAt
// of the first, which it keeps while the container runs again.
func (e *Env) firstRestart(ctx context.Context, w *harness.Watch, keep func(harness.Event) bool, onDie func() error) (restart, string, error) {
	var id string
	var starts int
	var dieAt time.Time
	var cbErr error
	err := w.Until(ctx, startTimeout(1)+30*time.Second, func(ev harness.Event) bool {
		if !keep(ev) || (id != "" && ev.ID != id) {
			return false
		}
		switch ev.Action {
		case "start":
			id = ev.ID
			starts++
		case "die":
			if starts == 1 && dieAt.IsZero() {
				dieAt = ev.Time
				if onDie != nil {
					cbErr = onDie()
				}
			}
		}
		return cbErr != nil || (starts == 2 && !dieAt.IsZero())
	})
	if err == nil {
		err = cbErr
	}
	if err != nil {
		return restart{}, id, err
	}
	started, finished, err := e.H.RunTimes(ctx, id)
	if err != nil {
		return restart{}, id, err
	}
	if !finished.Before(started) {
		return restart{}, id, fmt.Errorf("container %s: FinishedAt %s is not before StartedAt %s", id[:12], finished, started)
	}
	return restart{exitToStart: millis(started.Sub(finished)), exitToDie: millis(dieAt.Sub(finished))}, id, nil
}

// add sums two scrapes series by series (nil counts as empty).
func add(a, b harness.Metrics) harness.Metrics {
	out := harness.Metrics{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}
