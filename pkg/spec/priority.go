package spec

// MaxPriority bounds spec.priority either way, as Kubernetes bounds the
// value of a user-defined PriorityClass (10^9).
const MaxPriority = 1_000_000_000

// priority checks spec.priority. The field only orders the agent's
// admission queue (higher first, then arrival): it is in policyOnlyFields,
// so changing it alone never replaces a running container.
func (v *validator) priority(p int) {
	if p > MaxPriority || p < -MaxPriority {
		v.add("spec.priority", "%d is out of range (at most %d either way)", p, MaxPriority)
	}
}
