package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/store"
)

// The store's and the Docker layer's errors are one set of kinds, mapped
// to status codes in one place.
func TestStatusOfSharedKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("spec %q: %w", "web", store.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("inspect container c1: %w", docker.ErrNotFound), http.StatusNotFound},
		{errdefs.ErrNotFound.WithMessage("No such container: c1"), http.StatusNotFound},
		{fmt.Errorf("spec %q is managed by file x: %w", "web", store.ErrConflict), http.StatusConflict},
		{fmt.Errorf("create: %w", docker.ErrConflict), http.StatusConflict},
		{fmt.Errorf("list containers: %w", docker.ErrUnavailable), http.StatusServiceUnavailable},
		{fmt.Errorf("web: no output to show: %w", errdefs.ErrNotImplemented), http.StatusNotImplemented},
		{errors.New("boom"), http.StatusInternalServerError},
	} {
		if got := api.StatusOf(tc.err); got != tc.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
