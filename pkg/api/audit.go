package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AuditRecord is one line of the audit log: a write or an exec, allowed or
// refused. It names who asked (a token's name or a socket peer's user),
// never a token.
type AuditRecord struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	Via    string    `json:"via"` // token or socket
	UID    *int      `json:"uid,omitempty"`
	Role   string    `json:"role"`
	Verb   string    `json:"verb"`
	Spec   string    `json:"spec,omitempty"` // several, comma-separated, for an apply of several
	DryRun bool      `json:"dryRun,omitempty"`
	Status int       `json:"status"` // the HTTP status answered; 0 when the client left first
	Result string    `json:"result"` // "ok", or why not
}

// maxAuditResult bounds the reason a line gives.
const maxAuditResult = 200

// AuditLog appends one JSON line per audited call to a file.
type AuditLog struct {
	mu     sync.Mutex
	f      *os.File
	log    *slog.Logger
	failed bool
}

// OpenAuditLog opens path for appending, creating it with mode 0600 (and
// its directory with 0700). A symlink in its place is refused.
func OpenAuditLog(path string, log *slog.Logger) (*AuditLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit log %s: not a regular file", path)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AuditLog{f: f, log: log.With("component", "audit")}, nil
}

// Close closes the file.
func (a *AuditLog) Close() error { return a.f.Close() }

// Write appends rec as one line. One write call per line keeps lines
// whole in an O_APPEND file.
func (a *AuditLog) Write(rec AuditRecord) {
	line, err := json.Marshal(rec)
	if err != nil {
		a.log.Error("audit record", "err", err)
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(line); err != nil {
		if !a.failed {
			a.log.Error("cannot write the audit log", "path", a.f.Name(), "err", err)
		}
		a.failed = true
		return
	}
	if a.failed {
		a.log.Info("audit log writable again", "path", a.f.Name())
		a.failed = false
	}
}

// record writes the line of one audited request.
func (a *AuditLog) record(now time.Time, id Identity, acc access, r *http.Request, e *auditEntry, status int) {
	rec := AuditRecord{Time: now.UTC(), Who: id.Name, Via: id.Via, Role: id.Role.String(), Verb: acc.verb, Status: status}
	if id.Via == "" {
		rec.Who, rec.Via, rec.Role = "unknown", "unknown", ""
	}
	if id.Via == "socket" {
		uid := id.UID
		rec.UID = &uid
	}
	rec.Spec = r.PathValue("name")
	if len(e.specs) > 0 {
		rec.Spec = strings.Join(e.specs, ",")
	}
	rec.DryRun = r.URL.Query().Get("dryRun") == "true"
	switch {
	case e.err != nil:
		rec.Result = errorBody(e.err).Message
		if len(rec.Result) > maxAuditResult {
			rec.Result = rec.Result[:maxAuditResult] + "..."
		}
	case status == 0:
		rec.Result = "the client left before the answer"
	default:
		rec.Result = "ok"
	}
	a.Write(rec)
}

// auditEntry is what a handler tells the audit line of its request.
type auditEntry struct {
	specs []string
	err   error
}

type auditKey struct{}

func withAuditEntry(ctx context.Context, e *auditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, e)
}

func auditEntryOf(ctx context.Context) *auditEntry {
	e, _ := ctx.Value(auditKey{}).(*auditEntry)
	return e
}

// auditSpecs names the specs a request is about when its path does not.
func auditSpecs(ctx context.Context, names ...string) {
	if e := auditEntryOf(ctx); e != nil {
		e.specs = append(e.specs, names...)
	}
}

// statusRecorder remembers the status answered. Unwrap lets
// http.ResponseController reach the connection's flush and deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
