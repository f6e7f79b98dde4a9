package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// addJobCommands adds the commands for run-to-completion jobs (run, wait)
// and for taking specs elsewhere (export).
func addJobCommands(root *cobra.Command) {
	root.AddCommand(runCmd(), waitCmd(), exportCmd(), restartCmd())
}

// pollEvery is how often run and wait ask the agent for a job's status.
var pollEvery = 500 * time.Millisecond

// exitTimeout is the exit code of `wait` when its --timeout passes, as
// timeout(1) has it.
const exitTimeout = 124

// runOptions are the flags of `run`.
type runOptions struct {
	image, workdir, user, restart string
	network                       string
	egress                        string
	memory, cpus                  string
	pids                          int64
	maxRestarts, priority         int
	env, secretEnv, mounts        []string
	workspace                     string
	labels                        []string
	deadline, ttl, grace          time.Duration
	remove, command               bool
}

func runCmd() *cobra.Command {
	var o runOptions
	var dryRun bool
	var startTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "run NAME --image IMAGE [flags] [-- ARGS...]",
		Short: "Start a one-off job: build a spec from flags and apply it through the API",
		Long: `Start a one-off job. The words after -- are the container's arguments (its
image's entrypoint runs them), or with --command its whole command line.
run returns once the container has started and prints the spec name; follow
it with 'reconciler logs -f NAME' and 'reconciler wait NAME'.`,
		Example: `  reconciler run countdown --image reconciler/box:latest -- countdown --from 3
  reconciler run fix-tests --image reconciler/claude-code:2.0.31 --memory 2Gi --cpus 1.5 \
    --pids 512 --secret-env ANTHROPIC_API_KEY=/etc/reconciler/secrets/anthropic-key \
    --user 1000:1000 --workspace /srv/work/my-repo:/workspace --deadline 2h --ttl 24h -- -p "Fix the tests"`,
		Args: cobra.MinimumNArgs(1),
	}
	c := addConnFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "image to run (required)")
	f.StringVar(&o.memory, "memory", "", "memory limit (256Mi, 2Gi)")
	f.StringVar(&o.cpus, "cpus", "", "CPU limit (0.5, 2, 250m)")
	f.Int64Var(&o.pids, "pids", 0, "limit on processes and threads")
	f.StringArrayVar(&o.env, "env", nil, "environment variable NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.secretEnv, "secret-env", nil, "environment variable NAME=FILE whose value the agent reads from FILE (below the policy's allowedSecretPaths, default /etc/reconciler/secrets), kept out of the spec (repeatable)")
	f.StringArrayVar(&o.mounts, "mount", nil, "SOURCE:TARGET[:ro]: an absolute SOURCE is a bind mount, a name a volume (repeatable)")
	f.StringVar(&o.workspace, "workspace", "", "SOURCE:TARGET: a private copy of the host directory SOURCE (below the policy's allowedBindPaths), made at each run, owned by --user (numeric) and mounted read-write at TARGET")
	f.StringArrayVar(&o.labels, "label", nil, "label KEY=VALUE (repeatable)")
	f.StringVar(&o.workdir, "workdir", "", "working directory in the container")
	f.StringVar(&o.user, "user", "", "user (uid[:gid] or name) to run as")
	f.StringVar(&o.network, "network", "", "network: bridge (default), none, host or a network name")
	f.StringVar(&o.egress, "egress", "", egressHelp)
	f.DurationVar(&o.deadline, "deadline", 0, "stop the job after this long (activeDeadline; default: none)")
	f.DurationVar(&o.ttl, "ttl", 0, "delete the finished job's spec this long after it ended; its exit records stay (default: keep)")
	f.DurationVar(&o.grace, "grace", 0, "time between the stop signal and SIGKILL (default 10s)")
	f.StringVar(&o.restart, "restart", string(spec.RestartNever), "restart policy: Never or OnFailure")
	f.IntVar(&o.priority, "priority", 0, "admission priority: when the agent's budget is full, higher waits less (default 0)")
	f.IntVar(&o.maxRestarts, "max-restarts", -1, "with --restart OnFailure, give up after this many restarts (default: never)")
	f.BoolVar(&o.remove, "remove", false, "remove the container when the job ends (removeOnExit)")
	f.BoolVar(&o.command, "command", false, "the words after -- are the command, replacing the image's entrypoint")
	f.BoolVar(&dryRun, "dry-run", false, "print the spec YAML instead of applying it")
	f.DurationVar(&startTimeout, "start-timeout", time.Minute, "how long to wait for the container to start (0: do not wait)")
	_ = cmd.MarkFlagRequired("image")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		s, err := buildJobSpec(args[0], o, args[1:])
		if err != nil {
			return err
		}
		doc, err := specYAML(s)
		if err != nil {
			return err
		}
		if dryRun {
			_, err := cmd.OutOrStdout().Write(doc)
			return err
		}
		return startJob(ctx, cl, cmd, s.Metadata.Name, doc, startTimeout)
	})
	return cmd
}

