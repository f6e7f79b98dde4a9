package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/api"
)

func TestSpecNamesInPathsAreDNSLabels(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/specs/a%2Fb"},
		{"GET", "/v1/specs/..%2F..%2Fetc%2Fpasswd"},
		{"GET", "/v1/specs/Web"},
		{"GET", "/v1/specs/web_1"},
		{"GET", "/v1/specs/" + strings.Repeat("a", 64)},
		{"DELETE", "/v1/specs/a%2Fb"},
		{"GET", "/v1/specs/a%2Fb/logs"},
		{"GET", "/v1/specs/a%2Fb/exits"},
		{"POST", "/v1/specs/a%2Fb/exec"},
		{"GET", "/v1/specs/a%2Fb/inspect"},
		{"GET", "/v1/specs/a%2Fb/nothing"},
		{"PUT", "/v1/specs/a%2Fb"},
	} {
		e := f.wantError(c.method, c.path, "", http.StatusBadRequest)
		if e.Field != "name" || !strings.Contains(e.Message, "DNS label") {
			t.Errorf("%s %s: %+v", c.method, c.path, e)
		}
	}
	for _, p := range []string{"/v1/specs/..", "/v1/specs/../version", "/v1/specs/web/.", "/v1//specs", "/v1/specs/"} {
		f.wantError("GET", p, "", http.StatusBadRequest)
	}
	e := f.wantError("GET", "/v1/events?spec=a/b", "", http.StatusBadRequest)
	if e.Field != "spec" {
		t.Errorf("events?spec=a/b: %+v", e)
	}
	// The client escapes names, so a bad one is refused rather than
	// reaching another endpoint.
	_, err := f.c.Get(t.Context(), "web/exits")
	apiError(t, err, http.StatusBadRequest)
}

func TestWrongMethodsAndPaths(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		method, path, allow string
	}{
		{"PUT", "/v1/specs", "POST, GET"},
		{"DELETE", "/v1/specs", "POST, GET"},
		{"POST", "/v1/version", "GET"},
		{"PATCH", "/v1/specs/web", "GET, DELETE"},
		{"GET", "/v1/specs/web/exec", "POST"},
		{"POST", "/v1/specs/web/logs", "GET"},
		{"DELETE", "/v1/events", "GET"},
	} {
		resp, _ := f.raw(c.method, c.path, "")
		e := f.wantError(c.method, c.path, "", http.StatusMethodNotAllowed)
		if got := resp.Header.Get("Allow"); got != c.allow || !strings.Contains(e.Message, c.method) {
			t.Errorf("%s %s: Allow %q (want %q), %+v", c.method, c.path, got, c.allow, e)
		}
	}
	for _, path := range []string{"/", "/v2/specs", "/v1/nothing", "/v1/specs/web/nothing", "/v1/specs/web/logs/more"} {
		f.wantError("GET", path, "", http.StatusNotFound)
	}
}

func TestBrowserRequestsAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "same-origin"}, // DNS rebinding looks same-origin
	} {
		f.wantError("GET", "/v1/specs", "", http.StatusForbidden, h...)
		f.wantError("POST", "/v1/specs", specYAML("web", "box"), http.StatusForbidden, append(h, "Content-Type", "application/yaml")...)
	}
	if specs, _ := f.st.ListSpecs(); len(specs) != 0 {
		t.Fatal("a browser request stored a spec")
	}
	// A typed-in address is the user's own doing.
	if resp, body := f.raw("GET", "/v1/version", "", "Sec-Fetch-Site", "none"); resp.StatusCode != 200 {
		t.Fatalf("Sec-Fetch-Site none: %d %s", resp.StatusCode, body)
	}
}

func TestTokenAuth(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		name, token, header string
		want                int
	}{
		{"missing", "s3cret", "", 401},
		{"wrong", "s3cret", "Bearer s3cre", 401},
		{"longer", "s3cret", "Bearer s3cret2", 401},
		{"other scheme", "s3cret", "Basic s3cret", 401},
		{"no scheme", "s3cret", "s3cret", 401},
		{"empty bearer", "s3cret", "Bearer ", 401},
		{"right", "s3cret", "Bearer s3cret", 204},
		{"no token configured", "", "Bearer ", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/version", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rr := httptest.NewRecorder()
			var tokens []api.Token
			if c.token != "" {
				tokens = append(tokens, api.NewToken(c.token, "ci", api.RoleView))
			}
			api.TokenAuth(tokens, ok).ServeHTTP(rr, req)
			if rr.Code != c.want {
				t.Fatalf("status %d, want %d", rr.Code, c.want)
			}
			if c.want == 401 && (rr.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rr.Body.String(), `"message"`)) {
				t.Fatalf("401 without a challenge or JSON body: %v %s", rr.Header(), rr.Body)
			}
			if c.want == 401 && rr.Header().Get("Connection") != "close" {
				t.Fatalf("401 keeps the connection open: %v", rr.Header())
			}
		})
	}
}

func TestTCPClientSendsToken(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(api.TokenAuth([]api.Token{api.NewToken("s3cret", "ci", api.RoleView)}, f.handler))
	defer srv.Close()
	if _, err := api.NewTCPClient(srv.URL+"/", "s3cret").Version(t.Context()); err != nil {
		t.Fatalf("right token: %v", err)
	}
	_, err := api.NewTCPClient(srv.URL, "wrong").Version(t.Context())
	if ae := apiError(t, err, http.StatusUnauthorized); !strings.Contains(ae.Message, "token") {
		t.Fatalf("401 message %q", ae.Message)
	}
}
