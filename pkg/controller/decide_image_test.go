package controller

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// TestDecideImage walks every branch of the image decision: what a create
// does about its image, from the facts observed and the pull back-off in
// the history.
func TestDecideImage(t *testing.T) {
	const ref = "reconciler/box:latest"
	pol := func(p spec.PullPolicy) Desired {
		return testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.ImagePullPolicy = p })
	}
	always, ifNot, never := pol(spec.PullAlways), pol(spec.PullIfNotPresent), pol(spec.PullNever)
	boom := errors.New("manifest unknown")
	// A back-off after two failures, 10s still to go.
	waiting := &model.PullBackoff{Image: ref, Failures: 2, Delay: 20 * time.Second, NextTryAt: t0.Add(10 * time.Second), Message: "manifest unknown"}
	other := &model.PullBackoff{Image: "reconciler/other:1", Failures: 2, Delay: 20 * time.Second, NextTryAt: t0.Add(10 * time.Second)}
	passed := &model.PullBackoff{Image: ref, Failures: 2, Delay: 20 * time.Second, NextTryAt: t0}
	third := &model.PullBackoff{Image: ref, Failures: 3, Delay: 40 * time.Second, NextTryAt: t0.Add(40 * time.Second), Message: "manifest unknown"}
	first := &model.PullBackoff{Image: ref, Failures: 1, Delay: 10 * time.Second, NextTryAt: t0.Add(10 * time.Second), Message: "manifest unknown"}

	cases := []struct {
		name    string
		d       Desired
		f       ImageFacts
		pull    *model.PullBackoff // in the history
		step    ImageStep
		image   string
		wantBO  *model.PullBackoff
		took    bool
		drop    bool
		reason  string // the failure's, or the events' reasons joined by ","
		message string // the status message (Pull, BackOff) or the failure's
		requeue time.Duration
	}{
		{name: "pinned image present: created from it, no registry asked, back-off kept",
			d: always, f: ImageFacts{Pinned: "sha256:aaa"}, pull: waiting, step: ImageReady, image: "sha256:aaa", wantBO: waiting},
		{name: "pinned image gone: the reference, under its policy, and the pin is dropped",
			d: ifNot, f: ImageFacts{PinGone: "no such image", Present: true}, step: ImageReady, drop: true},
		{name: "image cannot be inspected: the create fails",
			d: ifNot, f: ImageFacts{InspectErr: "permission denied"}, pull: waiting, step: ImageFail, wantBO: waiting,
			reason: "ImageUnavailable", message: "cannot inspect image " + ref + ": permission denied"},
		{name: "a pull ended well: created, back-off forgotten",
			d: always, f: ImageFacts{Pulled: true}, pull: waiting, step: ImageReady, took: true, reason: "Pulled"},
		{name: "Never, image absent: fails, nothing pulled",
			d: never, f: ImageFacts{}, step: ImageFail, reason: "ErrImageNeverPull",
			message: "image " + ref + " is not present and imagePullPolicy is Never"},
		{name: "Never, image present: created",
			d: never, f: ImageFacts{Present: true}, step: ImageReady},
		{name: "IfNotPresent, image present: created, an old back-off forgotten",
			d: ifNot, f: ImageFacts{Present: true}, pull: waiting, step: ImageReady},
		{name: "a pull failed, image present: created from what is there, failure counted",
			d: always, f: ImageFacts{Present: true, Pulled: true, PullErr: boom, Backoff: 10 * time.Second}, pull: passed,
			step: ImageReady, wantBO: third, took: true, reason: "Failed"},
		{name: "a first pull failed, image absent: back-off from the initial delay",
			d: ifNot, f: ImageFacts{Pulled: true, PullErr: boom, Backoff: 10 * time.Second},
			step: ImageBackOff, wantBO: first, took: true, reason: "Failed,BackOff",
			message: "Back-off 10s pulling image " + ref + ": manifest unknown", requeue: 10 * time.Second},
		{name: "a pull failed again: the back-off doubles",
			d: ifNot, f: ImageFacts{Pulled: true, PullErr: boom, Backoff: 10 * time.Second}, pull: passed,
			step: ImageBackOff, wantBO: third, took: true, reason: "Failed,BackOff",
			message: "Back-off 40s pulling image " + ref + ": manifest unknown", requeue: 40 * time.Second},
		{name: "in back-off, Always, image present: created from what is there",
			d: always, f: ImageFacts{Present: true}, pull: waiting, step: ImageReady, wantBO: waiting},
		{name: "in back-off, image absent: waits for the next try",
			d: ifNot, f: ImageFacts{}, pull: waiting, step: ImageBackOff, wantBO: waiting,
			message: "Back-off 20s pulling image " + ref + ": manifest unknown", requeue: 10 * time.Second},
		{name: "back-off of another image: pulls",
			d: ifNot, f: ImageFacts{}, pull: other, step: ImagePull, wantBO: other, reason: "Pulling", message: "pulling image " + ref},
		{name: "back-off passed: pulls, the back-off kept to count on from",
			d: ifNot, f: ImageFacts{}, pull: passed, step: ImagePull, wantBO: passed, reason: "Pulling", message: "pulling image " + ref},
		{name: "Always, image present, no back-off: pulls",
			d: always, f: ImageFacts{Present: true}, step: ImagePull, reason: "Pulling", message: "pulling image " + ref},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := model.History{Pull: tc.pull}
			f := tc.f
			got := decideImage(tc.d, Observed{Image: &f}, h, t0)
			if got.Step != tc.step || got.ImageID != tc.image || got.Took != tc.took || got.DropPin != tc.drop ||
				got.RequeueAfter != tc.requeue || !reflect.DeepEqual(got.Pull, tc.wantBO) {
				t.Fatalf("got %s image=%q took=%v drop=%v requeue=%s pull=%+v;\nwant %s image=%q took=%v drop=%v requeue=%s pull=%+v",
					got.Step, got.ImageID, got.Took, got.DropPin, got.RequeueAfter, got.Pull,
					tc.step, tc.image, tc.took, tc.drop, tc.requeue, tc.wantBO)
			}
			reason, message := "", got.Message
			if got.Failure != nil {
				reason, message = got.Failure.Reason, got.Failure.Message
			} else {
				var rs []string
				for _, n := range got.Events {
					rs = append(rs, n.Reason)
				}
				reason = strings.Join(rs, ",")
			}
			if reason != tc.reason || message != tc.message {
				t.Errorf("reason %q, message %q; want %q, %q", reason, message, tc.reason, tc.message)
			}
			if got.Why == "" && got.Step != ImageFail {
				t.Error("no reason text for the log")
			}
		})
	}
}

