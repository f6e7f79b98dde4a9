package scenario

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
	"github.com/reconciler/reconciler/pkg/images"
)

// startTimeout bounds one cold convergence of n containers: generous, as
// the daemon is shared.
func startTimeout(n int) time.Duration { return time.Duration(n)*5*time.Second + time.Minute }

// concurrencies tried for the raw limit.
var concurrencies = []int{1, 2, 4, 8}

// Cold is scenario 1: n specs dropped into the spec directory at once,
// until all run, against the raw API at its best concurrency and against
// docker-compose up -d.
func Cold(ctx context.Context, e *Env, ns []int) error {
	conc, err := e.calibrate(ctx)
	if err != nil {
		return err
	}
	var cpuPer []float64
	for _, n := range ns {
		var agent, raw, compose []float64
		for rep := range e.Reps {
			what := func(who string) string { return fmt.Sprintf("cold N=%d rep %d %s", n, rep+1, who) }
			runs := []func() error{
				func() error {
					var cpu float64
					d, err := e.measure(ctx, what(RawAPI), func() (float64, error) {
						d, c, err := e.coldRaw(ctx, n, conc, nil)
						cpu = c
						return d, err
					})
					raw = append(raw, d)
					if cpu > 0 {
						cpuPer = append(cpuPer, cpu/float64(n))
					}
					return err
				},
				func() error {
					d, err := e.measure(ctx, what(Agent), func() (float64, error) { return e.coldAgent(ctx, n, rep) })
					agent = append(agent, d)
					return err
				},
			}
			if e.Compose != nil {
				runs = append(runs, func() error {
					d, err := e.measure(ctx, what(Compose), func() (float64, error) { return e.coldCompose(ctx, n, rep) })
					compose = append(compose, d)
					return err
				})
			}
			// Rotate who goes first, so no contender always meets the
			// daemon just after the previous cleanup.
			for i := range runs {
				if err := runs[(i+rep)%len(runs)](); err != nil {
					return err
				}
			}
			e.logf("cold N=%d rep %d: agent %.2fs raw %.2fs compose %v", n, rep+1, agent[rep], raw[rep], compose)
		}
		base := []report.Series{report.NewSeries(fmt.Sprintf("%s (c=%d)", RawAPI, conc), raw)}
		if e.Compose != nil {
			base = append(base, report.NewSeries(Compose, compose))
		}
		e.Res.Rows = append(e.Res.Rows, report.NewRow("cold", fmt.Sprintf("N=%d", n), "time to all running", "s",
			report.NewSeries(Agent, agent), base...))
	}
	e.Res.Daemon = append(e.Res.Daemon, report.Figure{Name: "dockerd+containerd CPU per container (raw create+start)",
		Unit: "CPU-s", Summary: stats.Summarize(cpuPer), Issue: "about 0.9 CPU-s"})
	e.judgeCold(ns)
	return nil
}

// calibrate finds the raw limit: the concurrency of direct create+start
// calls that starts containers fastest on this daemon now. It also measures
// one start's latency at concurrency 1.
func (e *Env) calibrate(ctx context.Context) (int, error) {
	m := 12
	if e.Quick {
		m = 6
	}
	best, bestRate := 1, 0.0
	var rates []string
	var starts []float64
	for _, c := range concurrencies {
		lat := &starts
		if c != 1 {
			lat = nil
		}
		d, err := e.measure(ctx, fmt.Sprintf("calibration c=%d", c), func() (float64, error) {
			d, _, err := e.coldRaw(ctx, m, c, lat)
			return d, err
		})
		if err != nil {
			return 0, err
		}
		if math.IsNaN(d) {
			continue
		}
		rate := float64(m) / d
		rates = append(rates, fmt.Sprintf("c=%d %.2f/s", c, rate))
		if rate > bestRate {
			best, bestRate = c, rate
		}
	}
	if bestRate == 0 {
		return 0, fmt.Errorf("calibration: no concurrency started its containers")
	}
	e.logf("raw create+start: %s; best c=%d", strings.Join(rates, ", "), best)
	e.Res.Daemon = append(e.Res.Daemon,
		report.Figure{Name: fmt.Sprintf("raw create+start per second (best of c=1,2,4,8: c=%d)", best), Unit: "/s",
			Summary: stats.Summarize([]float64{bestRate}), Issue: "about 2/s whatever the concurrency"},
		report.Figure{Name: "one start call (c=1)", Unit: "s", Summary: stats.Summarize(starts), Issue: "about 0.5 s"})
	e.Res.Notef("raw limit calibration with %d containers each: %s", m, strings.Join(rates, ", "))
	return best, nil
}

