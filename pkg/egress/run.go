package egress

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/egressproxy"
)

// Run repairs, collects and follows until ctx is cancelled: at start, on
// every Period, and as soon as a proxy is made or a followed one goes.
func (m *Manager) Run(ctx context.Context) error {
	m.ensureImage(ctx)
	t := time.NewTicker(m.opts.Period)
	defer t.Stop()
	for {
		if err := m.sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("egress repair failed", "err", err)
		}
		for again := false; !again; {
			select {
			case <-ctx.Done():
				return nil
			case <-m.kick:
				again = true
			case <-t.C:
				// An agent with no egress network or proxy has nothing to
				// repair until Ensure makes one (which kicks): the daemon
				// is spared two listings a period.
				again = m.active.Load()
			}
		}
	}
}

// ensureImage builds the proxy's image when it is missing and the agent
// was given a way to (the go command and the module's source, as in a
// checkout); otherwise a spec with an allow-list fails to start, saying
// so.
func (m *Manager) ensureImage(ctx context.Context) {
	_, err := m.d.ImageInspect(ctx, m.opts.Image)
	if err == nil || !errdefs.IsNotFound(err) {
		return
	}
	if m.opts.BuildImage == nil {
		m.log.Warn("egress proxy image missing; specs with egress.allow cannot start until `make images` builds it", "image", m.opts.Image)
		return
	}
	m.log.Info("building the egress proxy image", "image", m.opts.Image)
	if err := m.opts.BuildImage(ctx); err != nil {
		m.log.Warn("cannot build the egress proxy image; specs with egress.allow cannot start until `make images` builds it", "image", m.opts.Image, "err", err)
	}
}

// sweep makes every proxy whose spec still wants it run (one removed or
// stopped by hand is made or started again), removes the networks and
// proxies of specs that no longer want them, and follows every running
// proxy's output.
func (m *Manager) sweep(ctx context.Context) error {
	nws, err := m.d.NetworkList(ctx, network.ListOptions{Filters: m.filter(LabelNetwork, "")})
	if err != nil {
		return fmt.Errorf("list egress networks: %w", err)
	}
	cs, err := m.d.ContainerList(ctx, container.ListOptions{All: true, Filters: m.filter(LabelProxy, "")})
	if err != nil {
		return fmt.Errorf("list egress proxies: %w", err)
	}
	specs := map[string]bool{}
	defer func() { m.active.Store(len(specs) > 0) }()
	for _, nw := range nws {
		if s := nw.Labels[LabelNetwork]; m.owned(nw.Labels, LabelNetwork, s) {
			specs[s] = true
		}
	}
	for _, c := range cs {
		if s := c.Labels[LabelProxy]; m.owned(c.Labels, LabelProxy, s) {
			specs[s] = true
		}
	}
	for s := range specs {
		if err := m.repair(ctx, s); err != nil && ctx.Err() == nil {
			m.log.Warn("egress repair failed", "spec", s, "err", err)
		}
	}
	// Follow what runs now (a repaired proxy is followed on the next pass,
	// which its start wakes).
	for _, c := range cs {
		s := c.Labels[LabelProxy]
		if c.State == container.StateRunning && m.owned(c.Labels, LabelProxy, s) {
			m.startFollow(ctx, s, c.ID)
		}
	}
	return nil
}

// repair brings one spec's network and proxy in line with what the store
// wants now, asked under the spec's lock so that a create in flight and
// this never disagree.
func (m *Manager) repair(ctx context.Context, spec string) error {
	defer m.lock(spec)()
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	if s, ok := m.opts.Want(spec); ok && s.Spec.Egress != nil && !s.Spec.Egress.NoNetwork() {
		return m.ensure(ctx, s)
	}
	return m.release(ctx, spec)
}

func (m *Manager) startFollow(ctx context.Context, spec, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.follow[id] {
		return
	}
	m.follow[id] = true
	// A proxy made by this process is read from its first line; one found
	// running (made before an agent restart) from now, so that its old
	// denials are not counted twice.
	var since time.Time
	if !m.created[id] {
		since = time.Now()
	}
	delete(m.created, id)
	go m.followLogs(ctx, spec, id, since)
}

// followLogs reads the proxy's output for as long as the container exists,
// across its restarts, resuming after the last line read.
func (m *Manager) followLogs(ctx context.Context, spec, id string, since time.Time) {
	defer func() {
		m.mu.Lock()
		delete(m.follow, id)
		m.mu.Unlock()
		m.wake()
	}()
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		last, err := m.readLogs(ctx, spec, id, since)
		if !last.IsZero() {
			since, delay = last.Add(time.Nanosecond), 200*time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		if _, ierr := m.d.ContainerInspect(ctx, id); errdefs.IsNotFound(ierr) {
			return
		}
		if err != nil {
			m.log.Debug("egress proxy log stream ended", "spec", spec, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// readLogs follows one log stream until it ends, returning the time of the
// last line it read.
func (m *Manager) readLogs(ctx context.Context, spec, id string, since time.Time) (time.Time, error) {
	opts := container.LogsOptions{ShowStdout: true, Follow: true, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := m.d.ContainerLogs(ctx, id, opts)
	if err != nil {
		return time.Time{}, err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, io.Discard, rc)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	var last time.Time
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		ts, line, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			last = t
		}
		m.handleLine(spec, line)
	}
	return last, sc.Err()
}

// proxyLine is the part of a proxy's JSON log line the agent reads.
type proxyLine struct {
	Msg    string `json:"msg"`
	Dest   string `json:"dest"`
	Method string `json:"method"`
}

// maxDest bounds what a client's request puts in the agent's log.
const maxDest = 300

func (m *Manager) handleLine(spec, line string) {
	var l proxyLine
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != egressproxy.MsgDenied {
		return
	}
	if len(l.Dest) > maxDest {
		l.Dest = l.Dest[:maxDest]
	}
	m.denied.Inc()
	m.log.Warn("egress denied", "spec", spec, "destination", l.Dest, "method", l.Method)
}
