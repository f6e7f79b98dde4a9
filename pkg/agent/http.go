package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPLimits bound what one client can hold of a listener: the API's
// (socket and TCP) and the metrics listener each get these.
type HTTPLimits struct {
	// ReadTimeout is how long a request's headers and body may take to
	// arrive; WriteTimeout how long its answer may take. Streaming routes
	// (logs, events, exec, wait) lift both for their own requests.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no request.
	IdleTimeout time.Duration
	// MaxConns caps the connections served at once; the next waits in
	// the kernel's backlog until one closes.
	MaxConns int
}

// DefaultHTTPLimits suit one host's operators and one Prometheus.
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 30 * time.Second, MaxConns: 128}
}

func (l HTTPLimits) check() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--http-read-timeout", l.ReadTimeout}, {"--http-write-timeout", l.WriteTimeout}, {"--http-idle-timeout", l.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %s: use a positive duration", d.flag, d.v)
		}
	}
	if l.MaxConns < 1 {
		return fmt.Errorf("--http-max-conns %d: use 1 or more", l.MaxConns)
	}
	return nil
}

// serve runs an HTTP server on l until ctx ends, then shuts it down.
// connContext, when set, gives each connection's context (the API socket
// uses it to learn who the peer is).
func serve(ctx context.Context, l net.Listener, h http.Handler, lim HTTPLimits,
	connContext func(context.Context, net.Conn) context.Context, log *slog.Logger) error {
	srv := &http.Server{
		Handler: h,
		// Headers come first and are small: a client that has sent none
		// after 10s holds a slot for nothing.
		ReadHeaderTimeout: min(10*time.Second, lim.ReadTimeout),
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ConnContext:       connContext,
	}
	if lim.MaxConns > 0 {
		l = limitListener(l, lim.MaxConns)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("listening", "addr", l.Addr().String(), "max_conns", lim.MaxConns, "idle_timeout", lim.IdleTimeout)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// limitListener accepts at most n connections at once: beyond that,
// Accept waits for one to close, and new clients wait in the kernel's
// backlog.
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limited struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, free: func() { <-l.slots }}, nil
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// NetConn is the connection beneath, for whoever needs its kind (the API
// socket's peer credentials).
func (c *limitedConn) NetConn() net.Conn { return c.Conn }
