// Package agent wires the long-running parts of `reconciler agent`
// together: state file, Docker client, controller, spec directory, HTTP
// servers and systemd notifications. When one part stops, all stop.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/pkg/controller"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// Config holds the agent's settings; Defaults fills what a newcomer leaves out.
type Config struct {
	SpecsDir     string
	StatePath    string
	Socket       string
	MetricsAddr  string
	Resync       time.Duration
	Rescan       time.Duration
	Workers      int
	StopOnExit   bool
	PolicyFile   string
	DockerHost   string
	ExitsPerSpec int
	LockTimeout  time.Duration
	Version      string
	Revision     string
	// APIAddr, when set, serves the API on TCP too, only to requests
	// bearing APIToken (as admin) or a token of the APITokens file.
	APIAddr  string
	APIToken string
	// APITokens is a file of "token,name,role" lines (mode 0600 or
	// stricter).
	APITokens string
	// SocketRole is the role of unix-socket peers other than root and the
	// agent's own user, who are admin.
	SocketRole string
	// AuditLog, when set, is the file that gets a JSON line for every API
	// write and exec.
	AuditLog string
	// HTTP bounds the connections of every listener.
	HTTP HTTPLimits
}

// Defaults are the settings of `reconciler agent` with no flags.
func Defaults() Config {
	return Config{
		SpecsDir:     "./specs",
		StatePath:    "./.reconciler/state.db",
		Socket:       "./.reconciler/reconciler.sock",
		MetricsAddr:  "127.0.0.1:9477",
		Resync:       30 * time.Second,
		Rescan:       10 * time.Second,
		Workers:      4,
		ExitsPerSpec: 50,
		LockTimeout:  2 * time.Second,
		SocketRole:   "edit",
		HTTP:         DefaultHTTPLimits(),
	}
}

// Agent is a running agent's parts, for the servers that expose them.
type Agent struct {
	Config     Config
	Store      *store.Store
	Recorder   *events.Recorder
	Metrics    *metrics.Metrics
	Source     *source.Source
	Policy     *spec.CurrentPolicy
	Controller *controller.Controller
	Docker     *docker.Client
	log        *slog.Logger
	ready      chan struct{} // closed once the Docker client is connected
	now        func() time.Time
}

// Run runs the agent until ctx is cancelled or a part fails.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.HTTP.check(); err != nil {
		return err
	}
	policy, err := loadPolicy(cfg.PolicyFile)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.StatePath, store.Options{LockTimeout: cfg.LockTimeout, ExitsPerSpec: cfg.ExitsPerSpec})
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("state file open", "path", cfg.StatePath, "instance", st.InstanceID())

	a := &Agent{Config: cfg, Store: st, Policy: spec.NewCurrentPolicy(policy), log: log, ready: make(chan struct{}), now: time.Now,
		Metrics: metrics.New(cfg.Version, cfg.Revision)}
	a.Metrics.SetProbes(a.Ready, a.Healthy)
	a.Recorder = events.NewRecorder(st, log)

	g, ctx := errgroup.WithContext(ctx)
	health, err := listenTCP(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	apiListeners, audit, err := a.listenAPI()
	if err != nil {
		health.Close()
		return err
	}
	if audit != nil {
		defer audit.Close()
	}
	g.Go(func() error {
		return serve(ctx, health, a.healthHandler(), cfg.HTTP, nil, log.With("component", "metrics"))
	})
	// READY=1 goes out once the state is open and every listener is bound,
	// not when Docker answers: the daemon may start long after the agent.
	g.Go(func() error { return a.notifySystemd(ctx) })
	g.Go(func() error { return a.watchPolicy(ctx) })
	a.serveAPI(ctx, g, apiListeners)

	// The daemon may come up after the agent (the unit wants docker.service
	// but does not require it): keep trying, and report not ready meanwhile.
	cli, err := connectDocker(ctx, cfg.DockerHost, a.Metrics, log)
	if err != nil {
		_ = g.Wait()
		return err
	}
	defer cli.Close()
	a.Docker = cli
	log.Info("connected to docker", "api_version", cli.APIVersion())

	a.Controller = controller.New(cli, st, a.Recorder, controller.Options{
		Instance: st.InstanceID(), Workers: cfg.Workers, Resync: cfg.Resync, StopOnExit: cfg.StopOnExit,
		Log: log, Metrics: a.Metrics, ReadSecret: a.readSecret, Policy: a.Policy,
		SecretsDir: secretsDir(cfg.StatePath, st.InstanceID()), SecretKey: st.SecretKey(),
	})
	a.Source = source.New(st, source.Options{
		Dir: cfg.SpecsDir, Rescan: cfg.Rescan, Log: log,
		Changed: a.Controller.DesiredChanged,
		Warn:    func(e model.Event) { a.Recorder.Event("", e.Type, e.Reason, "%s", e.Message) },
		ErrorsChanged: func(n int) {
			a.Metrics.SpecErrors.Set(float64(n))
		},
	})
	close(a.ready)
	g.Go(func() error { return a.Controller.Run(ctx) })
	g.Go(func() error { return a.Source.Run(ctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func connectDocker(ctx context.Context, host string, m *metrics.Metrics, log *slog.Logger) (*docker.Client, error) {
	delay := 200 * time.Millisecond
	for {
		cli, err := docker.New(ctx, docker.Options{Host: host, Log: log, Observe: m.ObserveDocker})
		if err == nil {
			return cli, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Warn("docker not reachable yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// readSecret reads a spec's secret file under the policy in force now.
func (a *Agent) readSecret(path string) ([]byte, error) { return a.Policy.Get().ReadSecret(path) }

// secretsDir is where the agent keeps its copies of the specs' secrets:
// beside the state file, one directory per agent instance.
func secretsDir(statePath, instance string) string {
	return filepath.Join(filepath.Dir(statePath), "secrets", instance)
}

func listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	return l, nil
}
