package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/model"
)

// sizedFile writes a closed state file of about mb megabytes of exits.
func sizedFile(b *testing.B, mb int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.db.NoSync = true
	tail := strings.Repeat("0123456789abcdef", 512) // 8 KiB
	for i := range mb << 7 {                        // 128 exits of 8 KiB per MB
		e := exit(fmt.Sprintf("spec-%03d", i/50), fmt.Sprintf("c-%06d", i))
		e.LogTail = tail
		if _, _, err := s.Commit(Change{Exit: e}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpen10MB measures Open of a 10 MB file, page check included.
func BenchmarkOpen10MB(b *testing.B) {
	path := sizedFile(b, 10)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}

// BenchmarkCheck10MB measures the page check alone.
func BenchmarkCheck10MB(b *testing.B) {
	s, err := Open(sizedFile(b, 10), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		if err := verify(s.db, s.path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitEventFullStore measures one event commit against a store
// at its event bound, without fsync: the CPU cost retention adds.
func BenchmarkCommitEventFullStore(b *testing.B) {
	s, _ := openTest(b, Options{})
	s.db.NoSync = true
	for i := range s.opts.MaxEvents {
		mustCommit(b, s, Change{Events: []model.Event{{Spec: fmt.Sprintf("s%d", i%100), Reason: "Started", Message: fmt.Sprint(i)}}})
	}
	i := 0
	for b.Loop() {
		i++
		mustCommit(b, s, Change{Events: []model.Event{{Spec: "web", Reason: "Started", Message: fmt.Sprint(i)}}})
	}
}
