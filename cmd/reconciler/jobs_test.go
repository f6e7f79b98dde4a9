package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// jobAgent is the real API over a real store on a unix socket; the test
// plays the controller by committing statuses and exits.
type jobAgent struct {
	st     *store.Store
	socket string
	// onApply, when set, runs for each spec the API stores, as the
	// controller would react to it.
	onApply func(name string)
	// gets counts status reads, so a test knows a poller is polling.
	gets atomic.Int64
}

func startJobAgent(t *testing.T) *jobAgent {
	t.Helper()
	old := pollEvery
	pollEvery = time.Millisecond
	t.Cleanup(func() { pollEvery = old })

	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := &jobAgent{st: st, socket: filepath.Join(dir, "api.sock")}
	var mu sync.Mutex
	h := api.NewHandler(api.Deps{Store: st, Changed: func(name string) {
		mu.Lock()
		defer mu.Unlock()
		if a.onApply != nil {
			a.onApply(name)
		}
	}})
	l, err := net.Listen("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Count(r.URL.Path, "/") == 3 {
			a.gets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	srv.Listener = l
	srv.Config.ConnContext = api.SocketPeer(os.Getuid(), api.RoleEdit) // the agent's own user: admin
	srv.Start()
	t.Cleanup(srv.Close)
	return a
}

// setStatus records what the controller would after looking at name. It
// may run on the API's goroutine (onApply), so it reports with t.Error.
func (a *jobAgent) setStatus(t *testing.T, name string, phase model.Phase, msg string, exit *model.ContainerExit) {
	t.Helper()
	rec, err := a.st.GetSpec(name)
	if err != nil {
		t.Error(err)
		return
	}
	a.commit(t, model.Status{Name: name, Phase: phase, Message: msg, SpecHash: rec.Hash, LastExit: exit}, exit)
}

func (a *jobAgent) commit(t *testing.T, st model.Status, exit *model.ContainerExit) {
	t.Helper()
	if _, _, err := a.st.Commit(store.Change{Status: &st, Exit: exit}); err != nil {
		t.Error(err)
	}
}

func (a *jobAgent) put(t *testing.T, s *spec.Spec) {
	t.Helper()
	if err := a.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
}

// reconciler runs the job commands as the binary would, against a.
func (a *jobAgent) reconciler(args ...string) (stdout, stderr string, err error) {
	root := &cobra.Command{Use: "reconciler", SilenceUsage: true, SilenceErrors: true}
	addJobCommands(root)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	if a != nil { // before any "--"
		args = append([]string{args[0], "--socket", a.socket}, args[1:]...)
	}
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func exitCodeOf(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func jobExit(name string, code int, reason model.ExitReason) *model.ContainerExit {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &model.ContainerExit{ContainerID: "c0ffee" + name, SpecName: name, SpecHash: "h", ExitCode: code,
		StartedAt: t0, FinishedAt: t0.Add(1200 * time.Millisecond), Duration: "1.2s", Reason: reason}
}

func TestBuildJobSpec(t *testing.T) {
	three := 3
	tests := []struct {
		name string
		o    runOptions
		argv []string
		want spec.ContainerSpec
		// labels are the spec's labels
		labels map[string]string
	}{
		{
			name: "args",
			o:    runOptions{image: "reconciler/box:latest", restart: "Never", maxRestarts: -1},
			argv: []string{"countdown", "--from", "3"},
			want: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"countdown", "--from", "3"}, RestartPolicy: spec.RestartNever},
		},
		{
			name: "everything",
			o: runOptions{image: "reconciler/claude-code:2.0.31", restart: "OnFailure", maxRestarts: 3,
				memory: "2Gi", cpus: "1.5", pids: 512, workdir: "/workspace", user: "1000", network: "none",
				env: []string{"MODE=batch", "EMPTY=", "EQ=a=b"}, secretEnv: []string{"ANTHROPIC_API_KEY=/etc/reconciler/secrets/anthropic-key"},
				mounts:   []string{"/srv/work/repo:/workspace", "claude-home:/home/node/.claude:ro", "/etc/ssl:/etc/ssl:rw"},
				labels:   []string{"team=a", "reconciler.test=jobs"},
				deadline: 2 * time.Hour, ttl: 24 * time.Hour, grace: 30 * time.Second, remove: true, command: true, priority: 10},
			argv: []string{"claude", "-p", "fix it"},
			want: spec.ContainerSpec{
				Image: "reconciler/claude-code:2.0.31", Command: []string{"claude", "-p", "fix it"},
				WorkingDir: "/workspace", User: "1000", Network: "none",
				Env: []spec.EnvVar{{Name: "MODE", Value: "batch"}, {Name: "EMPTY"}, {Name: "EQ", Value: "a=b"},
					{Name: "ANTHROPIC_API_KEY", ValueFrom: &spec.EnvSource{File: "/etc/reconciler/secrets/anthropic-key"}}},
				Mounts: []spec.Mount{{Type: "bind", Source: "/srv/work/repo", Target: "/workspace"},
					{Type: "volume", Source: "claude-home", Target: "/home/node/.claude", ReadOnly: true},
					{Type: "bind", Source: "/etc/ssl", Target: "/etc/ssl"}},
				Resources:     spec.Resources{Memory: "2Gi", CPUs: "1.5", Pids: 512},
				RestartPolicy: spec.RestartOnFailure, MaxRestarts: &three,
				ActiveDeadline:         spec.Duration{Duration: 2 * time.Hour},
				TTLAfterFinished:       spec.Duration{Duration: 24 * time.Hour},
				TerminationGracePeriod: spec.Duration{Duration: 30 * time.Second},
				RemoveOnExit:           true,
				Priority:               10,
			},
			labels: map[string]string{"team": "a", "reconciler.test": "jobs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildJobSpec("job", tt.o, tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Spec, tt.want) {
				t.Errorf("spec\n got %+v\nwant %+v", s.Spec, tt.want)
			}
			if !reflect.DeepEqual(s.Metadata.Labels, tt.labels) {
				t.Errorf("labels %v, want %v", s.Metadata.Labels, tt.labels)
			}
			if s.APIVersion != spec.APIVersion || s.Kind != spec.KindContainer || s.Metadata.Name != "job" {
				t.Errorf("header %s %s %s", s.APIVersion, s.Kind, s.Metadata.Name)
			}
		})
	}
}

