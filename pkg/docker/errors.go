package docker

import (
	"errors"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// daemonError keeps the daemon's own message while letting callers test
// the package's sentinels with errors.Is (and the errdefs kinds too).
type daemonError struct{ kind, err error }

func (e daemonError) Error() string   { return e.err.Error() }
func (e daemonError) Unwrap() []error { return []error{e.kind, e.err} }

// classify maps a daemon error onto ErrNotFound, ErrConflict or
// ErrUnavailable; other errors are returned unchanged.
func classify(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		kind = ErrNotFound
	case cerrdefs.IsConflict(err):
		kind = ErrConflict
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		kind = ErrUnavailable
	default:
		return err
	}
	return daemonError{kind: kind, err: err}
}
