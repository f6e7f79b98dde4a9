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
	"github.com/reconciler/reconciler/pkg/registry"
)

func TestRegistryConfigIsReloadedAndABadFileKeepsTheLastGood(t *testing.T) {
	var logs syncBuffer
	ta := newTestAgent(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	path := filepath.Join(t.TempDir(), "config.json")
	writePolicyFile(t, path, `{"auths": {"r1.example": {"username": "u", "password": "first-s3cret"}}}`)
	cur, err := loadRegistryConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ta.Registry = cur
	ta.Config.RegistryConfig, ta.Config.Rescan = path, time.Hour // only the file watch can see a change
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ta.watchRegistryConfig(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	hosts := func() string { return strings.Join(ta.Registry.Get().Hosts(), ",") }
	var wrote time.Time
	eventually(t, "the new credentials in force", func() bool {
		if hosts() == "r1.example" && time.Since(wrote) > 500*time.Millisecond {
			writePolicyFile(t, path, `{"auths": {"r2.example": {"username": "u", "password": "second-s3cret"}}}`)
			wrote = time.Now()
		}
		return hosts() == "r2.example"
	})

	// Not JSON, then readable by the group: refused, the last good kept.
	writePolicyFile(t, path, `{"auths": {"r3.example": {"password": "third-s3cret"`)
	eventually(t, "the bad file reported", func() bool { return len(ta.eventsWith(t, "InvalidRegistryConfig")) == 1 })
	writePolicyFile(t, path, `{"auths": {"r3.example": {"username": "u", "password": "third-s3cret"}}}`)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the readable file reported", func() bool { return len(ta.eventsWith(t, "InvalidRegistryConfig")) == 2 })
	if hosts() != "r2.example" {
		t.Fatalf("a refused file replaced the credentials: %s", hosts())
	}
	evs, _ := ta.Store.Events("", 0, 0)
	for _, e := range evs {
		for _, s := range []string{"first-s3cret", "second-s3cret", "third-s3cret"} {
			if strings.Contains(e.Message, s) || strings.Contains(logs.String(), s) {
				t.Fatalf("a credential shows: event %q", e.Message)
			}
		}
	}
	if ev := ta.eventsWith(t, "InvalidRegistryConfig")[1]; ev.Type != model.EventWarning || !strings.Contains(ev.Message, "0600") {
		t.Fatalf("event %+v", ev)
	}
	var none *registry.Current
	if none.Get() != nil {
		t.Fatal("nil Current has credentials")
	}
}
