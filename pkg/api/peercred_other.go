//go:build !linux

package api

import (
	"errors"
	"net"
)

// unixPeerUID needs SO_PEERCRED; without it no socket peer has an
// identity, and the socket refuses every request.
func unixPeerUID(*net.UnixConn) (int, error) {
	return 0, errors.New("telling a socket peer's user needs Linux (SO_PEERCRED)")
}
