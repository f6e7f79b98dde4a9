package model

import "time"

// ImageUpdate is an autoUpdate spec's image: which image ID its container
// must run, and, while a new image is on trial, the image to go back to.
// It is a persisted fact so that the decision "which image" is made once
// (when the registry's digest changes, or when a trial fails) and the
// container is replaced because it runs another image, whatever replaces
// it and whenever the agent restarts.
type ImageUpdate struct {
	// Image is the spec's reference this is about; another reference
	// starts afresh.
	Image string `json:"image"`
	// ImageID is the image the container must run; Digest its digest on
	// the registry ("" when the registry never gave one).
	ImageID string `json:"imageID"`
	Digest  string `json:"digest,omitempty"`
	// PreviousID and PreviousDigest are the image before an update, kept
	// (tagged KeepTag) until the new one has run for rollbackAfter.
	PreviousID     string `json:"previousID,omitempty"`
	PreviousDigest string `json:"previousDigest,omitempty"`
	// KeepTag is the tag that keeps the image to roll back to, or the
	// image rolled back to, in the daemon's store.
	KeepTag string `json:"keepTag,omitempty"`
	// TrialSince is when a container of the new image was first seen.
	TrialSince time.Time `json:"trialSince,omitempty"`
	// BadDigest is a digest that was rolled back: it is not tried again
	// until the registry names another.
	BadDigest string `json:"badDigest,omitempty"`
}

// OnTrial reports an update whose rollback window is still open.
func (u *ImageUpdate) OnTrial() bool { return u != nil && u.PreviousID != "" }
