package output

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/docker/docker/pkg/stdcopy"
)

// demux splits the daemon's multiplexed stream into lines, each with its
// stream and time, in the order the daemon sent them, and hands them to w.
func demux(src io.Reader, w *segmentWriter) error {
	out := &frameWriter{stream: Stdout, w: w}
	errw := &frameWriter{stream: Stderr, w: w}
	if _, err := stdcopy.StdCopy(out, errw, src); err != nil {
		return err
	}
	if err := out.flush(); err != nil {
		return err
	}
	return errw.flush()
}

// frameWriter cuts one stream into lines. stdcopy writes one frame at a
// time, and the daemon sends each log message (a line, or a piece of a
// long line) as one frame that begins with its time: a line keeps the time
// of its first piece.
type frameWriter struct {
	stream string
	w      *segmentWriter
	buf    []byte
	at     time.Time // of the line in buf
}

func (f *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	if ts, text, ok := bytes.Cut(p, []byte{' '}); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			if len(f.buf) == 0 {
				f.at = t
			}
			p = text
		}
	}
	f.buf = append(f.buf, p...)
	rest := f.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 && len(rest) < MaxLine {
			break
		}
		cut, skip := i, 1
		if i < 0 || i > MaxLine {
			cut, skip = MaxLine, 0
			for cut > MaxLine-utf8.UTFMax && !utf8.RuneStart(rest[cut]) {
				cut--
			}
		}
		if err := f.w.line(f.at, f.stream, rest[:cut], int64(cut+skip)); err != nil {
			return 0, err
		}
		rest = rest[cut+skip:]
	}
	f.buf = append(f.buf[:0], rest...)
	return n, nil
}

// flush saves a last line that had no newline.
func (f *frameWriter) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	err := f.w.line(f.at, f.stream, f.buf, int64(len(f.buf)))
	f.buf = f.buf[:0]
	return err
}

// segmentWriter writes lines into gzip segments of segBytes of output
// each, keeping the newest segments that fit the run's budget.
type segmentWriter struct {
	dir      string
	segBytes int64

	segs []segment // closed, oldest first
	cur  *segment
	f    *os.File
	bw   *bufio.Writer
	zw   *gzip.Writer
	next int

	lines, bytes               int64
	droppedLines, droppedBytes int64
	// firstKept is the time of the first line kept after a drop.
	firstKept time.Time
}

type segment struct {
	path         string
	lines, bytes int64
	first        time.Time
}

func (w *segmentWriter) line(at time.Time, stream string, text []byte, size int64) error {
	if w.cur != nil && w.cur.bytes > 0 && w.cur.bytes+size > w.segBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if w.cur == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.cur.lines == 0 {
		w.cur.first = at
	}
	w.cur.lines++
	w.cur.bytes += size
	w.lines++
	w.bytes += size
	return writeLine(w.zw, at, stream, text)
}

func writeLine(zw io.Writer, at time.Time, stream string, text []byte) error {
	var b []byte
	b = at.UTC().AppendFormat(b, lineFmt)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	_, err := zw.Write(b)
	return err
}

func (w *segmentWriter) open() error {
	p := filepath.Join(w.dir, fmt.Sprintf("seg-%06d.gz", w.next))
	w.next++
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w.f, w.bw = f, bufio.NewWriterSize(f, 64<<10)
	w.zw = gzip.NewWriter(w.bw)
	w.cur = &segment{path: p}
	return nil
}

// rotate closes the current segment and, when the closed ones and a new
// one could exceed the budget, drops the oldest.
func (w *segmentWriter) rotate() error {
	if err := w.closeCur(); err != nil {
		return err
	}
	if len(w.segs) >= segments {
		old := w.segs[0]
		w.segs = w.segs[1:]
		w.droppedLines += old.lines
		w.droppedBytes += old.bytes
		w.firstKept = w.segs[0].first
		if err := os.Remove(old.path); err != nil {
			return err
		}
	}
	return nil
}

// closeCur ends the segment being written. With at most segments-1
// closed and one open, a run keeps at most segments segments of segBytes
// each: within MaxRunBytes.
func (w *segmentWriter) closeCur() error {
	if w.cur == nil {
		return nil
	}
	err := w.zw.Close()
	if e := w.bw.Flush(); err == nil {
		err = e
	}
	if e := w.f.Close(); err == nil {
		err = e
	}
	w.segs = append(w.segs, *w.cur)
	w.cur, w.f, w.bw, w.zw = nil, nil, nil, nil
	return err
}

func (w *segmentWriter) close() error { return w.closeCur() }

func (w *segmentWriter) result() Result {
	return Result{Lines: w.lines, Bytes: w.bytes, DroppedLines: w.droppedLines, DroppedBytes: w.droppedBytes}
}

// assemble writes the kept segments to path as one gzip file (gzip members
// concatenate into one stream), after a notice of what was dropped, and
// renames it into place: a reader sees the whole file or none.
func (w *segmentWriter) assemble(path string, maxRun int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 64<<10)
	if w.droppedBytes > 0 || len(w.segs) == 0 {
		zw := gzip.NewWriter(bw)
		if w.droppedBytes > 0 {
			err = writeLine(zw, w.firstKept, Notice, fmt.Appendf(nil,
				"output truncated: the first %d lines (%d bytes) of this run were dropped; the last %d lines (%d bytes) follow (--output-max-run-bytes %d keeps the end)",
				w.droppedLines, w.droppedBytes, w.lines-w.droppedLines, w.bytes-w.droppedBytes, maxRun))
		}
		if e := zw.Close(); err == nil {
			err = e // an empty run is an empty gzip stream
		}
	}
	for _, s := range w.segs {
		if err != nil {
			break
		}
		err = appendFile(bw, s.path)
	}
	if e := bw.Flush(); err == nil {
		err = e
	}
	if e := f.Sync(); err == nil {
		err = e
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
