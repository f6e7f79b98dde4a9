package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/store"
)

func TestReadyzFollowsTheDaemon(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(ta.healthHandler())
	defer srv.Close()
	readyz := func() (int, string) { return get(t, srv.URL+"/readyz") }
	healthz := func() (int, string) { return get(t, srv.URL+"/healthz") }

	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Errorf("before Docker answers: readyz %d %q, want 503 naming the connection", code, body)
	}
	if code, _ := healthz(); code != http.StatusOK {
		t.Errorf("before Docker answers: healthz %d, want 200 (alive, only not ready)", code)
	}

	ta.connect()
	if code, _ := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("before the first full sync: readyz %d, want 503", code)
	}
	ta.run(t)
	eventually(t, "ready after the first full sync", func() bool { code, _ := readyz(); return code == http.StatusOK })
	if v := scrape(t, srv.URL, "reconciler_ready"); v != "1" {
		t.Errorf("reconciler_ready = %s while /readyz says ok", v)
	}

	ta.rt.SetDown(true)
	eventually(t, "not ready while the daemon is away", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "docker daemon unreachable")
	})
	if code, body := healthz(); code != http.StatusOK {
		t.Errorf("daemon away: healthz %d %q, want 200 (restarting the agent would not help)", code, body)
	}
	if v := scrape(t, srv.URL, "reconciler_ready"); v != "0" {
		t.Errorf("reconciler_ready = %s while the daemon is away", v)
	}

	ta.rt.SetDown(false)
	eventually(t, "ready again once the daemon is back", func() bool { code, _ := readyz(); return code == http.StatusOK })
}

func TestHealthzReportsAStalledLoop(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(ta.healthHandler())
	defer srv.Close()
	ta.connect()
	ta.run(t)

	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz %d %q, want 200 ok", code, body)
	}
	ta.skew.Store(int64(ta.stallAfter() + time.Minute))
	code, body := get(t, srv.URL+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no progress") {
		t.Errorf("stalled loop: healthz %d %q, want 503 saying so", code, body)
	}
	if v := scrape(t, srv.URL, "reconciler_healthy"); v != "0" {
		t.Errorf("reconciler_healthy = %s while /healthz fails", v)
	}
	ta.skew.Store(0)
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz %d after progress, want 200", code)
	}
}

func TestProbesAnswerOnlyGet(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(ta.healthHandler())
	defer srv.Close()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Post(srv.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", path, resp.StatusCode)
		}
	}
}

// scrape returns the text value of an unlabelled series on /metrics.
func scrape(t *testing.T, base, name string) string {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s not on /metrics", name)
	return ""
}

// blockingStore is a state file whose ListSpecs can be made to hang, as a
// store write on stuck storage does: the source loop then stops for real.
type blockingStore struct {
	*store.Store
	mu      sync.Mutex
	release chan struct{} // non-nil: ListSpecs waits for it to close
}

func (b *blockingStore) ListSpecs() ([]store.Record, error) {
	b.mu.Lock()
	ch := b.release
	b.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return b.Store.ListSpecs()
}

func (b *blockingStore) block(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.release = make(chan struct{})
	} else if b.release != nil {
		close(b.release)
		b.release = nil
	}
}

func TestHealthzNamesAStuckSource(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	ta.Config.Rescan, ta.Config.SpecsDir = testResync, t.TempDir()
	bs := &blockingStore{Store: ta.Store}
	ta.Source = source.New(bs, source.Options{Dir: ta.Config.SpecsDir, Rescan: testResync})
	srv := httptest.NewServer(ta.healthHandler())
	defer srv.Close()
	ta.connect()
	ta.run(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ta.Source.Run(ctx) }()
	defer func() { bs.block(false); cancel(); <-done }()

	// Both loops are a second short of their stall limit on the agent's
	// clock: one that goes on ticking stays healthy, one that stops does not.
	ta.skew.Store(int64(ta.stallAfter() - time.Second))
	healthz := func() (int, string) { return get(t, srv.URL+"/healthz") }
	time.Sleep(3 * testResync) // both loops tick meanwhile: the positive control
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("both loops ticking: healthz %d %q, want 200", code, body)
	}
	bs.block(true)
	eventually(t, "healthz names the stuck source", func() bool {
		code, body := healthz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "spec directory source") &&
			strings.Contains(body, ta.Config.SpecsDir) && !strings.Contains(body, "reconcile loop")
	})
	if v := scrape(t, srv.URL, "reconciler_healthy"); v != "0" {
		t.Errorf("reconciler_healthy = %s while /healthz fails", v)
	}
	bs.block(false)
	eventually(t, "healthy again once the source moves", func() bool { code, _ := healthz(); return code == http.StatusOK })
}

// TestReadyzFollowsTheStateFile: a commit the file refuses makes /readyz
// 503 with the reason and counts in reconciler_state_write_errors_total;
// once the file takes writes again the agent's probe makes it ready
// without anything else being written.
func TestReadyzFollowsTheStateFile(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	ta.Metrics.SetStateWriteErrors(ta.Store.WriteFailures)
	srv := httptest.NewServer(ta.healthHandler())
	defer srv.Close()
	ta.connect()
	ta.run(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ta.watchStateFile(ctx) }()
	defer func() { cancel(); <-done }()
	readyz := func() (int, string) { return get(t, srv.URL+"/readyz") }
	eventually(t, "ready (positive control)", func() bool { code, _ := readyz(); return code == http.StatusOK })

	// RLIMIT_FSIZE at the file's size refuses the writes that grow it, as
	// a full disk does (Go ignores SIGXFSZ; the write fails with EFBIG).
	fi, err := os.Stat(ta.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(fi.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) }()
	big := make([]model.Event, 300)
	for i := range big {
		big[i] = model.Event{Type: model.EventNormal, Reason: "Filler", Message: fmt.Sprintf("%d %s", i, strings.Repeat("x", 2000))}
	}
	if _, _, err := ta.Store.Commit(store.Change{Events: big}); err == nil {
		t.Fatal("a commit past RLIMIT_FSIZE succeeded")
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "state file "+ta.Store.Path()) ||
		!strings.Contains(body, "file too large") {
		t.Errorf("state file refusing writes: readyz %d %q, want 503 with the reason", code, body)
	}
	if v := scrape(t, srv.URL, "reconciler_state_write_errors_total"); v != "1" {
		t.Errorf("reconciler_state_write_errors_total = %s, want 1", v)
	}

	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready again once the file takes writes", func() bool { code, _ := readyz(); return code == http.StatusOK })
}
