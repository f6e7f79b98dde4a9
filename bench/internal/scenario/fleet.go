package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
)

// fleetResync is the agent's default resync period, which the fleet keeps:
// the idle figures are those of an agent as installed.
const fleetResync = 30 * time.Second

// Fleet is one agent managing n running containers. The restart and idle
// scenarios share it: starting 100 containers costs the daemon a minute.
type Fleet struct {
	a *harness.Agent
	n int
}

// NewFleet starts an agent with n sleeping specs and waits for its full
// sync.
func NewFleet(ctx context.Context, e *Env, n int) (*Fleet, error) {
	a, err := e.startAgent(ctx, "fleet")
	if err != nil {
		return nil, err
	}
	f := &Fleet{a: a, n: n}
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	defer w.Close()
	for i := range n {
		name := fmt.Sprintf("%s-f%d", e.H.RunID, i)
		if err := a.WriteSpec(name+".yaml", e.H.SpecYAML(name, sleepArgs)); err != nil {
			return f, err
		}
	}
	if _, err := w.Starts(ctx, n, startTimeout(n), nil); err != nil {
		return f, fmt.Errorf("fleet: %w", err)
	}
	_, err = f.waitSynced(ctx, t0)
	e.logf("fleet of %d running containers ready", n)
	return f, err
}

// Close stops the agent and removes the containers.
func (f *Fleet) Close(ctx context.Context, e *Env) error { return e.clean(ctx, f.a) }

// waitSynced polls /metrics until every spec is reconciled as Running and
// the work queue is empty, and returns the time since t0.
func (f *Fleet) waitSynced(ctx context.Context, t0 time.Time) (time.Duration, error) {
	var at time.Duration
	err := f.a.Poll(ctx, startTimeout(f.n), 20*time.Millisecond, func() (bool, error) {
		m, err := f.a.Scrape(ctx)
		if err != nil {
			return false, nil // restarting: not listening yet
		}
		at = time.Since(t0)
		return m[`reconciler_specs{phase="Running"}`] == float64(f.n) && m["reconciler_workqueue_depth"] == 0 &&
			m.Sum("reconciler_reconcile_total") >= float64(f.n), nil
	})
	return at, err
}

