package export

import "strconv"

// PriorityAnnotation carries spec.priority on the exported object.
const PriorityAnnotation = "reconciler/priority"

// priority maps spec.priority. Kubernetes orders pending pods by a
// PriorityClass, a cluster object the exporter cannot pick a name for,
// so the value is kept as an annotation and the warning says what to do.
func (m *mapper) priority(meta *objectMeta) {
	p := m.spec.Spec.Priority
	if p == 0 {
		return
	}
	meta.Annotations = map[string]string{PriorityAnnotation: strconv.Itoa(p)}
	m.warn("spec.priority", "kept as the annotation %s: %d; Kubernetes orders pods by a PriorityClass: create one with value %d and set the pod's priorityClassName (or queue the Job with Kueue)",
		PriorityAnnotation, p, p)
}
