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
	"net/http"
	"os"
	"strings"
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
	// bearing APIToken.
	APIAddr  string
	APIToken string
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
	}
}

// Agent is a running agent's parts, for the servers that expose them.
type Agent struct {
	Config     Config
	Store      *store.Store
	Recorder   *events.Recorder
	Metrics    *metrics.Metrics
	Source     *source.Source
	Policy     *spec.Policy
	Controller *controller.Controller
	Docker     *docker.Client
	log        *slog.Logger
	ready      chan struct{} // closed once the Docker client is connected
	now        func() time.Time
}

// Run runs the agent until ctx is cancelled or a part fails.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
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

	a := &Agent{Config: cfg, Store: st, Policy: policy, log: log, ready: make(chan struct{}), now: time.Now,
		Metrics: metrics.New(cfg.Version, cfg.Revision)}
	a.Metrics.SetProbes(a.Ready, a.Healthy)
	a.Metrics.SetStateWriteErrors(st.WriteFailures)
	a.Recorder = events.NewRecorder(st, log)

	g, ctx := errgroup.WithContext(ctx)
	health, err := listenTCP(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	apiListeners, err := a.listenAPI()
	if err != nil {
		health.Close()
		return err
	}
	g.Go(func() error { return serve(ctx, health, a.healthHandler(), log.With("component", "metrics")) })
	// READY=1 goes out once the state is open and every listener is bound,
	// not when Docker answers: the daemon may start long after the agent.
	g.Go(func() error { return a.notifySystemd(ctx) })
	g.Go(func() error { return a.watchStateFile(ctx) })
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
		Log: log, Metrics: a.Metrics, ResolveEnv: readSecret,
	})
	a.Source = source.New(st, source.Options{
		Dir: cfg.SpecsDir, Rescan: cfg.Rescan, Policy: policy, Log: log,
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

func loadPolicy(path string) (*spec.Policy, error) {
	if path == "" {
		return spec.DefaultPolicy(), nil
	}
	p, err := spec.LoadPolicy(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return p, nil
}

// maxSecretSize bounds a secret file: a secret is a key, not a payload.
const maxSecretSize = 64 << 10

// ReadPrivateFile reads a secret or token file. A file every user of the
// host can read protects nothing, so it is refused; so is one over 64 KiB.
// what names the file's role in errors ("secret file", "--api-token-file").
func ReadPrivateFile(what, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%s %s is readable by every user (mode %v); chmod o-r it", what, path, fi.Mode().Perm())
	}
	if fi.Size() > maxSecretSize {
		return nil, fmt.Errorf("%s %s is over %d bytes", what, path, maxSecretSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// readSecret reads an env value from a secret file.
func readSecret(_, path string) (string, error) {
	b, err := ReadPrivateFile("secret file", path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	return l, nil
}

// serve runs an HTTP server on l until ctx ends, then shuts it down.
func serve(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}
