package api

import (
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/events"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// DefaultMaxBody bounds a request body when Deps.MaxBody is zero: room
// for a file of specs (the CLI sends one file a request), not a payload.
const DefaultMaxBody = 256 << 10

// DefaultMaxApplies bounds the applies decoded at once when
// Deps.MaxApplies is zero: decoding a body takes memory (up to about 12 MiB
// for the largest body the decoder's limits let through), so the others
// wait their turn.
const DefaultMaxApplies = 2

// Exec limits when Deps leaves them zero: an exec holds a daemon
// connection and a goroutine for as long as its command runs.
const (
	DefaultExecMaxConcurrent = 16
	DefaultExecMaxDuration   = time.Hour
)

// Deps are what the API serves from.
type Deps struct {
	Store *store.Store
	// Recorder records the API's events and wakes event followers.
	Recorder *events.Recorder
	// Runtime returns the Docker runtime, or nil while the daemon is not
	// connected: logs, exec and inspect answer 503 meanwhile, everything
	// else works from the store.
	Runtime func() Runtime
	// Policy is the policy in force, read at every apply.
	Policy *spec.CurrentPolicy
	// Changed is told each spec name applied or deleted.
	Changed func(name string)
	// FileErrors lists the spec files the agent refused.
	FileErrors func() []source.FileError
	Instance   string
	Version    string
	Log        *slog.Logger
	MaxBody    int64 // default DefaultMaxBody
	// Audit, when set, gets a line for every write and exec (see
	// routeAccess), allowed or refused.
	Audit      *AuditLog
	MaxApplies int // default DefaultMaxApplies
	// ExecMaxConcurrent execs run at once; one more is answered 429.
	ExecMaxConcurrent int // default DefaultExecMaxConcurrent
	// ExecMaxDuration ends an exec's answer (504); its command may go on.
	ExecMaxDuration time.Duration // default DefaultExecMaxDuration
	// Output, when set, serves the saved runs' output: logs of a spec
	// whose container is gone, and logs --previous.
	Output SavedOutput
	// WorkspaceRoot holds the agent's workspace copies, which `cp` reads.
	WorkspaceRoot string
}

type server struct {
	Deps
	// writeMu serializes spec writes: an apply reads what is stored to
	// decide, then writes, and two applies of one name must not interleave.
	writeMu sync.Mutex
	// applies holds a token for each apply being decoded and checked.
	applies chan struct{}
	// execs holds a token for each exec running.
	execs chan struct{}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type route struct {
	method, path string
	h            handlerFunc
}

// NewHandler returns the API.
func NewHandler(d Deps) http.Handler {
	if d.MaxBody <= 0 {
		d.MaxBody = DefaultMaxBody
	}
	if d.MaxApplies <= 0 {
		d.MaxApplies = DefaultMaxApplies
	}
	if d.ExecMaxConcurrent <= 0 {
		d.ExecMaxConcurrent = DefaultExecMaxConcurrent
	}
	if d.ExecMaxDuration <= 0 {
		d.ExecMaxDuration = DefaultExecMaxDuration
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Runtime == nil {
		d.Runtime = func() Runtime { return nil }
	}
	d.Log = d.Log.With("component", "api")
	s := &server{Deps: d, applies: make(chan struct{}, d.MaxApplies), execs: make(chan struct{}, d.ExecMaxConcurrent)}
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, s.route(rt.method+" "+rt.path, rt.h))
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// A path without a method matches what the routes above do not: the
	// other methods, answered 405 in JSON (the mux's own 405 is text).
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.Handle(path, s.handle(func(w http.ResponseWriter, r *http.Request) error {
			if strings.Contains(path, "{name}") {
				if _, err := specName(r); err != nil {
					return err
				}
			}
			w.Header().Set("Allow", allow)
			return fail(errMethod, "", "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)
		}))
	}
	mux.Handle("/v1/specs/{name}/{rest...}", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := specName(r); err != nil {
			return err
		}
		return fail(errNoRoute, "", "no endpoint %s %s", r.Method, r.URL.Path)
	}))
	mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return fail(errNoRoute, "", "no endpoint %s %s (the API is under /v1)", r.Method, r.URL.Path)
	}))
	return s.guard(mux)
}

