package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// DefaultSocket is where the agent listens, and a client looks, when
// neither is told otherwise (`--socket`, RECONCILER_SOCKET).
const DefaultSocket = "./.reconciler/reconciler.sock"

// Client talks to an agent's API. Its methods return an *APIError for an
// error answer and an *UnreachableError when the agent cannot be reached.
type Client struct {
	base  string
	where string
	token string
	hc    *http.Client
}

// NewClient returns a client for the agent listening on a unix socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{base: "http://reconciler", where: socket, hc: &http.Client{Transport: tr}}
}

// NewTCPClient returns a client for an agent's TCP API at rawURL
// ("http://host:port"), sending token as a bearer token.
func NewTCPClient(rawURL, token string) *Client {
	base := strings.TrimRight(rawURL, "/")
	return &Client{base: base, where: base, token: token,
		hc: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

// Where is the socket or URL the client talks to.
func (c *Client) Where() string { return c.where }

// APIError is an error answer: Message, and where known the field path, the
// file and line of a spec problem (or the file owning a read-only spec).
type APIError struct {
	Status  int
	Message string
	Field   string
	File    string
	Line    int
	Rule    string // the policy field that would allow a refusal
	// Errors has every problem when the agent found several.
	Errors []spec.FieldError
}

// Error reads like a spec error: "file:line: field: message", one problem a
// line.
func (e *APIError) Error() string {
	if len(e.Errors) > 1 {
		lines := make([]string, len(e.Errors))
		for i := range e.Errors {
			lines[i] = e.Errors[i].Error()
		}
		return strings.Join(lines, "\n")
	}
	fe := spec.FieldError{File: e.File, Line: e.Line, Path: e.Field, Msg: e.Message, Rule: e.Rule}
	return fe.Error()
}

// UnreachableError says the agent did not answer at all.
type UnreachableError struct {
	Where string
	Err   error
}

func (e *UnreachableError) Error() string {
	cause := e.Err
	var se *os.SyscallError
	if errors.As(cause, &se) {
		cause = se // "connect: no such file or directory" says it all
	}
	return fmt.Sprintf("cannot reach the agent at %s (%v)", e.Where, cause)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Version asks the agent for its version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	return v, c.call(ctx, http.MethodGet, "/v1/version", nil, nil, "", &v)
}

// Apply sends spec documents, YAML or JSON as contentType says.
func (c *Client) Apply(ctx context.Context, body []byte, contentType string, dryRun bool) (ApplyResult, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dryRun": {"true"}}
	}
	var res ApplyResult
	return res, c.call(ctx, http.MethodPost, "/v1/specs", q, bytes.NewReader(body), contentType, &res)
}

// List returns every spec with its status.
func (c *Client) List(ctx context.Context) ([]SpecView, error) {
	var out []SpecView
	return out, c.call(ctx, http.MethodGet, "/v1/specs", nil, nil, "", &out)
}

// Get returns one spec with its status.
func (c *Client) Get(ctx context.Context, name string) (SpecView, error) {
	var out SpecView
	return out, c.call(ctx, http.MethodGet, specPath(name, ""), nil, nil, "", &out)
}

// Delete deletes an API spec; the agent stops its container with grace.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, specPath(name, ""), nil, nil, "", nil)
}

// Exits returns the newest limit exits of a spec (all with limit 0).
func (c *Client) Exits(ctx context.Context, name string, limit int) ([]model.ContainerExit, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out []model.ContainerExit
	return out, c.call(ctx, http.MethodGet, specPath(name, "exits"), q, nil, "", &out)
}

// EventQuery selects events: of one spec (all when empty), after a Seq,
// the newest Limit of them (all when 0).
type EventQuery struct {
	Spec  string
	After uint64
	Limit int
}

