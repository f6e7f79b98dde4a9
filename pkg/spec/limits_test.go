package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// argsDoc is a spec document with n args; it has 15+n values.
func argsDoc(name string, n int) string {
	return fmt.Sprintf("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: %s}\nspec:\n  image: x\n  args: [%s]\n",
		name, strings.TrimSuffix(strings.Repeat("a,", n), ","))
}

// argsJSON is argsDoc as a JSON object.
func argsJSON(name string, n int) map[string]any {
	return map[string]any{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"image": "x", "args": make([]string, n)}}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantLimitError checks that err is one FieldError reading want.
func wantLimitError(t *testing.T, err error, want string) {
	t.Helper()
	list, ok := err.(ErrorList)
	if !ok || len(list) != 1 {
		t.Fatalf("got %v, want one error %q", err, want)
	}
	if got := list[0].Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestListLengthLimit(t *testing.T) {
	// Just under: MaxItems args, in both formats.
	if specs, err := Decode("ok.yaml", []byte(argsDoc("a", MaxItems))); err != nil || len(specs[0].Spec.Args) != MaxItems {
		t.Fatalf("a list of %d items: %v", MaxItems, err)
	}
	if specs, err := DecodeJSON(mustJSON(t, argsJSON("a", MaxItems))); err != nil || len(specs[0].Spec.Args) != MaxItems {
		t.Fatalf("a JSON list of %d items: %v", MaxItems, err)
	}
	// Just over.
	_, err := Decode("big.yaml", []byte(argsDoc("a", MaxItems+1)))
	wantLimitError(t, err, "big.yaml:6: spec.args: 1025 items, more than the 1024 limit")
	// A long one in JSON is counted, not kept; its line is where the list
	// starts (MarshalIndent puts "args" on line 8).
	_, err = DecodeJSON(mustJSON(t, argsJSON("a", 100001)))
	wantLimitError(t, err, "line 8: spec.args: 100001 items, more than the 1024 limit")
}

func TestMappingEntriesLimit(t *testing.T) {
	labels := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "    k%d: v\n", i)
		}
		return "apiVersion: reconciler/v1\nkind: Container\nmetadata:\n  name: a\n  labels:\n" + b.String() + "spec: {image: x}\n"
	}
	if specs, err := Decode("ok.yaml", []byte(labels(MaxItems))); err != nil || len(specs[0].Metadata.Labels) != MaxItems {
		t.Fatalf("%d labels: %v", MaxItems, err)
	}
	_, err := Decode("big.yaml", []byte(labels(MaxItems+1)))
	wantLimitError(t, err, "big.yaml:6: metadata.labels: 1025 entries, more than the 1024 limit")
}

func TestNodeLimit(t *testing.T) {
	// 32 documents of 15+1009 values are MaxNodes values.
	const docs, args = 32, 1009
	if docs*(15+args) != MaxNodes {
		t.Fatal("the test's arithmetic no longer matches MaxNodes")
	}
	var b strings.Builder
	for i := range docs {
		b.WriteString("---\n" + argsDoc(fmt.Sprintf("s%d", i), args))
	}
	specs, err := Decode("ok.yaml", []byte(b.String()))
	if err != nil || len(specs) != docs {
		t.Fatalf("%d values: %v", MaxNodes, err)
	}
	_, err = Decode("big.yaml", []byte(b.String()+"---\n"+argsDoc("one-more", 0)))
	wantLimitError(t, err, "big.yaml:226: more than 32768 values in one file or body, the limit")

	// The same in a JSON array, which is one value more: the first spec
	// has one arg fewer.
	arr := make([]any, docs)
	for i := range arr {
		arr[i] = argsJSON(fmt.Sprintf("s%d", i), args)
	}
	arr[0] = argsJSON("s0", args-1)
	if specs, err := DecodeJSON(mustJSON(t, arr)); err != nil || len(specs) != docs {
		t.Fatalf("%d JSON values: %v", MaxNodes, err)
	}
	arr = append(arr, map[string]any{})
	_, err = DecodeJSON(mustJSON(t, arr))
	// MarshalIndent writes a spec of n args on 12+n lines, after the "[".
	line := 1 + (12 + args - 1) + (docs-1)*(12+args) + 1
	wantLimitError(t, err, fmt.Sprintf("line %d: [32]: more than 32768 values in one file or body, the limit", line))
}

