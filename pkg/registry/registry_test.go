package registry

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dregistry "github.com/docker/docker/api/types/registry"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func decode(t *testing.T, enc string) dregistry.AuthConfig {
	t.Helper()
	ac, err := dregistry.DecodeAuthConfig(enc)
	if err != nil {
		t.Fatalf("decode %q: %v", enc, err)
	}
	return *ac
}

func TestEncodedAuthPicksTheImagesRegistry(t *testing.T) {
	cfg, err := Parse([]byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "` + b64("hubuser:hubpass") + `"},
		"127.0.0.1:5000": {"username": "alice", "password": "s3cret"},
		"http://ghcr.io": {"identitytoken": "tok"}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref, user, pass, token, server string
	}{
		{"nginx", "hubuser", "hubpass", "", "https://index.docker.io/v1/"},
		{"docker.io/library/nginx:1", "hubuser", "hubpass", "", "https://index.docker.io/v1/"},
		{"index.docker.io/me/app", "hubuser", "hubpass", "", "https://index.docker.io/v1/"},
		{"127.0.0.1:5000/box:v1", "alice", "s3cret", "", "127.0.0.1:5000"},
		{"ghcr.io/o/x@sha256:" + strings.Repeat("a", 64), "", "", "tok", "ghcr.io"},
	} {
		enc, err := cfg.EncodedAuth(tc.ref)
		if err != nil || enc == "" {
			t.Fatalf("%s: %q, %v", tc.ref, enc, err)
		}
		ac := decode(t, enc)
		if ac.Username != tc.user || ac.Password != tc.pass || ac.IdentityToken != tc.token || ac.ServerAddress != tc.server {
			t.Errorf("%s: got user %q token %q server %q", tc.ref, ac.Username, ac.IdentityToken, ac.ServerAddress)
		}
	}
	for _, ref := range []string{"127.0.0.1:5001/box:v1", "quay.io/x/y"} {
		if enc, err := cfg.EncodedAuth(ref); err != nil || enc != "" {
			t.Errorf("%s: no entry should mean anonymous, got %q, %v", ref, enc, err)
		}
	}
	if s := cfg.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "hubpass") || !strings.Contains(s, "127.0.0.1:5000") {
		t.Errorf("String() = %q", s)
	}
}

func TestParseRefusesWithoutShowingCredentials(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"auths": {"r.io": {"auth": "!!notbase64-s3cret"}}}`, "auths.r.io.auth: not base64"},
		{`{"auths": {"r.io": {"auth": "` + b64("nocolon-s3cret") + `"}}}`, "user:password"},
		{`{"auths": {"r.io": {"username": "u"}}}`, "needs auth"},
		{`{"auths": {"r.io": {"username": "u", "password": "s3cret"}, "https://r.io": {"identitytoken": "s3cret"}}}`, "two entries"},
		{`{"credsStore": "desktop"}`, "credsStore"},
		{`{"auths": [1]}`, "wrong type"},
		{`{"auths": {"r.io": {"password": "s3cret"`, "not JSON"},
	} {
		_, err := Parse([]byte(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.raw, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows a credential: %v", err)
		}
	}
}

func TestLoadNeedsOwnerOnlyMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	raw := `{"auths": {"r.io": {"username": "u", "password": "p"}}}`
	if err := os.WriteFile(p, []byte(raw), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("mode 0640: got %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hosts(); len(got) != 1 || got[0] != "r.io" || c.Username("r.io") != "u" {
		t.Fatalf("hosts %v", got)
	}
	c2, _ := Parse([]byte(raw))
	if !c.Equal(c2) {
		t.Error("same file should be Equal")
	}
}

func TestCurrentNilIsAnonymous(t *testing.T) {
	var c *Current
	if enc, err := c.EncodedAuth("r.io/x"); enc != "" || err != nil {
		t.Fatal(enc, err)
	}
	c = &Current{}
	if enc, err := c.EncodedAuth("r.io/x"); enc != "" || err != nil {
		t.Fatal(enc, err)
	}
}