func (q EventQuery) values(follow bool) url.Values {
	v := url.Values{}
	if q.Spec != "" {
		v.Set("spec", q.Spec)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if follow {
		v.Set("follow", "true")
	}
	return v
}

// Events lists events, oldest first.
func (c *Client) Events(ctx context.Context, q EventQuery) ([]model.Event, error) {
	var out []model.Event
	return out, c.call(ctx, http.MethodGet, "/v1/events", q.values(false), nil, "", &out)
}

// FollowEvents calls fn with the events q selects, then with each new one,
// until ctx ends, fn fails or the agent goes away.
func (c *Client) FollowEvents(ctx context.Context, q EventQuery, fn func(model.Event) error) error {
	err := c.stream(ctx, "/v1/events", q.values(true), func(dec *json.Decoder) error {
		var ev model.Event
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		return fn(ev)
	})
	if err == nil && ctx.Err() == nil {
		return fmt.Errorf("the agent at %s ended the event stream (stopped?)", c.where)
	}
	return err
}

// LogQuery chooses what Logs returns. Tail is a number of lines or "all"
// (also when empty); Since is a time, Unix seconds or a duration back.
type LogQuery struct {
	Follow     bool
	Tail       string
	Since      string
	Timestamps bool
	// Previous asks for the saved run before the current one.
	Previous bool
}

// Logs calls fn with each line of a spec's container output until the
// output ends (with Follow, when the container stops), ctx ends or fn fails.
func (c *Client) Logs(ctx context.Context, name string, q LogQuery, fn func(LogLine) error) error {
	v := url.Values{}
	if q.Follow {
		v.Set("follow", "true")
	}
	if q.Tail != "" {
		v.Set("tail", q.Tail)
	}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.Timestamps {
		v.Set("timestamps", "true")
	}
	if q.Previous {
		v.Set("previous", "true")
	}
	return c.stream(ctx, specPath(name, "logs"), v, func(dec *json.Decoder) error {
		var l LogLine
		if err := dec.Decode(&l); err != nil {
			return err
		}
		return fn(l)
	})
}

// Exec runs cmd in a spec's running container.
func (c *Client) Exec(ctx context.Context, name string, cmd []string) (ExecResult, error) {
	body, err := json.Marshal(ExecRequest{Command: cmd})
	if err != nil {
		return ExecResult{}, err
	}
	var out ExecResult
	return out, c.call(ctx, http.MethodPost, specPath(name, "exec"), nil, bytes.NewReader(body), "application/json", &out)
}

// Inspect returns a spec's container as Docker sees it.
func (c *Client) Inspect(ctx context.Context, name string) (Container, error) {
	var out Container
	return out, c.call(ctx, http.MethodGet, specPath(name, "inspect"), nil, nil, "", &out)
}

// FileErrors lists the spec files the agent refused.
func (c *Client) FileErrors(ctx context.Context) ([]FileError, error) {
	var out []FileError
	return out, c.call(ctx, http.MethodGet, "/v1/errors", nil, nil, "", &out)
}

// specPath escapes name, so that a name with a '/' reaches the agent (and
// is refused there) rather than naming another endpoint.
func specPath(name, sub string) string {
	p := "/v1/specs/" + url.PathEscape(name)
	if sub != "" {
		p += "/" + sub
	}
	return p
}

// call sends one request and decodes the JSON answer into out (unless nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string, out any) error {
	resp, err := c.send(ctx, method, path, q, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// stream reads a JSON-lines answer, calling next until the stream ends.
func (c *Client) stream(ctx context.Context, path string, q url.Values, next func(*json.Decoder) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		err := next(dec)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return err
		}
	}
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &UnreachableError{Where: c.where, Err: op.Err}
		}
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeError reads an error answer; one that is not the API's JSON (a
// proxy's page) keeps its status line and the start of its body.
func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body Error
	if err := json.Unmarshal(raw, &body); err != nil || body.Message == "" {
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s: %.200s", resp.Status, bytes.TrimSpace(raw))}
	}
	return &APIError{Status: resp.StatusCode, Message: body.Message, Field: body.Field,
		File: body.File, Line: body.Line, Rule: body.Rule, Errors: body.Errors}
}