func TestBuildJobSpecNamesTheFlag(t *testing.T) {
	ok := runOptions{image: "i", restart: "Never", maxRestarts: -1}
	tests := []struct {
		name string
		edit func(*runOptions)
		job  string
		want string
	}{
		{"bad name", func(*runOptions) {}, "Bad_Name", "NAME: "},
		{"no image", func(o *runOptions) { o.image = "" }, "j", "--image: required"},
		{"memory", func(o *runOptions) { o.memory = "512m" }, "j", `--memory: "512m" is not a quantity`},
		{"cpus", func(o *runOptions) { o.cpus = "lots" }, "j", "--cpus: "},
		{"negative deadline", func(o *runOptions) { o.deadline = -time.Second }, "j", "--deadline: "},
		{"always", func(o *runOptions) { o.restart = "Always" }, "j", `--restart "Always": use Never or OnFailure`},
		{"max restarts of Never", func(o *runOptions) { o.maxRestarts = 2 }, "j", "--max-restarts needs --restart OnFailure"},
		{"env", func(o *runOptions) { o.env = []string{"NOVALUE"} }, "j", `--env "NOVALUE": use NAME=VALUE`},
		{"env name", func(o *runOptions) { o.env = []string{"1X=a"} }, "j", "--env/--secret-env: "},
		{"secret env", func(o *runOptions) { o.secretEnv = []string{"KEY="} }, "j", `--secret-env "KEY=": use NAME=FILE`},
		{"relative secret", func(o *runOptions) { o.secretEnv = []string{"KEY=key.txt"} }, "j", `--env/--secret-env: "key.txt" is not an absolute path`},
		{"mount", func(o *runOptions) { o.mounts = []string{"/a"} }, "j", `--mount "/a": use SOURCE:TARGET`},
		{"mount mode", func(o *runOptions) { o.mounts = []string{"/a:/b:rx"} }, "j", "the mode must be ro or rw"},
		{"mount target", func(o *runOptions) { o.mounts = []string{"/a:b"} }, "j", "--mount: "},
		{"label", func(o *runOptions) { o.labels = []string{"x"} }, "j", `--label "x": use KEY=VALUE`},
		{"network", func(o *runOptions) { o.network = "a b" }, "j", `--network: "a b" is not a network`},
		{"reserved label", func(o *runOptions) { o.labels = []string{"reconciler.spec=x"} }, "j", "--label: "},
		{"priority", func(o *runOptions) { o.priority = 2_000_000_000 }, "j", "--priority: 2000000000 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, err := buildJobSpec(tt.job, o, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRunDryRunPrintsADecodableSpec(t *testing.T) {
	out, _, err := (*jobAgent)(nil).reconciler("run", "countdown", "--image", "reconciler/box:latest", "--memory", "16Mi",
		"--deadline", "1m", "--ttl", "3s", "--priority", "4", "--dry-run", "--", "countdown", "--from", "3")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := spec.Decode("dry-run", []byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := specs[0].Spec
	if specs[0].Metadata.Name != "countdown" || strings.Join(c.Args, " ") != "countdown --from 3" ||
		c.RestartPolicy != spec.RestartNever || c.TTLAfterFinished.Duration != 3*time.Second || c.Resources.Memory != "16Mi" || c.Priority != 4 {
		t.Errorf("dry run printed:\n%s", out)
	}
}

func TestRunAppliesAndReturnsOnceStarted(t *testing.T) {
	a := startJobAgent(t)
	a.onApply = func(name string) { a.setStatus(t, name, model.PhaseRunning, "", nil) }
	out, errOut, err := a.reconciler("run", "countdown", "--image", "reconciler/box:latest", "--", "countdown", "--from", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if out != "countdown\n" {
		t.Errorf("run printed %q, want the spec name", out)
	}
	rec, err := a.st.GetSpec("countdown")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Source.Kind != store.SourceAPI || strings.Join(rec.Spec.Spec.Args, " ") != "countdown --from 3" {
		t.Errorf("stored %+v", rec)
	}

	_, _, err = a.reconciler("run", "countdown", "--image", "reconciler/box:latest")
	if err == nil || !strings.Contains(err.Error(), `spec "countdown" exists already (phase Running)`) {
		t.Errorf("a second run of the name: err = %v", err)
	}
}

func TestRunReportsWhyTheJobDidNotStart(t *testing.T) {
	a := startJobAgent(t)
	a.onApply = func(name string) {
		a.setStatus(t, name, model.PhaseError, "image reconciler/absent:1 is not present and imagePullPolicy is Never", nil)
	}
	_, _, err := a.reconciler("run", "absent", "--image", "reconciler/absent:1")
	if err == nil || !strings.Contains(err.Error(), "absent did not start: image reconciler/absent:1 is not present") {
		t.Errorf("err = %v", err)
	}

	pull := startJobAgent(t)
	pull.onApply = func(name string) {
		pull.setStatus(t, name, model.PhaseImagePullBackOff, "Back-off 10s pulling image reconciler/absent:1: manifest unknown", nil)
	}
	_, _, err = pull.reconciler("run", "nopull", "--image", "reconciler/absent:1")
	if err == nil || !strings.Contains(err.Error(), "nopull did not start: Back-off 10s pulling image reconciler/absent:1: manifest unknown") {
		t.Errorf("a pull in back-off: err = %v", err)
	}

	b := startJobAgent(t) // nothing ever reconciles
	_, _, err = b.reconciler("run", "stuck", "--image", "i", "--start-timeout", "20ms")
	if err == nil || !strings.Contains(err.Error(), "stuck applied, but not started after 20ms (no status yet)") {
		t.Errorf("err = %v", err)
	}
	if _, err := b.st.GetSpec("stuck"); err != nil {
		t.Errorf("the spec must stay applied: %v", err)
	}
}

func TestWaitExitsWithTheJobsExitCode(t *testing.T) {
	tests := []struct {
		name  string
		phase model.Phase
		exit  *model.ContainerExit
		code  int
		out   string
	}{
		{"ok", model.PhaseSucceeded, jobExit("ok", 0, model.ReasonCompleted), 0, "ok Succeeded: exit code 0 (Completed) after 1.2s\n"},
		{"three", model.PhaseFailed, jobExit("three", 3, model.ReasonError), 3, "three Failed: exit code 3 (Error) after 1.2s\n"},
		{"deadline", model.PhaseFailed, jobExit("deadline", 0, model.ReasonDeadlineExceeded), 1, "deadline Failed: exit code 0 (DeadlineExceeded) after 1.2s\n"},
		{"oom", model.PhaseFailed, jobExit("oom", 137, model.ReasonOOMKilled), 137, "oom Failed: exit code 137 (OOMKilled) after 1.2s\n"},
	}
	a := startJobAgent(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.put(t, &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: tt.name},
				Spec: spec.ContainerSpec{Image: "i", RestartPolicy: spec.RestartNever}})
			a.setStatus(t, tt.name, tt.phase, "", tt.exit)
			out, _, err := a.reconciler("wait", tt.name)
			if got := exitCodeOf(err); got != tt.code {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.code)
			}
			if out != tt.out {
				t.Errorf("printed %q, want %q", out, tt.out)
			}
		})
	}
}

