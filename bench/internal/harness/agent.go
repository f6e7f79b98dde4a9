package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Agent is one `reconciler agent` process on its own directories.
type Agent struct {
	Dir, SpecsDir, State, Socket, MetricsAddr string
	// Extra flags after the directories' own.
	Extra []string

	bin    string
	cmd    *exec.Cmd
	logf   *os.File
	exited chan struct{}
}

// NewAgent prepares an agent's directories under the work directory; Start
// runs it.
func (h *Harness) NewAgent(name string, extra ...string) (*Agent, error) {
	dir := filepath.Join(h.Work, name)
	a := &Agent{
		Dir: dir, SpecsDir: filepath.Join(dir, "specs"), State: filepath.Join(dir, "state.db"),
		Socket: filepath.Join(dir, "api.sock"), Extra: extra, bin: h.AgentBin,
	}
	if err := os.MkdirAll(a.SpecsDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent directories: %w", err)
	}
	h.mu.Lock()
	h.agents = append(h.agents, a)
	h.mu.Unlock()
	return a, nil
}

// Start runs the agent (again) on its directories, on a fresh metrics port.
func (a *Agent) Start() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	a.MetricsAddr = addr
	if a.logf == nil {
		if a.logf, err = os.OpenFile(filepath.Join(a.Dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return fmt.Errorf("agent log: %w", err)
		}
	}
	args := append([]string{"agent", "--specs-dir", a.SpecsDir, "--state", a.State, "--socket", a.Socket,
		"--metrics-addr", a.MetricsAddr}, a.Extra...)
	a.cmd = exec.Command(a.bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = a.logf, a.logf
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	a.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(a.cmd, a.exited)
	return nil
}

// Pid is the running agent's process id.
func (a *Agent) Pid() int { return a.cmd.Process.Pid }

// WaitReady polls /readyz every 10 ms until it answers 200.
func (a *Agent) WaitReady(ctx context.Context, timeout time.Duration) error {
	return a.Poll(ctx, timeout, 10*time.Millisecond, func() (bool, error) {
		return a.probe(ctx, "/readyz")
	})
}

func (a *Agent) probe(ctx context.Context, path string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.MetricsAddr+path, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, nil // not listening yet
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// Poll calls check every period until it reports done, fails, the agent
// exits or the timeout passes.
func (a *Agent) Poll(ctx context.Context, timeout, period time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		done, err := check()
		switch {
		case err != nil:
			return err
		case done:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("agent: not done within %s (log: %s)", timeout, filepath.Join(a.Dir, "agent.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.exited:
			return fmt.Errorf("agent exited (log: %s)", filepath.Join(a.Dir, "agent.log"))
		case <-t.C:
		}
	}
}

// Stop sends SIGTERM and waits for the agent to exit (SIGKILL after 30 s).
// The agent leaves its containers running, as it does in production.
func (a *Agent) Stop() error {
	if a.cmd == nil || a.cmd.Process == nil {
		return nil
	}
	var err error
	select {
	case <-a.exited:
	default:
		if err = a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			err = fmt.Errorf("stop agent: %w", err)
			break
		}
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
			err = fmt.Errorf("agent did not stop within 30s of SIGTERM")
		}
	}
	if a.logf != nil {
		a.logf.Close()
		a.logf = nil
	}
	return err
}

// WriteSpec writes a spec file atomically (aside, then renamed), as careful
// tools and editors do.
func (a *Agent) WriteSpec(file, content string) error {
	tmp := filepath.Join(a.SpecsDir, "."+file+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(a.SpecsDir, file)); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// RemoveSpec deletes a spec file.
func (a *Agent) RemoveSpec(file string) error {
	if err := os.Remove(filepath.Join(a.SpecsDir, file)); err != nil {
		return fmt.Errorf("remove spec: %w", err)
	}
	return nil
}

// Metrics is one scrape of /metrics: "name{labels}" -> value, labels as
// the agent prints them.
type Metrics map[string]float64

// Sum adds every series of the metric name (all label values).
func (m Metrics) Sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// Scrape reads /metrics.
func (a *Agent) Scrape(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.MetricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape agent metrics: %w", err)
	}
	defer resp.Body.Close()
	out := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape agent metrics: %w", err)
	}
	return out, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
