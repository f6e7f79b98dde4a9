// Command reconbench measures the reconciler agent against the local Docker
// daemon (issue 7): every scenario runs the agent as a real process next to
// its baselines, measured in the same run, and the results are printed as a
// table and written as JSON and a PNG chart.
//
//	cd bench && go run ./cmd/reconbench [--quick] [--n 10,50,100] [--reps 3]
//	    [--scenarios cold,change,crash,restart,idle,ledger,controlplane] [--out DIR]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reconciler/reconciler/bench/internal/harness"
	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/scenario"
)

var allScenarios = []string{"cold", "change", "crash", "restart", "idle", "ledger", "controlplane"}

type config struct {
	ns        []int
	reps      int
	scenarios []string
	out       string
	quick     bool
	idle      time.Duration
	render    bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconbench:", err)
		os.Exit(2)
	}
	do := run
	if cfg.render {
		do = render
	}
	if err := do(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "reconbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("reconbench", flag.ContinueOnError)
	n := fs.String("n", "10,50,100", "numbers of specs for cold convergence; the largest also sizes the restart and idle fleet")
	reps := fs.Int("reps", 3, "repetitions of every measurement")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run")
	out := fs.String("out", "", "directory for results.json, results.md, results.png and controlplane.txt (default: the bench module's results/, or results/quick/ with --quick)")
	quick := fs.Bool("quick", false, "smoke test: N=5, one repetition, a 10 s idle window; writes to results/quick/ unless --out says otherwise")
	idle := fs.Duration("idle-window", time.Minute, "idle measurement window")
	render := fs.Bool("render", false, "measure nothing: print the table of --out's results.json and redraw its chart")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{reps: *reps, out: *out, quick: *quick, idle: *idle, render: *render}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		if !set["n"] {
			*n = "5"
		}
		if !set["reps"] {
			cfg.reps = 1
		}
		if !set["idle-window"] {
			cfg.idle = 10 * time.Second
		}
	}
	for _, s := range strings.Split(*n, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 1 {
			return config{}, fmt.Errorf("--n: %q is not a positive number", s)
		}
		cfg.ns = append(cfg.ns, v)
	}
	slices.Sort(cfg.ns)
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			return config{}, fmt.Errorf("--scenarios: unknown %q (choose from %s)", s, strings.Join(allScenarios, ","))
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	if cfg.reps < 1 {
		return config{}, fmt.Errorf("--reps must be at least 1")
	}
	return cfg, nil
}

// render prints and redraws saved results.
func render(cfg config) error {
	if cfg.out == "" {
		repo, err := harness.ModuleDir(context.Background())
		if err != nil {
			return err
		}
		cfg.out = defaultOut(repo, cfg.quick)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.out, "results.json"))
	if err != nil {
		return err
	}
	var res report.Results
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(cfg.out, "results.json"), err)
	}
	if err := res.Table(os.Stdout); err != nil {
		return err
	}
	return res.Write(cfg.out)
}

func run(cfg config) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	h, err := harness.New(ctx, os.Stderr)
	if err != nil {
		return err
	}
	// Cleanup runs on Ctrl-C too, so it gets its own context.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err = errors.Join(err, h.Close(cctx))
	}()
	if cfg.out == "" {
		cfg.out = defaultOut(h.Repo, cfg.quick)
	}
	fmt.Fprintf(os.Stderr, "reconbench run %s: building the agent and the box image\n", h.RunID)
	if err := h.Prepare(ctx); err != nil {
		return err
	}
	res := &report.Results{RunID: h.RunID, Started: started.UTC(), Host: hostInfo(ctx, h),
		Flags: map[string]any{"n": cfg.ns, "reps": cfg.reps, "scenarios": cfg.scenarios, "quick": cfg.quick, "idleWindow": cfg.idle.String()}}
	env := &scenario.Env{H: h, Reps: cfg.reps, Quick: cfg.quick, Compose: composeCommand(), Log: os.Stderr, Res: res}
	if env.Compose == nil {
		res.Notef("docker-compose is not installed: its baseline is left out (make bench installs it)")
	}

	failed := runScenarios(ctx, cfg, env)
	h.KeepWork = res.HasFailures()
	res.Duration = time.Since(started).Round(time.Second).String()
	// The targets of issue 13 first, then the scenarios' own.
	res.Checks = append(scenario.Judge(res), res.Checks...)
	if err := res.Table(os.Stdout); err != nil {
		return err
	}
	if err := res.Write(cfg.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "results written to %s (results.json, results.md, results.png)\n", cfg.out)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// runScenarios runs the chosen scenarios in a fixed order; one that fails
// is noted and the others still run. It returns the failed ones.
func runScenarios(ctx context.Context, cfg config, e *scenario.Env) []string {
	want := func(s string) bool { return slices.Contains(cfg.scenarios, s) }
	var failed []string
	try := func(name string, f func() error) {
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "%s  scenario %s\n", time.Now().Format("15:04:05"), name)
		if err := f(); err != nil {
			failed = append(failed, name)
			if e.Res.Failed == nil {
				e.Res.Failed = map[string]string{}
			}
			e.Res.Failed[name] = err.Error()
			fmt.Fprintf(os.Stderr, "scenario %s failed: %v\n", name, err)
		}
	}
	if want("cold") {
		try("cold", func() error { return scenario.Cold(ctx, e, cfg.ns) })
	}
	if want("change") {
		try("change", func() error { return scenario.Change(ctx, e) })
	}
	if want("crash") {
		try("crash", func() error { return scenario.Crash(ctx, e) })
	}
	if want("restart") || want("idle") {
		try("fleet", func() error {
			f, err := scenario.NewFleet(ctx, e, cfg.ns[len(cfg.ns)-1])
			if f != nil {
				defer f.Close(ctx, e)
			}
			if err != nil {
				return err
			}
			if want("restart") {
				try("restart", func() error { return scenario.Restart(ctx, e, f) })
			}
			if want("idle") {
				try("idle", func() error { return scenario.Idle(ctx, e, f, cfg.idle) })
			}
			return nil
		})
	}
	if want("ledger") {
		try("ledger", func() error { return scenario.Ledger(ctx, e) })
	}
	if want("controlplane") {
		try("controlplane", func() error { return scenario.ControlPlane(ctx, e, cfg.out) })
	}
	return failed
}

// defaultOut is where results go: a quick run's own directory, which git
// ignores, so a smoke run never overwrites the results of a full one.
func defaultOut(repo string, quick bool) string {
	if quick {
		return filepath.Join(repo, "bench", "results", "quick")
	}
	return filepath.Join(repo, "bench", "results")
}

// composeCommand finds docker-compose (v1 or the v2 standalone binary).
func composeCommand() []string {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	return nil
}

func hostInfo(ctx context.Context, h *harness.Harness) map[string]any {
	info := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version()}
	if v, err := h.Cli.ServerVersion(ctx); err == nil {
		info["docker"] = v.Version
		info["dockerAPI"] = v.APIVersion
	}
	if p := composeCommand(); p != nil {
		if out, err := exec.CommandContext(ctx, p[0], "version", "--short").Output(); err == nil {
			info["compose"] = strings.TrimSpace(string(out))
		}
	}
	return info
}
