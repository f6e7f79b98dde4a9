package controller

import (
	"sync"
	"time"
)

// A container the daemon shows as created may have a start under way: one
// sent by an agent process that was killed or stopped during the call (the
// daemon carries it out all the same), or one of this process's that ran
// past its deadline. A second start would run it twice, since the daemon
// runs again a container that has meanwhile run and exited: a job would
// run twice. The daemon gives no way to tell, and an inspect is no barrier
// (on this daemon one answered "created" while a start was under way).
//
// So the agent starts at once only a created container that this process
// created and has not tried to start. Any other it starts once startHold
// has passed since it first saw it (or since its own try) and it is still
// created: a start under way shows by then, and the container is taken as
// it is (running, or exited with its run to record).

// startHoldFloor is the least startHold: about ten times a start on a
// busy 2-core machine.
const startHoldFloor = 10 * time.Second

// startHold is how long a created container that may have a start under
// way is left before the agent starts it: startHoldFloor, or four of the
// daemon's last starts when it is slower than that.
func (c *Controller) startHold() time.Duration {
	return max(startHoldFloor, 4*time.Duration(c.startLag.Load()))
}

// starts keeps, per container ID, what the hold needs. The zero value is
// ready to use.
type starts struct {
	mu    sync.Mutex
	mine  map[string]bool      // created by this process and not tried yet
	since map[string]time.Time // seen created, not ours, or our start tried
}

// created notes a container this process created.
func (s *starts) created(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mine == nil {
		s.mine = map[string]bool{}
	}
	s.mine[id] = true
}

// trying notes a start of id about to be sent: should it fail, the next
// try waits the hold from now.
func (s *starts) trying(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mine, id)
	if s.since == nil {
		s.since = map[string]time.Time{}
	}
	s.since[id] = now
}

// forget forgets id: it runs, or the daemon refused or lost it.
func (s *starts) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mine, id)
	delete(s.since, id)
}

// wait is how much longer a start of created container id must wait.
func (s *starts) wait(id string, now time.Time, hold time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mine[id] {
		return 0
	}
	t, ok := s.since[id]
	if !ok {
		if s.since == nil {
			s.since = map[string]time.Time{}
		}
		s.since[id], t = now, now
	}
	return max(0, t.Add(hold).Sub(now))
}