// routes are the API's endpoints; routeAccess says who may call each.
func (s *server) routes() []route {
	return []route{
		{"GET", "/v1/version", s.version},
		{"GET", "/v1/errors", s.fileErrors},
		{"GET", "/v1/events", s.events},
		{"POST", "/v1/specs", s.apply},
		{"GET", "/v1/specs", s.list},
		{"GET", "/v1/specs/{name}", named(s.get)},
		{"DELETE", "/v1/specs/{name}", named(s.delete)},
		{"GET", "/v1/specs/{name}/exits", named(s.exits)},
		{"GET", "/v1/specs/{name}/logs", named(s.logs)},
		{"POST", "/v1/specs/{name}/exec", named(s.exec)},
		{"GET", "/v1/specs/{name}/inspect", named(s.inspect)},
		{"GET", "/v1/specs/{name}/workspace", named(s.workspace)},
		{"POST", "/v1/specs/{name}/restart", named(s.restart)},
	}
}

// guard refuses what a browser sends and bounds request bodies.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := notFromBrowser(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		// The mux would redirect "/v1/specs/.." elsewhere; an API client
		// never means that.
		if p := r.URL.EscapedPath(); p != "/" && path.Clean(p) != p {
			s.writeError(w, r, fail(errBadRequest, "", "path %q has empty, '.' or '..' segments", p))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// notFromBrowser refuses requests made by a web page. A page cannot leave
// out Origin on a cross-origin write, and the Fetch metadata a browser adds
// is "none" only when the user typed the address: anything else could be a
// page reaching the agent through DNS rebinding or CSRF.
func notFromBrowser(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		return fail(errForbidden, "", "requests from web pages are refused (Origin %q)", o)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "none" {
		return fail(errForbidden, "", "requests from web pages are refused (Sec-Fetch-Site %q)", site)
	}
	return nil
}

// handle writes the error a handler returns. A streaming handler returns
// nil once it has begun to answer.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.answerError(w, r, err)
		}
	})
}

// answerError answers err, and notes it for the request's audit line.
func (s *server) answerError(w http.ResponseWriter, r *http.Request, err error) {
	if e := auditEntryOf(r.Context()); e != nil {
		e.err = err
	}
	s.writeError(w, r, err)
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		s.Log.Debug("client left", "method", r.Method, "path", r.URL.Path, "err", err)
		return // nobody to answer
	}
	status := statusOf(err)
	if status >= 500 {
		s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		s.Log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, errorBody(err))
}

// dnsLabel is RFC 1123's label, the rule spec names follow.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validName checks a spec name given in a path or in the query parameter
// field.
func validName(field, name string) error {
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return fail(errBadRequest, field, "%q is not a spec name: names are DNS labels (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)", name)
	}
	return nil
}

// specName is the validated {name} of the request's path.
func specName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := validName("name", name); err != nil {
		return "", err
	}
	return name, nil
}

func named(h func(w http.ResponseWriter, r *http.Request, name string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := specName(r)
		if err != nil {
			return err
		}
		return h(w, r, name)
	}
}

func (s *server) version(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, Version{Version: s.Deps.Version, Instance: s.Instance, API: "v1"})
	return nil
}

func (s *server) fileErrors(w http.ResponseWriter, r *http.Request) error {
	out := []FileError{}
	if s.FileErrors != nil {
		for _, e := range s.FileErrors() {
			out = append(out, FileError(e))
		}
	}
	slices.SortFunc(out, func(a, b FileError) int { return strings.Compare(a.Path, b.Path) })
	writeJSON(w, http.StatusOK, out)
	return nil
}
