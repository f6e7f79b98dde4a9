package egress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The agent reads the proxy's JSON lines: only denials count, and what it
// logs of one is the spec, the destination (bounded) and the method.
func TestHandleLine(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m := New(nil, Options{Instance: "a1", Registerer: reg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, line := range []string{
		`{"time":"2026-11-30T12:00:00Z","level":"INFO","msg":"listening","addr":":3128","allow":2}`,
		`{"time":"2026-11-30T12:00:01Z","level":"INFO","msg":"denied","dest":"evil.example:443","method":"CONNECT"}`,
		`not json at all`,
		`{"msg":"denied","dest":"` + strings.Repeat("a", 1000) + `:80","method":"GET"}`,
		`2026/11/30 12:00:02 http: panic serving 10.0.0.2:1234: boom`,
	} {
		m.handleLine("job", line)
	}
	if got := testutil.ToFloat64(m.denied); got != 2 {
		t.Errorf("reconciler_egress_denied_total = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "reconciler_egress_denied_total"); err != nil || n != 1 {
		t.Errorf("registered series = %d, %v; want one, without labels", n, err)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="egress denied" component=egress spec=job destination=evil.example:443 method=CONNECT`) {
		t.Errorf("log = %s", out)
	}
	if strings.Contains(out, strings.Repeat("a", maxDest+1)) {
		t.Error("a long destination was logged whole")
	}
}

func TestNamesAndEnv(t *testing.T) {
	if NetworkName("job") != "reconciler-job.egress" || ProxyName("job") != "reconciler-job.egress-proxy" {
		t.Errorf("names %s %s", NetworkName("job"), ProxyName("job"))
	}
	env := ProxyEnv()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		if env[k] != "http://egress-proxy:3128" {
			t.Errorf("%s = %q", k, env[k])
		}
	}
	if env["NO_PROXY"] != NoProxy || env["no_proxy"] != NoProxy {
		t.Errorf("NO_PROXY = %q", env["NO_PROXY"])
	}
	if AllowHash([]string{"a:1", "b:2"}) == AllowHash([]string{"a:1"}) || AllowHash([]string{"a:1,b:2"}) == AllowHash([]string{"a:1", "b:2"}) {
		t.Error("AllowHash confuses two lists")
	}
}
