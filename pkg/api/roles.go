package api

import (
	"fmt"
	"net/http"
	"time"
)

// Role is what an API client may do. Roles are ordered: each may do what
// the ones before it may.
type Role int

const (
	// RoleView reads: get, describe, logs, exits, events.
	RoleView Role = iota + 1
	// RoleEdit also writes specs: apply, delete, run, restart.
	RoleEdit
	// RoleExec also runs commands in containers, and so can read every
	// container's secrets.
	RoleExec
	// RoleAdmin may do everything, including what no table entry names.
	RoleAdmin
)

var roleNames = map[Role]string{RoleView: "view", RoleEdit: "edit", RoleExec: "exec", RoleAdmin: "admin"}

func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole reads view, edit, exec or admin.
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("role %q: use view, edit, exec or admin", s)
}

// access is what a route needs: its verb (for refusals and the audit log),
// the least role allowed it, and whether it streams. A streaming route
// answers for as long as its client or command lasts, so the server's read
// and write deadlines are lifted for it.
type access struct {
	verb    string
	role    Role
	streams bool
}

// routeAccess maps every route ("METHOD pattern", as registered in
// NewHandler) to what it needs. A route missing here is admin-only, and
// TestEveryRouteHasAnAccessEntry fails until it is given one.
var routeAccess = map[string]access{
	"GET /v1/version":              {verb: "version", role: RoleView},
	"GET /v1/errors":               {verb: "get", role: RoleView},
	"GET /v1/events":               {verb: "events", role: RoleView, streams: true},
	"GET /v1/specs":                {verb: "get", role: RoleView},
	"GET /v1/specs/{name}":         {verb: "get", role: RoleView},
	"GET /v1/specs/{name}/exits":   {verb: "exits", role: RoleView},
	"GET /v1/specs/{name}/logs":    {verb: "logs", role: RoleView, streams: true},
	"POST /v1/specs":               {verb: "apply", role: RoleEdit}, // also `run`
	"DELETE /v1/specs/{name}":      {verb: "delete", role: RoleEdit},
	"POST /v1/specs/{name}/exec":   {verb: "exec", role: RoleExec, streams: true},
	"GET /v1/specs/{name}/inspect": {verb: "inspect", role: RoleExec}, // shows the environment, secrets included
	// What a job wrote to its workspace is its output, as its logs are.
	"GET /v1/specs/{name}/workspace": {verb: "cp", role: RoleView, streams: true},

	// rollout.go
	"POST /v1/specs/{name}/restart": {verb: "restart", role: RoleEdit},
}

// accessOf is the entry for route, admin-only when there is none.
func accessOf(route string) access {
	if a, ok := routeAccess[route]; ok {
		return a
	}
	return access{verb: route, role: RoleAdmin}
}

// audited says whether calls of a route go to the audit log: everything
// beyond reading (writes, exec, and what only an admin may do).
func (a access) audited() bool { return a.role >= RoleEdit }

// route serves one entry of the route table: it lets a request through
// to h only when its identity holds the role the route needs, writes the
// audit line of a write or exec, and lifts the deadlines of a streaming
// route.
func (s *server) route(route string, h handlerFunc) http.Handler {
	acc := accessOf(route)
	serve := s.handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, known := identityOf(r.Context())
		if acc.audited() && s.Audit != nil {
			entry := &auditEntry{}
			r = r.WithContext(withAuditEntry(r.Context(), entry))
			rec := &statusRecorder{ResponseWriter: w}
			w = rec
			defer func() { s.Audit.record(time.Now(), id, acc, r, entry, rec.status) }()
		}
		if err := permit(id, known, acc); err != nil {
			s.answerError(w, r, err)
			return
		}
		if acc.streams {
			// A follow, an exec or a wait lasts as long as it lasts; the
			// server's deadlines are for the other routes.
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		serve.ServeHTTP(w, r)
	})
}

// permit refuses a caller whose role is below what acc needs, naming both.
func permit(id Identity, known bool, acc access) error {
	if !known {
		return fail(errForbidden, "", "%s refused: the API could not tell who is asking", acc.verb)
	}
	if id.Role < acc.role {
		return fail(errForbidden, "", "role %s required to %s; you (%s) have role %s", acc.role, acc.verb, id, id.Role)
	}
	return nil
}