// buildJobSpec turns run's flags into a spec and validates it, naming the
// flag of each problem.
func buildJobSpec(name string, o runOptions, argv []string) (*spec.Spec, error) {
	s := &spec.Spec{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindContainer,
		Metadata:   spec.Metadata{Name: name},
		Spec: spec.ContainerSpec{
			Image:                  o.image,
			WorkingDir:             o.workdir,
			User:                   o.user,
			Network:                o.network,
			Resources:              spec.Resources{Memory: o.memory, CPUs: o.cpus, Pids: o.pids},
			RestartPolicy:          spec.RestartPolicy(o.restart),
			ActiveDeadline:         spec.Duration{Duration: o.deadline},
			TTLAfterFinished:       spec.Duration{Duration: o.ttl},
			TerminationGracePeriod: spec.Duration{Duration: o.grace},
			RemoveOnExit:           o.remove,
			Egress:                 egressOf(o.egress),
			Priority:               o.priority,
		},
	}
	c := &s.Spec
	if o.command {
		c.Command = argv
	} else {
		c.Args = argv
	}
	switch c.RestartPolicy {
	case spec.RestartNever, spec.RestartOnFailure:
	default:
		return nil, fmt.Errorf("--restart %q: use Never or OnFailure (a service that always restarts belongs in a spec file)", o.restart)
	}
	if o.maxRestarts >= 0 {
		if c.RestartPolicy != spec.RestartOnFailure {
			return nil, errors.New("--max-restarts needs --restart OnFailure")
		}
		c.MaxRestarts = &o.maxRestarts
	}
	for _, kv := range o.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: use KEY=VALUE", kv)
		}
		if s.Metadata.Labels == nil {
			s.Metadata.Labels = map[string]string{}
		}
		s.Metadata.Labels[k] = v
	}
	for _, kv := range o.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: use NAME=VALUE", kv)
		}
		c.Env = append(c.Env, spec.EnvVar{Name: k, Value: v})
	}
	for _, kv := range o.secretEnv {
		k, file, ok := strings.Cut(kv, "=")
		if !ok || k == "" || file == "" {
			return nil, fmt.Errorf("--secret-env %q: use NAME=FILE", kv)
		}
		c.Env = append(c.Env, spec.EnvVar{Name: k, ValueFrom: &spec.EnvSource{File: file}})
	}
	for _, m := range o.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return nil, err
		}
		c.Mounts = append(c.Mounts, mt)
	}
	if o.workspace != "" {
		src, target, ok := strings.Cut(o.workspace, ":")
		if !ok || src == "" || target == "" || strings.Contains(target, ":") {
			return nil, fmt.Errorf("--workspace %q: use SOURCE:TARGET", o.workspace)
		}
		c.Workspace = &spec.Workspace{Source: src, Target: target}
	}
	if errs := s.Validate(); len(errs) > 0 {
		return nil, flagErrors(errs)
	}
	return s, nil
}

func specYAML(s *spec.Spec) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode the spec: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode the spec: %w", err)
	}
	return b.Bytes(), nil
}

