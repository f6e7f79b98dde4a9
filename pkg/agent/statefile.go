package agent

import (
	"context"
	"time"
)

// watchStateFile follows whether the state file takes writes. After a
// refused commit it probes the file with back-off (1s doubling to 10s), so
// the agent turns ready again by itself once space returns, even when
// nothing else has to be written; meanwhile the controller retries its own
// commits. It logs each change between the two states once.
func (a *Agent) watchStateFile(ctx context.Context) error {
	const check, maxDelay = time.Second, 10 * time.Second
	delay, down := check, false
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := a.Store.WriteErr()
		if err != nil && down {
			if a.Store.ProbeWrite() == nil {
				err = nil
			} else {
				err = a.Store.WriteErr()
			}
		}
		switch {
		case err != nil && !down:
			a.log.Error("state file refuses writes: not ready, and no container is created, started, stopped or removed until it takes them again",
				"err", err, "path", a.Store.Path())
		case err == nil && down:
			a.log.Info("state file takes writes again", "path", a.Store.Path(), "refused_commits", a.Store.WriteFailures())
		}
		down = err != nil
		if down {
			delay = min(2*delay, maxDelay)
		} else {
			delay = check
		}
		t.Reset(delay)
	}
}
