package agent

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// policyWatcher keeps the policy in force equal to the policy file: it
// reloads on a change to the file (watching its directory, since editors
// and config tools replace files), on every rescan tick, and on SIGHUP. A
// file that does not load leaves the previous policy in force and is
// reported once, in the log and as a Warning event.
type policyWatcher struct {
	a       *Agent
	path    string
	lastErr string
}

func loadPolicy(path string) (*spec.Policy, error) {
	if path == "" {
		return spec.DefaultPolicy(), nil
	}
	p, err := spec.LoadPolicy(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return p, nil
}

// watchPolicy runs until ctx ends. Without a policy file there is nothing
// to reload, but SIGHUP is still taken so that it does not end the agent.
func (a *Agent) watchPolicy(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	pw := &policyWatcher{a: a, path: a.Config.PolicyFile}
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		rescan <-chan time.Time
	)
	if pw.path != "" {
		log := a.log.With("component", "policy")
		if w, err := fsnotify.NewWatcher(); err != nil {
			log.Warn("cannot watch the policy file; it is reloaded on SIGHUP and every rescan", "err", err)
		} else {
			defer w.Close()
			if err := w.Add(filepath.Dir(pw.path)); err != nil {
				log.Warn("cannot watch the policy file's directory; it is reloaded on SIGHUP and every rescan", "err", err)
			}
			events, errs = w.Events, w.Errors
		}
		t := time.NewTicker(a.Config.Rescan)
		defer t.Stop()
		rescan = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	base := filepath.Base(pw.path)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			pw.reload("SIGHUP")
		case ev := <-events:
			if filepath.Base(ev.Name) == base {
				debounce.Reset(100 * time.Millisecond)
			}
		case err := <-errs:
			a.log.Warn("policy file watch error; reloading", "component", "policy", "err", err)
			debounce.Reset(100 * time.Millisecond)
		case <-debounce.C:
			pw.reload("file changed")
		case <-rescan:
			pw.reload("rescan")
		}
	}
}

// reload loads the policy file and, when it differs from the policy in
// force, puts it in force and has every stored spec checked against it.
func (pw *policyWatcher) reload(trigger string) {
	a := pw.a
	log := a.log.With("component", "policy", "file", pw.path, "trigger", trigger)
	if pw.path == "" {
		log.Info("no --policy file to reload; the default policy stays in force")
		return
	}
	p, err := spec.LoadPolicy(pw.path)
	if err != nil {
		if msg := err.Error(); msg != pw.lastErr {
			pw.lastErr = msg
			log.Error("policy file refused; the previous policy stays in force", "err", err)
			a.Recorder.Event("", model.EventWarning, "InvalidPolicy",
				"policy file %s refused; the previous policy stays in force: %v", pw.path, err)
		}
		return
	}
	if pw.lastErr != "" {
		pw.lastErr = ""
		log.Info("policy file accepted again")
	}
	if reflect.DeepEqual(p, a.Policy.Get()) {
		if trigger == "SIGHUP" {
			log.Info("policy file unchanged")
		}
		return
	}
	a.Policy.Set(p)
	log.Info("policy reloaded; checking every spec against it")
	a.Recorder.Event("", model.EventNormal, "PolicyReloaded", "policy file %s reloaded", pw.path)
	select {
	case <-a.ready:
		if err := a.Controller.EnqueueAll(); err != nil {
			log.Warn("cannot list specs to check against the new policy; the next resync will", "err", err)
		}
	default: // the controller's first full sync will check them
	}
}
