package api_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/store"
)

func TestExec(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	f.rt.Add(managed("c1", "web", "running"))
	var ran []string
	f.rt.ExecFunc = func(_ context.Context, id string, cmd []string) (docker.ExecResult, error) {
		ran = append([]string{id}, cmd...)
		return docker.ExecResult{ExitCode: 3, Stdout: []byte("out\x00\xff"), Stderr: []byte("err\n")}, nil
	}
	res, err := f.c.Exec(t.Context(), "web", []string{"sh", "-c", "exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || string(res.Stdout) != "out\x00\xff" || string(res.Stderr) != "err\n" {
		t.Fatalf("result %+v (binary output must come back intact)", res)
	}
	if !slices.Equal(ran, []string{"c1", "sh", "-c", "exit 3"}) {
		t.Fatalf("ran %v", ran)
	}
}

func TestExecBadInput(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	f.apply(specYAML("done", "box"))
	f.rt.Add(managed("c1", "web", "running"))
	f.rt.Add(managed("c2", "done", "exited"))
	f.rt.ExecFunc = func(context.Context, string, []string) (docker.ExecResult, error) {
		t.Error("exec ran on bad input")
		return docker.ExecResult{}, nil
	}
	for _, c := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"no command", "/v1/specs/web/exec", `{"command": []}`, 400, "command"},
		{"empty program", "/v1/specs/web/exec", `{"command": [""]}`, 400, "command"},
		{"unknown field", "/v1/specs/web/exec", `{"cmd": ["ls"]}`, 400, ""},
		{"not JSON", "/v1/specs/web/exec", `ls -l`, 400, ""},
		{"wrong type", "/v1/specs/web/exec", `{"command": "ls -l"}`, 400, ""},
		{"two objects", "/v1/specs/web/exec", `{"command": ["ls"]} {"command": ["rm"]}`, 400, ""},
		{"oversized", "/v1/specs/web/exec", `{"command": ["` + strings.Repeat("x", api.DefaultMaxBody) + `"]}`, 413, ""},
		{"not running", "/v1/specs/done/exec", `{"command": ["ls"]}`, 409, ""},
		{"unknown spec", "/v1/specs/nope/exec", `{"command": ["ls"]}`, 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := f.wantError("POST", c.path, c.body, c.status, "Content-Type", "application/json")
			if e.Field != c.field {
				t.Fatalf("%+v, want field %q", e, c.field)
			}
		})
	}
}

// execFixture has a running container "web" whose execs block until their
// context ends, reporting each start on started and each end on ended.
func execFixture(t *testing.T, opts ...func(*api.Deps)) (f *fixture, started chan struct{}, ended chan error) {
	f = newFixture(t, opts...)
	f.apply(specYAML("web", "box"))
	f.rt.Add(managed("c1", "web", "running"))
	started, ended = make(chan struct{}, 100), make(chan error, 100)
	f.rt.ExecFunc = func(ctx context.Context, _ string, cmd []string) (docker.ExecResult, error) {
		if cmd[0] == "true" {
			return docker.ExecResult{}, nil
		}
		started <- struct{}{}
		select {
		case <-ctx.Done():
		case <-t.Context().Done(): // the test failed: let the server close
		}
		ended <- context.Cause(ctx)
		return docker.ExecResult{}, context.Cause(ctx)
	}
	return f, started, ended
}

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen within 10s", what)
	}
	panic("unreachable")
}

