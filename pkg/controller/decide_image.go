package controller

import (
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// ImageFacts is what the daemon and the pull pool show of the image a
// create needs. It costs an image inspect, so it is observed only once
// decide asks for a create (observeImage), not on every reconcile: a
// no-op pass over many specs makes no image call.
type ImageFacts struct {
	// Pinned is the image ID an autoUpdate spec must run (Desired.ImageID),
	// found in the daemon: the create uses it and no registry is asked.
	Pinned string
	// PinGone says why the pinned image could not be found: it was removed
	// by hand, and the create takes the reference instead.
	PinGone string
	// Present says the spec's image reference is in the daemon's store;
	// InspectErr says why that could not be told.
	Present    bool
	InspectErr string
	// Pulled says a pull of the reference for this spec ended since its
	// result was last recorded; PullErr is how it failed, nil when it did
	// not. The pool keeps the result until apply records it.
	Pulled  bool
	PullErr error
	// Backoff is the delay after a first failed pull (Options.PullBackoff).
	Backoff time.Duration
}

// ImageStep is what a create does about its image.
type ImageStep int

const (
	ImageReady   ImageStep = iota // create now, from ImageDecision.ImageID or the reference
	ImageFail                     // no create: Failure says why, and retrying soon will not help
	ImagePull                     // start a pull (or join one under way) and wait for its end
	ImageBackOff                  // wait for the next pull, RequeueAfter from now
)

func (s ImageStep) String() string {
	return [...]string{"Ready", "Fail", "Pull", "BackOff"}[s]
}

// Note is an event decide asks apply to record.
type Note struct {
	Type            model.EventType
	Reason, Message string
}

// ImageDecision is decideImage's answer.
type ImageDecision struct {
	Step ImageStep
	// ImageID is the image a ready create uses instead of the reference;
	// "" means the reference.
	ImageID string
	// Pull is the history's pull back-off after this step.
	Pull *model.PullBackoff
	// DropPin says the pinned image is gone: the create takes the
	// reference, and the history forgets the pin.
	DropPin bool
	Failure *Failure // ImageFail
	// Message is the spec's status while it waits (ImagePull,
	// ImageBackOff); RequeueAfter when to look again (ImageBackOff).
	Message      string
	RequeueAfter time.Duration
	// Took says the decision rests on a finished pull's result: apply
	// records it (Events, Pull) before anything else, then lets the pool
	// forget it.
	Took bool
	// Events are recorded with the step; for ImagePull, only when a new
	// pull is queued (not when one under way is joined).
	Events []Note
	// Why says in words why, for the log.
	Why string
}

// decideImage decides what a create does about its image, under the
// spec's imagePullPolicy: Never never pulls, IfNotPresent pulls when the
// image is absent, Always pulls for every create and, when the registry
// fails, runs the image it has. A failed pull puts the spec in
// ImagePullBackOff until its next try. h is the history the create would
// record. It is pure, like decide.
func decideImage(d Desired, o Observed, h model.History, now time.Time) ImageDecision {
	f := o.Image
	if f.Pinned != "" {
		return ImageDecision{Step: ImageReady, ImageID: f.Pinned, Pull: h.Pull, Why: "creating from the image autoUpdate decided on"}
	}
	var dropped ImageDecision
	if f.PinGone != "" {
		dropped = ImageDecision{DropPin: true,
			Why: fmt.Sprintf("autoUpdate: the image decided on is gone from the daemon (%s); creating from the reference", f.PinGone)}
	}
	with := func(x ImageDecision) ImageDecision {
		x.DropPin = dropped.DropPin
		x.Why = joinText(dropped.Why, x.Why)
		return x
	}
	ref, policy := d.Spec.Spec.Image, d.Spec.Spec.ImagePullPolicy
	switch {
	case f.InspectErr != "":
		return with(ImageDecision{Step: ImageFail, Pull: h.Pull,
			Failure: &Failure{Reason: "ImageUnavailable", Message: fmt.Sprintf("cannot inspect image %s: %s", ref, f.InspectErr)}})
	case f.Pulled && f.PullErr == nil:
		return with(ImageDecision{Step: ImageReady, Took: true, Why: "image pulled",
			Events: []Note{{model.EventNormal, "Pulled", fmt.Sprintf("Successfully pulled image %s", ref)}}})
	case !f.Present && policy == spec.PullNever:
		return with(ImageDecision{Step: ImageFail, Pull: h.Pull, Failure: &Failure{Reason: "ErrImageNeverPull",
			Message: fmt.Sprintf("image %s is not present and imagePullPolicy is Never", ref)}})
	case f.Present && policy != spec.PullAlways:
		return with(ImageDecision{Step: ImageReady, Why: "image present"})
	}
	backOff := func(bo *model.PullBackoff, evs ...Note) ImageDecision {
		return with(ImageDecision{Step: ImageBackOff, Pull: bo, Events: evs, RequeueAfter: bo.NextTryAt.Sub(now),
			Message: fmt.Sprintf("Back-off %s pulling image %s: %s", bo.Delay, bo.Image, bo.Message),
			Why:     "the last pull failed; waiting for the next try"})
	}
	if f.Pulled {
		bo := pullFailed(h.Pull, ref, f.PullErr, f.Backoff, now)
		failed := Note{model.EventWarning, "Failed", fmt.Sprintf("Failed to pull image %s: %v", ref, f.PullErr)}
		if f.Present {
			return with(ImageDecision{Step: ImageReady, Pull: bo, Took: true, Events: []Note{failed},
				Why: fmt.Sprintf("pull of %s failed (%v); creating from the image in store", ref, f.PullErr)})
		}
		b := backOff(bo, failed, Note{model.EventWarning, "BackOff", fmt.Sprintf("Back-off %s pulling image %s", bo.Delay, ref)})
		b.Took = true
		return b
	}
	if bo := h.Pull; bo != nil && bo.Image == ref && now.Before(bo.NextTryAt) {
		if f.Present {
			// Always, but the last pull failed: run what we have until the next try.
			return with(ImageDecision{Step: ImageReady, Pull: bo, Why: "the last pull failed; creating from the image in store until the next try"})
		}
		return backOff(bo)
	}
	return with(ImageDecision{Step: ImagePull, Pull: h.Pull, Message: fmt.Sprintf("pulling image %s", ref),
		Events: []Note{{model.EventNormal, "Pulling", fmt.Sprintf("Pulling image %s", ref)}},
		Why:    fmt.Sprintf("imagePullPolicy %s, image present: %v", policy, f.Present)})
}

// creates reports whether k makes a container, and so needs its image.
func creates(k ActionKind) bool { return k == ActCreate || k == ActCreateNext }

// withImage is decide's step for a create a, once the image is observed:
// a itself when the image is ready, else the pull or the wait it needs,
// or a failure that decide reports as one of the create.
func withImage(a Action, d Desired, o Observed, now time.Time) (Action, *Failure) {
	img := decideImage(d, o, a.History, now)
	if img.Step == ImageFail {
		return a, img.Failure
	}
	a.Image = &img
	a.History.Pull = img.Pull
	if img.DropPin {
		a.History.Image = nil
	}
	a.Why = joinText(a.Why, img.Why)
	switch img.Step {
	case ImagePull:
		a.Phase, a.Message = model.PhasePending, img.Message
	case ImageBackOff:
		a.Phase, a.Message, a.RequeueAfter = model.PhaseImagePullBackOff, img.Message, img.RequeueAfter
	}
	return a, nil
}
