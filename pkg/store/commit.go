package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/model"
)

// Change is what one reconcile step records. Commit writes it in one
// transaction, so a status and the events explaining it land together.
// Nil fields are left alone.
type Change struct {
	Status *model.Status
	// History is stored under Status.Name, or under Name when Status is nil.
	History *model.History
	Name    string
	// Exit is appended to the ledger of Exit.SpecName unless that ledger
	// already holds an exit of the same container.
	Exit   *model.ContainerExit
	Events []model.Event
}

// historyName is the key the History goes under.
func (c Change) historyName() (string, error) {
	name := c.Name
	if c.Status != nil {
		if c.Status.Name == "" {
			return "", errors.New("status has no name")
		}
		if name != "" && name != c.Status.Name {
			return "", fmt.Errorf("status of %q given with name %q", c.Status.Name, name)
		}
		name = c.Status.Name
	}
	if c.History != nil && name == "" {
		return "", errors.New("history has no name")
	}
	return name, nil
}

// Commit writes c and returns its events as stored (Seq, Count and times
// set) and whether the exit was new. Callers publish the events afterwards.
// A Status with a zero UpdatedAt gets the store's clock.
func (s *Store) Commit(c Change) (stored []model.Event, exitAdded bool, err error) {
	name, err := c.historyName()
	if err != nil {
		return nil, false, fmt.Errorf("commit: %w", err)
	}
	// UTC without a monotonic reading: what callers get back equals what a
	// later read decodes.
	now := s.opts.Now().UTC()
	err = s.update(func(tx *bolt.Tx) error {
		if c.Status != nil {
			if err := s.putStatus(tx, *c.Status, now); err != nil {
				return err
			}
		}
		if c.History != nil {
			if err := put(tx.Bucket(bucketHistory), []byte(name), c.History); err != nil {
				return err
			}
		}
		if c.Exit != nil {
			added, err := s.appendExit(tx, *c.Exit)
			if err != nil {
				return err
			}
			exitAdded = added
		}
		stored = make([]model.Event, 0, len(c.Events))
		for _, ev := range c.Events {
			ev, err := putEvent(tx, ev, now)
			if err != nil {
				return err
			}
			stored = append(stored, ev)
		}
		return trimEvents(tx, s.opts.MaxEvents)
	})
	if err != nil {
		return nil, false, fmt.Errorf("commit: %w", err)
	}
	return stored, exitAdded, nil
}

func (s *Store) putStatus(tx *bolt.Tx, st model.Status, now time.Time) error {
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = now
	}
	if st.LastExit != nil {
		last := *st.LastExit
		last.LogTail = truncateTail(last.LogTail, s.opts.LogTailBytes)
		st.LastExit = &last
	}
	return put(tx.Bucket(bucketStatus), []byte(st.Name), st)
}
