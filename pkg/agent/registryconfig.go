package agent

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/registry"
)

// loadRegistryConfig reads --registry-config at start: a file that does
// not load stops the agent then, as a bad policy file does; later, a bad
// file keeps the credentials in force.
func loadRegistryConfig(path string) (*registry.Current, error) {
	cur := &registry.Current{}
	if path == "" {
		return cur, nil
	}
	cfg, err := registry.Load(path)
	if err != nil {
		return nil, err
	}
	cur.Set(cfg)
	return cur, nil
}

// watchRegistryConfig keeps the credentials in force equal to the
// --registry-config file: reloaded when the file changes (its directory
// is watched, since tools replace files), every rescan and on SIGHUP. A
// file that does not load keeps the last good credentials and is reported
// once, without its content (errors of pkg/registry name hosts only).
func (a *Agent) watchRegistryConfig(ctx context.Context) error {
	path := a.Config.RegistryConfig
	if path == "" {
		return nil
	}
	log := a.log.With("component", "registry-config", "file", path)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if w, err := fsnotify.NewWatcher(); err != nil {
		log.Warn("cannot watch the registry config; it is reloaded on SIGHUP and every rescan", "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			log.Warn("cannot watch the registry config's directory; it is reloaded on SIGHUP and every rescan", "err", err)
		}
		events, errs = w.Events, w.Errors
	}
	rescan := time.NewTicker(a.Config.Rescan)
	defer rescan.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	base := filepath.Base(path)
	lastErr := ""
	reload := func(trigger string) {
		cfg, err := registry.Load(path)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				log.Error("registry config refused; the previous credentials stay in force", "trigger", trigger, "err", err)
				a.Recorder.Event("", model.EventWarning, "InvalidRegistryConfig",
					"registry config %s refused; the previous credentials stay in force: %v", path, err)
			}
			return
		}
		if lastErr != "" {
			lastErr = ""
			log.Info("registry config accepted again")
		}
		if cfg.Equal(a.Registry.Get()) {
			return
		}
		a.Registry.Set(cfg)
		log.Info("registry config reloaded", "trigger", trigger, "registries", fmt.Sprint(cfg.Hosts()))
		a.Recorder.Event("", model.EventNormal, "RegistryConfigReloaded", "registry config %s reloaded: %s", path, cfg)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			reload("SIGHUP")
		case ev := <-events:
			if filepath.Base(ev.Name) == base {
				debounce.Reset(100 * time.Millisecond)
			}
		case err := <-errs:
			log.Warn("registry config watch error; reloading", "err", err)
			debounce.Reset(100 * time.Millisecond)
		case <-debounce.C:
			reload("file changed")
		case <-rescan.C:
			reload("rescan")
		}
	}
}
