package spec

import (
	"strings"
	"time"
)

// Defaults filled in by Default.
const (
	DefaultImagePullPolicy = PullIfNotPresent
	DefaultRestartPolicy   = RestartAlways
	// The first restart of a crash loop is immediate (Backoff.Initial is
	// zero); DefaultBackoffBase is the delay of the second, doubling for each
	// later one up to Backoff.Max. See Backoff.Delay.
	DefaultBackoffBase       = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffResetAfter = 10 * time.Minute
	DefaultStopSignal        = "SIGTERM"
	DefaultGracePeriod       = 10 * time.Second
	DefaultNetwork           = "bridge"
	DefaultProtocol          = "tcp"
	// DefaultSecretsDir holds secrets[] files whose target is not given.
	DefaultSecretsDir = "/run/secrets"
)

// Default fills unset fields and normalises spellings that mean the same
// thing (signal and capability names, protocol case), so that the hash sees
// one form. It never overrides what was written. Images are not pulled
// unless asked, even for a "latest" tag: no registry may be reachable and
// operators of this agent expect their local images to be used.
//
// A zero duration means "unset", so terminationGracePeriod cannot be made
// zero; the smallest grace is 1ns.
func (s *Spec) Default() {
	c := &s.Spec
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = DefaultImagePullPolicy
	}
	if c.RestartPolicy == "" {
		c.RestartPolicy = DefaultRestartPolicy
	}
	if c.Backoff.Max.Duration == 0 {
		c.Backoff.Max.Duration = DefaultBackoffMax
	}
	if c.Backoff.ResetAfter.Duration == 0 {
		c.Backoff.ResetAfter.Duration = DefaultBackoffResetAfter
	}
	if c.StopSignal == "" {
		c.StopSignal = DefaultStopSignal
	} else if sig, ok := NormalizeSignal(c.StopSignal); ok {
		c.StopSignal = sig
	}
	if c.TerminationGracePeriod.Duration == 0 {
		c.TerminationGracePeriod.Duration = DefaultGracePeriod
	}
	if c.Network == "" && c.Egress == nil { // egress picks the network
		c.Network = DefaultNetwork
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = DefaultProtocol
		} else {
			c.Ports[i].Protocol = strings.ToLower(c.Ports[i].Protocol)
		}
	}
	for i := range c.Secrets {
		c.Secrets[i].Target = c.Secrets[i].TargetPath()
	}
	for i, capName := range c.CapAdd {
		c.CapAdd[i] = NormalizeCapability(capName)
	}
	for i, capName := range c.CapDrop {
		c.CapDrop[i] = NormalizeCapability(capName)
	}
}

// Delay is the wait before the next restart of a crash loop, given the
// number of restarts already made since the loop began (or was reset after
// ResetAfter of healthy running). With Initial set the sequence is Initial,
// 2*Initial, 4*Initial, ...; with Initial zero (the default) the first
// restart is immediate and the sequence then grows from DefaultBackoffBase:
// 0, 1s, 2s, 4s, ... Both are capped at Max (DefaultBackoffMax when unset).
func (b Backoff) Delay(restarts int) time.Duration {
	limit := b.Max.Duration
	if limit <= 0 {
		limit = DefaultBackoffMax
	}
	delay := b.Initial.Duration
	if delay <= 0 {
		if restarts <= 0 {
			return 0
		}
		delay, restarts = DefaultBackoffBase, restarts-1
	}
	for ; restarts > 0 && delay < limit; restarts-- {
		if delay > limit/2 {
			return limit
		}
		delay *= 2
	}
	return min(delay, limit)
}
