package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

var roles = []api.Role{api.RoleView, api.RoleEdit, api.RoleExec, api.RoleAdmin}

func TestEveryRouteHasAnAccessEntry(t *testing.T) {
	routes := api.Routes()
	var served []string
	for _, r := range routes {
		served = append(served, r.Route)
		if !r.InTable {
			t.Errorf("route %s has no entry in routeAccess: give it the least role that may call it", r.Route)
		}
	}
	for _, k := range api.TableRoutes() {
		if !slices.Contains(served, k) {
			t.Errorf("routeAccess names %s, which NewHandler does not serve", k)
		}
	}
	// The verbs of the contract, each at its role.
	want := map[string]api.Role{
		"GET /v1/specs": api.RoleView, "GET /v1/specs/{name}": api.RoleView, "GET /v1/specs/{name}/logs": api.RoleView,
		"GET /v1/specs/{name}/exits": api.RoleView, "GET /v1/events": api.RoleView,
		"POST /v1/specs": api.RoleEdit, "DELETE /v1/specs/{name}": api.RoleEdit,
		"POST /v1/specs/{name}/exec": api.RoleExec,
	}
	for _, r := range routes {
		if role, ok := want[r.Route]; ok && r.Role != role {
			t.Errorf("%s needs %s, want %s", r.Route, r.Role, role)
		}
	}
}

// routeRequest is a request that reaches the handler of route.
func routeRequest(route string) (method, path, body string) {
	method, pattern, _ := strings.Cut(route, " ")
	path = strings.ReplaceAll(pattern, "{name}", "web")
	switch route {
	case "POST /v1/specs":
		body = specYAML("other", "box")
	case "POST /v1/specs/{name}/exec":
		body = `{"command": ["true"]}`
	}
	return method, path, body
}

func TestEachRoleIsRefusedExactlyTheRoutesAboveIt(t *testing.T) {
	f := newFixture(t)
	for _, role := range roles {
		for _, r := range api.Routes() {
			f.apply(specYAML("web", "box")) // a delete before may have taken it
			method, path, body := routeRequest(r.Route)
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/yaml")
			if method == "POST" && strings.HasSuffix(path, "/exec") {
				req.Header.Set("Content-Type", "application/json")
			}
			req = req.WithContext(api.WithIdentity(req.Context(), api.Identity{Via: "token", Name: "ci", UID: -1, Role: role}))
			rr := httptest.NewRecorder()
			f.handler.ServeHTTP(rr, req)
			if role < r.Role {
				if rr.Code != http.StatusForbidden {
					t.Errorf("%s as %s: status %d, want 403", r.Route, role, rr.Code)
					continue
				}
				var e api.Error
				if err := json.Unmarshal(rr.Body.Bytes(), &e); err != nil {
					t.Fatalf("%s as %s: %s is not a JSON error", r.Route, role, rr.Body)
				}
				wantMsg := "role " + r.Role.String() + " required to " + r.Verb + "; you (token \"ci\") have role " + role.String()
				if e.Message != wantMsg {
					t.Errorf("%s as %s: message %q, want %q", r.Route, role, e.Message, wantMsg)
				}
				continue
			}
			if rr.Code == http.StatusForbidden {
				t.Errorf("%s as %s: refused: %s", r.Route, role, rr.Body)
			}
		}
	}
}

func TestNoIdentityIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, r := range api.Routes() {
		method, path, body := routeRequest(r.Route)
		rr := httptest.NewRecorder()
		f.handler.ServeHTTP(rr, httptest.NewRequest(method, path, strings.NewReader(body)))
		if rr.Code != http.StatusForbidden || !strings.Contains(rr.Body.String(), "could not tell who is asking") {
			t.Errorf("%s without an identity: %d %s", r.Route, rr.Code, rr.Body)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range roles {
		got, err := api.ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "Admin", "root", "read"} {
		if _, err := api.ParseRole(bad); err == nil || !strings.Contains(err.Error(), "view, edit, exec or admin") {
			t.Errorf("ParseRole(%q): %v", bad, err)
		}
	}
}

func TestParseTokens(t *testing.T) {
	good := "# operators\n\ns3cret-view,viewer,view\n  s3cret-edit, ci ,edit\n\"s3cret-exec\",oncall,exec\ns3cret-admin,root,admin\n"
	tokens, err := api.ParseTokens("tokens.csv", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range tokens {
		got = append(got, tk.Name+"="+tk.Role.String())
	}
	if want := []string{"viewer=view", "ci=edit", "oncall=exec", "root=admin"}; !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}

	for _, c := range []struct{ name, data, want string }{
		{"two fields", "# c\ns3cret,ci\n", "tokens.csv:2: 2 fields, want 3"},
		{"four fields", "s3cret,ci,edit,x\n", "tokens.csv:1: 4 fields, want 3"},
		{"bad role", "\ns3cret,ci,root\n", `tokens.csv:2: role "root": use view, edit, exec or admin`},
		{"empty token", ",ci,edit\n", "tokens.csv:1: the token is empty"},
		{"space in token", "s3 cret,ci,edit\n", "tokens.csv:1: the token holds a space"},
		{"empty name", "s3cret,,edit\n", "tokens.csv:1: the name is empty"},
		{"name twice", "a-token,ci,edit\nb-token,ci,view\n", `tokens.csv:2: name "ci" is already on line 1`},
		{"token twice", "a-token,ci,edit\na-token,cd,view\n", "tokens.csv:2: the token of line 1 again"},
		{"bad quoting", "a-token,ci,edit\n\"b-token,cd,view\n", "tokens.csv:2:"},
		{"no token", "# nothing\n\n", "tokens.csv holds no token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := api.ParseTokens("tokens.csv", []byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			for _, secret := range []string{"s3cret", "a-token", "b-token", "s3 cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows the token", err)
				}
			}
		})
	}
}

