package controller

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/spec"
)

// biteLateListing leaves the container with one name out of every
// listing while hide is set, as a daemon whose listing lags a create.
type biteLateListing struct {
	*fakeRuntime
	name string
	hide atomic.Bool
}

func (r *biteLateListing) List(ctx context.Context, sel map[string]string) ([]docker.Container, error) {
	cs, err := r.fakeRuntime.List(ctx, sel)
	if !r.hide.Load() {
		return cs, err
	}
	var out []docker.Container
	for _, c := range cs {
		if c.Name != r.name {
			out = append(out, c)
		}
	}
	return out, err
}

// TestCreateNameHeldByOwnUnlistedContainerIsRetried: a create refused
// because the name is taken is retried when the holder is this agent's
// own container of the same spec, listed late (the next listing adopts
// it), and reported as a conflict when the holder is anyone else's: not
// ours, another agent's, or another spec's.
func TestCreateNameHeldByOwnUnlistedContainerIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		ours   bool
	}{
		{"own", map[string]string{docker.LabelManaged: "true", docker.LabelInstance: "test", docker.LabelSpec: "web"}, true},
		{"unmanaged", map[string]string{docker.LabelInstance: "test", docker.LabelSpec: "web"}, false},
		{"other agent", map[string]string{docker.LabelManaged: "true", docker.LabelInstance: "other", docker.LabelSpec: "web"}, false},
		{"other spec", map[string]string{docker.LabelManaged: "true", docker.LabelInstance: "test", docker.LabelSpec: "db"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("web", spec.RestartAlways, "tick")
			rec, err := h.st.GetSpec("web")
			if err != nil {
				t.Fatal(err)
			}
			tc.labels[docker.LabelSpecHash] = rec.Hash
			h.rt.add(docker.Container{ID: "x1", Name: "reconciler-web", State: "created", Labels: tc.labels})
			rt := &biteLateListing{fakeRuntime: h.rt, name: "reconciler-web"}
			rt.hide.Store(true)
			h.c = New(rt, h.st, nil, Options{Instance: "test", Now: func() time.Time { return h.now }})

			_, err = h.c.Reconcile(context.Background(), "web")
			st, _ := h.st.GetStatus("web")
			if !tc.ours {
				if err != nil || st.Conflict != "reconciler-web" {
					t.Fatalf("someone else's holder: err %v, status %+v; want the conflict reported", err, st)
				}
				return
			}
			if !errors.Is(err, docker.ErrConflict) || st.Conflict != "" {
				t.Fatalf("own holder listed late: err %v, status %+v; want a retry and no conflict", err, st)
			}
			rt.hide.Store(false)
			h.now = h.now.Add(time.Second)
			h.reconcile("web")
			// Created by no start of this process: held (starthold.go).
			if st := h.status("web"); st.ContainerID != "x1" || h.rt.state("x1") != "created" || !strings.Contains(st.Message, "a start may still be under way") {
				t.Fatalf("after the listing caught up: status %+v, calls %v; want x1 adopted and held", st, h.rt.calls())
			}
			h.now = h.now.Add(startHoldFloor)
			h.reconcile("web")
			if st := h.status("web"); st.ContainerID != "x1" || h.rt.state("x1") != "running" || h.rt.count("create") != 1 {
				t.Fatalf("after the listing caught up: status %+v, calls %v; want x1 adopted and started", st, h.rt.calls())
			}
		})
	}
}

// TestSeccompProfileSizeLimit: a profile of exactly maxSeccompProfile
// bytes is inlined; one byte more is refused, whatever it holds.
func TestSeccompProfileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		size    int
		wantErr string
	}{
		{maxSeccompProfile, ""},
		{maxSeccompProfile + 1, "is over"},
	} {
		// Valid JSON however much of it is read: {} and blanks.
		raw := []byte("{}" + strings.Repeat(" ", tc.size-2))
		path := filepath.Join(dir, "profile.json")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := inlineSeccompProfiles([]string{"seccomp=" + path})
		if tc.wantErr == "" {
			if err != nil || len(got) != 1 || got[0] != "seccomp={}" {
				t.Errorf("%d bytes: %q, %v; want it inlined", tc.size, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%d bytes: %q, %v; want an error saying it %s", tc.size, got, err, tc.wantErr)
		}
	}
}

// TestRestartsMetricCountsRestartsOnly: the first start of a container is
// no restart; the start after its crash is one, counted once.
func TestRestartsMetricCountsRestartsOnly(t *testing.T) {
	h := newHarness(t)
	h.put("web", spec.RestartAlways, "tick")
	h.reconcile("web")
	if got := testutil.ToFloat64(h.c.m.Restarts); got != 0 || h.rt.count("start") != 1 {
		t.Fatalf("after the first start: restarts metric %v, calls %v; want 0", got, h.rt.calls())
	}
	h.now = h.now.Add(time.Minute)
	h.rt.exit("reconciler-web", 2)
	h.reconcile("web")
	h.reconcile("web")
	if got := testutil.ToFloat64(h.c.m.Restarts); got != 1 || h.rt.count("start") != 2 || h.status("web").Restarts != 1 {
		t.Fatalf("after a crash and a restart: restarts metric %v, status %+v, calls %v; want 1", got, h.status("web"), h.rt.calls())
	}
}
