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
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/controller"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/output"
	"github.com/reconciler/reconciler/pkg/registry"
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
	// DockerTimeouts bound daemon calls by operation (defaults for the
	// rest).
	DockerTimeouts docker.Timeouts
	// Pulls is how many image pulls run at once, beside the workers.
	Pulls int
	// PullBackoff is the first delay after a failed pull (doubling to 5m).
	PullBackoff time.Duration
	// ExecMaxConcurrent and ExecMaxDuration bound the API's execs.
	ExecMaxConcurrent int
	ExecMaxDuration   time.Duration
	// PprofAddr, when set, serves Go's profiles (net/http/pprof) on a
	// listener of its own; empty (the default) serves none.
	PprofAddr string
	// OutputMaxRunBytes bounds each run's saved output (uncompressed; the
	// end is kept), OutputMaxSpecBytes a spec's saved runs on disk (the
	// oldest go first); zero takes output's defaults.
	OutputMaxRunBytes, OutputMaxSpecBytes int64
	// WorkspaceRoot holds the runs' workspace copies; empty is
	// "workspaces" beside the state file.
	WorkspaceRoot string
	// RegistryConfig is a Docker config.json whose auths the agent's
	// pulls and digest checks use (registryconfig.go).
	RegistryConfig string
	// Allocatable and MaxRunningJobs are the admission budget
	// (admission.go); zero values: the host less 10 %, no job cap.
	Allocatable    Allocatable
	MaxRunningJobs int
	// ImageGC removes unused images when the daemon's disk fills (off by
	// default).
	ImageGC ImageGCConfig
}

// Defaults are the settings of `reconciler agent` with no flags.
func Defaults() Config {
	return Config{
		SpecsDir:          "./specs",
		StatePath:         "./.reconciler/state.db",
		Socket:            api.DefaultSocket,
		MetricsAddr:       "127.0.0.1:9477",
		Resync:            30 * time.Second,
		Rescan:            10 * time.Second,
		Workers:           controller.DefaultWorkers,
		ExitsPerSpec:      50,
		LockTimeout:       2 * time.Second,
		SocketRole:        "edit",
		HTTP:              DefaultHTTPLimits(),
		Pulls:             2,
		PullBackoff:       10 * time.Second,
		ExecMaxConcurrent: api.DefaultExecMaxConcurrent,
		ExecMaxDuration:   api.DefaultExecMaxDuration,
	}
}

// Docker is what the agent itself asks of the daemon: whether it answers,
// which call hangs (for /readyz), and the API's container routes.
// *docker.Client is one.
type Docker interface {
	api.Runtime
	Ping(ctx context.Context) error
	Hanging() error
}

var _ Docker = (*docker.Client)(nil)

// Agent is a running agent's parts, for the servers that expose them.
type Agent struct {
	Config     Config
	Store      *store.Store
	Recorder   *events.Recorder
	Metrics    *metrics.Metrics
	Source     *source.Source
	Policy     *spec.CurrentPolicy
	Registry   *registry.Current
	Controller *controller.Controller
	Docker     Docker
	Output     *output.Store // each run's complete output
	log        *slog.Logger
	ready      chan struct{} // closed once the Docker daemon first answered
	now        func() time.Time
	// dockerErr says why the daemon has not answered yet.
	dockerErr atomic.Pointer[error]
}

// Run runs the agent until ctx is cancelled or a part fails.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.HTTP.check(); err != nil {
		return err
	}
	if err := cfg.ImageGC.Validate(); err != nil {
		return err
	}
	budget, err := budget(cfg.Allocatable, cfg.MaxRunningJobs)
	if err != nil {
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
	a.Metrics.SetStateWriteErrors(st.WriteFailures)
	a.Recorder = events.NewRecorder(st, log)
	if a.Output, err = a.openOutput(); err != nil {
		return err
	}

	if a.Registry, err = loadRegistryConfig(cfg.RegistryConfig); err != nil {
		return err
	}
	cli, err := docker.Dial(docker.Options{Host: cfg.DockerHost, Log: log, Observe: a.Metrics.ObserveDocker,
		Timeouts: cfg.DockerTimeouts, RegistryAuth: a.Registry.EncodedAuth})
	if err != nil {
		return err
	}
	defer cli.Close()
	a.Docker = cli
	eg, closeEgress, err := a.newEgress(cfg)
	if err != nil {
		return err
	}
	defer closeEgress()
	a.Controller = controller.New(cli, st, a.Recorder, controller.Options{
		Instance: st.InstanceID(), Workers: cfg.Workers, Resync: cfg.Resync, StopOnExit: cfg.StopOnExit,
		Log: log, Metrics: a.Metrics, ReadSecret: a.readSecret, Policy: a.Policy,
		SecretsDir: secretsDir(cfg.StatePath, st.InstanceID()), SecretKey: st.SecretKey(),
		Pulls: cfg.Pulls, PullBackoff: cfg.PullBackoff, Output: a.Output, Images: cli, Egress: eg, Budget: budget,
		Workspace: controller.WorkspaceOptions{Root: cfg.workspaceRoot()},
	})
	a.Source = source.New(st, source.Options{
		Dir: cfg.SpecsDir, Rescan: cfg.Rescan, Log: log,
		Changed: a.Controller.DesiredChanged,
		Warn:    func(e model.Event) { a.Recorder.Event("", e.Type, e.Reason, "%s", e.Message) },
		ErrorsChanged: func(n int) {
			a.Metrics.SpecErrors.Set(float64(n))
		},
	})
	g, ctx := errgroup.WithContext(ctx)
	health, err := listenTCP(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	prof, err := listenPprof(cfg.PprofAddr)
	if err != nil {
		health.Close()
		return err
	}
	apiListeners, audit, err := a.listenAPI()
	if err != nil {
		health.Close()
		if prof != nil {
			prof.Close()
		}
		return err
	}
	if audit != nil {
		defer audit.Close()
	}
	g.Go(func() error {
		return serve(ctx, health, a.healthHandler(), cfg.HTTP, nil, log.With("component", "metrics"))
	})
	if prof != nil {
		g.Go(func() error { return servePprof(ctx, prof, cfg.HTTP, log.With("component", "pprof")) })
	}
	// READY=1 goes out once the state is open and every listener is bound,
	// not when Docker answers: the daemon may start long after the agent.
	g.Go(func() error { return a.notifySystemd(ctx) })
	g.Go(func() error { return a.watchPolicy(ctx) })
	g.Go(func() error { return a.watchRegistryConfig(ctx) })
	g.Go(func() error { return a.watchStateFile(ctx) })
	a.serveAPI(ctx, g, apiListeners)

	// Specs are taken from the directory and the API while the daemon is
	// away; only the controller waits for it (the unit wants docker.service
	// but does not require it), and the agent reports not ready meanwhile.
	g.Go(func() error { return a.Source.Run(ctx) })
	g.Go(func() error { return a.runEgress(ctx, eg) })
	g.Go(func() error { return a.runImageGC(ctx, cli) })
	g.Go(func() error {
		if err := a.waitForDocker(ctx); err != nil {
			return err
		}
		log.Info("connected to docker", "api_version", cli.APIVersion())
		close(a.ready)
		return a.Controller.Run(ctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// waitForDocker pings the daemon until it answers.
func (a *Agent) waitForDocker(ctx context.Context) error {
	delay := 200 * time.Millisecond
	for {
		err := a.Docker.Ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.dockerErr.Store(&err)
		a.log.Warn("docker not reachable yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
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
