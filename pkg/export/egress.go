package export

import "strings"

// egress warns: Kubernetes cannot express a host-name allow-list. A
// NetworkPolicy selects by IP block and port, and its egress rules are
// not enforced without a CNI plugin that implements them; the nearest is
// a default-deny egress NetworkPolicy plus an egress proxy of the
// cluster's own.
func (m *mapper) egress() {
	e := m.spec.Spec.Egress
	switch {
	case e == nil:
	case e.NoNetwork():
		m.warn("spec.egress", "a pod always has a network; no egress at all is not mapped (use a NetworkPolicy with policyTypes [Egress] and no egress rules)")
	default:
		m.warn("spec.egress", "Kubernetes cannot express a host allow-list (%s); not mapped: use a default-deny egress NetworkPolicy and an egress proxy (HTTPS_PROXY) that allows these hosts", strings.Join(e.Allow, ", "))
	}
}
