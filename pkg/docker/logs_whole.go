package docker

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
)

// wholeLogs opens a read of a container's whole output (a run saved when
// it ends may have written gigabytes): the logs deadline bounds the
// opening, then each wait for data. A daemon that stops sending is cut
// off; one that keeps sending is read to the end.
func (c *Client) wholeLogs(ctx context.Context, id string, lo container.LogsOptions) (io.ReadCloser, error) {
	rc, err := c.logs(ctx, id, lo)
	if err != nil {
		return nil, err
	}
	return newStallReader(rc, c.timeouts.with(OpLogs)), nil
}

// stallReader closes its stream when no data arrives for d.
type stallReader struct {
	rc      io.ReadCloser
	d       time.Duration
	t       *time.Timer
	stalled atomic.Bool
}

func newStallReader(rc io.ReadCloser, d time.Duration) *stallReader {
	s := &stallReader{rc: rc, d: d}
	s.t = time.AfterFunc(d, func() {
		s.stalled.Store(true)
		_ = rc.Close()
	})
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 && !s.stalled.Load() {
		s.t.Reset(s.d)
	}
	if err != nil && err != io.EOF && s.stalled.Load() {
		err = &deadlineError{op: OpLogs, after: s.d}
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.t.Stop()
	return s.rc.Close()
}