// parseMount reads SOURCE:TARGET[:ro|rw], as docker run -v does.
func parseMount(m string) (spec.Mount, error) {
	parts := strings.Split(m, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return spec.Mount{}, fmt.Errorf("--mount %q: use SOURCE:TARGET or SOURCE:TARGET:ro", m)
	}
	mt := spec.Mount{Type: "volume", Source: parts[0], Target: parts[1]}
	if path.IsAbs(mt.Source) {
		mt.Type = "bind"
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			mt.ReadOnly = true
		case "rw":
		default:
			return spec.Mount{}, fmt.Errorf("--mount %q: the mode must be ro or rw", m)
		}
	}
	return mt, nil
}

// specFlags names the flag behind each spec field run sets.
var specFlags = []struct{ field, flag string }{
	{"metadata.name", "NAME"}, {"metadata.labels", "--label"}, {"spec.image", "--image"},
	{"spec.resources.memory", "--memory"}, {"spec.resources.cpus", "--cpus"}, {"spec.resources.pids", "--pids"},
	{"spec.env", "--env/--secret-env"}, {"spec.mounts", "--mount"}, {"spec.workingDir", "--workdir"},
	{"spec.user", "--user"}, {"spec.network", "--network"}, {"spec.activeDeadline", "--deadline"}, {"spec.ttlAfterFinished", "--ttl"}, {"spec.priority", "--priority"},
	{"spec.terminationGracePeriod", "--grace"}, {"spec.maxRestarts", "--max-restarts"},
	{"spec.workspace", "--workspace"},
	{"spec.egress", "--egress"},
}

// flagErrors rewrites validation errors in terms of run's flags.
func flagErrors(errs spec.ErrorList) error {
	lines := make([]string, len(errs))
	for i, e := range errs {
		where := e.Path
		for _, sf := range specFlags {
			if strings.HasPrefix(e.Path, sf.field) {
				where = sf.flag
				break
			}
		}
		lines[i] = where + ": " + e.Msg
	}
	return errors.New(strings.Join(lines, "\n"))
}

// startJob applies a new job and waits until its container started (or
// ended already), so that `logs -f` right after finds it.
func startJob(ctx context.Context, cl *api.Client, cmd *cobra.Command, name string, doc []byte, timeout time.Duration) error {
	if v, err := cl.Get(ctx, name); err == nil {
		return fmt.Errorf("spec %q exists already (%s); delete it first or choose another name", name, phaseOf(v))
	} else if !isNotFound(err) {
		return err
	}
	res, err := cl.Apply(ctx, doc, "application/yaml", false)
	if err != nil {
		return err
	}
	if len(res.Specs) != 1 {
		return fmt.Errorf("the agent applied %d specs, want 1", len(res.Specs))
	}
	hash := res.Specs[0].Hash
	if timeout > 0 {
		if err := waitStarted(ctx, cl, name, hash, timeout); err != nil {
			return err
		}
	}
	fmt.Fprintln(cmd.OutOrStdout(), name)
	return nil
}

// waitStarted polls until the job's container ran, or the agent reports
// an error for it (a missing image, a refused mount, ...).
func waitStarted(ctx context.Context, cl *api.Client, name, hash string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last api.SpecView
	err := poll(ctx, func() (bool, error) {
		v, err := cl.Get(ctx, name)
		if isNotFound(err) {
			return true, nil // it ran already, and a short TTL collected it
		}
		if err != nil {
			return false, err
		}
		last = v
		st := v.Status
		if st == nil || st.SpecHash != hash {
			return false, nil
		}
		switch st.Phase {
		case model.PhaseError, model.PhaseImagePullBackOff:
			return false, fmt.Errorf("%s did not start: %s (the spec stays applied and the agent keeps trying; 'reconciler delete %s' gives up)", name, st.Message, name)
		case model.PhaseRefused:
			return false, fmt.Errorf("%s did not start: %s (it starts once the agent's policy allows it; 'reconciler delete %s' gives up)", name, st.Message, name)
		case model.PhasePending, "":
			return false, nil
		case model.PhaseQueued:
			// The agent starts it when the budget frees up: not an error.
			fmt.Fprintf(os.Stderr, "%s is queued: %s\n", name, st.Message)
		}
		return true, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s applied, but not started after %s (%s)", name, timeout, phaseOf(last))
	}
	return err
}

func waitCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME [--for=running|healthy|succeeded|deleted] [--timeout D]",
		Short: "Block until a job finishes (exit with its exit code), or until a condition holds",
		Long: `Block until the spec NAME is Succeeded or Failed, print how it ended and exit
with the exit code of its last run (1 for a failure that exited 0, such as a
passed deadline). With --timeout, give up after that long with exit code 124.

With --for, as kubectl wait --for: block until the spec's container is running,
healthy (its healthcheck passes), succeeded (its job exited 0), or until the
spec and its container are deleted; exit 0 then, or 1 with what was last seen
when --timeout passes.`,
		Args: cobra.ExactArgs(1),
	}
	c := addConnFlags(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long, with exit code 124 (1 with --for) (default: wait for ever)")
	forCond := cmd.Flags().String("for", "", "wait for a condition instead: running, healthy, succeeded or deleted")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		name := args[0]
		if *forCond != "" {
			return waitFor(ctx, cl, cmd, name, *forCond, timeout)
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		res, err := waitFinished(ctx, cl, name)
		if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
			phase := "no status yet"
			if res.phase != "" {
				phase = "phase " + string(res.phase)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "error: timed out after %s waiting for %s to finish (%s)\n", timeout, name, phase)
			return exitError{code: exitTimeout}
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), res.summary(name))
		if code := res.code(); code != 0 {
			return exitError{code: code}
		}
		return nil
	})
	return cmd
}

