//go:build docker

package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/images"
)

// TestIntegrationImageGCCalls runs the collector's calls on the local
// daemon. The only image it changes is a tag of its own on the box image,
// which it adds and removes (the box image stays: its own tag names it).
func TestIntegrationImageGCCalls(t *testing.T) {
	c := daemon(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	root, err := c.DataRoot(ctx)
	if err != nil || root == "" {
		t.Fatalf("DataRoot = %q, %v", root, err)
	}
	boxID, err := c.ImageID(ctx, images.BoxImage)
	if err != nil || boxID == "" {
		t.Fatalf("ImageID(%s) = %q, %v", images.BoxImage, boxID, err)
	}
	if id, err := c.ImageID(ctx, "reconciler-test/absent:none"); id != "" || err != nil {
		t.Errorf("ImageID of an absent image = %q, %v; want \"\" and no error", id, err)
	}

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tag := "reconciler-test/docker-gc:" + hex.EncodeToString(b)
	if err := c.api.ImageTag(ctx, images.BoxImage, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.RemoveImage(context.Background(), tag) })
	list, err := c.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(im ImageInfo) bool { return im.ID == boxID })
	if i < 0 || !slices.Contains(list[i].Tags, tag) || !slices.Contains(list[i].Tags, images.BoxImage) ||
		list[i].Size <= 0 || list[i].Created.IsZero() {
		t.Fatalf("the box image in the list: %+v", list[max(i, 0)])
	}

	tc := create(t, c, boxSpec("sleep"), nil)
	cs, err := c.ContainerImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if j := slices.IndexFunc(cs, func(ci ContainerImage) bool { return ci.ID == tc.id }); j < 0 || cs[j].ImageID != boxID ||
		cs[j].Labels[runLabel] != tc.run {
		t.Errorf("the test's container among %d: want image %s and its labels", len(cs), boxID)
	}

	if err := c.RemoveImage(ctx, tag); err != nil {
		t.Fatalf("removing the extra tag: %v", err)
	}
	if id, _ := c.ImageID(ctx, tag); id != "" {
		t.Errorf("tag %s still names %s", tag, id)
	}
	if id, _ := c.ImageID(ctx, images.BoxImage); id != boxID {
		t.Errorf("the box image went with the extra tag")
	}
}