// ids lists the run's container ids.
func (e *Env) ids(ctx context.Context) ([]string, error) {
	cs, err := e.H.Cli.ContainerList(ctx, container.ListOptions{All: true, Filters: e.H.RunFilter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out, nil
}

// containerEvents are the actions that mean the agent touched a container.
var containerEvents = map[string]bool{"create": true, "start": true, "die": true, "kill": true, "stop": true, "destroy": true, "restart": true}

// touched counts the distinct containers that events show touched.
func touched(evs []harness.Event) int {
	ids := map[string]bool{}
	for _, ev := range evs {
		if containerEvents[ev.Action] {
			ids[ev.ID] = true
		}
	}
	return len(ids)
}

// Restart is scenario 4: SIGTERM the agent of n running containers, start
// it again, and time /readyz and the full sync; count the containers it
// touched (must be none).
func Restart(ctx context.Context, e *Env, f *Fleet) error {
	var ready, synced, restarts []float64
	for rep := range e.Reps {
		before, err := e.ids(ctx)
		if err != nil {
			return err
		}
		w := e.H.Watch(ctx, time.Now())
		if err := f.a.Stop(); err != nil {
			w.Close()
			return err
		}
		t0 := time.Now()
		if err := f.a.Start(); err != nil {
			w.Close()
			return err
		}
		if err := f.a.WaitReady(ctx, startTimeout(f.n)); err != nil {
			w.Close()
			return fmt.Errorf("restart: %w", err)
		}
		r := time.Since(t0)
		s, err := f.waitSynced(ctx, t0)
		if err != nil {
			w.Close()
			return fmt.Errorf("restart: full sync: %w", err)
		}
		// Anything the restart set off shows within a few seconds.
		evs, err := w.Collect(ctx, 3*time.Second)
		w.Close()
		if err != nil {
			return err
		}
		after, err := e.ids(ctx)
		if err != nil {
			return err
		}
		n := touched(evs)
		if !slices.Equal(before, after) && n == 0 {
			n = 1 // a container was replaced without an event seen
		}
		ready, synced, restarts = append(ready, seconds(r)), append(synced, seconds(s)), append(restarts, float64(n))
		e.logf("restart rep %d: ready %.3fs, full sync %.3fs, containers touched %d", rep+1, r.Seconds(), s.Seconds(), n)
	}
	cse := fmt.Sprintf("%d running", f.n)
	e.Res.Rows = append(e.Res.Rows,
		report.NewRow("restart", cse+": ready", "start to /readyz 200", "s", report.NewSeries(Agent, ready)),
		report.NewRow("restart", cse+": full sync", "start to all specs reconciled", "s", report.NewSeries(Agent, synced)),
		report.NewRow("restart", cse, "containers restarted", "", report.NewSeries(Agent, restarts)))
	rs := stats.Summarize(restarts)
	c := stats.AtMost("restart: zero container restarts", stats.Summary{Median: rs.Max, N: rs.N}, 0, "")
	c.Detail = fmt.Sprintf("%v containers touched per restart", restarts)
	note := ""
	if f.n != 100 {
		note = fmt.Sprintf(" (measured with %d; the target is for 100)", f.n)
	}
	e.Res.Checks = append(e.Res.Checks, c,
		stats.AtMost("restart: ready within 2 s with 100 running containers"+note, stats.Summarize(ready), 2, "s"))
	return nil
}

// Idle is scenario 5: the agent's own cost over a window with its n
// containers running and nothing to do.
func Idle(ctx context.Context, e *Env, f *Fleet, window time.Duration) error {
	// Let the start-up work (the first sync, the Wait of every container)
	// finish before measuring.
	if err := wait(ctx, 5*time.Second); err != nil {
		return err
	}
	pid := f.a.Pid()
	var cpu, rss, calls, lists, inspects, evCount []float64
	perOp := map[string][]float64{}
	for rep := range e.Reps {
		m0, err := f.a.Scrape(ctx)
		if err != nil {
			return err
		}
		c0, err := harness.CPUSeconds(pid)
		if err != nil {
			return err
		}
		t0 := time.Now()
		w := e.H.Watch(ctx, t0)
		evs, err := w.Collect(ctx, window)
		w.Close()
		if err != nil {
			return err
		}
		c1, err := harness.CPUSeconds(pid)
		if err != nil {
			return err
		}
		m1, err := f.a.Scrape(ctx)
		if err != nil {
			return err
		}
		r, err := harness.RSSBytes(pid)
		if err != nil {
			return err
		}
		el := time.Since(t0)
		perMin := func(key string) float64 { return (m1[key] - m0[key]) / el.Minutes() }
		var all float64
		for k := range m1 {
			if op, ok := dockerOp(k); ok {
				v := perMin(k)
				all += v
				perOp[op] = append(perOp[op], v)
			}
		}
		cpu = append(cpu, (c1-c0)/el.Seconds()*100)
		rss = append(rss, r/(1<<20))
		calls = append(calls, all)
		lists = append(lists, perMin(dockerCount("list")))
		inspects = append(inspects, perMin(dockerCount("inspect")))
		evCount = append(evCount, float64(touched(evs)))
		e.logf("idle rep %d: cpu %.3f%%, rss %.1f MiB, %.1f docker calls/min", rep+1, cpu[rep], rss[rep], all)
	}
	cse := fmt.Sprintf("%d running", f.n)
	e.Res.Rows = append(e.Res.Rows,
		report.NewRow("idle", cse, "agent CPU", "% of one core", report.NewSeries(Agent, cpu)),
		report.NewRow("idle", cse, "agent RSS", "MiB", report.NewSeries(Agent, rss)),
		report.NewRow("idle", cse, "Docker API calls", "calls/min", report.NewSeries(Agent, calls)),
		report.NewRow("idle", cse, "list calls", "calls/min", report.NewSeries(Agent, lists)),
		report.NewRow("idle", cse, "inspect calls", "calls/min", report.NewSeries(Agent, inspects)),
		report.NewRow("idle", cse, "containers touched", "", report.NewSeries(Agent, evCount)))
	var ops []string
	for op, v := range perOp {
		if s := stats.Summarize(v); s.Max > 0 {
			ops = append(ops, fmt.Sprintf("%s %.1f", op, s.Median))
		}
	}
	slices.Sort(ops)
	e.Res.Notef("idle: Docker API calls per minute by operation (median): %s; resync every %s", strings.Join(ops, ", "), fleetResync)
	note := ""
	if f.n != 100 {
		note = fmt.Sprintf(" (measured with %d; the target is for 100)", f.n)
	}
	listLimit := time.Minute.Seconds()/fleetResync.Seconds() + 1
	ins := stats.Summarize(inspects)
	resync := stats.AtMost("idle: a resync is one list call, no inspect per container", stats.Summarize(lists), listLimit, "calls/min")
	if resync.Verdict == stats.Pass && ins.Max > 0 {
		resync.Verdict = stats.Miss
	}
	resync.Detail += fmt.Sprintf("; inspect %s/min", stats.Format(ins.Max, ""))
	e.Res.Checks = append(e.Res.Checks,
		stats.Below("idle: agent CPU under 0.5% of one core"+note, stats.Summarize(cpu), 0.5, "%"),
		stats.Below("idle: agent RSS under 40 MiB"+note, stats.Summarize(rss), 40, "MiB"),
		resync)
	return nil
}

const dockerCountPrefix = "reconciler_docker_request_duration_seconds_count{operation=\""

func dockerCount(op string) string { return dockerCountPrefix + op + "\"}" }

// dockerOp reads the operation out of a request-count series name.
func dockerOp(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, dockerCountPrefix)
	if !ok || !strings.HasSuffix(rest, "\"}") {
		return "", false
	}
	return strings.TrimSuffix(rest, "\"}"), true
}

// callsNote describes the agent's Docker calls between two scrapes, per
// sample: how many of each operation and their mean latency.
func callsNote(m0, m1 harness.Metrics, samples int) string {
	var parts []string
	for k := range m1 {
		op, ok := dockerOp(k)
		if !ok {
			continue
		}
		n := m1[k] - m0[k]
		if n <= 0 {
			continue
		}
		sum := strings.Replace(k, "_count{", "_sum{", 1)
		mean := (m1[sum] - m0[sum]) / n * 1000
		parts = append(parts, fmt.Sprintf("%s %.1f (mean %.0f ms)", op, n/float64(samples), mean))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
