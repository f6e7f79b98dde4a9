package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

func writePolicyFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (ta *testAgent) eventsWith(t *testing.T, reason string) []model.Event {
	t.Helper()
	evs, err := ta.Store.Events("", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Event
	for _, e := range evs {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestPolicyFileIsReloadedWhenItChanges(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicyFile(t, path, "allowPrivileged: true\n")
	p, err := loadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	ta.Policy.Set(p)
	ta.Config.PolicyFile, ta.Config.Rescan = path, time.Hour // only the file watch can see a change
	ta.connect()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ta.watchPolicy(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The watch is set up asynchronously: rewrite until it is seen, but
	// less often than the watch's 100ms debounce, which each write resets.
	var wrote time.Time
	eventually(t, "the tightened policy in force", func() bool {
		if ta.Policy.Get().AllowPrivileged && time.Since(wrote) > 500*time.Millisecond {
			writePolicyFile(t, path, "allowDevices: true\n")
			wrote = time.Now()
		}
		return ta.Policy.Get().AllowDevices
	})
	eventually(t, "one PolicyReloaded event", func() bool { return len(ta.eventsWith(t, "PolicyReloaded")) == 1 })

	writePolicyFile(t, path, "allowDevices: true\nallowEverything: true\n")
	eventually(t, "the bad file reported", func() bool { return len(ta.eventsWith(t, "InvalidPolicy")) == 1 })
	if !ta.Policy.Get().AllowDevices {
		t.Fatal("a policy file that does not load replaced the policy in force")
	}
	ev := ta.eventsWith(t, "InvalidPolicy")[0]
	if ev.Type != model.EventWarning || !strings.Contains(ev.Message, `allowEverything`) || !strings.Contains(ev.Message, path) {
		t.Fatalf("event %+v", ev)
	}
}

func TestPolicyReloadReportsABadFileOnce(t *testing.T) {
	ta := newTestAgent(t, slog.New(slog.DiscardHandler))
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicyFile(t, path, "allowPrivileged: [yes\n")
	ta.Policy = spec.NewCurrentPolicy(&spec.Policy{AllowHostPID: true})
	pw := &policyWatcher{a: ta.Agent, path: path}
	for range 3 { // rescans of the same bad file
		pw.reload("rescan")
	}
	if n := len(ta.eventsWith(t, "InvalidPolicy")); n != 1 || !ta.Policy.Get().AllowHostPID {
		t.Fatalf("%d InvalidPolicy events, policy %+v; want one event and the old policy", n, ta.Policy.Get())
	}
	// Before the controller exists, a reload only puts the policy in force:
	// the first full sync checks every spec against it.
	writePolicyFile(t, path, "")
	pw.reload("SIGHUP")
	if ta.Policy.Get().AllowHostPID {
		t.Fatal("the fixed file was not put in force")
	}
}
