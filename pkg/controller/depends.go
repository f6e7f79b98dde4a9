package controller

// dependsOn: a spec is not started until its dependencies hold. The facts
// (each dependency's stored status) are gathered with the desired state;
// decide judges them (waitForDependencies). A dependency's status change
// wakes the specs that wait on it (dependents.wake, from commit).

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// DepFact is what is known of one dependency of a spec.
type DepFact struct {
	Name      string
	Condition spec.DependencyCondition
	// Exists says the dependency's spec is stored; HasHealthcheck that it
	// has a healthcheck.
	Exists         bool
	HasHealthcheck bool
	// Phase and Health are its stored status ("" before it has one).
	Phase  model.Phase
	Health string
	// Err says why its state could not be read.
	Err string
}

// holds says whether f's condition holds, and if not, what is awaited.
func (f DepFact) holds() (bool, string) {
	cond := f.Condition
	if cond == "" {
		cond = spec.DependsStarted
	}
	is := "it has no status yet"
	if f.Phase != "" {
		is = "it is " + string(f.Phase)
		if f.Health != "" {
			is += ", " + f.Health
		}
	}
	switch {
	case f.Err != "":
		return false, fmt.Sprintf("dependency %q: %s", f.Name, f.Err)
	case !f.Exists:
		return false, fmt.Sprintf("waiting for dependency %q to be %s: there is no spec %q (apply it, or remove it from dependsOn)", f.Name, cond, f.Name)
	case cond == spec.DependsHealthy && !f.HasHealthcheck:
		return false, fmt.Sprintf("waiting for dependency %q to be Healthy, but it has no healthcheck, so it never will be (give it one, or use condition Started)", f.Name)
	}
	var ok bool
	switch cond {
	case spec.DependsStarted:
		ok = f.Phase == model.PhaseRunning
	case spec.DependsHealthy:
		ok = f.Phase == model.PhaseRunning && f.Health == "healthy"
	case spec.DependsSucceeded:
		ok = f.Phase == model.PhaseSucceeded
	}
	if ok {
		return true, ""
	}
	return false, fmt.Sprintf("waiting for dependency %q to be %s (%s)", f.Name, cond, is)
}

// waitForDependencies holds back the first start of a spec whose
// dependencies do not all hold: phase Waiting, the message naming each
// one and what it waits for. A running container is not stopped when a
// dependency stops holding, as with compose's depends_on.
func waitForDependencies(d Desired, h model.History) (Action, bool) {
	var waits []string
	for _, f := range d.Deps {
		if ok, msg := f.holds(); !ok {
			waits = append(waits, msg)
		}
	}
	if len(waits) == 0 {
		return Action{}, false
	}
	return Action{Kind: ActNone, Phase: model.PhaseWaiting, History: h, Message: strings.Join(waits, "; ")}, true
}

// dependencyFacts reads the state of each dependency of sp (nil when the
// spec is deleted), and notes name as one of their dependents.
func (c *Controller) dependencyFacts(name string, sp *spec.Spec) []DepFact {
	var deps []spec.Dependency
	if sp != nil {
		deps = sp.Spec.DependsOn
	}
	c.deps.set(name, deps)
	if len(deps) == 0 {
		return nil
	}
	facts := make([]DepFact, len(deps))
	for i, dep := range deps {
		f := DepFact{Name: dep.Name, Condition: dep.Cond()}
		r, err := c.st.ViewSpec(dep.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			f.Err = err.Error()
		default:
			f.Exists, f.HasHealthcheck = true, r.Spec.Spec.Healthcheck != nil
		}
		if f.Exists {
			e, err := c.ledger.get(dep.Name)
			switch {
			case err != nil:
				f.Err = err.Error()
			case e.hasStatus && e.status.SpecHash == r.Hash:
				f.Phase, f.Health = e.status.Phase, e.status.Health
			}
		}
		facts[i] = f
	}
	return facts
}

// dependents indexes which specs depend on which, as last reconciled.
type dependents struct {
	mu      sync.Mutex
	of      map[string]map[string]bool // dependency -> its dependents
	on      map[string][]string        // dependent -> its dependencies
	enqueue func(name string)
}

func newDependents(enqueue func(string)) *dependents {
	return &dependents{of: map[string]map[string]bool{}, on: map[string][]string{}, enqueue: enqueue}
}

// set records the dependencies of name.
func (d *dependents) set(name string, deps []spec.Dependency) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, old := range d.on[name] {
		delete(d.of[old], name)
		if len(d.of[old]) == 0 {
			delete(d.of, old)
		}
	}
	delete(d.on, name)
	for _, dep := range deps {
		if d.of[dep.Name] == nil {
			d.of[dep.Name] = map[string]bool{}
		}
		d.of[dep.Name][name] = true
		d.on[name] = append(d.on[name], dep.Name)
	}
}

// wake enqueues the dependents of name.
func (d *dependents) wake(name string) {
	d.mu.Lock()
	var names []string
	for n := range d.of[name] {
		names = append(names, n)
	}
	d.mu.Unlock()
	for _, n := range names {
		d.enqueue(n)
	}
}
