package agent

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
