package spec

import (
	"errors"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// DefaultRollbackAfter is how long an updated image's container must run
// (not exit non-zero, not turn unhealthy) before the update is kept.
const DefaultRollbackAfter = 60 * time.Second

// MinAutoUpdateInterval bounds how often a registry is asked.
const MinAutoUpdateInterval = time.Second

// AutoUpdate asks the agent to follow the image reference on its
// registry: every Interval it asks the registry (through the daemon, with
// the --registry-config credentials) for the digest the reference names;
// when that differs from the running image's, it pulls and replaces the
// container. A new image whose container cannot start, exits non-zero or
// turns unhealthy within RollbackAfter is rolled back to the previous
// image (kept by ID, so no registry is needed), and its digest is not
// tried again until the registry's digest changes again.
//
// imagePullPolicy still governs the pull when a container is created from
// the reference; updates pull whatever the policy says, so Never is
// refused with autoUpdate.
type AutoUpdate struct {
	Interval      Duration `yaml:"interval" json:"interval"`
	RollbackAfter Duration `yaml:"rollbackAfter,omitempty" json:"rollbackAfter,omitempty"`
}

// RollbackWindow is RollbackAfter, or DefaultRollbackAfter when unset.
func (u *AutoUpdate) RollbackWindow() time.Duration {
	if u.RollbackAfter.Duration > 0 {
		return u.RollbackAfter.Duration
	}
	return DefaultRollbackAfter
}

// autoUpdate checks spec.autoUpdate: a positive interval, a reference a
// registry can answer for (a name with a tag, not a digest or an image
// ID), and a pull policy that allows pulls.
func (v *validator) autoUpdate(c *ContainerSpec) {
	u := c.AutoUpdate
	if u == nil {
		return
	}
	const p = "spec.autoUpdate"
	switch {
	case u.Interval.Duration == 0:
		v.add(p+".interval", "required (e.g. 5m)")
	case u.Interval.Duration < MinAutoUpdateInterval:
		v.add(p+".interval", "%s is under the minimum of %s", u.Interval, MinAutoUpdateInterval)
	}
	v.duration(p+".rollbackAfter", u.RollbackAfter)
	if c.ImagePullPolicy == PullNever {
		v.add(p, "needs pulls, but imagePullPolicy is Never (use IfNotPresent or Always)")
	}
	if c.Image == "" {
		return
	}
	n, err := reference.ParseNormalizedNamed(c.Image)
	if err == nil && strings.HasPrefix(c.Image, "sha256:") {
		err = errors.New("it is an image ID")
	}
	if err != nil {
		v.add(p, "image %q is not a registry reference (%v); autoUpdate follows a name:tag on a registry", c.Image, err)
		return
	}
	if _, ok := n.(reference.Digested); ok {
		v.add(p, "image %q is pinned by digest, so it never changes; autoUpdate follows a name:tag", c.Image)
	}
}
