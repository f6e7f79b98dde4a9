package output

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Line is one saved line of output.
type Line struct {
	Time   time.Time
	Stream string // Stdout, Stderr or Notice
	Text   string
}

// Reader reads a saved run line by line.
type Reader struct {
	f  *os.File
	zr *gzip.Reader
	sc *bufio.Scanner
}

func newReader(f *os.File, zr *gzip.Reader) *Reader {
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine+256)
	return &Reader{f: f, zr: zr, sc: sc}
}

// Next returns the next line; io.EOF after the last.
func (r *Reader) Next() (Line, error) {
	if !r.sc.Scan() {
		if err := r.sc.Err(); err != nil {
			return Line{}, err
		}
		return Line{}, io.EOF
	}
	return parseLine(r.sc.Text())
}

func parseLine(s string) (Line, error) {
	ts, rest, ok1 := strings.Cut(s, " ")
	stream, text, ok2 := strings.Cut(rest, " ")
	if !ok1 {
		return Line{}, fmt.Errorf("saved output: malformed line %.40q", s)
	}
	if !ok2 {
		stream, text = rest, "" // an empty line
	}
	t, err := time.Parse(lineFmt, ts)
	if err != nil {
		return Line{}, fmt.Errorf("saved output: malformed time in line %.40q", s)
	}
	return Line{Time: t, Stream: stream, Text: text}, nil
}

// Close releases the file.
func (r *Reader) Close() error {
	return errors.Join(r.zr.Close(), r.f.Close())
}
