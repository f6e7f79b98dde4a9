package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoggingAndInitDecodeAndValidate(t *testing.T) {
	specs, err := Decode("web.yaml", []byte(`apiVersion: reconciler/v1
kind: Container
metadata: {name: web}
spec:
  image: reconciler/box:latest
  init: true
  logging:
    driver: local
    options: {max-size: 5m}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := specs[0].Spec
	if !c.Init || c.Logging == nil || c.Logging.Driver != "local" || c.Logging.Options["max-size"] != "5m" {
		t.Fatalf("decoded init %v, logging %+v", c.Init, c.Logging)
	}

	_, err = Decode("web.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: i\n  logging: {drivr: local}\n"))
	if err == nil || !strings.Contains(err.Error(), `web.yaml:6: spec.logging.drivr: unknown field`) {
		t.Errorf("misspelt field: %v", err)
	}

	tests := []struct {
		name    string
		logging *Logging
		want    string
	}{
		{"json-file", &Logging{Driver: "json-file"}, ""},
		{"plugin", &Logging{Driver: "grafana/loki:2.9"}, ""},
		{"no driver", &Logging{Options: map[string]string{"max-size": "1m"}}, "spec.logging.driver: required"},
		{"bad driver", &Logging{Driver: "Json File"}, `spec.logging.driver: "Json File" is not a log driver name`},
		{"bad option", &Logging{Driver: "local", Options: map[string]string{"a=b": "1"}}, `is not a log option name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			s.Spec.Logging = tt.logging
			errs := s.Validate()
			if tt.want == "" && len(errs) > 0 || tt.want != "" && !strings.Contains(errs.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", errs, tt.want)
			}
		})
	}
}

func TestPolicyAllowedLogDrivers(t *testing.T) {
	with := func(driver string) *Spec {
		s := validSpec()
		if driver != "" {
			s.Spec.Logging = &Logging{Driver: driver}
		}
		return s
	}
	tests := []struct {
		name   string
		policy *Policy
		driver string
		refuse bool
	}{
		{"no logging, default policy", DefaultPolicy(), "", false},
		{"json-file by default", DefaultPolicy(), "json-file", false},
		{"local by default", DefaultPolicy(), "local", false},
		{"syslog refused by default", DefaultPolicy(), "syslog", true},
		{"none refused by default", DefaultPolicy(), "none", true},
		{"syslog allowed", &Policy{AllowedLogDrivers: []string{"syslog"}}, "syslog", false},
		{"local not listed", &Policy{AllowedLogDrivers: []string{"syslog"}}, "local", true},
		{"empty list allows none", &Policy{AllowedLogDrivers: []string{}}, "json-file", true},
		{"empty list, no logging", &Policy{AllowedLogDrivers: []string{}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.policy.Check(with(tt.driver))
			if !tt.refuse {
				if len(errs) > 0 {
					t.Errorf("refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Rule != "allowedLogDrivers" || errs[0].Path != "spec.logging.driver" ||
				!strings.Contains(errs[0].Msg, "allow with allowedLogDrivers ") || !strings.Contains(errs[0].Msg, tt.driver) {
				t.Errorf("errors %v (rules %v), want one allowedLogDrivers refusal naming %s", errs, errs.Rules(), tt.driver)
			}
		})
	}
}

func TestLoadPolicyLogDrivers(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (*Policy, error) {
		p := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadPolicy(p)
	}
	p, err := load("allowDevices: false\n")
	if err != nil || strings.Join(p.LogDrivers(), ",") != "json-file,local" {
		t.Errorf("unset: %v, %v; want the default json-file, local", p.LogDrivers(), err)
	}
	p, err = load("allowedLogDrivers: [journald]\n")
	if err != nil || strings.Join(p.LogDrivers(), ",") != "journald" {
		t.Errorf("journald: %v, %v", p.LogDrivers(), err)
	}
	if _, err = load("allowedLogDrivers:\n  - local\n  - \"Sys Log\"\n"); err == nil ||
		!strings.Contains(err.Error(), `policy.yaml:3: allowedLogDrivers[1]: "Sys Log" is not a log driver name`) {
		t.Errorf("bad driver: %v", err)
	}
}

func TestHashCountsLoggingAndInit(t *testing.T) {
	base := validSpec().Hash()
	s := validSpec()
	s.Spec.Init = true
	if s.Hash() == base {
		t.Error("init: true left the hash alone")
	}
	s = validSpec()
	s.Spec.Logging = &Logging{Driver: "local"}
	local := s.Hash()
	if local == base {
		t.Error("logging left the hash alone")
	}
	s.Spec.Logging.Options = map[string]string{"max-size": "5m"}
	if s.Hash() == local {
		t.Error("a log option left the hash alone")
	}
	s = validSpec()
	s.Spec.Init = false
	if s.Hash() != base {
		t.Error("init: false changed the hash of a spec without init (existing containers would be replaced)")
	}
}
