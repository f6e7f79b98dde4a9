package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeJSON reads the body of an API request: one spec object or an array
// of them. It is exactly as strict as Decode (unknown fields, wrong types
// and duplicate fields are errors with their field path and line), and
// defaults and validates the same way.
func DecodeJSON(data []byte) ([]*Spec, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{Msg: fmt.Sprintf("body is %d bytes, more than the %d-byte limit", len(data), MaxFileSize)}}
	}
	docs, ferr := parseJSON(data)
	if ferr != nil {
		return nil, ErrorList{ferr}
	}
	return decodeDocs("", docs)
}

// parseJSON turns JSON into yaml nodes, so that both formats share one
// strict decoder; encoding/json would lose field paths of unknown fields
// and duplicate keys. The shape limits (MaxItems, MaxNodes) are checked as
// the nodes are built, so an oversized body never becomes a tree.
func parseJSON(data []byte) ([]*yaml.Node, *FieldError) {
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(data)), data: data, lineNo: 1}
	p.dec.UseNumber()
	root, err := p.document(0)
	if err != nil {
		return nil, err
	}
	if _, terr := p.dec.Token(); !errors.Is(terr, io.EOF) {
		return nil, &FieldError{Line: p.line(), Msg: "invalid JSON: data after the top-level value"}
	}
	switch root.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{root}, nil
	case yaml.SequenceNode:
		if len(root.Content) > MaxDocuments {
			return nil, &FieldError{Line: root.Content[MaxDocuments].Line, Msg: fmt.Sprintf("more than %d specs", MaxDocuments)}
		}
		return root.Content, nil
	}
	return nil, &FieldError{Line: root.Line, Msg: "expected a spec object or an array of them"}
}

type jsonParser struct {
	dec   *json.Decoder
	data  []byte
	shape shape
	// The line of offset lineOff is lineNo: tokens come in order, so lines
	// are counted once, as the parser moves on.
	lineOff, lineNo int
}

// next is the offset of the next token.
func (p *jsonParser) next() int { return p.skip(int(p.dec.InputOffset()), " \t\r\n,:") }

// skip is the offset of the first byte from off on that is not in set.
func (p *jsonParser) skip(off int, set string) int {
	for off < len(p.data) && strings.IndexByte(set, p.data[off]) >= 0 {
		off++
	}
	return off
}

// line is the line of the next token.
func (p *jsonParser) line() int { return p.lineAt(p.next()) }

func (p *jsonParser) lineAt(off int) int {
	off = max(0, min(off, len(p.data)))
	if off < p.lineOff {
		p.lineOff, p.lineNo = 0, 1
	}
	p.lineNo += bytes.Count(p.data[p.lineOff:off], []byte{'\n'})
	p.lineOff = off
	return p.lineNo
}

func (p *jsonParser) fail(err error) *FieldError {
	var se *json.SyntaxError
	line := 0
	if errors.As(err, &se) {
		// Token's SyntaxError.Offset is where the token that failed began:
		// the bad byte is the first one after it that is not white space
		// (a newline before it must not count).
		line = p.lineAt(p.skip(int(se.Offset), " \t\r\n"))
	} else {
		line = p.line()
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &FieldError{Line: line, Msg: "invalid JSON: " + err.Error()}
}

func (p *jsonParser) value(depth int) (*yaml.Node, *FieldError) {
	line := p.line()
	if depth > maxDepth {
		return nil, &FieldError{Line: line, Path: p.shape.path(), Msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	if ferr := p.shape.node(line); ferr != nil {
		return nil, ferr
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
		if t == '[' {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for i := 0; p.dec.More(); i++ {
			if i == MaxItems {
				return nil, p.tooMany(n, i)
			}
			if n.Kind == yaml.MappingNode {
				kline := p.line()
				k, err := p.dec.Token()
				if err != nil {
					return nil, p.fail(err)
				}
				if ferr := p.shape.node(kline); ferr != nil {
					return nil, ferr
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string), Line: kline})
				p.shape.pushKey(k.(string))
			} else {
				p.shape.pushIndex(i)
			}
			next := p.value
			if depth == 0 && n.Kind == yaml.SequenceNode {
				next = p.document
			}
			v, ferr := next(depth + 1)
			p.shape.pop()
			if ferr != nil {
				return nil, ferr
			}
			n.Content = append(n.Content, v)
		}
		if _, err := p.dec.Token(); err != nil {
			return nil, p.fail(err)
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: t, Line: line}, nil
	case json.Number:
		tag := "!!int"
		if bytes.ContainsAny([]byte(t), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t), Line: line}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t), Line: line}, nil
	default: // nil
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: line}, nil
	}
}

// document reads a value that may be a spec (the body, or an item of the
// top-level array) and holds it to MaxDocumentSize, as a YAML document is.
func (p *jsonParser) document(depth int) (*yaml.Node, *FieldError) {
	start := p.next()
	line := p.lineAt(start)
	n, ferr := p.value(depth)
	if ferr != nil {
		return nil, ferr
	}
	if size := int(p.dec.InputOffset()) - start; size > MaxDocumentSize && n.Kind == yaml.MappingNode {
		return nil, &FieldError{Line: line, Path: p.shape.path(),
			Msg: fmt.Sprintf("a document is %d bytes, more than the %d-byte limit for one spec", size, MaxDocumentSize)}
	}
	return n, nil
}

// tooMany counts the rest of a list or mapping that passed MaxItems,
// without keeping any of it, to say how long it is.
func (p *jsonParser) tooMany(n *yaml.Node, seen int) *FieldError {
	count := seen
	for ; p.dec.More(); count++ {
		if n.Kind == yaml.MappingNode {
			if _, err := p.dec.Token(); err != nil {
				return p.fail(err)
			}
		}
		var skip json.RawMessage
		if err := p.dec.Decode(&skip); err != nil {
			return p.fail(err)
		}
	}
	return p.shape.items(n, count)
}
