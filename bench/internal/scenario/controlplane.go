package scenario

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reconciler/reconciler/bench/internal/report"
)

// ControlPlane is scenario 6: the controller alone against a fake runtime,
// as Go benchmarks in pkg/controller (BenchmarkReconcileNoop). Their output
// is saved as given, for benchstat, to out/controlplane.txt.
func ControlPlane(ctx context.Context, e *Env, out string) error {
	count, benchtime := e.Reps, "2s"
	if e.Quick {
		count, benchtime = 1, "1x"
	}
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkReconcileNoop$", "-benchtime", benchtime,
		"-count", strconv.Itoa(count), "-timeout", "30m", "./pkg/controller"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.H.Repo
	cmd.Env = os.Environ()
	// Setting up 10,000 specs is 20,000 commits of two fsyncs each; on
	// tmpfs that takes seconds instead of minutes. The measured no-op pass
	// only reads.
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		cmd.Env = append(cmd.Env, "TMPDIR=/dev/shm")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	e.logf("control plane: go %s", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test -bench: %w\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "controlplane.txt"), stdout.Bytes(), 0o644); err != nil {
		return fmt.Errorf("save benchmark output: %w", err)
	}
	res, err := ParseBench(stdout.Bytes())
	if err != nil {
		return err
	}
	for _, name := range []string{"specs=1000", noopCase} {
		m := res["BenchmarkReconcileNoop/"+name]
		if m == nil {
			return fmt.Errorf("go test -bench printed no result for %s:\n%s", name, stdout.Bytes())
		}
		e.Res.Rows = append(e.Res.Rows,
			report.NewRow("controlplane", name, noopMetric, "s", report.NewSeries(InProcess, scale(m["ns/op"], 1e-9))).WithoutAgent(controlPlaneRuns),
			report.NewRow("controlplane", name, "one reconcile p99", "ms", report.NewSeries(InProcess, scale(m["p99-ns"], 1e-6))).WithoutAgent(controlPlaneRuns),
			report.NewRow("controlplane", name, "throughput", "specs/s", report.NewSeries(InProcess, m["specs/s"])).WithoutAgent(controlPlaneRuns))
	}
	return nil
}

const (
	noopCase   = "specs=10000"
	noopMetric = "no-op reconcile of all specs"
	// controlPlaneRuns is what the control-plane rows run instead of the
	// agent process.
	controlPlaneRuns = "pkg/controller in-process against a fake runtime (BenchmarkReconcileNoop), no daemon"
)

// ParseBench reads `go test -bench` output: benchmark name (without the
// -GOMAXPROCS suffix) -> unit -> one value per -count run.
func ParseBench(out []byte) (map[string]map[string][]float64, error) {
	res := map[string]map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		// After the name and the iteration count come value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

func scale(xs []float64, k float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * k
	}
	return out
}
