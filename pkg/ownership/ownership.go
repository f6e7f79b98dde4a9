// Package ownership owns how the agent marks its containers and finds them
// again: the labels it puts on every container it creates, the selector
// that lists one agent's containers, and the deterministic container name
// of a spec. The controller, the API and the Docker layer all take these
// from here, so that they cannot disagree about which container is whose.
//
// Ownership is decided by the labels, never by a container's name alone: a
// foreign container may hold the name.
package ownership

// Labels put on every container the agent creates.
const (
	LabelManaged  = "reconciler.managed"
	LabelSpec     = "reconciler.spec"
	LabelSpecHash = "reconciler.spec-hash"
	LabelInstance = "reconciler.instance"
)

// namePrefix makes a spec's container name; the deterministic name is what
// lets a crash between create and record never produce a duplicate.
const namePrefix = "reconciler-"

// ContainerName is the name of the container of spec.
func ContainerName(spec string) string { return namePrefix + spec }

// Selector matches every container the agent instance owns.
func Selector(instance string) map[string]string {
	return map[string]string{LabelManaged: "true", LabelInstance: instance}
}

// SpecSelector matches the containers the agent instance owns for spec.
func SpecSelector(instance, spec string) map[string]string {
	sel := Selector(instance)
	sel[LabelSpec] = spec
	return sel
}

// Labels are the ownership labels of a new container of spec at hash,
// created by the agent instance.
func Labels(instance, spec, hash string) map[string]string {
	l := SpecSelector(instance, spec)
	l[LabelSpecHash] = hash
	return l
}

// Owns reports whether labels mark a container as the agent instance's
// container of spec.
func Owns(labels map[string]string, instance, spec string) bool {
	return labels[LabelManaged] == "true" && labels[LabelInstance] == instance && labels[LabelSpec] == spec
}