// finish is how a job ended, as far as the agent knows.
type finish struct {
	phase model.Phase
	exit  *model.ContainerExit // the last run; nil when none was recorded
	gone  bool                 // the spec was deleted (its TTL passed)
}

// code is wait's exit code: the last run's, but never 0 for a failure.
func (f finish) code() int {
	switch {
	case f.phase == model.PhaseSucceeded:
		return 0
	case f.exit != nil && f.exit.ExitCode != 0:
		return f.exit.ExitCode
	}
	return 1
}

func (f finish) summary(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, f.phase)
	if e := f.exit; e != nil {
		fmt.Fprintf(&b, ": exit code %d (%s)", e.ExitCode, e.Reason)
		if e.Duration != "" {
			fmt.Fprintf(&b, " after %s", e.Duration)
		}
	}
	if f.gone {
		b.WriteString("; the spec was already deleted after its ttlAfterFinished")
	}
	return b.String()
}

// waitFinished polls until the spec's status for its current version is
// Succeeded or Failed. A spec already deleted is judged by its last exit
// record, which outlives it.
func waitFinished(ctx context.Context, cl *api.Client, name string) (finish, error) {
	var res finish
	err := poll(ctx, func() (bool, error) {
		v, err := cl.Get(ctx, name)
		if isNotFound(err) {
			exits, xerr := cl.Exits(ctx, name, 1)
			if xerr != nil || len(exits) == 0 {
				return false, err // no spec and no record: the name is unknown
			}
			res = finish{phase: model.PhaseFailed, exit: &exits[0], gone: true}
			if exits[0].Succeeded() && exits[0].Reason == model.ReasonCompleted {
				res.phase = model.PhaseSucceeded
			}
			return true, nil
		}
		if err != nil {
			return false, err
		}
		st := v.Status
		if st == nil || st.SpecHash != v.Hash {
			res.phase = model.PhasePending
			return false, nil
		}
		res.phase = st.Phase
		if st.Phase != model.PhaseSucceeded && st.Phase != model.PhaseFailed {
			return false, nil
		}
		res.exit = st.LastExit
		if exits, err := cl.Exits(ctx, name, 1); err == nil && len(exits) > 0 {
			res.exit = &exits[0]
		}
		return true, nil
	})
	return res, err
}

// poll calls check every pollEvery until it reports done or fails, or ctx
// ends.
func poll(ctx context.Context, check func() (done bool, err error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		done, err := check()
		switch {
		case done:
			return nil
		case err != nil && ctx.Err() != nil:
			return ctx.Err() // the call failed because time ran out
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func isNotFound(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func phaseOf(v api.SpecView) string {
	if v.Status == nil {
		return "no status yet"
	}
	if v.Status.Message != "" {
		return fmt.Sprintf("phase %s: %s", v.Status.Phase, v.Status.Message)
	}
	return "phase " + string(v.Status.Phase)
}