func TestDocumentSizeLimit(t *testing.T) {
	// A document of exactly MaxDocumentSize bytes, padded by one long
	// argument, twice in a file: the second is read after the parser has
	// read ahead into it.
	doc := func(name string, size int) string {
		d := argsDoc(name, 1)
		return strings.Replace(d, "[a]", "["+strings.Repeat("a", size-len(d)+1)+"]", 1)
	}
	one := doc("a", MaxDocumentSize)
	if len(one) != MaxDocumentSize {
		t.Fatalf("doc is %d bytes", len(one))
	}
	specs, err := Decode("ok.yaml", []byte(one+"---\n"+doc("b", MaxDocumentSize-4)))
	if err != nil || len(specs) != 2 {
		t.Fatalf("two documents of %d bytes: %v", MaxDocumentSize, err)
	}
	// Over: past the parser's read-ahead too.
	_, err = Decode("big.yaml", []byte(doc("a", MaxDocumentSize+2*readAhead)))
	wantLimitError(t, err, "big.yaml:6: a document is more than 65536 bytes, the limit for one spec (reached by this line)")

	// JSON holds each spec to the same size, exactly.
	compact := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valueSpec := func(name string, size int) map[string]any {
		s := argsJSON(name, 0)
		s["spec"].(map[string]any)["env"] = []map[string]string{{"name": "PAD", "value": ""}}
		over := size - len(compact(s))
		s["spec"].(map[string]any)["env"] = []map[string]string{{"name": "PAD", "value": strings.Repeat("x", over)}}
		return s
	}
	if _, err := DecodeJSON(compact(valueSpec("a", MaxDocumentSize))); err != nil {
		t.Fatalf("a JSON spec of %d bytes: %v", MaxDocumentSize, err)
	}
	if _, err := DecodeJSON(compact([]any{valueSpec("a", MaxDocumentSize), valueSpec("b", MaxDocumentSize)})); err != nil {
		t.Fatalf("two JSON specs of %d bytes: %v", MaxDocumentSize, err)
	}
	_, err = DecodeJSON(compact([]any{valueSpec("a", 1000), valueSpec("b", MaxDocumentSize+1)}))
	wantLimitError(t, err, "line 1: [1]: a document is 65537 bytes, more than the 65536-byte limit for one spec")
}

// The items of a list of scalars keep their own lines (held compactly
// under the list's path).
func TestScalarItemLines(t *testing.T) {
	doc := "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\nspec:\n  image: x\n  capAdd:\n    - NET_ADMIN\n    - NET_WIZARD\n  devices: [/dev/fuse, dev/x]\n"
	_, err := Decode("lines.yaml", []byte(doc))
	got := err.Error()
	for _, want := range []string{
		`lines.yaml:8: spec.capAdd[1]: "NET_WIZARD" is not a Linux capability`,
		`lines.yaml:9: spec.devices[1]: "dev/x": the host path must be absolute`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors\n%s\nlack %q", got, want)
		}
	}
}

// The reader refuses a document only once it is past MaxDocumentSize and
// the parser's read-ahead: at exactly that many bytes into one it reads on.
func TestDocReaderRefusesOnlyPastTheLimit(t *testing.T) {
	limit := MaxDocumentSize + readAhead
	r := &docReader{data: make([]byte, limit+10), off: limit}
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil || r.refused {
		t.Fatalf("%d bytes into a document: read %d, %v, refused %v; want one more byte", limit, n, err, r.refused)
	}
	if _, err := r.Read(make([]byte, 1)); err != errDocumentSize || !r.refused {
		t.Fatalf("%d bytes into a document: %v, want the size error", limit+1, err)
	}
	r.nextDocument()
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("the next document: read %d, %v", n, err)
	}
}
