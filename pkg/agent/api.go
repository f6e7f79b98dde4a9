package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/secrets"
	"github.com/reconciler/reconciler/pkg/source"
)

type apiListener struct {
	net.Listener
	handler http.Handler
	// connContext identifies a socket peer; nil on TCP, where the token
	// does.
	connContext func(context.Context, net.Conn) context.Context
}

// listenAPI opens the API's unix socket and, when asked, its TCP address,
// which is never served without a bearer token. It runs before the agent
// connects to Docker: specs can be applied and listed while the daemon is
// away. The audit log it opens, if any, is closed by the caller.
func (a *Agent) listenAPI() ([]apiListener, *api.AuditLog, error) {
	cfg := a.Config
	socketRole, err := api.ParseRole(cfg.SocketRole)
	if err != nil {
		return nil, nil, fmt.Errorf("--socket-role: %w", err)
	}
	tokens, err := loadTokens(cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.APIAddr != "" && len(tokens) == 0 {
		return nil, nil, errors.New("--api-addr needs --api-tokens or --api-token-file: the TCP API is never served without a bearer token")
	}
	var audit *api.AuditLog
	if cfg.AuditLog != "" {
		if audit, err = api.OpenAuditLog(cfg.AuditLog, a.log); err != nil {
			return nil, nil, err
		}
	}
	h := api.NewHandler(api.Deps{
		Store: a.Store, Recorder: a.Recorder, Runtime: a.runtime, Policy: a.Policy,
		Changed: a.desiredChanged, FileErrors: a.fileErrors,
		Instance: a.Store.InstanceID(), Version: cfg.Version, Log: a.log, Audit: audit,
		ExecMaxConcurrent: cfg.ExecMaxConcurrent, ExecMaxDuration: cfg.ExecMaxDuration,
		Output:        a.savedOutput(),
		WorkspaceRoot: cfg.workspaceRoot(),
	})
	closeAudit := func() {
		if audit != nil {
			audit.Close()
		}
	}
	unix, err := api.ListenUnix(cfg.Socket)
	if err != nil {
		closeAudit()
		return nil, nil, fmt.Errorf("API socket: %w", err)
	}
	ls := []apiListener{{unix, h, api.SocketPeer(os.Getuid(), socketRole)}}
	if cfg.APIAddr != "" {
		tcp, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			unix.Close()
			closeAudit()
			return nil, nil, fmt.Errorf("API address %s: %w", cfg.APIAddr, err)
		}
		ls = append(ls, apiListener{tcp, api.TokenAuth(tokens, h), nil})
	}
	return ls, audit, nil
}

// loadTokens reads the TCP API's tokens: the --api-tokens file, and the
// admin token of --api-token-file.
func loadTokens(cfg Config) ([]api.Token, error) {
	var tokens []api.Token
	if cfg.APITokens != "" {
		data, err := readStrictlyPrivate("--api-tokens", cfg.APITokens)
		if err != nil {
			return nil, err
		}
		if tokens, err = api.ParseTokens(cfg.APITokens, data); err != nil {
			return nil, fmt.Errorf("--api-tokens: %w", err)
		}
	}
	if cfg.APIToken != "" {
		tokens = append(tokens, api.NewToken(cfg.APIToken, "api-token-file", api.RoleAdmin))
	}
	return tokens, nil
}

// readStrictlyPrivate reads a file that must be readable by its owner
// alone (mode 0600 or stricter), and owned by root or the agent's user: a
// token file grants every role in it, and its owner can write it. Mode,
// owner, type and size are all checked on the open descriptor.
func readStrictlyPrivate(what, path string) ([]byte, error) {
	return secrets.ReadOwnerOnlyFile(what, path)
}

func (a *Agent) serveAPI(ctx context.Context, g *errgroup.Group, ls []apiListener) {
	for _, l := range ls {
		g.Go(func() error {
			return serve(ctx, l.Listener, l.handler, a.Config.HTTP, l.connContext, a.log.With("component", "api"))
		})
	}
}

// runtime is the daemon once it answered: the API's container routes say
// it is unavailable before.
func (a *Agent) runtime() api.Runtime {
	select {
	case <-a.ready:
		return a.Docker
	default:
		return nil
	}
}

// The controller and the source exist before the API serves (their
// queue takes names before the controller runs).

func (a *Agent) desiredChanged(name string) { a.Controller.DesiredChanged(name) }

func (a *Agent) fileErrors() []source.FileError { return a.Source.Errors() }
