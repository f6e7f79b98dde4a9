package egressproxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Log messages the agent reads from the proxy's output (one JSON object
// a line, from slog's JSON handler). A denial carries "dest" (host:port)
// and "method"; never a path, a query or a header, which may hold a
// token.
const (
	MsgDenied    = "denied"
	MsgListening = "listening"
)

// DialTimeout bounds the connection to an allowed destination.
const DialTimeout = 10 * time.Second

// Proxy serves CONNECT tunnels and plain-HTTP requests in proxy form
// (absolute URL) for the destinations Allow lists, and 403 for the rest.
type Proxy struct {
	Allow List
	Log   *slog.Logger
	// Dial connects to an allowed destination; nil is a net.Dialer with
	// DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	once      sync.Once
	transport *http.Transport
}

func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx, network, addr)
	}
	d := net.Dialer{Timeout: DialTimeout}
	return d.DialContext(ctx, network, addr)
}

func (p *Proxy) roundTripper() *http.Transport {
	p.once.Do(func() {
		p.transport = &http.Transport{
			// Never a proxy of its own: the container's proxy variables
			// must not reach here, and the destination is what was checked.
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				// The transport dials the request's host, which was checked;
				// checking again keeps that true if the code above changes.
				if !p.Allow.Allows(addr) {
					return nil, errDenied
				}
				return p.dial(ctx, network, addr)
			},
			ResponseHeaderTimeout: time.Minute,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		}
	})
	return p.transport
}

type deniedError struct{}

func (deniedError) Error() string { return "destination not allowed" }

var errDenied error = deniedError{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	p.forward(w, r)
}

func (p *Proxy) deny(w http.ResponseWriter, method, dest string) {
	p.Log.Info(MsgDenied, "dest", dest, "method", method)
	http.Error(w, "egress to "+dest+" is not allowed by this container's egress allow-list", http.StatusForbidden)
}

// connect opens a tunnel: the client speaks TLS (or anything) through it.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	dest := r.Host
	if _, _, err := net.SplitHostPort(dest); err != nil {
		http.Error(w, "CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	if !p.Allow.Allows(dest) {
		p.deny(w, r.Method, dest)
		return
	}
	upstream, err := p.dial(r.Context(), "tcp", dest)
	if err != nil {
		http.Error(w, "cannot reach "+dest+": "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "tunnels are not supported on this connection", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	_, err = io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
	if err != nil {
		client.Close()
		upstream.Close()
		return
	}
	// Bytes the client sent after its request, already buffered.
	if n := buf.Reader.Buffered(); n > 0 {
		pending, _ := buf.Reader.Peek(n)
		if _, err := upstream.Write(pending); err != nil {
			client.Close()
			upstream.Close()
			return
		}
	}
	pipe(client, upstream)
}

// pipe copies both ways until both sides are done, half-closing so a
// client that finished sending still gets the answer.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// Hop-by-hop headers (RFC 9110 7.6.1), and the proxy's own.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forward relays one plain-HTTP request given in proxy form.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	if !r.URL.IsAbs() || r.URL.Host == "" {
		http.Error(w, "this is a proxy: send requests with an absolute URL, or CONNECT", http.StatusBadRequest)
		return
	}
	if r.URL.Scheme != "http" {
		http.Error(w, "only http:// is forwarded; use CONNECT for https", http.StatusBadRequest)
		return
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
	}
	dest := net.JoinHostPort(r.URL.Hostname(), port)
	if !p.Allow.Allows(dest) {
		p.deny(w, r.Method, dest)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Host = r.URL.Host
	removeHopHeaders(out.Header)
	resp, err := p.roundTripper().RoundTrip(out)
	if err != nil {
		http.Error(w, "cannot reach "+dest+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
