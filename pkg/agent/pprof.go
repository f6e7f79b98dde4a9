package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofHandler serves Go's runtime profiles, as net/http/pprof does on
// the default mux, on a mux of its own: the profiles are served only on
// the listener that --pprof-addr names, never beside /metrics or the API.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// listenPprof binds addr for the profiles; an empty addr serves none.
func listenPprof(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof address %s: %w", addr, err)
	}
	return l, nil
}

// maxProfile is the longest CPU profile or trace the listener answers:
// they last as long as their ?seconds= asks (30s by default), and
// net/http/pprof refuses one longer than the write deadline.
const maxProfile = 5 * time.Minute

// servePprof serves the profiles on l until ctx ends, a few at a time
// (profiling costs CPU).
func servePprof(ctx context.Context, l net.Listener, lim HTTPLimits, log *slog.Logger) error {
	lim.MaxConns = min(max(lim.MaxConns, 1), 4)
	lim.WriteTimeout = max(lim.WriteTimeout, maxProfile)
	return serve(ctx, l, pprofHandler(), lim, nil, log)
}
