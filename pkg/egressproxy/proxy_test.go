package egressproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// setup starts a plain and a TLS test server, and a proxy in front of
// them that allows only allow; logs holds the proxy's JSON lines.
func setup(t *testing.T, allow func(plain, tlsHost string) []string) (plain, secure *httptest.Server, proxy *httptest.Server, logs *bytes.Buffer) {
	t.Helper()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Errorf("the proxy forwarded its own header")
		}
		io.WriteString(w, "hello from "+r.Host+r.URL.Path)
	})
	plain = httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	secure = httptest.NewTLSServer(handler)
	t.Cleanup(secure.Close)
	pu, _ := url.Parse(plain.URL)
	su, _ := url.Parse(secure.URL)
	list, err := ParseList(allow(pu.Host, su.Host))
	if err != nil {
		t.Fatal(err)
	}
	logs = &bytes.Buffer{}
	p := &Proxy{Allow: list, Log: slog.New(slog.NewJSONHandler(logs, nil))}
	proxy = httptest.NewServer(p)
	t.Cleanup(proxy.Close)
	return plain, secure, proxy, logs
}

func clientVia(t *testing.T, proxy *httptest.Server) *http.Client {
	pu, _ := url.Parse(proxy.URL)
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(pu),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server
	}}
}

func deniedLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if m["msg"] == MsgDenied {
			out = append(out, m)
		}
	}
	return out
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPlainHTTP(t *testing.T) {
	plain, _, proxy, logs := setup(t, func(p, _ string) []string { return []string{p} })
	c := clientVia(t, proxy)
	code, body := get(t, c, plain.URL+"/ok")
	if code != 200 || !strings.Contains(body, "hello from") || !strings.HasSuffix(body, "/ok") {
		t.Fatalf("allowed GET = %d %q", code, body)
	}
	// Another port of the same host is another destination.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	code, body = get(t, c, other.URL+"/secret?token=s3cr3t")
	if code != http.StatusForbidden {
		t.Fatalf("denied GET = %d %q, want 403", code, body)
	}
	denied := deniedLines(t, logs)
	ou, _ := url.Parse(other.URL)
	if len(denied) != 1 || denied[0]["dest"] != ou.Host || denied[0]["method"] != "GET" {
		t.Fatalf("denied lines = %v, want one for %s", denied, ou.Host)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(logs.String(), "/secret") {
		t.Errorf("the log holds the path or query: %s", logs.String())
	}
}

func TestConnect(t *testing.T) {
	_, secure, proxy, logs := setup(t, func(_, s string) []string { return []string{s} })
	c := clientVia(t, proxy)
	code, body := get(t, c, secure.URL+"/tls")
	if code != 200 || !strings.HasSuffix(body, "/tls") {
		t.Fatalf("allowed CONNECT GET = %d %q", code, body)
	}
	if n := len(deniedLines(t, logs)); n != 0 {
		t.Fatalf("%d denials for an allowed tunnel", n)
	}
	// The plain server is not listed: a tunnel to it is refused too.
	other := httptest.NewTLSServer(http.NotFoundHandler())
	defer other.Close()
	if code, body := get(t, c, other.URL); code != 0 || !strings.Contains(body, "Forbidden") {
		t.Fatalf("denied CONNECT = %d %q, want the client to see 403 Forbidden", code, body)
	}
	if d := deniedLines(t, logs); len(d) != 1 || d[0]["method"] != "CONNECT" {
		t.Fatalf("denied lines = %v, want one CONNECT", d)
	}
}

func TestConnectRaw(t *testing.T) {
	// A tunnel carries any bytes both ways, the ones sent right behind the
	// CONNECT request included.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			conn, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	list, _ := ParseList([]string{echo.Addr().String()})
	proxy := httptest.NewServer(&Proxy{Allow: list, Log: slog.New(slog.DiscardHandler)})
	defer proxy.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: "+echo.Addr().String()+"\r\n\r\nping")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT answer %v, %v", resp, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestNotAProxyRequest(t *testing.T) {
	_, _, proxy, logs := setup(t, func(p, _ string) []string { return []string{p} })
	// A request with a path only, as to an origin server.
	code, _ := get(t, http.DefaultClient, proxy.URL+"/x")
	if code != http.StatusBadRequest {
		t.Errorf("origin-form request = %d, want 400", code)
	}
	if n := len(deniedLines(t, logs)); n != 0 {
		t.Errorf("a malformed request was logged as %d denials", n)
	}
}

func TestEmptyListDeniesAll(t *testing.T) {
	plain, _, proxy, logs := setup(t, func(string, string) []string { return nil })
	if code, _ := get(t, clientVia(t, proxy), plain.URL); code != http.StatusForbidden {
		t.Fatalf("GET with an empty list = %d, want 403", code)
	}
	if n := len(deniedLines(t, logs)); n != 1 {
		t.Fatalf("%d denials, want 1", n)
	}
}
