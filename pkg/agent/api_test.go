package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The TCP listener of the API answers only requests bearing one of its
// tokens; the socket's peer check does not reach it. The valid token is the
// positive control: a listener that lost its token check (serving the bare
// handler) refuses it, and one that checks nothing lets the others in.
func TestAPIOnTCPAnswersOnlyItsToken(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ta.Config.Socket = filepath.Join(t.TempDir(), "api.sock")
	ta.Config.APIAddr = "127.0.0.1:0"
	ta.Config.APIToken = "tcp-s3cret"
	ta.Config.SocketRole = "edit"
	ls, _, err := ta.listenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d listeners, want the socket and TCP", len(ls))
	}
	tcp := ls[1]
	if tcp.Addr().Network() != "tcp" {
		t.Fatalf("second listener is on %s, want tcp", tcp.Addr().Network())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = serve(ctx, tcp.Listener, tcp.handler, DefaultHTTPLimits(), tcp.connContext, ta.log)
	}()
	t.Cleanup(func() { cancel(); <-done; ls[0].Close() })

	url := "http://" + tcp.Addr().String() + "/v1/specs"
	ask := func(header string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ask("Bearer tcp-s3cret"); code != http.StatusOK {
		t.Fatalf("with the token: %d %s, want 200", code, body)
	}
	for _, h := range []string{"", "Bearer wrong", "Bearer ", "tcp-s3cret", "Basic dGNwLXMzY3JldA=="} {
		code, body := ask(h)
		if code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d %s, want 401", h, code, body)
		}
		if strings.Contains(body, "tcp-s3cret") {
			t.Errorf("Authorization %q: the answer shows the token: %s", h, body)
		}
	}
}
