package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// faultProxy is a Docker API proxy on a unix socket, for an agent started
// with --docker-host unix://<path>. It forwards every request to the test's
// daemon (hijacked exec and attach streams included) except those a rule
// matches, which it holds unanswered, delays or fails. It can also cut the
// event streams it carries.
type faultProxy struct {
	path string
	srv  *http.Server
	rp   *httputil.ReverseProxy

	mu     sync.Mutex
	rules  []*faultRule
	events map[net.Conn]bool // connections carrying an event stream
	l      net.Listener
}

// faultRule matches requests by method and by path without the API
// version ("/containers/json", "/images/create").
type faultRule struct {
	method string
	path   *regexp.Regexp
	delay  time.Duration // before forwarding
	hang   bool          // until lifted or the client gives up
	status int           // fail with this status and message
	msg    string

	hits   atomic.Int64
	lifted chan struct{}
}

type connKey struct{}

var apiVersion = regexp.MustCompile(`^/v[0-9.]+`)

// newFaultProxy makes a proxy; it listens once listen is called.
func newFaultProxy() *faultProxy {
	GinkgoHelper()
	u, err := client.ParseHostURL(dcli.DaemonHost())
	Expect(err).NotTo(HaveOccurred())
	network, target := u.Scheme, u.Host // for unix, Host is the socket's path
	p := &faultProxy{path: filepath.Join(GinkgoT().TempDir(), "proxy.sock"), events: map[net.Conn]bool{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		}},
		FlushInterval: -1, // streams pass as they come
	}
	p.srv = &http.Server{
		Handler:     http.HandlerFunc(p.serve),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	DeferCleanup(p.close)
	return p
}

// startFaultProxy makes a proxy that listens at once.
func startFaultProxy() *faultProxy {
	GinkgoHelper()
	p := newFaultProxy()
	p.listen()
	return p
}

func (p *faultProxy) listen() {
	GinkgoHelper()
	l, err := net.Listen("unix", p.path)
	Expect(err).NotTo(HaveOccurred())
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() { _ = p.srv.Serve(l) }()
}

func (p *faultProxy) close() {
	p.mu.Lock()
	rules := p.rules
	p.rules = nil
	p.mu.Unlock()
	for _, r := range rules {
		close(r.lifted)
	}
	_ = p.srv.Close()
}

// host is the agent's --docker-host value.
func (p *faultProxy) host() string { return "unix://" + p.path }

func (p *faultProxy) add(r *faultRule) *faultRule {
	r.lifted = make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

// hang holds matching requests unanswered until the rule is lifted.
func (p *faultProxy) hang(method, path string) *faultRule {
	return p.add(&faultRule{method: method, path: regexp.MustCompile(path), hang: true})
}

// fail answers matching requests with status and the daemon's JSON error
// carrying msg.
func (p *faultProxy) fail(method, path string, status int, msg string) *faultRule {
	return p.add(&faultRule{method: method, path: regexp.MustCompile(path), status: status, msg: msg})
}

// delay forwards matching requests after d.
func (p *faultProxy) delay(method, path string, d time.Duration) *faultRule {
	return p.add(&faultRule{method: method, path: regexp.MustCompile(path), delay: d})
}

// lift removes a rule; the requests it holds are forwarded.
func (p *faultProxy) lift(r *faultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.rules {
		if x == r {
			p.rules = append(p.rules[:i], p.rules[i+1:]...)
			close(r.lifted)
			return
		}
	}
}

// dropEvents closes every connection carrying an event stream, as a
// daemon or a network in between may, and returns how many it closed.
func (p *faultProxy) dropEvents() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.events {
		_ = c.Close()
		delete(p.events, c)
		n++
	}
	return n
}

func (p *faultProxy) match(r *http.Request) *faultRule {
	path := apiVersion.ReplaceAllString(r.URL.Path, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rule := range p.rules {
		if (rule.method == "" || rule.method == r.Method) && rule.path.MatchString(path) {
			return rule
		}
	}
	return nil
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	if rule := p.match(r); rule != nil {
		rule.hits.Add(1)
		switch {
		case rule.hang:
			select {
			case <-rule.lifted:
			case <-r.Context().Done():
				return
			}
		case rule.delay > 0:
			t := time.NewTimer(rule.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		case rule.status != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rule.status)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": rule.msg})
			return
		}
	}
	if apiVersion.ReplaceAllString(r.URL.Path, "") == "/events" {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			p.mu.Lock()
			p.events[c] = true
			p.mu.Unlock()
			defer func() { p.mu.Lock(); delete(p.events, c); p.mu.Unlock() }()
		}
	}
	p.rp.ServeHTTP(w, r)
}
