package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/agent"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/imagegc"
	"github.com/reconciler/reconciler/pkg/secrets"
)

func agentCmd() *cobra.Command {
	cfg := agent.Defaults()
	var logFormat, logLevel, tokenFile string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent: converge the containers of the specs directory and the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Version, cfg.Revision = version, revision
			if cfg.ExecMaxConcurrent < 1 {
				return fmt.Errorf("--exec-max-concurrent %d: allow at least 1 exec", cfg.ExecMaxConcurrent)
			}
			if cfg.ExecMaxDuration <= 0 {
				return fmt.Errorf("--exec-max-duration %s: give a positive duration", cfg.ExecMaxDuration)
			}
			if tokenFile != "" {
				if cfg.APIToken, err = readTokenFile(tokenFile); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("starting reconciler agent", "version", version, "specs_dir", cfg.SpecsDir,
				"state", cfg.StatePath, "socket", cfg.Socket, "metrics_addr", cfg.MetricsAddr, "resync", cfg.Resync)
			if err := agent.Run(ctx, cfg, log); err != nil {
				return err
			}
			log.Info("agent stopped", "containers_left_running", !cfg.StopOnExit)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.SpecsDir, "specs-dir", cfg.SpecsDir, "directory of spec files (*.yaml, *.yml)")
	f.StringVar(&cfg.StatePath, "state", cfg.StatePath, "state file (bbolt)")
	f.StringVar(&cfg.Socket, "socket", cfg.Socket, "API unix socket (mode 0660)")
	f.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "also serve the API on this TCP address (needs --api-tokens or --api-token-file)")
	f.StringVar(&cfg.APITokens, "api-tokens", cfg.APITokens, "file of TCP bearer tokens, CSV lines token,name,role with role view, edit, exec or admin (mode 0600 or stricter)")
	f.StringVar(&tokenFile, "api-token-file", "", "file holding one bearer token TCP clients may send, with role admin (not readable by others)")
	f.StringVar(&cfg.SocketRole, "socket-role", cfg.SocketRole, "role of API socket peers other than root and the agent's own user (who are admin): view, edit, exec or admin")
	f.StringVar(&cfg.AuditLog, "audit-log", cfg.AuditLog, "append a JSON line for every API write and exec, allowed or refused, to this file (created 0600)")
	f.DurationVar(&cfg.HTTP.ReadTimeout, "http-read-timeout", cfg.HTTP.ReadTimeout, "how long a request to the API or metrics listener may take to arrive")
	f.DurationVar(&cfg.HTTP.WriteTimeout, "http-write-timeout", cfg.HTTP.WriteTimeout, "how long an answer may take (streams such as logs -f, events -w and exec are not cut)")
	f.DurationVar(&cfg.HTTP.IdleTimeout, "http-idle-timeout", cfg.HTTP.IdleTimeout, "close a keep-alive connection idle this long")
	f.IntVar(&cfg.HTTP.MaxConns, "http-max-conns", cfg.HTTP.MaxConns, "connections served at once per listener (API socket, API TCP, metrics); more wait")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "address for /metrics, /healthz and /readyz")
	f.StringVar(&cfg.PprofAddr, "pprof-addr", cfg.PprofAddr, "address for Go's profiles at /debug/pprof/ (net/http/pprof), on a listener of their own; empty serves none")
	f.DurationVar(&cfg.Resync, "resync", cfg.Resync, "period of the full resync")
	f.DurationVar(&cfg.Rescan, "rescan", cfg.Rescan, "period of the spec directory rescan")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent reconciles, and so the most container starts in flight")
	f.BoolVar(&cfg.StopOnExit, "stop-on-exit", cfg.StopOnExit, "stop managed containers (with their grace period) when the agent stops")
	f.StringVar(&cfg.PolicyFile, "policy", cfg.PolicyFile, "policy file allowing what the baseline denies (privileged, host namespaces, bind paths...)")
	f.StringVar(&cfg.RegistryConfig, "registry-config", cfg.RegistryConfig, "Docker config.json (mode 0600) whose auths entries the agent's pulls and autoUpdate digest checks use; reloaded on change and SIGHUP")
	f.StringVar(&cfg.DockerHost, "docker-host", cfg.DockerHost, "Docker daemon address (default: DOCKER_HOST or the local socket)")
	f.Var(&cfg.DockerTimeouts, "docker-timeout", docker.TimeoutsHelp)
	f.IntVar(&cfg.Pulls, "max-parallel-image-pulls", cfg.Pulls, "image pulls run at once, beside the reconcile workers")
	f.DurationVar(&cfg.PullBackoff, "image-pull-backoff", cfg.PullBackoff, "first delay after a failed pull (doubles to 5m)")
	_ = f.MarkHidden("image-pull-backoff") // kubelet's 10s; tests shorten it
	f.StringVar(&cfg.WorkspaceRoot, "workspace-root", cfg.WorkspaceRoot, "directory of the runs' private workspace copies (default: workspaces beside the state file; created 0700)")
	f.Var(&cfg.Allocatable, "allocatable", "admission budget: memory=SIZE,cpus=N that running specs' resources.memory and resources.cpus count against (default: the host's total less 10 %)")
	f.IntVar(&cfg.MaxRunningJobs, "max-running-jobs", cfg.MaxRunningJobs, "jobs (restartPolicy Never or OnFailure) running at once; more wait in phase Queued (0: no cap)")
	f.IntVar(&cfg.ExitsPerSpec, "exits-per-spec", cfg.ExitsPerSpec, "exit records kept per spec")
	f.DurationVar(&cfg.LockTimeout, "lock-timeout", cfg.LockTimeout, "how long to wait for the state file lock")
	f.IntVar(&cfg.ExecMaxConcurrent, "exec-max-concurrent", cfg.ExecMaxConcurrent, "execs running at once; one more is refused (429)")
	f.DurationVar(&cfg.ExecMaxDuration, "exec-max-duration", cfg.ExecMaxDuration, "an exec running longer is ended and its client told why (the command may go on in the container)")
	addOutputFlags(cmd, &cfg)
	f.Var((*imagegc.Percent)(&cfg.ImageGC.High), "image-gc-high-threshold",
		"percent of the Docker daemon's data-root filesystem in use above which unused images are removed, least recently used first (0: off)")
	f.Var((*imagegc.Percent)(&cfg.ImageGC.Low), "image-gc-low-threshold",
		"percent of that filesystem the image collector frees down to; below --image-gc-high-threshold")
	f.DurationVar(&cfg.ImageGC.Period, "image-gc-period", imagegc.DefaultPeriod,
		"how often the image collector checks the data-root (it also checks after every container removal)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// readTokenFile reads the TCP API's bearer token.
func readTokenFile(path string) (string, error) {
	data, err := secrets.ReadPrivateFile("--api-token-file", path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("--api-token-file %s is empty", path)
	}
	return token, nil
}
