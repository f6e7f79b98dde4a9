package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/controller"
	"github.com/reconciler/reconciler/pkg/docker/dockertest"
	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/metrics"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

const (
	testResync = 200 * time.Millisecond
	// settle bounds every wait on the controller: its reconnect delay to a
	// daemon that is back grows to 10s at most, plus one resync.
	settle = 10*time.Second + testResync
)

// testAgent is an Agent over a fake daemon and a real state file, wired as
// Run wires it; skew moves the agent's clock (not the controller's).
type testAgent struct {
	*Agent
	rt   *dockertest.Runtime
	skew atomic.Int64
}

func newTestAgent(t *testing.T, log *slog.Logger) *testAgent {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ta := &testAgent{rt: dockertest.New()}
	ta.Agent = &Agent{Config: Config{Resync: testResync}, Store: st, log: log, ready: make(chan struct{}),
		Metrics: metrics.New("test", "test"), Policy: spec.NewCurrentPolicy(spec.DefaultPolicy())}
	ta.Docker = fakeDocker{ta.rt}
	ta.now = func() time.Time { return time.Now().Add(time.Duration(ta.skew.Load())) }
	ta.Metrics.SetProbes(ta.Ready, ta.Healthy)
	ta.Recorder = events.NewRecorder(st, log)
	ta.Controller = controller.New(ta.rt, st, ta.Recorder, controller.Options{
		Instance: st.InstanceID(), Resync: testResync, Log: log, Metrics: ta.Metrics, ReadSecret: ta.readSecret, Policy: ta.Policy,
		SecretsDir: secretsDir(st.Path(), st.InstanceID()), SecretKey: st.SecretKey()})
	return ta
}

// fakeDocker is the agent's client over the fake daemon; no call hangs.
type fakeDocker struct{ *dockertest.Runtime }

func (fakeDocker) Hanging() error { return nil }

// connect does what Run does once Docker answers.
func (ta *testAgent) connect() { close(ta.ready) }

// run runs the controller until the test ends.
func (ta *testAgent) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ta.Controller.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls cond until it holds or settle passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, settle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
