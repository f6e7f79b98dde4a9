package controller

import (
	"sync"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
)

// cache holds the last listing of each spec's containers. A listing is fresh
// while no event or action touched the spec since it was taken, so a resync
// costs one list call in all, and a reconcile after an event lists anew.
type cache struct {
	mu      sync.Mutex
	version map[string]uint64
	entries map[string]cacheEntry
}

type cacheEntry struct {
	containers []docker.Container
	version    uint64
}

func newCache() *cache {
	return &cache{version: map[string]uint64{}, entries: map[string]cacheEntry{}}
}

// get returns the cached containers of name when the entry is fresh.
func (c *cache) get(name string) ([]docker.Container, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok || e.version != c.version[name] {
		return nil, false
	}
	return e.containers, true
}

// dirty marks name's entry stale.
func (c *cache) dirty(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version[name]++
}

// begin returns the version to store a listing of name under; a change
// that lands while the list call runs makes the stored listing stale.
func (c *cache) begin(name string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version[name]
}

func (c *cache) put(name string, v uint64, cs []docker.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[name] = cacheEntry{containers: cs, version: v}
}

// beginAll snapshots every version before a full listing.
func (c *cache) beginAll() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.version))
	for k, v := range c.version {
		out[k] = v
	}
	return out
}

// putAll stores a full listing grouped by spec name for every name in names.
func (c *cache) putAll(vers map[string]uint64, names map[string]struct{}, by map[string][]docker.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range names {
		c.entries[n] = cacheEntry{containers: by[n], version: vers[n]}
	}
}

func (c *cache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, name)
	delete(c.version, name)
}

// notes remembers the die and kill events seen per container, which the
// container's state cannot tell afterwards: a kill means someone else
// stopped it (unless the agent did), and a 255 exit with no die event means
// it died while the daemon was down.
type notes struct {
	mu   sync.Mutex
	seen map[string]note
}

type note struct {
	startAt, dieAt, killAt, oomAt time.Time
}

const maxNotes = 20000

func newNotes() *notes { return &notes{seen: map[string]note{}} }

func (n *notes) record(ev docker.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev.Action {
	case "start":
		x := n.seen[ev.ContainerID]
		if ev.Time.After(x.startAt) {
			x.startAt = ev.Time
		}
		n.put(ev.ContainerID, x)
	case "die":
		x := n.seen[ev.ContainerID]
		x.dieAt = ev.Time
		n.put(ev.ContainerID, x)
	case "oom":
		x := n.seen[ev.ContainerID]
		x.oomAt = ev.Time
		n.put(ev.ContainerID, x)
	case "kill", "stop":
		x := n.seen[ev.ContainerID]
		x.killAt = ev.Time
		n.put(ev.ContainerID, x)
	case "destroy":
		delete(n.seen, ev.ContainerID)
	}
}

func (n *notes) put(id string, x note) {
	if _, ok := n.seen[id]; !ok && len(n.seen) >= maxNotes {
		// Bounded: forget everything rather than grow; the cost is a
		// coarser exit reason for runs that end in this instant.
		n.seen = map[string]note{}
	}
	n.seen[id] = x
}

// diedSinceStart reports a die seen after the last start of id: a listing
// that still shows it running is older than the event (the daemon's list
// view lags its events), so the container must be inspected.
func (n *notes) diedSinceStart(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	x, ok := n.seen[id]
	return ok && !x.dieAt.IsZero() && !x.dieAt.Before(x.startAt)
}

// oomAt is when the last oom event for id arrived; zero when none did.
func (n *notes) oomAt(id string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[id].oomAt
}

// about reports what was seen for the run of id that started at startedAt.
func (n *notes) about(id string, startedAt time.Time) (die, kill, oom bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	x, ok := n.seen[id]
	if !ok {
		return false, false, false
	}
	// Event times have second precision on some daemons: allow a second.
	from := startedAt.Add(-time.Second)
	return x.dieAt.After(from), x.killAt.After(from), x.oomAt.After(from)
}