func TestTokenAuthIdentifiesTheToken(t *testing.T) {
	tokens := []api.Token{api.NewToken("v-token", "viewer", api.RoleView), api.NewToken("e-token", "ci", api.RoleEdit)}
	f := newFixture(t)
	srv := httptest.NewServer(api.TokenAuth(tokens, f.handler))
	defer srv.Close()
	f.apply(specYAML("web", "box"))
	if err := api.NewTCPClient(srv.URL, "e-token").Delete(t.Context(), "web"); err != nil {
		t.Fatalf("edit token deletes: %v", err)
	}
	_, err := api.NewTCPClient(srv.URL, "v-token").Apply(t.Context(), []byte(specYAML("web", "box")), "application/yaml", false)
	ae := apiError(t, err, http.StatusForbidden)
	if ae.Message != `role edit required to apply; you (token "viewer") have role view` {
		t.Fatalf("message %q", ae.Message)
	}
}

func TestAuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log", "audit.log")
	audit, err := api.OpenAuditLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	tokens := []api.Token{api.NewToken("v-token", "viewer", api.RoleView), api.NewToken("x-token", "oncall", api.RoleExec)}
	f := newFixture(t, func(d *api.Deps) { d.Audit = audit })
	srv := httptest.NewServer(api.TokenAuth(tokens, f.handler))
	defer srv.Close()
	viewer, oncall := api.NewTCPClient(srv.URL, "v-token"), api.NewTCPClient(srv.URL, "x-token")

	two := specYAML("a", "box") + "---\n" + specYAML("b", "box")
	if _, err := oncall.Apply(t.Context(), []byte(two), "application/yaml", false); err != nil {
		t.Fatal(err)
	}
	if _, err := oncall.Apply(t.Context(), []byte(specYAML("c", "box")), "application/yaml", true); err != nil {
		t.Fatal(err)
	}
	_, _ = viewer.Apply(t.Context(), []byte(specYAML("a", "box")), "application/yaml", false)
	_ = viewer.Delete(t.Context(), "a")
	_, _ = oncall.Exec(t.Context(), "a", []string{"true"}) // no container: 404
	if err := oncall.Delete(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.List(t.Context()); err != nil { // a read: not audited
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode %v (%v), want 0600", fi.Mode(), err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	type line struct {
		who, verb, spec, result string
		status                  int
		dryRun                  bool
	}
	var got []line
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "token") && strings.Contains(sc.Text(), "-token") {
			t.Fatalf("a token in the audit log: %s", sc.Text())
		}
		var rec api.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if rec.Time.IsZero() || rec.Via != "token" || rec.UID != nil {
			t.Errorf("line %q: want a time, via token and no uid", sc.Text())
		}
		got = append(got, line{rec.Who, rec.Verb, rec.Spec, rec.Result, rec.Status, rec.DryRun})
	}
	want := []line{
		{"oncall", "apply", "a,b", "ok", 200, false},
		{"oncall", "apply", "c", "ok", 200, true},
		{"viewer", "apply", "", `role edit required to apply; you (token "viewer") have role view`, 403, false},
		{"viewer", "delete", "a", `role edit required to delete; you (token "viewer") have role view`, 403, false},
		{"oncall", "exec", "a", `spec "a" has no container now`, 404, false},
		{"oncall", "delete", "b", "ok", 200, false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit lines\n%+v\nwant\n%+v", got, want)
	}
}

// TestStreamsOutliveServerDeadlines serves the API with read and write
// timeouts far shorter than a follow or an exec: those routes lift them,
// and an apply that takes as long is cut, which shows the deadlines bite.
func TestStreamsOutliveServerDeadlines(t *testing.T) {
	const deadline = 300 * time.Millisecond
	const slow = 4 * deadline
	var slowApply atomic.Bool
	f := newFixture(t, func(d *api.Deps) {
		d.Changed = func(string) {
			if slowApply.Load() {
				time.Sleep(slow)
			}
		}
	})
	f.rt.Add(managed("c1", "web", "running"))
	f.rt.ExecFunc = func(context.Context, string, []string) (docker.ExecResult, error) {
		time.Sleep(slow)
		return docker.ExecResult{ExitCode: 3}, nil
	}
	srv := httptest.NewUnstartedServer(api.AsAdmin(f.handler))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = deadline, deadline
	srv.Start()
	defer srv.Close()
	c := api.NewTCPClient(srv.URL, "")
	f.apply(specYAML("web", "box"))

	slowApply.Store(true)
	if _, err := c.Apply(t.Context(), []byte(specYAML("web", "other")), "application/yaml", false); err == nil {
		t.Fatalf("an apply that took %v was answered with a %v write timeout", slow, deadline)
	}
	slowApply.Store(false)

	res, err := c.Exec(t.Context(), "web", []string{"sleep"})
	if err != nil || res.ExitCode != 3 {
		t.Fatalf("an exec of %v: %+v, %v", slow, res, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs := make(chan model.Event, 10)
	go func() {
		_ = c.FollowEvents(ctx, api.EventQuery{Spec: "web"}, func(ev model.Event) error { evs <- ev; return nil })
	}()
	time.Sleep(slow)
	f.rec.Event("web", model.EventNormal, "Late", "after the deadlines")
	for {
		select {
		case ev := <-evs:
			if ev.Reason == "Late" {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("a follow lasting %v missed its event", slow)
		}
	}
}
