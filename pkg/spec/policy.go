package spec

import (
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"strings"
)

// Policy is the agent-level security policy. Its zero value (DefaultPolicy)
// is the Kubernetes Pod Security "baseline" profile: everything below is
// refused unless the policy file allows it.
type Policy struct {
	AllowPrivileged  bool `yaml:"allowPrivileged,omitempty" json:"allowPrivileged,omitempty"`
	AllowHostNetwork bool `yaml:"allowHostNetwork,omitempty" json:"allowHostNetwork,omitempty"`
	AllowHostPID     bool `yaml:"allowHostPID,omitempty" json:"allowHostPID,omitempty"`
	AllowHostIPC     bool `yaml:"allowHostIPC,omitempty" json:"allowHostIPC,omitempty"`
	AllowHostUTS     bool `yaml:"allowHostUTS,omitempty" json:"allowHostUTS,omitempty"`
	// AllowedCapabilities may be added beyond the baseline set; "ALL"
	// allows every one.
	AllowedCapabilities []string `yaml:"allowedCapabilities,omitempty" json:"allowedCapabilities,omitempty"`
	AllowDevices        bool     `yaml:"allowDevices,omitempty" json:"allowDevices,omitempty"`
	// AllowedBindPaths are host path prefixes bind mounts may come from;
	// none by default.
	AllowedBindPaths []string `yaml:"allowedBindPaths,omitempty" json:"allowedBindPaths,omitempty"`
	// AllowUnconfined allows seccomp, AppArmor, SELinux or system paths to
	// be unconfined through securityOpt.
	AllowUnconfined bool `yaml:"allowUnconfined,omitempty" json:"allowUnconfined,omitempty"`
}

// DefaultPolicy denies everything beyond the baseline profile.
func DefaultPolicy() *Policy { return &Policy{} }

// LoadPolicy reads a policy file strictly (an unknown field is an error).
// An empty file is the default policy.
func LoadPolicy(file string) (*Policy, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	docs, ferr := parseYAML(data)
	if ferr != nil {
		ferr.File = file
		return nil, ErrorList{ferr}
	}
	p := DefaultPolicy()
	if len(docs) > 1 {
		return nil, ErrorList{{File: file, Line: docs[1].Line, Msg: "a policy file holds one document"}}
	}
	if len(docs) == 0 {
		return p, nil
	}
	budget := nodeBudget(docs[0])
	d := newNodeDecoder(&budget)
	d.decode(docs[0], reflect.ValueOf(p).Elem(), "", 0)
	errs := d.errs
	if len(errs) == 0 {
		errs = p.validate()
	}
	for _, e := range errs {
		e.File = file
		if e.Line == 0 {
			e.Line = d.lines.find(e.Path)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func (p *Policy) validate() ErrorList {
	var errs ErrorList
	for i, c := range p.AllowedCapabilities {
		if !knownCapability(c) {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("allowedCapabilities[%d]", i), Msg: fmt.Sprintf("%q is not a Linux capability", c)})
		}
	}
	for i, b := range p.AllowedBindPaths {
		if !path.IsAbs(b) {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("allowedBindPaths[%d]", i), Msg: fmt.Sprintf("%q is not an absolute path", b)})
		}
	}
	return errs
}

// Check returns every way s goes beyond the policy, with field paths (and
// file and line when s was decoded). A nil policy is DefaultPolicy.
//
// Bind sources and allowed prefixes are compared after cleaning and after
// following the symlinks that exist now, so neither /allowed/../etc nor a
// link under /allowed pointing elsewhere escapes the allow-list. A link
// created after the check is the operator's to prevent: whoever can write
// below an allowed path is trusted.
func (p *Policy) Check(s *Spec) ErrorList {
	if p == nil {
		p = DefaultPolicy()
	}
	var errs ErrorList
	refuse := func(path, what, knob string) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("%s refused by policy (allow with %s in the agent policy file)", what, knob)})
	}
	c := &s.Spec
	if c.Privileged && !p.AllowPrivileged {
		refuse("spec.privileged", "privileged containers are", "allowPrivileged")
	}
	if c.Network == "host" && !p.AllowHostNetwork {
		refuse("spec.network", "the host network is", "allowHostNetwork")
	}
	if c.HostPID && !p.AllowHostPID {
		refuse("spec.hostPID", "the host PID namespace is", "allowHostPID")
	}
	if c.HostIPC && !p.AllowHostIPC {
		refuse("spec.hostIPC", "the host IPC namespace is", "allowHostIPC")
	}
	if c.HostUTS && !p.AllowHostUTS {
		refuse("spec.hostUTS", "the host UTS namespace is", "allowHostUTS")
	}
	for i, name := range c.CapAdd {
		if !p.allowsCapability(name) {
			refuse(fmt.Sprintf("spec.capAdd[%d]", i), fmt.Sprintf("capability %s is beyond the baseline set and", NormalizeCapability(name)), "allowedCapabilities")
		}
	}
	if !p.AllowDevices {
		for i, dev := range c.Devices {
			refuse(fmt.Sprintf("spec.devices[%d]", i), fmt.Sprintf("device %q is", dev), "allowDevices")
		}
	}
	for i, m := range c.Mounts {
		if m.Type == "bind" && !p.allowsBind(m.Source) {
			refuse(fmt.Sprintf("spec.mounts[%d].source", i), fmt.Sprintf("bind mount of %q is", m.Source), "a prefix in allowedBindPaths")
		}
	}
	if !p.AllowUnconfined {
		for i, opt := range c.SecurityOpt {
			if unconfined(opt) {
				refuse(fmt.Sprintf("spec.securityOpt[%d]", i), fmt.Sprintf("%q is", opt), "allowUnconfined")
			}
		}
	}
	return s.locate(errs)
}

func (p *Policy) allowsCapability(name string) bool {
	n := NormalizeCapability(name)
	if baselineCapabilities[n] {
		return true
	}
	for _, a := range p.AllowedCapabilities {
		if a := NormalizeCapability(a); a == n || a == CapabilityAll {
			return true
		}
	}
	return false
}

func (p *Policy) allowsBind(source string) bool {
	if !filepath.IsAbs(source) {
		return false
	}
	src := resolvePath(source)
	for _, prefix := range p.AllowedBindPaths {
		if !filepath.IsAbs(prefix) {
			continue
		}
		prefix = resolvePath(prefix)
		if src == prefix || prefix == "/" || strings.HasPrefix(src, prefix+"/") {
			return true
		}
	}
	return false
}

// resolvePath cleans an absolute path and follows the symlinks of its
// longest existing prefix; the part that does not exist yet is kept as
// written (cleaned).
func resolvePath(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for dir := p; ; {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// unconfined reports a security option that lifts a baseline confinement.
func unconfined(opt string) bool {
	key, value := splitSecurityOpt(opt)
	switch key {
	case "seccomp", "apparmor", "systempaths":
		return value == "unconfined"
	case "label":
		// As baseline: no custom SELinux user or role, and only the
		// container types.
		kind, val, _ := strings.Cut(value, ":")
		switch kind {
		case "disable", "user", "role":
			return true
		case "type":
			return !baselineSELinuxTypes[val]
		}
	}
	return false
}

var baselineSELinuxTypes = map[string]bool{"container_t": true, "container_init_t": true, "container_kvm_t": true}
