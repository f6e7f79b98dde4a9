package api_test

// Tests written against mutants that lived (`make mutate`, gremlins):
// each asserts what a client or an operator sees.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
)

// serveAs sends one request to the API as id, without a token or socket.
func (f *fixture) serveAs(id api.Identity, method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/yaml")
	req = req.WithContext(api.WithIdentity(req.Context(), id))
	rr := httptest.NewRecorder()
	f.handler.ServeHTTP(rr, req)
	return rr
}

func errorOf(t *testing.T, rr *httptest.ResponseRecorder, status int) api.Error {
	t.Helper()
	if rr.Code != status {
		t.Fatalf("status %d, want %d: %s", rr.Code, status, rr.Body)
	}
	var e api.Error
	if err := json.Unmarshal(rr.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s is not a JSON error: %v", rr.Body, err)
	}
	return e
}

// A refusal names a socket peer by uid and, when it has one, user name.
func TestRefusalNamesTheSocketPeer(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		id   api.Identity
		want string
	}{
		{api.Identity{Via: "socket", UID: 4242, Name: "alice", Role: api.RoleView}, "you (uid 4242 (alice)) have role view"},
		{api.Identity{Via: "socket", UID: 4243, Name: "4243", Role: api.RoleView}, "you (uid 4243) have role view"},
	} {
		e := errorOf(t, f.serveAs(tt.id, "DELETE", "/v1/specs/web", ""), http.StatusForbidden)
		if want := "role edit required to delete; " + tt.want; e.Message != want {
			t.Errorf("refusal of %+v: %q, want %q", tt.id, e.Message, want)
		}
	}
}

// auditLines reads the audit log's records.
func auditLines(t *testing.T, path string) []api.AuditRecord {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out []api.AuditRecord
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var rec api.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// An audit line gives the reason of a refusal whole up to 200 bytes, and
// cut to 200 and "..." beyond.
func TestAuditResultIsCutPast200Bytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	audit, err := api.OpenAuditLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	f := newFixture(t, func(d *api.Deps) { d.Audit = audit })
	// The refusal's text grows with the token's name.
	msg := func(name string) string {
		return `role edit required to delete; you (token "` + name + `") have role view`
	}
	short := msg("")
	names := []string{strings.Repeat("n", 200-len(short)), strings.Repeat("m", 201-len(short))}
	for _, name := range names {
		e := errorOf(t, f.serveAs(api.Identity{Via: "token", Name: name, UID: -1, Role: api.RoleView}, "DELETE", "/v1/specs/web", ""), http.StatusForbidden)
		if e.Message != msg(name) {
			t.Fatalf("refusal %q, want %q", e.Message, msg(name))
		}
	}
	got := auditLines(t, path)
	if len(got) != 2 {
		t.Fatalf("%d audit lines, want 2: %+v", len(got), got)
	}
	if want := msg(names[0]); got[0].Result != want {
		t.Errorf("a reason of 200 bytes reads %q in the audit log, want it whole", got[0].Result)
	}
	if want := msg(names[1])[:200] + "..."; got[1].Result != want {
		t.Errorf("a reason of 201 bytes reads %q in the audit log, want %q", got[1].Result, want)
	}
}

// The audit log says once that it cannot write, not at every request,
// and says nothing while its writes succeed.
func TestAuditLogWriteFailureIsLoggedOnce(t *testing.T) {
	var logged bytes.Buffer
	path := filepath.Join(t.TempDir(), "audit.log")
	audit, err := api.OpenAuditLog(path, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec := api.AuditRecord{Time: time.Now(), Who: "ci", Via: "token", Role: "edit", Verb: "apply", Status: 200, Result: "ok"}
	audit.Write(rec)
	audit.Write(rec)
	if logged.Len() != 0 {
		t.Errorf("audit writes that succeeded logged %q", logged.String())
	}
	if n := len(auditLines(t, path)); n != 2 {
		t.Fatalf("%d audit lines, want 2", n)
	}
	audit.Close() // every write fails from here on
	audit.Write(rec)
	audit.Write(rec)
	if n := strings.Count(logged.String(), "cannot write the audit log"); n != 1 {
		t.Errorf("two failed audit writes logged %d errors, want 1: %q", n, logged.String())
	}
}