func TestWaitBlocksUntilTheJobFinishes(t *testing.T) {
	a := startJobAgent(t)
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "slow"},
		Spec: spec.ContainerSpec{Image: "i", RestartPolicy: spec.RestartNever}}
	a.put(t, s)
	// A status of an older version of the spec does not count.
	a.commit(t, model.Status{Name: "slow", Phase: model.PhaseFailed, SpecHash: "older"}, nil)

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := a.reconciler("wait", "slow")
		done <- result{out, err}
	}()
	a.setStatus(t, "slow", model.PhaseRunning, "", nil)
	for before := a.gets.Load(); a.gets.Load() < before+3; {
		select {
		case r := <-done:
			t.Fatalf("wait returned while the job runs: %q %v", r.out, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	a.setStatus(t, "slow", model.PhaseSucceeded, "", jobExit("slow", 0, model.ReasonCompleted))
	select {
	case r := <-done:
		if r.err != nil || !strings.HasPrefix(r.out, "slow Succeeded") {
			t.Errorf("wait: %q %v", r.out, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after the job succeeded")
	}
}

func TestWaitTimesOutWith124(t *testing.T) {
	a := startJobAgent(t)
	a.put(t, &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "long"},
		Spec: spec.ContainerSpec{Image: "i", RestartPolicy: spec.RestartNever}})
	a.setStatus(t, "long", model.PhaseRunning, "", nil)
	_, errOut, err := a.reconciler("wait", "long", "--timeout", "30ms")
	if exitCodeOf(err) != exitTimeout {
		t.Errorf("err = %v, want exit code %d", err, exitTimeout)
	}
	if !strings.Contains(errOut, "timed out after 30ms waiting for long to finish (phase Running)") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestWaitOnAJobDeletedAfterItsTTL(t *testing.T) {
	a := startJobAgent(t)
	a.put(t, &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "expired"},
		Spec: spec.ContainerSpec{Image: "i", RestartPolicy: spec.RestartNever}})
	a.setStatus(t, "expired", model.PhaseFailed, "", jobExit("expired", 3, model.ReasonError))
	// As the controller does when ttlAfterFinished passes: the spec goes,
	// its ledger stays.
	if err := a.st.DeleteSpec("expired"); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.reconciler("wait", "expired")
	if exitCodeOf(err) != 3 || !strings.Contains(out, "expired Failed: exit code 3 (Error)") || !strings.Contains(out, "already deleted") {
		t.Errorf("wait: %q %v", out, err)
	}

	_, _, err = a.reconciler("wait", "never-was")
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("an unknown name: err = %v, want not found", err)
	}
}
