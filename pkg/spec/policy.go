package spec

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reconciler/reconciler/pkg/secrets"
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
	// AllowedSecretPaths are the directories whose files a spec may name as
	// secrets (env valueFrom.file, secrets[].file). Unset, it is
	// DefaultSecretPath; an empty list allows none.
	AllowedSecretPaths []string `yaml:"allowedSecretPaths,omitempty" json:"allowedSecretPaths,omitempty"`
	// AllowedSeccompProfiles and AllowedAppArmorProfiles are the values a
	// spec may give seccomp= and apparmor= in securityOpt. Without them only
	// the daemon's default profile runs ("unconfined" is AllowUnconfined's).
	AllowedSeccompProfiles  []string `yaml:"allowedSeccompProfiles,omitempty" json:"allowedSeccompProfiles,omitempty"`
	AllowedAppArmorProfiles []string `yaml:"allowedAppArmorProfiles,omitempty" json:"allowedAppArmorProfiles,omitempty"`
	// AllowedHostPorts are the host ports ("8080") and ranges ("9000-9100")
	// a spec may publish on; none by default.
	AllowedHostPorts []string `yaml:"allowedHostPorts,omitempty" json:"allowedHostPorts,omitempty"`
	// AllowedVolumes are the named volumes a spec may mount; an anonymous
	// volume (no source) is the container's own and always allowed.
	AllowedVolumes []string `yaml:"allowedVolumes,omitempty" json:"allowedVolumes,omitempty"`
	// AllowedNetworks are the networks a spec may join beyond bridge and
	// none (host is AllowHostNetwork's).
	AllowedNetworks []string `yaml:"allowedNetworks,omitempty" json:"allowedNetworks,omitempty"`
	// MaxTerminationGracePeriod bounds a spec's terminationGracePeriod;
	// zero means DefaultMaxTerminationGracePeriod.
	MaxTerminationGracePeriod Duration `yaml:"maxTerminationGracePeriod,omitempty" json:"maxTerminationGracePeriod,omitempty"`
	// AllowedLogDrivers are the drivers a spec's logging may name; unset,
	// DefaultLogDrivers.
	AllowedLogDrivers []string `yaml:"allowedLogDrivers,omitempty" json:"allowedLogDrivers,omitempty"`
}

// Defaults of the policy fields that are not plain deny.
const (
	DefaultSecretPath                = "/etc/reconciler/secrets"
	DefaultMaxTerminationGracePeriod = 10 * time.Minute
)

// DefaultPolicy denies everything beyond the baseline profile.
func DefaultPolicy() *Policy { return &Policy{} }

// SecretPaths is AllowedSecretPaths with its default applied.
func (p *Policy) SecretPaths() []string {
	if p.AllowedSecretPaths == nil {
		return []string{DefaultSecretPath}
	}
	return p.AllowedSecretPaths
}

// MaxGrace is MaxTerminationGracePeriod with its default applied.
func (p *Policy) MaxGrace() time.Duration {
	if p.MaxTerminationGracePeriod.Duration == 0 {
		return DefaultMaxTerminationGracePeriod
	}
	return p.MaxTerminationGracePeriod.Duration
}

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
	// each checks every entry of one list field; bad says what is wrong
	// with an entry, or "" when it is fine.
	each := func(field string, list []string, bad func(string) string) {
		for i, v := range list {
			if msg := bad(v); msg != "" {
				errs = append(errs, &FieldError{Path: fmt.Sprintf("%s[%d]", field, i), Msg: fmt.Sprintf("%q %s", v, msg)})
			}
		}
	}
	unless := func(ok func(string) bool, msg string) func(string) string {
		return func(v string) string {
			if ok(v) {
				return ""
			}
			return msg
		}
	}
	each("allowedCapabilities", p.AllowedCapabilities, unless(knownCapability, "is not a Linux capability"))
	each("allowedBindPaths", p.AllowedBindPaths, unless(path.IsAbs, "is not an absolute path"))
	each("allowedSecretPaths", p.AllowedSecretPaths, unless(path.IsAbs, "is not an absolute path"))
	each("allowedHostPorts", p.AllowedHostPorts, unless(func(r string) bool { _, _, ok := parsePortRange(r); return ok },
		`is not a port or a range (use e.g. "8080" or "9000-9100", ports 1-65535)`))
	each("allowedVolumes", p.AllowedVolumes, unless(volumeName.MatchString, "is not a volume name"))
	each("allowedNetworks", p.AllowedNetworks, unless(netName.MatchString, "is not a network name"))
	if p.MaxTerminationGracePeriod.Duration < 0 {
		errs = append(errs, &FieldError{Path: "maxTerminationGracePeriod", Msg: fmt.Sprintf("%s is negative", p.MaxTerminationGracePeriod)})
	}
	return append(errs, p.validateLogDrivers()...)
}

