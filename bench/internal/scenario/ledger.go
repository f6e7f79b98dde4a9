package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconciler/reconciler/bench/internal/report"
	"github.com/reconciler/reconciler/bench/internal/stats"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/store"
)

// ledgerSpecs is how many crash-looping specs share the exits.
const ledgerSpecs = 10

// ledgerRuns is what the ledger rows run instead of the agent process.
const ledgerRuns = "pkg/store in-process, the exits committed directly as the controller commits them"

// Ledger is the second half of scenario 5: the state file's size after
// many exits. Ten thousand real exits would keep the daemon busy for hours,
// so the exits go through the agent's own store, with its default bounds,
// as the controller records them: one commit per exit with its event and a
// full 8 KiB log tail (the most kept, so the worst case).
func Ledger(ctx context.Context, e *Env) error {
	total := 10000
	if e.Quick {
		total = 2000
	}
	checkpoints := []int{total / 10, total / 2, total}
	var sizes, p50, p99 []float64
	for rep := range e.Reps {
		sz, lat, err := e.fillLedger(ctx, rep, total, checkpoints)
		if err != nil {
			return err
		}
		sizes = append(sizes, sz...)
		p50, p99 = append(p50, stats.Quantile(lat, 0.5)), append(p99, stats.Quantile(lat, 0.99))
	}
	var rows []report.Row
	for i, n := range checkpoints {
		var s []float64
		for j := i; j < len(sizes); j += len(checkpoints) {
			s = append(s, sizes[j])
		}
		rows = append(rows, report.NewRow("ledger", fmt.Sprintf("%d exits", n), "state file size", "MiB", report.NewSeries(InProcess, s)).WithoutAgent(ledgerRuns))
	}
	e.Res.Rows = append(e.Res.Rows, rows...)
	e.Res.Rows = append(e.Res.Rows,
		report.NewRow("ledger", "per exit", "commit (exit+event) p50", "ms", report.NewSeries(InProcess, p50)).WithoutAgent(ledgerRuns),
		report.NewRow("ledger", "per exit", "commit (exit+event) p99", "ms", report.NewSeries(InProcess, p99)).WithoutAgent(ledgerRuns))
	half, full := rows[1].Agent.Summary, rows[2].Agent.Summary
	c := stats.AtMost(fmt.Sprintf("ledger: bounded (file at %d exits within 10%% of the file at %d)", total, total/2),
		full, half.Median*1.10, "MiB")
	e.Res.Checks = append(e.Res.Checks, c)
	return nil
}

// fillLedger records total exits in a fresh store and returns the file's
// size in MiB at each checkpoint and every commit's latency in ms.
func (e *Env) fillLedger(ctx context.Context, rep, total int, checkpoints []int) ([]float64, []float64, error) {
	dir := filepath.Join(e.H.Work, fmt.Sprintf("ledger-%d", rep))
	path := filepath.Join(dir, "state.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	defer st.Close()
	tail := strings.Repeat("box: exiting with code 1 after 1s (a typical line of output)\n", 8<<10/61+1)
	start := time.Now().Add(-time.Duration(total) * time.Second)
	var sizes, lat []float64
	next := 0
	for i := range total {
		if i%500 == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		spec := fmt.Sprintf("crashloop-%d", i%ledgerSpecs)
		at := start.Add(time.Duration(i) * time.Second)
		exit := &model.ContainerExit{ContainerID: fmt.Sprintf("%064x", i%ledgerSpecs), SpecName: spec, SpecHash: "0123456789abcdef",
			ExitCode: 1, StartedAt: at, FinishedAt: at.Add(time.Second), Duration: "1s", RestartCount: i / ledgerSpecs,
			Reason: model.ReasonError, LogTail: tail}
		ev := model.Event{Type: model.EventWarning, Reason: string(model.ReasonError), Spec: spec, Count: 1,
			Message: fmt.Sprintf("Container %.12s exited with code 1 (Error) after 1s", exit.ContainerID), FirstTime: at, LastTime: at}
		t := time.Now()
		if _, _, err := st.Commit(store.Change{Name: spec, Exit: exit, Events: []model.Event{ev}}); err != nil {
			return nil, nil, fmt.Errorf("ledger: commit exit %d: %w", i, err)
		}
		lat = append(lat, millis(time.Since(t)))
		if next < len(checkpoints) && i+1 == checkpoints[next] {
			fi, err := os.Stat(path)
			if err != nil {
				return nil, nil, fmt.Errorf("ledger: %w", err)
			}
			sizes = append(sizes, float64(fi.Size())/(1<<20))
			next++
		}
	}
	e.logf("ledger rep %d: %d exits, file %.1f MiB", rep+1, total, sizes[len(sizes)-1])
	return sizes, lat, nil
}
