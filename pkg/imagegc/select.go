// Package imagegc removes unused images when the filesystem of the Docker
// daemon's data-root fills up, as the kubelet's image garbage collector
// does: above the high threshold (percent of that filesystem in use) it
// removes images no spec references and no container uses, least
// recently used first, until usage is below the low threshold.
//
// It owns the thresholds, the choice of images (Candidates, pure and
// table-tested), the record of when this agent's containers last used each
// image (kept in a file beside the state file) and the loop that checks
// periodically and after a container is removed.
package imagegc

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PinnedImages are references (path.Match patterns on "repo:tag") of the
// images the agent's own machinery needs, never removed: the project's
// images (reconciler/box, used by specs and tests; reconciler/egress-proxy,
// which the agent starts itself) and the previous images that autoUpdate
// keeps for a rollback that needs no registry (reconciler-rollback/<spec>,
// see controller/imageupdate.go). An image is pinned when any of its tags
// matches.
var PinnedImages = []string{"reconciler/*", "reconciler-rollback/*"}

// Thresholds are the percentages of the data-root filesystem in use above
// which collection starts (High) and below which it stops (Low). Both zero
// is off.
type Thresholds struct {
	High, Low int
}

// Enabled reports whether collection is on.
func (t Thresholds) Enabled() bool { return t.High != 0 || t.Low != 0 }

// Validate checks the thresholds as the flags give them.
func (t Thresholds) Validate() error {
	if !t.Enabled() {
		return nil
	}
	switch {
	case t.High == 0:
		return fmt.Errorf("--image-gc-low-threshold %d%% without --image-gc-high-threshold: set both (e.g. 85 and 80)", t.Low)
	case t.High < 1 || t.High > 100:
		return fmt.Errorf("--image-gc-high-threshold %d%%: give a percentage from 1 to 100", t.High)
	case t.Low < 0 || t.Low > 99:
		return fmt.Errorf("--image-gc-low-threshold %d%%: give a percentage from 0 to 99", t.Low)
	case t.Low >= t.High:
		return fmt.Errorf("--image-gc-low-threshold %d%% must be below --image-gc-high-threshold %d%%", t.Low, t.High)
	}
	return nil
}

// Percent is a flag value: a whole percentage, written "85" or "85%".
type Percent int

// Set parses "85" or "85%".
func (p *Percent) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || n < 0 || n > 100 {
		return fmt.Errorf("%q is not a percentage (a whole number from 0 to 100, e.g. 85)", s)
	}
	*p = Percent(n)
	return nil
}

func (p *Percent) String() string { return strconv.Itoa(int(*p)) }

// Type names the flag's value in help text.
func (p *Percent) Type() string { return "percent" }

// Image is one local image as the collector sees it.
type Image struct {
	ID      string
	Tags    []string
	Size    int64
	Created time.Time
	// LastUsed is the last time a container of this agent used the image;
	// zero when unknown.
	LastUsed time.Time
	// Parent: other local images were built on it, so removing it would
	// only take its tags away and free nothing.
	Parent bool
}

// used is when the image was last used, or its creation when that is
// unknown (an image nothing ever ran is as old as it is).
func (i Image) used() time.Time {
	if !i.LastUsed.IsZero() {
		return i.LastUsed
	}
	return i.Created
}

// Name is the image's first tag, or its short ID.
func (i Image) Name() string {
	if len(i.Tags) > 0 {
		return i.Tags[0]
	}
	return shortID(i.ID)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// Pinned reports whether one of the image's tags matches a pattern.
func Pinned(tags, patterns []string) bool {
	for _, t := range tags {
		for _, p := range patterns {
			if ok, _ := path.Match(p, t); ok {
				return true
			}
		}
	}
	return false
}

// Keep is the set of image IDs that must stay, each with why.
type Keep map[string]string

// Candidates returns the images that may be removed, least recently used
// first (ties by ID, so the order is stable): every image but those in
// keep (used by a container, referenced by a spec, kept for a rollback),
// those pinned and those other images were built on.
func Candidates(images []Image, keep Keep, pinned []string) []Image {
	var out []Image
	for _, img := range images {
		if _, ok := keep[img.ID]; ok || img.Parent || Pinned(img.Tags, pinned) {
			continue
		}
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b Image) int {
		if c := a.used().Compare(b.used()); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Usage is how full the data-root filesystem is, as df counts it: Used
// against what root-less writers can reach (used plus available).
type Usage struct {
	Used, Avail uint64
}

// Percent is the share in use, rounded up as df does.
func (u Usage) Percent() int {
	total := u.Used + u.Avail
	if total == 0 {
		return 0
	}
	return int((u.Used*100 + total - 1) / total)
}

// ToFree is how many bytes must go for usage to fall below low percent;
// zero when it is below already.
func (u Usage) ToFree(low int) int64 {
	total := u.Used + u.Avail
	target := total * uint64(low) / 100
	if u.Used < target {
		return 0
	}
	return int64(u.Used-target) + 1
}
