package egressproxy

import (
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	good := map[string]string{
		"api.anthropic.com:443":  "api.anthropic.com:443",
		"API.Example.COM.:80":    "api.example.com:80",
		"*.github.com:443":       "*.github.com:443",
		"10.0.0.5:8080":          "10.0.0.5:8080",
		"[::1]:3000":             "[::1]:3000",
		"[::ffff:10.1.2.3]:1":    "10.1.2.3:1",
		"_srv.example.com:65535": "_srv.example.com:65535",
	}
	for in, want := range good {
		r, err := ParseRule(in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("ParseRule(%q) = %s, want %s", in, r, want)
		}
	}
	bad := map[string]string{
		"example.com":           "not host:port",
		"example.com:0":         "not a port",
		"example.com:65536":     "not a port",
		"example.com:http":      "not a port",
		":443":                  "not a host name",
		"*.com:443":             "at least two labels",
		"*:443":                 "not a host name",
		"a.*.example.com:443":   "not a host name",
		"exa mple.com:443":      "not a host name",
		"-bad.example.com:443":  "not a host name",
		"[fe80::1%eth0]:443":    "zone",
		"http://example.com:80": "not host:port",
	}
	for in, want := range bad {
		if _, err := ParseRule(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRule(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

func TestAllows(t *testing.T) {
	l, err := ParseList([]string{"api.example.com:443", "*.github.com:443", "10.0.0.5:8080", "[2001:db8::1]:80"})
	if err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[string]bool{
		"api.example.com:443":     true,
		"API.EXAMPLE.COM:443":     true,
		"api.example.com.:443":    true,
		"api.example.com:80":      false, // another port
		"example.com:443":         false,
		"xapi.example.com:443":    false,
		"codeload.github.com:443": true,
		"a.b.github.com:443":      true,
		"github.com:443":          false, // a wildcard is below the domain only
		"evilgithub.com:443":      false,
		"github.com.evil.io:443":  false,
		"10.0.0.5:8080":           true,
		"[::ffff:10.0.0.5]:8080":  true,
		"10.0.0.5:8081":           false,
		"10.0.0.6:8080":           false,
		"[2001:db8::1]:80":        true,
		"[2001:db8:0::1]:80":      true,
		"[2001:db8::2]:80":        false,
		"api.example.com":         false, // no port
		"api.example.com:0":       false,
		"api.example.com:99999":   false,
		"":                        false,
	} {
		if got := l.Allows(dest); got != want {
			t.Errorf("Allows(%q) = %v, want %v", dest, got, want)
		}
	}
	// A wildcard never lets an address through, even one that looks like a
	// name below the domain.
	w, _ := ParseList([]string{"*.0.5:80"})
	if w.Allows("10.0.0.5:80") {
		t.Error("a wildcard matched an address literal")
	}
	if (List{}).Allows("api.example.com:443") {
		t.Error("the empty list allowed something")
	}
}
