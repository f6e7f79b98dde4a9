package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
)

// Options configure a Client.
type Options struct {
	// Host is the daemon address; empty means DOCKER_HOST or the default
	// socket.
	Host string
	Log  *slog.Logger
	// Observe, when set, is called once for every daemon call with a short
	// operation name from a fixed set (ping, list, inspect, create, start,
	// stop, remove, wait, logs, exec_create, exec_attach,
	// exec_inspect, image_inspect, pull, events), its latency and the
	// daemon's own error (a NotFound that Remove or ImagePresent turn into
	// a normal answer is still reported). Streams (wait, events,
	// exec_attach) report their whole lifetime when they end; logs the
	// opening of its stream. A call cut off by its deadline reports an
	// error.
	Observe func(op string, d time.Duration, err error)
	// Timeouts bound each call by operation; missing entries take
	// DefaultTimeouts.
	Timeouts Timeouts
	// RegistryAuth gives the encoded credentials (X-Registry-Auth) for
	// pulling or inspecting an image reference, "" for none. It is asked
	// at every call, so credentials reloaded from a file are in force at
	// once. Nil: anonymous.
	RegistryAuth func(ref string) (string, error)
}

// Client implements Runtime over the Docker Go client.
type Client struct {
	api      client.APIClient
	log      *slog.Logger
	observe  func(op string, d time.Duration, err error)
	timeouts Timeouts
	calls    *calls
	auth     func(ref string) (string, error)
}

var _ Runtime = (*Client)(nil)

// New connects to the daemon and pings it, so that a daemon that is not
// there is reported at once rather than at the first reconcile.
func New(ctx context.Context, opts Options) (*Client, error) {
	c, err := Dial(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Dial makes a client without calling the daemon, for an agent that must
// start while the daemon is away; Ping tells when it answers.
func Dial(opts Options) (*Client, error) {
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		copts = append(copts, client.WithHost(opts.Host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return newClient(cli, opts), nil
}

func newClient(api client.APIClient, opts Options) *Client {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{api: api, log: log, observe: opts.Observe, timeouts: opts.Timeouts, calls: newCalls(time.Now), auth: opts.RegistryAuth}
}

// Ping checks that the daemon answers and negotiates the API version again
// from its answer, so that a daemon restarted as another version is
// spoken to in a version it understands.
func (c *Client) Ping(ctx context.Context) error {
	var p types.Ping
	err := c.do(ctx, OpPing, func(ctx context.Context) (err error) {
		p, err = c.api.Ping(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("ping docker daemon: %w", err)
		}
		host := c.api.DaemonHost()
		return fmt.Errorf("cannot reach the Docker daemon at %s: %w (is dockerd running?)",
			host, daemonError{kind: ErrUnavailable, err: connectCause(host, err)})
	}
	// The ping in hand carries the version; NegotiateAPIVersion would ping
	// a second time to learn the same thing.
	c.api.NegotiateAPIVersionPing(p)
	return nil
}

// APIVersion is the API version negotiated with the daemon.
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Close releases the client's idle connections.
func (c *Client) Close() error { return c.api.Close() }

func (c *Client) report(op string, start time.Time, err error) {
	if c.observe != nil {
		c.observe(op, time.Since(start), err)
	}
}

// connectCause recovers why the daemon could not be reached: the Docker
// client replaces a missing socket or a refused connection by a generic
// "Cannot connect" that hides which one it was.
func connectCause(host string, err error) error {
	u, perr := client.ParseHostURL(host)
	if perr != nil || !client.IsErrConnectionFailed(err) {
		return err
	}
	// For unix hosts too, Host holds the address (the socket path).
	conn, derr := net.DialTimeout(u.Scheme, u.Host, time.Second)
	if derr != nil {
		return derr
	}
	_ = conn.Close()
	return err
}
