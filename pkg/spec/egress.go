package spec

import (
	"fmt"

	"github.com/reconciler/reconciler/pkg/egressproxy"
)

// Egress limits where a container's connections may go. With it, the
// container is put on a network of its own with no way out but an HTTP
// proxy run by the agent (pkg/egress), which lets through CONNECT and
// plain HTTP to the Allow list only. An empty list means no network at
// all (network mode none).
type Egress struct {
	// Allow holds "host:port", "*.domain:port" or "IP:port" entries.
	Allow []string `yaml:"allow" json:"allow"`
}

// NoNetwork reports whether e takes the container off every network.
func (e *Egress) NoNetwork() bool { return e != nil && len(e.Allow) == 0 }

// ProxyEnv are the variables the agent sets in a container with an
// allow-list, so that tools find the proxy; a spec may not set them.
var ProxyEnv = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}

// MaxEgressRules bounds an allow-list: it becomes the proxy's arguments.
const MaxEgressRules = 256

// egress checks spec.egress and what it cannot be combined with.
func (v *validator) egress(c *ContainerSpec) {
	e := c.Egress
	if e == nil {
		return
	}
	const p = "spec.egress"
	switch c.Network {
	case "":
	case "host":
		v.add(p, "cannot be combined with network host: a host-network container reaches everything the host does; drop network")
	default:
		v.add(p, "cannot be combined with network %q: egress gives the container a network of its own; drop network", c.Network)
	}
	if len(c.Ports) > 0 && !e.NoNetwork() {
		v.add(p, "cannot be combined with ports: the egress network is internal, nothing can be published from it")
	}
	if len(e.Allow) > MaxEgressRules {
		v.add(p+".allow", "%d entries, at most %d", len(e.Allow), MaxEgressRules)
	}
	seen := map[string]bool{}
	for i, a := range e.Allow {
		r, err := egressproxy.ParseRule(a)
		if err != nil {
			v.add(fmt.Sprintf("%s.allow[%d]", p, i), "%v", err)
			continue
		}
		if seen[r.String()] {
			v.add(fmt.Sprintf("%s.allow[%d]", p, i), "%q is listed twice", a)
		}
		seen[r.String()] = true
	}
	if e.NoNetwork() {
		return
	}
	for i, env := range c.Env {
		for _, name := range ProxyEnv {
			if env.Name == name {
				v.add(fmt.Sprintf("spec.env[%d].name", i), "%s is set by the agent for spec.egress", name)
			}
		}
	}
}