// parsePortRange reads "8080" or "9000-9100".
func parsePortRange(r string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(r, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	return lo, hi, lo >= 1 && lo <= hi && hi <= 65535
}

// Check returns every way s goes beyond the policy, with field paths (and
// file and line when s was decoded). A nil policy is DefaultPolicy.
//
// Bind sources are checked as ResolveBind does, against the disk as it is
// now; the controller checks again at every create.
//
// Secret files are compared as cleaned paths, and one already there that
// is a symlink, FIFO or device is refused (without opening it); the read at
// create (ReadSecret) checks again, as the file may change until then.
// Each refusal carries its rule: the policy field that would allow it.
func (p *Policy) Check(s *Spec) ErrorList {
	_, errs := p.Admit(s)
	return errs
}

// Admit is Check that also returns the host path of each bind mount, by
// its index in s.Spec.Mounts, as ResolveBind found it: what the controller
// hands Docker when it creates the container.
func (p *Policy) Admit(s *Spec) (map[int]string, ErrorList) {
	if p == nil {
		p = DefaultPolicy()
	}
	var errs ErrorList
	binds := map[int]string{}
	// refuse records one refusal; rule is the policy field that would allow
	// it, knob how to say so when that is more than the field's name.
	refuse := func(path, what, rule string, knob ...string) {
		how := rule
		if len(knob) > 0 {
			how = knob[0]
		}
		errs = append(errs, &FieldError{Path: path, Rule: rule,
			Msg: fmt.Sprintf("%s refused by policy (allow with %s in the agent policy file)", what, how)})
	}
	c := &s.Spec
	if c.Privileged && !p.AllowPrivileged {
		refuse("spec.privileged", "privileged containers are", "allowPrivileged")
	}
	switch c.Network {
	case "", "bridge", "none":
	case "host":
		if !p.AllowHostNetwork {
			refuse("spec.network", "the host network is", "allowHostNetwork")
		}
	default:
		if !slices.Contains(p.AllowedNetworks, c.Network) {
			refuse("spec.network", fmt.Sprintf("network %q is", c.Network), "allowedNetworks")
		}
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
		if m.Type == "volume" && m.Source != "" && !slices.Contains(p.AllowedVolumes, m.Source) {
			refuse(fmt.Sprintf("spec.mounts[%d].source", i), fmt.Sprintf("named volume %q is", m.Source), "allowedVolumes")
		}
		if m.Type != "bind" {
			continue
		}
		real, err := p.ResolveBind(m.Source)
		if err != nil {
			refuse(fmt.Sprintf("spec.mounts[%d].source", i), fmt.Sprintf("bind mount of %q (%v) is", m.Source, err), "allowedBindPaths")
			continue
		}
		binds[i] = real
	}
	p.checkWorkspace(c, refuse)
	for i, port := range c.Ports {
		if port.HostPort != 0 && !p.allowsHostPort(port.HostPort) {
			refuse(fmt.Sprintf("spec.ports[%d].hostPort", i), fmt.Sprintf("host port %d is", port.HostPort), "allowedHostPorts")
		}
	}
	for i, opt := range c.SecurityOpt {
		path := fmt.Sprintf("spec.securityOpt[%d]", i)
		key, val := SplitSecurityOpt(opt)
		switch {
		case unconfined(opt):
			if !p.AllowUnconfined {
				refuse(path, fmt.Sprintf("%q is", opt), "allowUnconfined")
			}
		case key == "seccomp" && !slices.Contains(p.AllowedSeccompProfiles, val):
			refuse(path, fmt.Sprintf("seccomp profile %s is", abbreviate(val)), "allowedSeccompProfiles")
		case key == "apparmor" && !slices.Contains(p.AllowedAppArmorProfiles, val):
			refuse(path, fmt.Sprintf("AppArmor profile %s is", abbreviate(val)), "allowedAppArmorProfiles")
		}
	}
	if g := c.TerminationGracePeriod.Duration; g > p.MaxGrace() {
		refuse("spec.terminationGracePeriod", fmt.Sprintf("%s, longer than %s,", c.TerminationGracePeriod, p.MaxGrace()), "maxTerminationGracePeriod")
	}
	secret := func(field, file string) {
		if !p.allowsSecret(file) {
			refuse(field, p.secretRefusal(file), "allowedSecretPaths")
		} else if err := secrets.Precheck("secret file", path.Clean(file)); err != nil {
			// No policy field allows it; the rule says which one governs.
			errs = append(errs, &FieldError{Path: field, Rule: "allowedSecretPaths",
				Msg: fmt.Sprintf("%v: refused (a file named below allowedSecretPaths must be a regular file, reached without a symlink)", err)})
		}
	}
	for i, e := range c.Env {
		if e.ValueFrom != nil {
			secret(fmt.Sprintf("spec.env[%d].valueFrom.file", i), e.ValueFrom.File)
		}
	}
	for i, sec := range c.Secrets {
		secret(fmt.Sprintf("spec.secrets[%d].file", i), sec.File)
	}
	errs = append(errs, p.admitLogging(c)...)
	if len(errs) > 0 {
		return nil, s.locate(errs)
	}
	return binds, nil
}

func (p *Policy) allowsHostPort(port int) bool {
	for _, r := range p.AllowedHostPorts {
		if lo, hi, ok := parsePortRange(r); ok && lo <= port && port <= hi {
			return true
		}
	}
	return false
}

// secretRoot returns the allowed directory file lies below, comparing
// cleaned paths: a ".." cannot climb out. Symlinks below the directory are
// refused when the file is read (ReadSecret).
func (p *Policy) secretRoot(file string) (string, bool) {
	if !path.IsAbs(file) {
		return "", false
	}
	f := path.Clean(file)
	for _, root := range p.SecretPaths() {
		if !path.IsAbs(root) {
			continue
		}
		root = path.Clean(root)
		if root == "/" || strings.HasPrefix(f, root+"/") {
			return root, true
		}
	}
	return "", false
}

func (p *Policy) allowsSecret(file string) bool {
	_, ok := p.secretRoot(file)
	return ok
}

func (p *Policy) secretRefusal(file string) string {
	return fmt.Sprintf("secret file %q is not below %s and", file, strings.Join(p.SecretPaths(), ", "))
}

// ReadSecret reads a secret file for a spec at create: it must lie below
// AllowedSecretPaths (checked again, since the policy may have changed
// since the spec came in) and pass secrets.ReadBelow.
func (p *Policy) ReadSecret(file string) ([]byte, error) {
	if p == nil {
		p = DefaultPolicy()
	}
	root, ok := p.secretRoot(file)
	if !ok {
		return nil, fmt.Errorf("%s refused by policy (allow with allowedSecretPaths in the agent policy file)", p.secretRefusal(file))
	}
	return secrets.ReadBelow("secret file", root, path.Clean(file))
}

// abbreviate quotes a profile for a message, cutting an inline one short.
func abbreviate(v string) string {
	const max = 40
	if len(v) > max {
		return strconv.Quote(v[:max]) + "..."
	}
	return strconv.Quote(v)
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

// unconfined reports a security option that lifts a baseline confinement.
func unconfined(opt string) bool {
	key, value := SplitSecurityOpt(opt)
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
