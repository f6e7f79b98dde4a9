package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// UpdateStrategyType says how a container is replaced when its spec
// changes (or a restart is asked for).
type UpdateStrategyType string

const (
	// StopFirst stops the old container with grace, then creates and
	// starts the new one: a gap, but never two at once. The default.
	StopFirst UpdateStrategyType = "StopFirst"
	// StartFirst starts the new container beside the old one and stops
	// the old one only once the new one is ready (Swarm's start-first).
	StartFirst UpdateStrategyType = "StartFirst"
)

// UpdateStrategy is spec.updateStrategy.
type UpdateStrategy struct {
	Type UpdateStrategyType `yaml:"type,omitempty" json:"type,omitempty"`
	// MinReady is how long a new container must have run (and, with a
	// healthcheck, been healthy) before it counts as ready.
	MinReady Duration `yaml:"minReady,omitempty" json:"minReady,omitempty"`
}

// IsStartFirst says whether s is replaced start-first.
func (s *ContainerSpec) IsStartFirst() bool {
	return s.UpdateStrategy != nil && s.UpdateStrategy.Type == StartFirst
}

// DependencyCondition is what a dependency must reach before its
// dependents start (compose's depends_on conditions).
type DependencyCondition string

const (
	// DependsStarted: the dependency's container is running.
	DependsStarted DependencyCondition = "Started"
	// DependsHealthy: it is running and its healthcheck says healthy.
	DependsHealthy DependencyCondition = "Healthy"
	// DependsSucceeded: it is a job whose run exited 0.
	DependsSucceeded DependencyCondition = "Succeeded"
)

// Dependency is one entry of spec.dependsOn.
type Dependency struct {
	Name      string              `yaml:"name" json:"name"`
	Condition DependencyCondition `yaml:"condition,omitempty" json:"condition,omitempty"`
}

// Cond is Condition, Started when unset.
func (d Dependency) Cond() DependencyCondition {
	if d.Condition == "" {
		return DependsStarted
	}
	return d.Condition
}

func init() {
	// How a container is replaced, and when it may start, are not part
	// of the container: changing them must not replace it.
	policyOnlyFields = append(policyOnlyFields, "updateStrategy", "dependsOn")
}

// rollout validates updateStrategy and dependsOn within one spec.
func (v *validator) rollout(s *Spec) {
	c := &s.Spec
	if u := c.UpdateStrategy; u != nil {
		if u.Type != "" {
			v.oneOf("spec.updateStrategy.type", string(u.Type), string(StopFirst), string(StartFirst))
		}
		v.duration("spec.updateStrategy.minReady", u.MinReady)
		if u.Type == StartFirst {
			for i, p := range c.Ports {
				if p.HostPort != 0 {
					v.add(fmt.Sprintf("spec.ports[%d].hostPort", i),
						"%d is a fixed host port, which updateStrategy StartFirst cannot use: the new container starts while the old one still holds the port (use hostPort 0 for a random port, or StopFirst)",
						p.HostPort)
				}
			}
			if c.Network == "host" {
				v.add("spec.updateStrategy.type", "StartFirst cannot be used with network host: the old and new containers would share the host's ports")
			}
		}
	}
	seen := map[string]bool{}
	for i, d := range c.DependsOn {
		p := fmt.Sprintf("spec.dependsOn[%d]", i)
		switch {
		case d.Name == "":
			v.add(p+".name", "required")
		case len(d.Name) > 63 || !dnsLabel.MatchString(d.Name):
			v.add(p+".name", "%q is not a spec name", d.Name)
		case d.Name == s.Metadata.Name:
			v.add(p+".name", "a spec cannot depend on itself (dependsOn cycle: %s -> %s)", d.Name, d.Name)
		case seen[d.Name]:
			v.add(p+".name", "%q is listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Condition != "" {
			v.oneOf(p+".condition", string(d.Condition), string(DependsStarted), string(DependsHealthy), string(DependsSucceeded))
		}
	}
}

// CheckDependencies checks what only the specs together show: that
// dependsOn has no cycle, and that a dependency asked to be Healthy has a
// healthcheck. A dependency missing from specs is not an error (it may be
// applied later; its dependents wait for it). Errors are located on the
// dependsOn entries, in their files.
func CheckDependencies(specs []*Spec) ErrorList {
	by := map[string]*Spec{}
	for _, s := range specs {
		if _, dup := by[s.Metadata.Name]; !dup && s.Metadata.Name != "" {
			by[s.Metadata.Name] = s
		}
	}
	var errs ErrorList
	for _, s := range specs {
		if by[s.Metadata.Name] != s {
			continue
		}
		for i, d := range s.Spec.DependsOn {
			dep := by[d.Name]
			if dep == nil || d.Cond() != DependsHealthy || dep.Spec.Healthcheck != nil {
				continue
			}
			errs = append(errs, s.locate(ErrorList{{Path: fmt.Sprintf("spec.dependsOn[%d].condition", i),
				Msg: fmt.Sprintf("%q has no healthcheck, so it can never be Healthy (give it a healthcheck, or use condition Started)", d.Name)}})...)
		}
	}
	if cycle := FindCycle(specs); cycle != nil {
		msg := "dependsOn cycle: " + strings.Join(cycle, " -> ")
		for _, name := range cycle[:len(cycle)-1] {
			s := by[name]
			i := slices.IndexFunc(s.Spec.DependsOn, func(d Dependency) bool { return d.Name == nextIn(cycle, name) })
			errs = append(errs, s.locate(ErrorList{{Path: fmt.Sprintf("spec.dependsOn[%d].name", i), Msg: msg}})...)
		}
	}
	return errs
}

// nextIn is the name after name in cycle.
func nextIn(cycle []string, name string) string {
	i := slices.Index(cycle, name)
	return cycle[i+1]
}

// FindCycle returns a dependsOn cycle among specs as the names along it,
// the first repeated at the end ("a", "b", "a"), or nil when there is
// none. It is deterministic: names are visited in sorted order, and the
// cycle starts at its smallest name.
func FindCycle(specs []*Spec) []string {
	edges := map[string][]string{}
	for _, s := range specs {
		if _, dup := edges[s.Metadata.Name]; dup {
			continue
		}
		var to []string
		for _, d := range s.Spec.DependsOn {
			to = append(to, d.Name)
		}
		edges[s.Metadata.Name] = to
	}
	names := make([]string, 0, len(edges))
	for n := range edges {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var path []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		path = append(path, n)
		for _, m := range edges[n] {
			if _, known := edges[m]; !known {
				continue
			}
			switch color[m] {
			case grey:
				found = slices.Clone(path[slices.Index(path, m):])
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		color[n] = black
		return false
	}
	for _, n := range names {
		if color[n] == white && visit(n) {
			break
		}
	}
	if found == nil {
		return nil
	}
	// Start at the smallest name, so the message is the same however the
	// walk went.
	least := 0
	for i, n := range found {
		if n < found[least] {
			least = i
		}
	}
	out := append(slices.Clone(found[least:]), found[:least]...)
	return append(out, out[0])
}

// Locate fills in the file and line of errors about s from where s was
// decoded, by each error's field path.
func (s *Spec) Locate(errs ErrorList) ErrorList { return s.locate(errs) }
