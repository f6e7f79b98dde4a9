package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Logging is Docker's log configuration of a container (docker run
// --log-driver, --log-opt). Without it the agent uses json-file, bounded
// to 3 files of 10 MB.
type Logging struct {
	Driver  string            `yaml:"driver" json:"driver"`
	Options map[string]string `yaml:"options,omitempty" json:"options,omitempty"`
}

// DefaultLogDrivers are the drivers allowed when the policy leaves
// allowedLogDrivers unset: the two whose logs the daemon can read back,
// which `reconciler logs` and the exit ledger's log tail need.
var DefaultLogDrivers = []string{"json-file", "local"}

// logDriverName is what Docker accepts as a driver name, plugins
// ("vendor/name:tag") included.
var logDriverName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?(:[A-Za-z0-9._-]+)?$`)

// LogDrivers is AllowedLogDrivers with its default applied.
func (p *Policy) LogDrivers() []string {
	if p.AllowedLogDrivers == nil {
		return DefaultLogDrivers
	}
	return p.AllowedLogDrivers
}

// logging checks spec.logging: a driver is required, and option keys are
// plain words.
func (v *validator) logging(l *Logging) {
	if l == nil {
		return
	}
	switch {
	case l.Driver == "":
		v.add("spec.logging.driver", "required (e.g. json-file or local)")
	case !logDriverName.MatchString(l.Driver):
		v.add("spec.logging.driver", "%q is not a log driver name (e.g. json-file, local, journald)", l.Driver)
	}
	for k := range l.Options {
		if k == "" || strings.ContainsFunc(k, isSpaceOrControl) || strings.Contains(k, "=") {
			v.add(keyPath("spec.logging.options", k), "%q is not a log option name (e.g. max-size)", k)
		}
	}
}

// validateLogDrivers checks the policy's allowedLogDrivers entries.
func (p *Policy) validateLogDrivers() ErrorList {
	var errs ErrorList
	for i, d := range p.AllowedLogDrivers {
		if !logDriverName.MatchString(d) {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("allowedLogDrivers[%d]", i),
				Msg: fmt.Sprintf("%q is not a log driver name (e.g. json-file, local, journald)", d)})
		}
	}
	return errs
}

// admitLogging refuses a log driver the policy does not list. A spec
// without logging gets the agent's json-file, which is not the spec's
// choice and is not checked.
func (p *Policy) admitLogging(c *ContainerSpec) ErrorList {
	if c.Logging == nil || c.Logging.Driver == "" || slices.Contains(p.LogDrivers(), c.Logging.Driver) {
		return nil
	}
	return ErrorList{{Path: "spec.logging.driver", Rule: "allowedLogDrivers",
		Msg: fmt.Sprintf("log driver %q is not in %s and is refused by policy (allow with allowedLogDrivers in the agent policy file)",
			c.Logging.Driver, "["+strings.Join(p.LogDrivers(), ", ")+"]")}}
}
