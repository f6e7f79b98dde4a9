package docker

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A followed stream is closed when its caller leaves, while it waits for
// output that does not come.
func TestCloseOnDone(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := closeOnDone(ctx, pr)
	defer rc.Close()
	go func() { _, _ = pw.Write([]byte("line\n")) }()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(rc, buf[:5]); err != nil || string(buf[:5]) != "line\n" {
		t.Fatalf("read %q, %v; want the line written", buf[:5], err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := rc.Read(buf) // nothing more comes
		got <- err
	}()
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("read after the caller left: %v, want a closed stream", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was still open 5s after its caller left")
	}
}