// TestDecideWithImage: once the image is observed, decide's create is what
// the image allows, and a create the image rules out is reported like any
// failed create (a start-first replacement's too, old container kept).
func TestDecideWithImage(t *testing.T) {
	never := testSpec(spec.RestartAlways, func(c *spec.ContainerSpec) { c.ImagePullPolicy = spec.PullNever })
	ifNot := testSpec(spec.RestartAlways)

	if a := decide(ifNot, Observed{}, model.History{}, t0); a.Kind != ActCreate || a.Image != nil {
		t.Fatalf("before the image is observed: %v, image %+v", a.Kind, a.Image)
	}
	a := decide(never, Observed{Image: &ImageFacts{}}, model.History{}, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseError || a.Failed == nil || a.Failed.Reason != "ErrImageNeverPull" {
		t.Fatalf("Never, image absent: %+v", a)
	}
	a = decide(ifNot, Observed{Image: &ImageFacts{}}, model.History{}, t0)
	if a.Kind != ActCreate || a.Image == nil || a.Image.Step != ImagePull || a.Phase != model.PhasePending ||
		a.Message != "pulling image reconciler/box:latest" {
		t.Fatalf("image absent: %+v", a)
	}
	bo := &model.PullBackoff{Image: "reconciler/box:latest", Failures: 1, Delay: time.Minute, NextTryAt: t0.Add(time.Minute), Message: "x"}
	a = decide(ifNot, Observed{Image: &ImageFacts{}}, model.History{SpecHash: ifNot.generation(), Pull: bo}, t0)
	if a.Kind != ActCreate || a.Phase != model.PhaseImagePullBackOff || a.RequeueAfter != time.Minute || a.History.Pull != bo {
		t.Fatalf("in back-off: %+v", a)
	}
	a = decide(ifNot, Observed{Image: &ImageFacts{Present: true}}, model.History{SpecHash: ifNot.generation(), Pull: bo}, t0)
	if a.Kind != ActCreate || a.Phase != model.PhasePending || a.History.Pull != nil {
		t.Fatalf("image present: %+v", a)
	}
	pinned := ifNot
	pinned.ImageID = "sha256:gone"
	a = decide(pinned, Observed{Image: &ImageFacts{PinGone: "gone", Present: true}},
		model.History{SpecHash: ifNot.generation(), Image: &model.ImageUpdate{Image: "reconciler/box:latest", ImageID: "sha256:gone"}}, t0)
	if a.Kind != ActCreate || !a.Image.DropPin || a.History.Image != nil {
		t.Fatalf("pinned image gone: %+v", a)
	}

	// A start-first replacement the image rules out: the old container runs on.
	sf := testSpec(spec.RestartAlways, startFirst(0), func(c *spec.ContainerSpec) { c.ImagePullPolicy = spec.PullNever })
	old := ctr(testSpec(spec.RestartAlways), "running")
	if a := decide(sf, Observed{Container: old}, model.History{}, t0); a.Kind != ActCreateNext {
		t.Fatalf("start-first replacement: %v", a.Kind)
	}
	a = decide(sf, Observed{Container: old, Image: &ImageFacts{}}, model.History{}, t0)
	if a.Kind != ActNone || a.Phase != model.PhaseRunning || a.Failed == nil || a.Failed.Reason != "ErrImageNeverPull" ||
		!strings.Contains(a.Message, "the old container keeps running") {
		t.Fatalf("start-first, Never, image absent: %+v", a)
	}
}

// TestDecideEventTexts: decide says which events record an action, with
// their texts; apply records them as they are.
func TestDecideEventTexts(t *testing.T) {
	d := testSpec(spec.RestartOnFailure)
	never := testSpec(spec.RestartNever)
	crashed := func(d Desired, code int) Action {
		return decide(d, Observed{Container: ctr(d, "exited", exited(code, time.Second))}, model.History{SpecHash: d.generation(), Attempts: 1, NextTryAt: t0}, t0)
	}
	for _, tc := range []struct {
		name string
		a    Action
		want string // reason: message, joined by " | "
	}{
		{"a crash restarted after a back-off", crashed(d, 1),
			"Error: Container c1 exited with code 1 (Error) after 1s | BackOff: Back-off 1s restarting failed container"},
		{"a run that completed", crashed(never, 0), "Completed: Container c1 exited with code 0 (Completed) after 1s"},
		{"a failed run not restarted", crashed(never, 2), "Error: Container c1 exited with code 2 (Error) after 1s"},
		{"a stop", decide(d, Observed{Container: ctr(d, "running", func(c *docker.Container) { c.Health = "unhealthy" })}, model.History{}, t0),
			"Killing: Stopping container c1 (container is unhealthy) with grace period 10s"},
		{"a stray", decide(d, Observed{Strays: []docker.Container{{ID: "c2", Name: "x"}}}, model.History{}, t0),
			"StrayRemoved: Removing stray container c2"},
		{"nothing to do", decide(d, Observed{Container: ctr(d, "running")}, model.History{SpecHash: d.generation()}, t0), ""},
	} {
		var got []string
		for _, n := range tc.a.Events {
			got = append(got, n.Reason+": "+n.Message)
		}
		if s := strings.Join(got, " | "); s != tc.want {
			t.Errorf("%s (%v): events %q, want %q", tc.name, tc.a.Kind, s, tc.want)
		}
	}
}
