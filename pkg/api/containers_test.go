package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
)

func TestExec(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	f.rt.add(managed("c1", "web", "running"))
	var ran []string
	f.rt.exec = func(id string, cmd []string) (docker.ExecResult, error) {
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
	f.rt.add(managed("c1", "web", "running"))
	f.rt.add(managed("c2", "done", "exited"))
	f.rt.exec = func(string, []string) (docker.ExecResult, error) {
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

func TestInspect(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	stray := managed("old", "web", "exited")
	stray.Name = "reconciler-web-old"
	f.rt.add(stray)
	f.rt.add(managed("c1", "web", "running"))
	c, err := f.c.Inspect(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "c1" || c.Pid != 42 || c.Labels[docker.LabelSpec] != "web" {
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
	f.rt.add(managed("c1", "web", "running"))
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
		f.rt.add(c)
	}
	c, err := f.c.Inspect(t.Context(), "web")
	if err != nil || c.ID != "c1" {
		t.Fatalf("got %+v %v, want the newest, c1", c, err)
	}
}
