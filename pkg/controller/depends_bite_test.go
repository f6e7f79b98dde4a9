package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// dependsDrain empties the work queue and returns what it held, sorted.
func dependsDrain(h *harness) []string {
	var names []string
	for h.c.queue.Len() > 0 {
		n, _ := h.c.queue.Get()
		h.c.queue.Done(n)
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestEveryDependentIsWokenAfterOneOfThemIsReconciledAgain: two specs wait
// on db; one of them is reconciled again (its dependencies noted afresh)
// before db runs. db's status change still wakes both, and both start.
func TestEveryDependentIsWokenAfterOneOfThemIsReconciledAgain(t *testing.T) {
	h := newHarness(t)
	h.putSpec("db", func(*spec.ContainerSpec) {})
	for _, n := range []string{"app1", "app2"} {
		h.putSpec(n, func(c *spec.ContainerSpec) { c.DependsOn = []spec.Dependency{{Name: "db"}} })
	}
	h.reconcile("app1")
	h.reconcile("app2")
	h.reconcile("app1")
	for _, n := range []string{"app1", "app2"} {
		if st := h.status(n); st.Phase != model.PhaseWaiting {
			t.Fatalf("%s before db: %+v, want Waiting", n, st)
		}
	}
	dependsDrain(h)
	h.reconcile("db")
	if woken := dependsDrain(h); !slices.Equal(woken, []string{"app1", "app2"}) {
		t.Fatalf("db running woke %v, want both its dependents", woken)
	}
	for _, n := range []string{"app1", "app2"} {
		h.reconcile(n)
		if st := h.status(n); st.Phase != model.PhaseRunning {
			t.Fatalf("%s once db runs: %+v", n, st)
		}
	}
}

// dependsBrokenReads is a state file that cannot read one spec's record or
// status (an I/O error, not a missing key).
type dependsBrokenReads struct {
	*store.Store
	spec, status string
}

var dependsEIO = fmt.Errorf("read state.db: %w", syscall.EIO)

func (b *dependsBrokenReads) ViewSpec(name string) (store.Record, error) {
	if name == b.spec {
		return store.Record{}, dependsEIO
	}
	return b.Store.ViewSpec(name)
}

func (b *dependsBrokenReads) GetStatus(name string) (model.Status, error) {
	if name == b.status {
		return model.Status{}, dependsEIO
	}
	return b.Store.GetStatus(name)
}

// TestADependencyWhoseStateCannotBeReadKeepsItsDependentWaiting: when the
// state file cannot give a dependency's spec or status, the dependent is
// not started; its status says which dependency and why. Once the reads
// work again it starts.
func TestADependencyWhoseStateCannotBeReadKeepsItsDependentWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  dependsBrokenReads
		want string
	}{
		{"its spec", dependsBrokenReads{spec: "db"}, `dependency "db": read state.db: input/output error`},
		{"its status", dependsBrokenReads{status: "db"}, `dependency "db": read status: read state.db: input/output error`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.putSpec("db", func(*spec.ContainerSpec) {})
			h.putSpec("app", func(c *spec.ContainerSpec) { c.DependsOn = []spec.Dependency{{Name: "db"}} })
			h.reconcile("db")
			bad := tc.bad
			bad.Store = h.st
			h.c = New(h.rt, &bad, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
			h.reconcile("app")
			if st := h.status("app"); st.Phase != model.PhaseWaiting || st.Message != tc.want || h.rt.byName("reconciler-app") != nil {
				t.Fatalf("app while db cannot be read: %+v, want Waiting, saying %q", st, tc.want)
			}
			h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})
			h.reconcile("app")
			if st := h.status("app"); st.Phase != model.PhaseRunning {
				t.Fatalf("app once db can be read: %+v, want Running", st)
			}
		})
	}
}

// TestTheStatusOfAChangedDependencyCountsOnlyOnceItIsReconciled: db runs,
// then its spec changes; until the agent has reconciled the new version,
// db's status is of the old one, and a dependent waits for the new one.
func TestTheStatusOfAChangedDependencyCountsOnlyOnceItIsReconciled(t *testing.T) {
	h := newHarness(t)
	h.putSpec("db", func(c *spec.ContainerSpec) { c.Args = []string{"tick"} })
	h.putSpec("app", func(c *spec.ContainerSpec) { c.DependsOn = []spec.Dependency{{Name: "db"}} })
	h.reconcile("db")
	if st := h.status("db"); st.Phase != model.PhaseRunning {
		t.Fatalf("db: %+v", st)
	}
	h.putSpec("db", func(c *spec.ContainerSpec) { c.Args = []string{"sleep"} })
	h.reconcile("app")
	if st := h.status("app"); st.Phase != model.PhaseWaiting || !strings.Contains(st.Message, `"db" to be Started (it has no status yet)`) {
		t.Fatalf("app while db's new version is not reconciled: %+v", st)
	}
	for range 4 {
		h.reconcile("db")
	}
	if st, ct := h.status("db"), h.rt.byName("reconciler-db"); st.Phase != model.PhaseRunning || ct == nil || ct.State != "running" ||
		h.rt.count("create") != 2 {
		t.Fatalf("db's new version: %+v, calls %v", st, h.rt.calls())
	}
	h.reconcile("app")
	if st := h.status("app"); st.Phase != model.PhaseRunning {
		t.Fatalf("app once db's new version runs: %+v", st)
	}
}

// dependsReleaseEgress is an egress manager whose Release answers err.
type dependsReleaseEgress struct {
	fakeEgress
	err error
}

func (d *dependsReleaseEgress) Release(ctx context.Context, name string) error {
	_ = d.fakeEgress.Release(ctx, name)
	return d.err
}

// TestAnEgressNetworkLeftBehindIsLoggedAsAWarning: when a gone spec's
// egress network and proxy cannot be removed yet, the agent says so in
// its log, naming the spec; when they are removed it says nothing.
func TestAnEgressNetworkLeftBehindIsLoggedAsAWarning(t *testing.T) {
	for _, err := range []error{nil, errors.New("network has active endpoints")} {
		h := newHarness(t)
		var logged bytes.Buffer
		eg := &dependsReleaseEgress{err: err}
		h.c = New(h.rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }, Egress: eg,
			Log: slog.New(slog.NewTextHandler(&logged, nil))})
		h.putSpec("job", func(c *spec.ContainerSpec) { c.Egress = &spec.Egress{Allow: []string{"a.io:443"}} })
		h.reconcile("job")
		if h.rt.lastCreate().Spec.Spec.Network != "net-job" {
			t.Fatalf("job created on %q, want its egress network", h.rt.lastCreate().Spec.Spec.Network)
		}
		if err := h.st.DeleteSpec("job"); err != nil {
			t.Fatal(err)
		}
		h.now = h.now.Add(time.Minute)
		h.reconcile("job")
		h.reconcile("job")
		if !slices.Equal(eg.released, []string{"job"}) {
			t.Fatalf("released %v, want job's network released once it is gone", eg.released)
		}
		var warnings []string
		for _, l := range strings.Split(logged.String(), "\n") {
			if strings.Contains(l, "level=WARN") {
				warnings = append(warnings, l)
			}
		}
		want := 0
		if err != nil {
			want = 1
		}
		if len(warnings) != want || (err != nil && !(strings.Contains(warnings[0], "cannot remove a spec's egress network and proxy yet") &&
			strings.Contains(warnings[0], "spec=job") && strings.Contains(warnings[0], err.Error()))) {
			t.Fatalf("release error %v: log\n%s", err, logged.String())
		}
	}
}
