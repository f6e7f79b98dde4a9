package spec

import (
	"slices"
	"sync/atomic"
)

// CurrentPolicy holds the policy in force. The agent reloads its policy
// file while it runs, and the spec source, the API and the controller all
// read the policy at the moment they check, so each reads it from here.
type CurrentPolicy struct {
	p atomic.Pointer[Policy]
}

// NewCurrentPolicy holds p (nil is DefaultPolicy).
func NewCurrentPolicy(p *Policy) *CurrentPolicy {
	c := &CurrentPolicy{}
	c.Set(p)
	return c
}

// Get returns the policy in force; a nil holder gives DefaultPolicy.
func (c *CurrentPolicy) Get() *Policy {
	if c == nil {
		return DefaultPolicy()
	}
	if p := c.p.Load(); p != nil {
		return p
	}
	return DefaultPolicy()
}

// Set puts p in force (nil is DefaultPolicy).
func (c *CurrentPolicy) Set(p *Policy) {
	if p == nil {
		p = DefaultPolicy()
	}
	c.p.Store(p)
}

// Rules lists, sorted and once each, the policy fields that errs name.
func (l ErrorList) Rules() []string {
	var out []string
	for _, e := range l {
		if e.Rule != "" && !slices.Contains(out, e.Rule) {
			out = append(out, e.Rule)
		}
	}
	slices.Sort(out)
	return out
}
