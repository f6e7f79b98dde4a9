package spec

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Workspace asks for a private copy of Source, made by the agent at each
// run (each container it creates) and mounted read-write at Target. The
// copy, .git included, belongs to the spec's user; Source is only read.
type Workspace struct {
	Source string `yaml:"source" json:"source"`
	Target string `yaml:"target" json:"target"`
}

// workspace checks spec.workspace: an absolute source, a target no mount
// or secret uses, and a numeric user (or none) to give the copy to.
func (v *validator) workspace(c *ContainerSpec, targets map[string]bool) {
	ws := c.Workspace
	if ws == nil {
		return
	}
	switch {
	case ws.Source == "":
		v.add("spec.workspace.source", "required (a host directory below the policy's allowedBindPaths)")
	case !path.IsAbs(ws.Source) || path.Clean(ws.Source) == "/":
		v.add("spec.workspace.source", "%q is not an absolute path to a directory below /", ws.Source)
	}
	v.target("spec.workspace.target", ws.Target, targets)
	if c.User != "" && !numericUser(c.User) {
		v.add("spec.user", "%q is not numeric: with a workspace, give the user as UID or UID:GID, so that the agent can give the copy to it", c.User)
	}
}

// numericUser reads UID or UID:GID.
func numericUser(u string) bool {
	uid, gid, hasGroup := strings.Cut(u, ":")
	if _, err := strconv.ParseUint(uid, 10, 31); err != nil {
		return false
	}
	if !hasGroup {
		return true
	}
	_, err := strconv.ParseUint(gid, 10, 31)
	return err == nil
}

// checkWorkspace refuses a workspace source the policy does not allow, as
// a bind mount of it would be: the copy is made from what ResolveBind
// finds, again at every create.
func (p *Policy) checkWorkspace(c *ContainerSpec, refuse func(path, what, rule string, knob ...string)) {
	if c.Workspace == nil || c.Workspace.Source == "" {
		return
	}
	if _, err := p.ResolveBind(c.Workspace.Source); err != nil {
		refuse("spec.workspace.source", fmt.Sprintf("workspace source %q (%v) is", c.Workspace.Source, err), "allowedBindPaths")
	}
}
