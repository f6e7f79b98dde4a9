package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// stallAfter is how long the loop may go without progress before the agent
// calls itself unhealthy: the resync ticks at least once per period.
func (a *Agent) stallAfter() time.Duration {
	return 2*a.Config.Resync + 30*time.Second
}

// connected reports whether the Docker daemon answered once, so that the
// controller runs.
func (a *Agent) connected() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// Healthy reports whether the process is alive and its reconcile loop makes
// progress. A daemon that is away is not the agent's fault and restarting
// the agent would not bring it back, so it does not count here.
func (a *Agent) Healthy() error {
	if !a.connected() {
		return nil // still connecting to Docker: alive, not ready
	}
	if since := a.now().Sub(a.Controller.LastProgress()); since > a.stallAfter() {
		return fmt.Errorf("reconcile loop made no progress for %s", since.Round(time.Second))
	}
	return a.sourceHealthy()
}

// sourceHealthy reports a spec-directory loop that is stuck (in a read or
// a store write that never returns): the rescan ticks every Rescan period,
// so it gets the same slack as the reconcile loop.
func (a *Agent) sourceHealthy() error {
	if a.Source == nil {
		return nil
	}
	rescan := a.Config.Rescan
	if rescan <= 0 {
		rescan = Defaults().Rescan
	}
	if since := a.now().Sub(a.Source.LastProgress()); since > 2*rescan+30*time.Second {
		return fmt.Errorf("spec directory source (%s) made no progress for %s", a.Config.SpecsDir, since.Round(time.Second))
	}
	return nil
}

// Ready reports whether the agent serves its purpose: state file taking
// writes, Docker reachable and answering in time, first full sync done. A
// daemon call that hangs is named, so that an operator knows what to look at.
func (a *Agent) Ready() error {
	if err := a.Store.WriteErr(); err != nil {
		return err // "state file PATH: no space left on device"
	}
	if !a.connected() {
		if err := a.dockerErr.Load(); err != nil {
			return fmt.Errorf("docker daemon not connected yet: %w", *err)
		}
		return fmt.Errorf("docker daemon not connected yet")
	}
	if err := a.Docker.Hanging(); err != nil {
		return err
	}
	return a.Controller.Ready()
}

func (a *Agent) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{Registry: a.Metrics.Registry}))
	check := func(f func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if err := f(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ok: %v\n", err)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux.Handle("GET /healthz", check(a.Healthy))
	mux.Handle("GET /readyz", check(a.Ready))
	return mux
}

// notifySystemd speaks sd_notify for the Type=notify unit; without
// NOTIFY_SOCKET it only waits for ctx.
func (a *Agent) notifySystemd(ctx context.Context) error {
	return sdNotify(ctx, a.Healthy, a.log)
}

// sdNotify sends READY=1 at once (the caller has the state open and its
// listeners bound), WATCHDOG=1 every half watchdog interval while healthy
// passes, and STOPPING=1 when ctx ends. A stalled loop is left to the
// watchdog: systemd restarts the agent when the pets stop.
func sdNotify(ctx context.Context, healthy func() error, log *slog.Logger) error {
	send := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("cannot notify systemd", "state", state, "err", err)
		}
	}
	send(daemon.SdNotifyReady)
	defer send(daemon.SdNotifyStopping)
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable; not petting it", "err", err)
	}
	if err != nil || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	petting := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := healthy()
		switch {
		case err != nil && petting:
			log.Error("no longer petting the systemd watchdog; systemd will restart the agent", "err", err)
		case err == nil && !petting:
			log.Info("reconcile loop healthy again; petting the systemd watchdog")
		}
		petting = err == nil
		if petting {
			send(daemon.SdNotifyWatchdog)
		}
	}
}
