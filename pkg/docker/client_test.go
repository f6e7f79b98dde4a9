package docker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

func TestNewWithoutDaemon(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var observed []string
	_, err := New(ctx, Options{Host: host, Observe: func(op string, _ time.Duration, err error) {
		observed = append(observed, fmt.Sprintf("%s:%v", op, err != nil))
	}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want one wrapping ErrUnavailable", err)
	}
	for _, part := range []string{"cannot reach the Docker daemon at " + host, "no such file or directory", "(is dockerd running?)"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	eq(t, "observed", observed, []string{"ping:true"})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{cerrdefs.ErrNotFound.WithMessage("No such container: x"), ErrNotFound},
		{cerrdefs.ErrConflict.WithMessage(`name "/web" is already in use`), ErrConflict},
		{cerrdefs.ErrUnavailable, ErrUnavailable},
	}
	for _, tt := range tests {
		got := classify(fmt.Errorf("daemon: %w", tt.err))
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("classify(%v) = %v: want it to wrap both %v and the original", tt.err, got, tt.want)
		}
		if got.Error() != "daemon: "+tt.err.Error() {
			t.Errorf("classify changed the message to %q", got)
		}
	}
	if plain := errors.New("boom"); classify(plain) != plain {
		t.Error("classify changed an unknown error")
	}
}