// coldRaw creates and starts n containers with c calls in flight and
// returns the seconds until the last one started, and the daemon's CPU
// seconds meanwhile. When lat is not nil, every start call's latency is
// added to it.
func (e *Env) coldRaw(ctx context.Context, n, c int, lat *[]float64) (float64, float64, error) {
	defer e.clean(ctx)
	raw, err := e.H.RawFor(e.H.SpecYAML("raw", sleepArgs))
	if err != nil {
		return math.NaN(), 0, err
	}
	cpu0, _ := harness.DaemonCPUSeconds()
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	defer w.Close()
	starts := make([]float64, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c)
	for i := range n {
		g.Go(func() error {
			id, err := raw.Create(gctx, fmt.Sprintf("%s-raw-%d", e.H.RunID, i))
			if err != nil {
				return err
			}
			d, err := e.H.Start(gctx, id)
			starts[i] = d.Seconds()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return math.NaN(), 0, err
	}
	last, err := w.Starts(ctx, n, startTimeout(n), nil)
	if err != nil {
		return math.NaN(), 0, fmt.Errorf("raw: %w", err)
	}
	cpu1, _ := harness.DaemonCPUSeconds()
	if lat != nil {
		*lat = append(*lat, starts...)
	}
	return seconds(last.Sub(t0)), cpu1 - cpu0, nil
}

// coldAgent starts an agent on an empty spec directory, drops n spec files
// into it and returns the seconds until the last container started.
func (e *Env) coldAgent(ctx context.Context, n, rep int) (float64, error) {
	a, err := e.startAgent(ctx, fmt.Sprintf("cold-%d-%d", n, rep))
	if err != nil {
		return math.NaN(), err
	}
	defer e.clean(ctx, a)
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	defer w.Close()
	for i := range n {
		name := fmt.Sprintf("%s-c%d", e.H.RunID, i)
		if err := a.WriteSpec(name+".yaml", e.H.SpecYAML(name, sleepArgs)); err != nil {
			return math.NaN(), err
		}
	}
	last, err := w.Starts(ctx, n, startTimeout(n), nil)
	if err != nil {
		return math.NaN(), fmt.Errorf("agent: %w", err)
	}
	return seconds(last.Sub(t0)), nil
}

// coldCompose runs docker-compose up -d on n services made like the
// agent's containers (same image, args, network, log and stop settings).
func (e *Env) coldCompose(ctx context.Context, n, rep int) (float64, error) {
	defer e.clean(ctx)
	dir := filepath.Join(e.H.Work, fmt.Sprintf("compose-%d-%d", n, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return math.NaN(), fmt.Errorf("compose directory: %w", err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(composeFile(n, e.H.RunID)), 0o644); err != nil {
		return math.NaN(), fmt.Errorf("compose file: %w", err)
	}
	t0 := time.Now()
	w := e.H.Watch(ctx, t0)
	defer w.Close()
	args := append(e.Compose[1:], "-p", e.H.RunID+"cold", "-f", file, "up", "-d")
	cctx, cancel := context.WithTimeout(ctx, startTimeout(n))
	defer cancel()
	cmd := exec.CommandContext(cctx, e.Compose[0], args...)
	// docker-compose v1 deadlocks when a project has more services than
	// its parallel limit (64 by default, docker/compose#5864 and #8226),
	// and gives up on a request after 60 s, which a hundred requests in
	// flight on a busy daemon exceed.
	cmd.Env = append(os.Environ(), fmt.Sprintf("COMPOSE_PARALLEL_LIMIT=%d", max(64, 2*n)),
		fmt.Sprintf("COMPOSE_HTTP_TIMEOUT=%d", int(startTimeout(n).Seconds())))
	if out, err := cmd.CombinedOutput(); err != nil {
		return math.NaN(), fmt.Errorf("docker-compose up: %w\n%s", err, out)
	}
	last, err := w.Starts(ctx, n, startTimeout(n), nil)
	if err != nil {
		return math.NaN(), fmt.Errorf("docker-compose: %w", err)
	}
	return seconds(last.Sub(t0)), nil
}

// composeFile is a compose file of n services shaped like the agent's
// containers of the same spec (see docker.BuildConfig).
func composeFile(n int, runID string) string {
	var b strings.Builder
	b.WriteString("version: \"2.4\"\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, `  s%d:
    image: %s
    command: ["sleep"]
    network_mode: bridge
    init: false
    stop_signal: SIGTERM
    stop_grace_period: 10s
    logging: {driver: json-file, options: {max-size: "10m", max-file: "3"}}
    labels: {%s: %s}
`, i, images.BoxImage, harness.LabelRun, runID)
	}
	return b.String()
}

// judgeCold checks the cold targets at N=100, or at the largest N run.
func (e *Env) judgeCold(ns []int) {
	n := 100
	if !slices.Contains(ns, n) {
		n = ns[len(ns)-1]
	}
	row := e.Res.Find("cold", fmt.Sprintf("N=%d", n), "time to all running")
	if row == nil {
		return
	}
	note := ""
	if n != 100 {
		note = fmt.Sprintf(" (measured at N=%d; the target is for N=100)", n)
	}
	raw := row.Baselines[0]
	c := stats.AtMost("cold N=100: agent within 1.10x of the raw limit"+note, *raw.Ratio, 1.10, "x")
	c.Detail += fmt.Sprintf(" (agent %s, raw %s)", stats.Format(row.Agent.Summary.Median, "s"), stats.Format(raw.Summary.Median, "s"))
	e.Res.Checks = append(e.Res.Checks, c)
	target := "cold N=100: agent faster than docker-compose" + note
	if cs := row.Baseline(Compose); cs != nil {
		c := stats.Below(target, *cs.Ratio, 1, "x")
		c.Detail += fmt.Sprintf(" (agent %s, docker-compose %s)", stats.Format(row.Agent.Summary.Median, "s"), stats.Format(cs.Summary.Median, "s"))
		e.Res.Checks = append(e.Res.Checks, c)
	} else {
		e.Res.Checks = append(e.Res.Checks, stats.Check{Target: target, Verdict: stats.NA, Detail: "docker-compose not installed"})
	}
}
