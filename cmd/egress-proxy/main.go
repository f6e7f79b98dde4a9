// Command egress-proxy is the HTTP proxy the agent runs beside every
// container with spec.egress: the container's only way out. It tunnels
// CONNECT and forwards plain HTTP to the destinations of --allow and
// answers 403 to the rest, writing one JSON line per denial on stdout,
// which the agent follows (see pkg/egress). It is built FROM scratch into
// reconciler/egress-proxy:latest by pkg/images.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reconciler/reconciler/pkg/egressproxy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "egress-proxy: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("egress-proxy", flag.ContinueOnError)
	listen := fs.String("listen", ":3128", "address to serve the proxy on")
	allow := fs.String("allow", "", "comma-separated host:port or *.domain:port destinations to allow (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var entries []string
	if *allow != "" {
		entries = strings.Split(*allow, ",")
	}
	list, err := egressproxy.ParseList(entries)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           &egressproxy.Proxy{Allow: list, Log: log},
		ReadHeaderTimeout: 30 * time.Second,
		// A tunnel is hijacked and outlives these; they bound only the
		// request that opens it or a plain request.
		IdleTimeout: 2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info(egressproxy.MsgListening, "addr", ln.Addr().String(), "allow", len(list))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
