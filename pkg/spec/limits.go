package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Shape limits. Decoding holds a node tree of the input (yaml.v3 builds
// about 170 bytes per value, and the line of every field path is kept for
// error messages), so what bounds memory is the number of values, not the
// number of bytes: 1 MiB of "[a,a,a,...]" is half a million values. No
// honest spec comes near these; a real one has a few dozen values, a large
// one a few hundred.
const (
	// MaxItems bounds the items of one list (args, env, mounts...) and the
	// entries of one mapping (labels, options).
	MaxItems = 1024
	// MaxNodes bounds the values (every scalar, list, mapping and field
	// name) of one file or request body, all its documents together.
	MaxNodes = 1 << 15
	// MaxDocumentSize bounds the bytes of one YAML document. yaml.v3 builds
	// a document's whole tree before the limits above can look at it, so
	// this is what keeps that tree small (at worst about 6 MiB).
	MaxDocumentSize = 64 << 10
)

// shape counts the values of one file as a parser meets them and checks the
// limits. It keeps the path to the value being read as a stack, so that
// the field path is only written out for an error.
type shape struct {
	nodes int
	steps []step
}

// step is a mapping key or, when key is empty, a list index.
type step struct {
	key   string
	index int
	isKey bool
}

func (s *shape) pushKey(k string) { s.steps = append(s.steps, step{key: k, isKey: true}) }
func (s *shape) pushIndex(i int)  { s.steps = append(s.steps, step{index: i}) }
func (s *shape) pop()             { s.steps = s.steps[:len(s.steps)-1] }

func (s *shape) path() string {
	p := ""
	for _, st := range s.steps {
		if st.isKey {
			p = keyPath(p, st.key)
		} else {
			p += "[" + strconv.Itoa(st.index) + "]"
		}
	}
	return p
}

// node charges one value.
func (s *shape) node(line int) *FieldError {
	s.nodes++
	if s.nodes > MaxNodes {
		return &FieldError{Line: line, Path: s.path(), Msg: fmt.Sprintf("more than %d values in one file or body, the limit", MaxNodes)}
	}
	return nil
}

// items checks the length of the list or mapping at the current path.
func (s *shape) items(n *yaml.Node, count int) *FieldError {
	if count <= MaxItems {
		return nil
	}
	what := "items"
	if n.Kind == yaml.MappingNode {
		what = "entries"
	}
	return &FieldError{Line: n.Line, Path: s.path(), Msg: fmt.Sprintf("%d %s, more than the %d limit", count, what, MaxItems)}
}

// walk checks a document yaml.v3 has parsed: depth, list lengths and the
// file's value count. Aliases are not followed; the decoder bounds what
// they expand to.
func (s *shape) walk(n *yaml.Node, depth int) *FieldError {
	if depth > maxDepth {
		return &FieldError{Line: n.Line, Path: s.path(), Msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	if err := s.node(n.Line); err != nil {
		return err
	}
	switch n.Kind {
	case yaml.SequenceNode:
		if err := s.items(n, len(n.Content)); err != nil {
			return err
		}
		for i, c := range n.Content {
			s.pushIndex(i)
			err := s.walk(c, depth+1)
			s.pop()
			if err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		if err := s.items(n, len(n.Content)/2); err != nil {
			return err
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := s.walk(k, depth+1); err != nil {
				return err
			}
			s.pushKey(k.Value)
			err := s.walk(v, depth+1)
			s.pop()
			if err != nil {
				return err
			}
		}
	default:
		for _, c := range n.Content { // a document node
			if err := s.walk(c, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// readAhead is what yaml.v3 may have read past the end of a document when
// it returns it: its raw and decoded input buffers.
const readAhead = 4 << 10

var errDocumentSize = errors.New("document too large")

// docReader feeds yaml.v3 and stops it once the current document has taken
// more than MaxDocumentSize bytes (plus the parser's read-ahead, so that a
// document just under the limit is never refused).
type docReader struct {
	data     []byte
	off      int
	docStart int
	refused  bool
}

func (r *docReader) Read(p []byte) (int, error) {
	if r.off-r.docStart > MaxDocumentSize+readAhead {
		r.refused = true
		return 0, errDocumentSize
	}
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// nextDocument marks the end of a document.
func (r *docReader) nextDocument() { r.docStart = r.off }

// tooLarge is the error for a document refused for its size, nil when
// the reader refused nothing.
func (r *docReader) tooLarge() *FieldError {
	if !r.refused {
		return nil
	}
	line := bytes.Count(r.data[:r.off], []byte{'\n'}) + 1
	return &FieldError{Line: line, Msg: fmt.Sprintf("a document is more than %d bytes, the limit for one spec (reached by this line)", MaxDocumentSize)}
}
