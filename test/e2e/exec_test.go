package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"time"
)

type execResult struct {
	stdout, stderr string
	err            error
	elapsed        time.Duration
}

// exec2 runs the reconciler binary with args and collects its output.
func exec2(ctx context.Context, args ...string) execResult {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	return execResult{stdout: out.String(), stderr: errb.String(), err: err, elapsed: time.Since(start)}
}
