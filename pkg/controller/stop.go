package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/store"
)

// stop commits the stop intent, then stops the container off the worker.
func (c *Controller) stop(s *step) error {
	a := s.a
	if err := c.commitState(s, nil, c.noteEvents(s.name, a.Events)...); err != nil {
		return err
	}
	c.stopAsync(s.name, a.ContainerID, a.Grace)
	return nil
}

// removeExited removes the spec's stopped container, after committing the
// history it leaves.
func (c *Controller) removeExited(ctx context.Context, s *step) error {
	if err := c.commitHistory(s.name, s.a.History); err != nil {
		return err
	}
	if err := c.remove(ctx, s.name, s.a.ContainerID); err != nil {
		return err
	}
	c.dropSecretFiles(s.name, s.o.Container)
	s.o.Container = nil
	return nil
}

func (c *Controller) removeStray(ctx context.Context, s *step) error {
	id := s.a.ContainerID
	if err := c.commit(s.name, nil, nil, nil, c.noteEvents(s.name, s.a.Events)...); err != nil {
		return err
	}
	if err := c.rt.Stop(ctx, id, s.a.Grace); err != nil && !errors.Is(err, docker.ErrNotFound) {
		return fmt.Errorf("stop stray: %w", err)
	}
	if err := c.remove(ctx, s.name, id); err != nil {
		return err
	}
	s.o.Strays = s.o.Strays[1:]
	return nil
}

// expire deletes a finished API job whose TTL passed: its container, its
// spec and its state (a file job only loses its container: decide).
func (c *Controller) expire(ctx context.Context, s *step) error {
	name, a := s.name, s.a
	if a.ContainerID != "" {
		if err := c.remove(ctx, name, a.ContainerID); err != nil {
			return err
		}
		c.dropSecretFiles(name, s.o.Container)
	}
	if err := c.st.DeleteSpec(name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete expired spec: %w", err)
	}
	for _, ev := range c.noteEvents(name, a.Events) {
		c.emit(ev)
	}
	return c.forget(name)
}

func (c *Controller) remove(ctx context.Context, name, id string) error {
	c.cancelWait(id)
	if err := c.rt.Remove(ctx, id); err != nil {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	c.m.ContainerOperations.WithLabelValues("remove").Inc()
	c.starts.forget(id)
	c.cache.dirty(name)
	return nil
}

func (c *Controller) forget(name string) error {
	if err := c.st.DeleteState(name); err != nil {
		return fmt.Errorf("drop state: %w", err)
	}
	c.ledger.forget(name)
	c.pruneOutput()
	c.cache.forget(name)
	c.pulls.forget(name)
	c.dropPhase(name)
	c.mu.Lock()
	delete(c.changedAt, name)
	c.mu.Unlock()
	return nil
}
