package docker

import (
	"errors"
	"io"
	"testing"
	"time"
)

// A whole read goes on while data keeps coming, longer than the deadline,
// and is cut off when the daemon stops sending for the deadline.
func TestStallReaderCutsOnlyAStall(t *testing.T) {
	const d = 100 * time.Millisecond
	pr, pw := io.Pipe()
	s := newStallReader(pr, d)
	defer s.Close()
	go func() {
		for range 6 { // 6 x 40ms: past the deadline in all, never a stall
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(d * 2 / 5)
		}
		// then silence, with the stream still open
	}()
	buf := make([]byte, 1)
	for i := range 6 {
		if _, err := s.Read(buf); err != nil {
			t.Fatalf("read %d while data flows: %v", i, err)
		}
	}
	_, err := s.Read(buf)
	var de *deadlineError
	if !errors.As(err, &de) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read after a stall: %v; want the logs deadline error", err)
	}
}
