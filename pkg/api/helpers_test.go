package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/docker/dockertest"
	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/store"
)

const instance = "inst-1"

// fixture is the API over a real store in a temp dir and a fake Docker.
type fixture struct {
	t        *testing.T
	st       *store.Store
	rec      *events.Recorder
	rt       *dockertest.Runtime
	dockerUp atomic.Bool
	url      string
	c        *api.Client
	handler  http.Handler // the API itself, unwrapped
	// ended gets each request's path once its handler has returned.
	ended chan string

	mu       sync.Mutex
	changed  []string
	fileErrs []source.FileError
}

func newFixture(t *testing.T, opts ...func(*api.Deps)) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, rt: dockertest.New(), ended: make(chan string, 1000)}
	f.rec = events.NewRecorder(st, slog.New(slog.DiscardHandler))
	f.dockerUp.Store(true)
	d := api.Deps{
		Store: st, Recorder: f.rec, Instance: instance, Version: "1.2.3",
		Runtime: func() api.Runtime {
			if f.dockerUp.Load() {
				return f.rt
			}
			return nil
		},
		Changed: func(name string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changed = append(f.changed, name)
		},
		FileErrors: func() []source.FileError {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.fileErrs
		},
	}
	for _, o := range opts {
		o(&d)
	}
	h := api.NewHandler(d)
	f.handler = h
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.AsAdmin(h).ServeHTTP(w, r)
		select {
		case f.ended <- r.URL.Path:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.c = api.NewTCPClient(srv.URL, "")
	return f
}

// takeChanged returns the names the controller was told about since the
// last call.
func (f *fixture) takeChanged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.changed
	f.changed = nil
	return out
}

// raw sends a request as any HTTP client would; headers are name, value
// pairs.
func (f *fixture) raw(method, path, body string, headers ...string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, data
}

// wantError checks a JSON error answer and returns it.
func (f *fixture) wantError(method, path, body string, status int, headers ...string) api.Error {
	f.t.Helper()
	resp, data := f.raw(method, path, body, headers...)
	if resp.StatusCode != status {
		f.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, status, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var e api.Error
	if err := json.Unmarshal(data, &e); err != nil || e.Message == "" {
		f.t.Fatalf("%s %s: body %s is not a JSON error (%v)", method, path, data, err)
	}
	return e
}

// apply sends YAML through the client and fails the test on an error.
func (f *fixture) apply(yaml string) api.ApplyResult {
	f.t.Helper()
	res, err := f.c.Apply(f.t.Context(), []byte(yaml), "application/yaml", false)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return res
}

func specYAML(name, image string, more ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: reconciler/v1\nkind: Container\nmetadata:\n  name: %s\nspec:\n  image: %s\n", name, image)
	for _, m := range more {
		b.WriteString("  " + m + "\n")
	}
	return b.String()
}

// apiError unwraps the client's error answer.
func apiError(t *testing.T, err error, status int) *api.APIError {
	t.Helper()
	var ae *api.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *api.APIError", err, err)
	}
	if ae.Status != status {
		t.Fatalf("status %d, want %d (%v)", ae.Status, status, ae)
	}
	return ae
}

// managed is a container the agent instance owns for spec.
func managed(id, spec, state string) docker.Container {
	return docker.Container{ID: id, Name: "reconciler-" + spec, Image: "box", State: state,
		Labels: map[string]string{ownership.LabelManaged: "true", ownership.LabelInstance: instance, ownership.LabelSpec: spec}}
}
