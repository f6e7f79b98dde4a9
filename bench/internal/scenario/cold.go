package scenario

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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

// minCalibration is the fewest batches measured at each concurrency: one
// batch on a shared daemon says little, and the best of four single
// batches is mostly the luckiest.
const minCalibration = 3

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
		var agent, raw, compose samples
		for rep := range e.Reps {
			what := func(who string) string { return fmt.Sprintf("cold N=%d rep %d %s", n, rep+1, who) }
			runs := []func() error{
				func() error {
					var cpu float64
					_, err := e.measure(ctx, what(RawAPI), &raw, func() (float64, error) {
						d, c, err := e.coldRaw(ctx, n, conc, nil)
						cpu = c
						return d, err
					})
					if cpu > 0 {
						cpuPer = append(cpuPer, cpu/float64(n))
					}
					return err
				},
				func() error {
					_, err := e.measure(ctx, what(Agent), &agent, func() (float64, error) { return e.coldAgent(ctx, n, rep) })
					return err
				},
			}
			if e.Compose != nil {
				runs = append(runs, func() error {
					_, err := e.measure(ctx, what(Compose), &compose, func() (float64, error) { return e.coldCompose(ctx, n, rep) })
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
			e.logf("cold N=%d rep %d: agent %.2fs raw %.2fs compose %v", n, rep+1, agent.vals[rep], raw.vals[rep], compose.vals)
		}
		base := []report.Series{raw.series(fmt.Sprintf("%s (c=%d)", RawAPI, conc))}
		if e.Compose != nil {
			base = append(base, compose.series(Compose))
		}
		e.Res.Rows = append(e.Res.Rows, report.NewRow("cold", coldCase(n), coldMetric, "s", agent.series(Agent), base...))
	}
	e.Res.Daemon = append(e.Res.Daemon, report.Figure{Name: "dockerd+containerd CPU per container (raw create+start)",
		Unit: "CPU-s", Summary: stats.Summarize(cpuPer), Issue: "about 0.9 CPU-s"})
	return nil
}

const coldMetric = "time to all running"

func coldCase(n int) string { return fmt.Sprintf("N=%d", n) }

// calibrate finds the raw limit: the same batch of containers created and
// started by direct API calls at each concurrency, at least minCalibration
// times each. The batches go in rounds, one per concurrency, each round
// starting one further along, so the drift of a shared machine falls on
// every concurrency alike. It returns the concurrency with the highest
// median rate, and also measures one start's latency at concurrency 1.
func (e *Env) calibrate(ctx context.Context) (int, error) {
	m := 16 // two waves at the highest concurrency
	if e.Quick {
		m = 4
	}
	lim := &report.RawLimit{Containers: m, MinSamples: max(minCalibration, e.Reps)}
	rates := make([]samples, len(concurrencies))
	var starts []float64
	for round := range lim.MinSamples {
		for k := range concurrencies {
			i := (k + round) % len(concurrencies)
			c := concurrencies[i]
			lat := &starts
			if c != 1 {
				lat = nil
			}
			_, err := e.measure(ctx, fmt.Sprintf("round %d", round+1), &rates[i], func() (float64, error) {
				d, _, err := e.coldRaw(ctx, m, c, lat)
				return float64(m) / d, err
			})
			if err != nil {
				return 0, err
			}
		}
	}
	for i, c := range concurrencies {
		lim.Runs = append(lim.Runs, report.Calibration{Concurrency: c, Rate: rates[i].series(fmt.Sprintf("c=%d", c))})
	}
	e.Res.RawLimit = lim
	best, ok := lim.Best()
	if !ok {
		return 0, fmt.Errorf("raw limit calibration: no concurrency started its %d containers", m)
	}
	e.logf("raw create+start of %d containers: %s; best c=%d", m, lim, best.Concurrency)
	e.Res.Daemon = append(e.Res.Daemon,
		report.Figure{Name: "one start call (c=1)", Unit: "s", Summary: stats.Summarize(starts), Issue: "about 0.5 s"})
	return best.Concurrency, nil
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
	m0, err := a.Scrape(ctx)
	if err != nil {
		return math.NaN(), err
	}
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
	if m1, err := a.Scrape(ctx); err == nil && rep == 0 {
		e.Res.Notef("cold N=%d: the agent's Docker calls per spec, to the last start: %s", n, callsNote(m0, m1, n))
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
