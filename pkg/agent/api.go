package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/source"
)

type apiListener struct {
	net.Listener
	handler http.Handler
}

// listenAPI opens the API's unix socket and, when asked, its TCP address,
// which is never served without a bearer token. It runs before the agent
// connects to Docker: specs can be applied and listed while the daemon is
// away.
func (a *Agent) listenAPI() ([]apiListener, error) {
	cfg := a.Config
	if cfg.APIAddr != "" && cfg.APIToken == "" {
		return nil, errors.New("--api-addr needs --api-token-file: the TCP API is never served without a bearer token")
	}
	h := api.NewHandler(api.Deps{
		Store: a.Store, Recorder: a.Recorder, Runtime: a.runtime, Policy: a.Policy,
		Changed: a.desiredChanged, FileErrors: a.fileErrors,
		Instance: a.Store.InstanceID(), Version: cfg.Version, Log: a.log,
		ExecMaxConcurrent: cfg.ExecMaxConcurrent, ExecMaxDuration: cfg.ExecMaxDuration,
	})
	unix, err := api.ListenUnix(cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	ls := []apiListener{{unix, h}}
	if cfg.APIAddr != "" {
		tcp, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			unix.Close()
			return nil, fmt.Errorf("API address %s: %w", cfg.APIAddr, err)
		}
		ls = append(ls, apiListener{tcp, api.TokenAuth(cfg.APIToken, h)})
	}
	return ls, nil
}

func (a *Agent) serveAPI(ctx context.Context, g *errgroup.Group, ls []apiListener) {
	for _, l := range ls {
		g.Go(func() error { return serve(ctx, l.Listener, l.handler, a.log.With("component", "api")) })
	}
}

// The parts below exist once Docker answered; ready orders their writes
// before these reads.

func (a *Agent) runtime() docker.Runtime {
	select {
	case <-a.ready:
		return a.Docker
	default:
		return nil
	}
}

func (a *Agent) desiredChanged(name string) {
	select {
	case <-a.ready:
		a.Controller.DesiredChanged(name)
	default: // the controller's first resync reads every stored spec
	}
}

func (a *Agent) fileErrors() []source.FileError {
	select {
	case <-a.ready:
		return a.Source.Errors()
	default:
		return nil
	}
}
