package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPprofIsOffByDefault: no flag, no listener; and the metrics listener
// does not serve the profiles either.
func TestPprofIsOffByDefault(t *testing.T) {
	if addr := Defaults().PprofAddr; addr != "" {
		t.Fatalf("default --pprof-addr = %q, want none", addr)
	}
	l, err := listenPprof(Defaults().PprofAddr)
	if err != nil || l != nil {
		t.Fatalf("listenPprof(default) = %v, %v; want no listener", l, err)
	}
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(ta.healthHandler())
	t.Cleanup(srv.Close)
	// Positive control: the metrics handler answers its own routes.
	if code, _ := get(t, srv.URL+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics = %d, want 200", code)
	}
	if code, _ := get(t, srv.URL+"/debug/pprof/"); code == http.StatusOK {
		t.Fatal("/debug/pprof/ is served on the metrics listener")
	}
}

// TestPprofServesProfilesWhenSet: with an address, its own listener serves
// the profile index and a heap profile.
func TestPprofServesProfilesWhenSet(t *testing.T) {
	l, err := listenPprof("127.0.0.1:0")
	if err != nil || l == nil {
		t.Fatalf("listenPprof = %v, %v", l, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- servePprof(ctx, l, DefaultHTTPLimits(), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("servePprof: %v", err)
		}
	})
	base := "http://" + l.Addr().String()
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/heap?debug=1": "heap profile"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s = %d, want 200 with %q:\n%.300s", path, resp.StatusCode, want, body)
		}
	}
}
