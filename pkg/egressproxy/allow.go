// Package egressproxy is the allow-list proxy that stands between a
// container with spec.egress and the network: an HTTP proxy that tunnels
// CONNECT and forwards plain HTTP to the listed host:port pairs only and
// answers 403 to everything else. cmd/egress-proxy serves it; pkg/spec
// checks a spec's allow-list with Parse. It uses the standard library
// only, so the proxy's image stays a small static binary.
package egressproxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one allow-list entry: "host:port", "*.domain:port" or
// "IP:port" ("[IPv6]:port").
type Rule struct {
	// Host is the lower-case name without the "*." of a wildcard, or the
	// IP address's text in its canonical form.
	Host string
	// Wildcard matches every name below Host (a.Host, a.b.Host), not Host
	// itself.
	Wildcard bool
	// IP is set when Host is an address literal; it matches only that
	// address, never a name.
	IP   netip.Addr
	Port int
}

func (r Rule) String() string {
	host := r.Host
	if r.Wildcard {
		host = "*." + host
	}
	return net.JoinHostPort(host, strconv.Itoa(r.Port))
}

// ParseRule reads one entry. The error says what is wrong with it, in
// words fit for a field error.
func ParseRule(s string) (Rule, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Rule{}, fmt.Errorf("%q is not host:port (use e.g. api.anthropic.com:443, *.github.com:443 or 10.0.0.5:8080)", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return Rule{}, fmt.Errorf("%q: port %q is not a port (1-65535)", s, port)
	}
	r := Rule{Port: p}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Rule{}, fmt.Errorf("%q: an address with a zone cannot be allowed", s)
		}
		r.IP = ip.Unmap()
		r.Host = r.IP.String()
		return r, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		r.Wildcard, name = true, rest
	}
	if !isDNSName(name) {
		return Rule{}, fmt.Errorf("%q: %q is not a host name, \"*.\" and a domain, or an IP address", s, host)
	}
	if r.Wildcard && !strings.Contains(name, ".") {
		return Rule{}, fmt.Errorf("%q: a wildcard needs a domain of at least two labels (*.example.com, not *.com)", s)
	}
	r.Host = name
	return r, nil
}

// isDNSName reports whether s is a name of letters, digits, '-' and '_'
// labels separated by dots (an underscore appears in real service names).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// List is a parsed allow-list; the zero List allows nothing.
type List []Rule

// ParseList reads every entry, stopping at the first bad one.
func ParseList(entries []string) (List, error) {
	l := make(List, 0, len(entries))
	for _, e := range entries {
		r, err := ParseRule(e)
		if err != nil {
			return nil, err
		}
		l = append(l, r)
	}
	return l, nil
}

// Allows reports whether a connection to hostport ("host:port", as in a
// CONNECT request or a URL's host with its port) is on the list. A name
// is compared without case and without a trailing dot; an address
// literal matches only an entry of the same address, so that no wildcard
// and no name lets the client pick an address.
func (l List) Allows(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return false
	}
	ip, ipErr := netip.ParseAddr(host)
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range l {
		if r.Port != p {
			continue
		}
		switch {
		case ipErr == nil:
			if r.IP.IsValid() && r.IP == ip.Unmap() && ip.Zone() == "" {
				return true
			}
		case r.IP.IsValid():
		case r.Wildcard:
			if strings.HasSuffix(name, "."+r.Host) && isDNSName(name) {
				return true
			}
		case name == r.Host:
			return true
		}
	}
	return false
}