// An exec ends when its client leaves, also one whose body came chunked:
// the server watches for the client only once the body has been read.
func TestExecEndsWhenTheClientLeaves(t *testing.T) {
	f, started, ended := execFixture(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"command": ["sleep", "60"]}`
	if _, err := fmt.Fprintf(conn, "POST /v1/specs/web/exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(body), body); err != nil {
		t.Fatal(err)
	}
	// The last chunk comes apart from the JSON, as it may on any network.
	time.AfterFunc(100*time.Millisecond, func() { _, _ = conn.Write([]byte("0\r\n\r\n")) })
	within(t, started, "the exec's start")
	conn.Close()
	if err := within(t, ended, "the exec's end after its client left"); !errors.Is(err, context.Canceled) {
		t.Fatalf("exec ended with %v, want context.Canceled", err)
	}
}

// Past ExecMaxConcurrent running execs the next is refused with 429; one
// that ends gives its place back.
func TestExecConcurrencyCap(t *testing.T) {
	f, started, _ := execFixture(t, func(d *api.Deps) { d.ExecMaxConcurrent = 2 })
	ctx, cancel := context.WithCancel(t.Context())
	for range 2 { // the cap-th runs
		go func() { _, _ = f.c.Exec(ctx, "web", []string{"sleep", "60"}) }()
		within(t, started, "an exec under the cap")
	}
	_, err := f.c.Exec(t.Context(), "web", []string{"true"})
	ae := apiError(t, err, http.StatusTooManyRequests)
	if !strings.Contains(ae.Message, "2 execs are already running") || !strings.Contains(ae.Message, "--exec-max-concurrent") {
		t.Fatalf("message %q", ae.Message)
	}
	cancel()
	for range 2 {
		waitEnded(t, f, "/v1/specs/web/exec")
	}
	if _, err := f.c.Exec(t.Context(), "web", []string{"true"}); err != nil {
		t.Fatalf("exec after the others ended: %v", err)
	}
}

// An exec past ExecMaxDuration is ended, and its client told why.
func TestExecMaxDuration(t *testing.T) {
	const limit = 200 * time.Millisecond
	f, _, ended := execFixture(t, func(d *api.Deps) { d.ExecMaxDuration = limit })
	start := time.Now()
	_, err := f.c.Exec(t.Context(), "web", []string{"sleep", "60"})
	ae := apiError(t, err, http.StatusGatewayTimeout)
	if took := time.Since(start); took < limit {
		t.Fatalf("ended after %s, before the limit", took)
	}
	if !strings.Contains(ae.Message, "longer than the agent's limit of 200ms (--exec-max-duration)") {
		t.Fatalf("message %q", ae.Message)
	}
	within(t, ended, "the exec's end")
}

func TestInspect(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	stray := managed("old", "web", "exited")
	stray.Name = "reconciler-web-old"
	f.rt.Add(stray)
	running := managed("c1", "web", "running")
	running.Pid = 42
	f.rt.Add(running)
	c, err := f.c.Inspect(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "c1" || c.Pid != 42 || c.Labels[ownership.LabelSpec] != "web" {
		t.Fatalf("inspect %+v, want the container with the spec's name", c)
	}
	_, err = f.c.Inspect(t.Context(), "nope")
	apiError(t, err, http.StatusNotFound)
}

// Without Docker, what needs it answers 503; what the store holds still
// answers.
func TestDockerNotConnected(t *testing.T) {
	f := newFixture(t)
	f.dockerUp.Store(false)
	f.apply(specYAML("web", "box"))
	if _, err := f.c.Get(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/specs/web/logs", ""},
		{"GET", "/v1/specs/web/inspect", ""},
		{"POST", "/v1/specs/web/exec", `{"command": ["ls"]}`},
	} {
		e := f.wantError(c.method, c.path, c.body, http.StatusServiceUnavailable)
		if !strings.Contains(e.Message, "Docker") {
			t.Errorf("%s %s: %+v", c.method, c.path, e)
		}
	}
	f.dockerUp.Store(true)
	f.rt.Add(managed("c1", "web", "running"))
	if _, err := f.c.Inspect(t.Context(), "web"); err != nil {
		t.Fatalf("once connected: %v", err)
	}
}

// Without a container of the spec's name (renamed by hand), the newest
// owned one is the spec's.
func TestContainerWithoutItsNameIsTheNewest(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, age := range []int{2, 0, 1} {
		c := managed(fmt.Sprintf("c%d", i), "web", "exited")
		c.Name, c.Created = fmt.Sprintf("renamed%d", i), base.Add(-time.Duration(age)*time.Hour)
		f.rt.Add(c)
	}
	c, err := f.c.Inspect(t.Context(), "web")
	if err != nil || c.ID != "c1" {
		t.Fatalf("got %+v %v, want the newest, c1", c, err)
	}
}

// A spec without a container: the 404 says so, with the spec's phase and
// status message when it has them, so that `reconciler logs` or `exec`
// tells the operator why (pulling, backing off, refused).
func TestNoContainerSaysWhy(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "reconciler/box:latest"))
	for _, tc := range []struct {
		status *model.Status
		want   string
	}{
		{nil, `spec "web" has no container now`},
		{&model.Status{Name: "web", Phase: model.PhasePending}, `spec "web" has no container now (Pending)`},
		{&model.Status{Name: "web", Phase: model.PhaseBackoff, Message: "back-off 10s restarting failed container"},
			`spec "web" has no container now (Backoff: back-off 10s restarting failed container)`},
	} {
		if tc.status != nil {
			if _, _, err := f.st.Commit(store.Change{Status: tc.status}); err != nil {
				t.Fatal(err)
			}
		}
		for _, path := range []string{"/v1/specs/web/logs", "/v1/specs/web/inspect"} {
			if e := f.wantError("GET", path, "", http.StatusNotFound); e.Message != tc.want {
				t.Errorf("GET %s with status %+v: %q, want %q", path, tc.status, e.Message, tc.want)
			}
		}
	}
	if e := f.wantError("GET", "/v1/specs/nope/logs", "", http.StatusNotFound); !strings.Contains(e.Message, `"nope"`) || strings.Contains(e.Message, "has no container") {
		t.Errorf("an unknown spec: %q, want it named as unknown", e.Message)
	}
}
