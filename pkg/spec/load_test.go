package spec

import (
	"io"
	"strings"
	"testing"
)

// endless never ends: ReadLimited must stop at the limit on its own.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '#'
	}
	return len(p), nil
}

func TestReadLimited(t *testing.T) {
	data, err := ReadLimited("ok.yaml", strings.NewReader(strings.Repeat("#", MaxFileSize)))
	if err != nil || len(data) != MaxFileSize {
		t.Fatalf("a file of exactly the limit: %d bytes, %v", len(data), err)
	}
	_, err = ReadLimited("huge.yaml", io.Reader(endless{}))
	if err == nil || !strings.Contains(err.Error(), "huge.yaml") || !strings.Contains(err.Error(), "1048576-byte limit") {
		t.Fatalf("an endless file: %v, want an error naming it and the limit", err)
	}
}
