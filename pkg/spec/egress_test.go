package spec

import (
	"strings"
	"testing"
)

func egressDoc(body string) []byte {
	return []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: job}\nspec:\n  image: reconciler/box:latest\n" + body)
}

func TestEgressValid(t *testing.T) {
	for name, body := range map[string]string{
		"allow-list":              "  egress:\n    allow: [\"api.anthropic.com:443\", \"*.github.com:443\", \"10.0.0.5:8080\"]\n",
		"none":                    "  egress: {allow: []}\n",
		"no allow":                "  egress: {}\n",
		"no network, with ports":  "  egress: {allow: []}\n  ports: [{containerPort: 80}]\n",
		"proxy env without proxy": "  egress: {allow: []}\n  env: [{name: HTTP_PROXY, value: x}]\n",
	} {
		specs, err := Decode("job.yaml", egressDoc(body))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e := specs[0].Spec.Egress; e == nil {
			t.Errorf("%s: egress not decoded", name)
		}
	}
}

func TestEgressErrors(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"bad entry": {"  egress:\n    allow:\n      - api.example.com:443\n      - example.com\n",
			`job.yaml:9: spec.egress.allow[1]: "example.com" is not host:port`},
		"bad port":      {"  egress:\n    allow: [\"example.com:0\"]\n", `job.yaml:7: spec.egress.allow[0]: "example.com:0": port "0" is not a port`},
		"bad wildcard":  {"  egress:\n    allow: [\"*.com:443\"]\n", "spec.egress.allow[0]: \"*.com:443\": a wildcard needs a domain of at least two labels"},
		"twice":         {"  egress:\n    allow: [\"a.io:1\", \"A.io:1\"]\n", `spec.egress.allow[1]: "A.io:1" is listed twice`},
		"host network":  {"  network: host\n  egress: {allow: [\"a.io:443\"]}\n", "job.yaml:7: spec.egress: cannot be combined with network host"},
		"named network": {"  network: backend\n  egress: {allow: [\"a.io:443\"]}\n", `spec.egress: cannot be combined with network "backend"`},
		"bridge named":  {"  network: bridge\n  egress: {allow: []}\n", `spec.egress: cannot be combined with network "bridge"`},
		"ports":         {"  ports: [{containerPort: 80}]\n  egress: {allow: [\"a.io:443\"]}\n", "spec.egress: cannot be combined with ports"},
		"proxy env": {"  env: [{name: A, value: b}, {name: https_proxy, value: x}]\n  egress: {allow: [\"a.io:443\"]}\n",
			"spec.env[1].name: https_proxy is set by the agent for spec.egress"},
		"unknown field": {"  egress: {deny: []}\n", "deny"},
	} {
		_, err := Decode("job.yaml", egressDoc(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

func TestEgressHashAndDefaults(t *testing.T) {
	decode := func(body string) *Spec {
		t.Helper()
		specs, err := Decode("job.yaml", egressDoc(body))
		if err != nil {
			t.Fatal(err)
		}
		return specs[0]
	}
	plain := decode("")
	none := decode("  egress: {allow: []}\n")
	a := decode("  egress: {allow: [\"a.io:443\"]}\n")
	b := decode("  egress: {allow: [\"a.io:443\", \"b.io:443\"]}\n")
	hashes := map[string]string{}
	for name, s := range map[string]*Spec{"plain": plain, "none": none, "a": a, "b": b} {
		h := s.Hash()
		for other, oh := range hashes {
			if oh == h {
				t.Errorf("specs %s and %s hash the same: a changed egress must replace the container", name, other)
			}
		}
		hashes[name] = h
	}
	if a.Hash() != decode("  egress: {allow: [\"a.io:443\"]}\n").Hash() {
		t.Error("the same allow-list hashes differently")
	}
	d := *a
	d.Default()
	if d.Spec.Network != "" {
		t.Errorf("Default set network %q on a spec with egress; the agent picks its network", d.Spec.Network)
	}
	p := *plain
	p.Default()
	if p.Spec.Network != DefaultNetwork {
		t.Errorf("Default network = %q, want %q without egress", p.Spec.Network, DefaultNetwork)
	}
	if !none.Spec.Egress.NoNetwork() || a.Spec.Egress.NoNetwork() || plain.Spec.Egress.NoNetwork() {
		t.Error("NoNetwork is wrong")
	}
}

// A spec with egress needs no network permission from the policy: the
// default policy admits it.
func TestEgressNeedsNoNetworkPolicy(t *testing.T) {
	specs, err := Load("job.yaml", egressDoc("  egress: {allow: [\"a.io:443\"]}\n"), nil)
	if err != nil {
		t.Fatalf("default policy refused a spec with egress: %v", err)
	}
	_ = specs
}
