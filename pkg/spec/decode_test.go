package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// badFiles lists, for each testdata/*.bad.yaml, errors Decode must report,
// as substrings of its ErrorList's lines.
var badFiles = map[string][]string{
	"unknown-field.bad.yaml": {
		`unknown-field.bad.yaml:7: spec.resourcs: unknown field "resourcs" (did you mean "resources"?)`,
		`unknown-field.bad.yaml:11: spec.healthcheck.intervall: unknown field "intervall"`,
		`unknown-field.bad.yaml:12: extra: unknown field "extra"`,
	},
	"types.bad.yaml": {
		`types.bad.yaml:5: metadata.labels: expected a mapping, got a list`,
		`types.bad.yaml:7: spec.image: expected text, got a list`,
		`types.bad.yaml:8: spec.args: expected a list, got "tick"`,
		`types.bad.yaml:9: spec.privileged: "yes" is not a boolean`,
		`types.bad.yaml:10: spec.maxRestarts: "1.5" is not an integer`,
		`types.bad.yaml:12: spec.resources.memory: "12x" is not a quantity (use e.g. 256Mi, 1Gi)`,
		`types.bad.yaml:13: spec.resources.pids: "lots" is not an integer`,
		`types.bad.yaml:14: spec.terminationGracePeriod: "soon" is not a duration`,
		`types.bad.yaml:16: spec.ports[0].containerPort: "80" is not an integer`,
	},
	"values.bad.yaml": {
		`values.bad.yaml:1: apiVersion: "reconciler/v2" is not supported (use reconciler/v1)`,
		`values.bad.yaml:2: kind: "Pod" is not supported (use Container)`,
		`values.bad.yaml:4: metadata.name: "Web_1" is not a DNS label`,
		`values.bad.yaml:6: metadata.labels["reconciler.spec"]: label "reconciler.spec" is reserved`,
		`values.bad.yaml:7: spec.image: required`,
		`values.bad.yaml:8: spec.imagePullPolicy: "Sometimes" is not one of Always, IfNotPresent, Never`,
		`values.bad.yaml:9: spec.restartPolicy: "Maybe" is not one of`,
		`values.bad.yaml:11: spec.env[0].name: "1BAD" is not a variable name`,
		`values.bad.yaml:12: spec.env[1]: give either value or valueFrom, not both`,
		`values.bad.yaml:16: spec.mounts[0].source: a bind mount needs an absolute host path`,
		`values.bad.yaml:17: spec.mounts[1].target: "b" is not an absolute path`,
		`values.bad.yaml:17: spec.mounts[1].source: a tmpfs mount has no source`,
		`values.bad.yaml:18: spec.mounts[2].source: "a/b" is not a volume name`,
		`values.bad.yaml:19: spec.mounts[3].type: "nfs" is not one of bind, volume, tmpfs`,
		`values.bad.yaml:21: spec.ports[0].containerPort: 70000 is not a port`,
		`values.bad.yaml:21: spec.ports[0].hostIP: "localhost" is not an IP address`,
		`values.bad.yaml:21: spec.ports[0].protocol: "icmp" is not one of tcp, udp, sctp`,
		`values.bad.yaml:22: spec.resources.memory: "1Mi" is below Docker's minimum of 6Mi`,
		`values.bad.yaml:22: spec.resources.cpus: "0.001" is below Docker's minimum`,
		`values.bad.yaml:22: spec.resources.pids: must not be negative`,
		`values.bad.yaml:23: spec.backoff.max: 5m0s is less than initial 10m0s`,
		`values.bad.yaml:24: spec.stopSignal: "SIGSTOP" is not a stop signal`,
		`values.bad.yaml:25: spec.maxRestarts: must not be negative`,
		`values.bad.yaml:26: spec.capAdd[0]: "NET_WIZARD" is not a Linux capability`,
		`values.bad.yaml:27: spec.devices[0]: "dev/fuse": the host path must be absolute`,
		`values.bad.yaml:28: spec.healthcheck.test: required`,
	},
	"syntax.bad.yaml": {
		`syntax.bad.yaml:7: invalid YAML: mapping values are not allowed in this context`,
	},
	"duplicate.bad.yaml": {
		`duplicate.bad.yaml:7: spec.image: field given twice`,
		`duplicate.bad.yaml:12: metadata.name: "twice" is already defined at duplicate.bad.yaml:4`,
	},
	"scalar.bad.yaml": {
		`scalar.bad.yaml:1: expected a mapping, got "just text"`,
	},
}

func TestDecodeTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			specs, err := Decode(name, data)
			switch {
			case strings.HasSuffix(name, ".good.yaml"):
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if len(specs) == 0 {
					t.Fatal("no specs")
				}
				for _, s := range specs {
					if errs := s.Validate(); len(errs) > 0 {
						t.Errorf("decoded spec does not validate: %v", errs)
					}
				}
			case strings.HasSuffix(name, ".bad.yaml"):
				want, ok := badFiles[name]
				if !ok {
					t.Fatalf("no expected errors for %s in badFiles", name)
				}
				seen[name] = true
				if specs != nil {
					t.Errorf("Decode returned %d specs with errors", len(specs))
				}
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error %v (%T) is not an ErrorList", err, err)
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(want) {
					t.Errorf("got %d errors, want %d:\n%v", len(lines), len(want), err)
				}
				for _, w := range want {
					if !containsLine(lines, w) {
						t.Errorf("missing error %q in:\n%v", w, err)
					}
				}
			default:
				t.Fatalf("testdata file %s is neither .good.yaml nor .bad.yaml", name)
			}
		})
	}
	for name := range badFiles {
		if !seen[name] {
			t.Errorf("badFiles names %s, which is not in testdata", name)
		}
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

func TestDecodeMultiDocument(t *testing.T) {
	data, err := os.ReadFile("testdata/multi.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := Decode("multi.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("got %d specs, want 2 (empty documents skipped)", len(specs))
	}
	first, second := specs[0], specs[1]
	if second.Spec.Image != "reconciler/box:latest" || second.Spec.Resources.Memory != "1G" {
		t.Errorf("merge key not applied: %+v", second.Spec)
	}
	if got := second.Spec.Args; len(got) != 1 || got[0] != "tick" {
		t.Errorf("explicit key must win over the merged one: args %v", got)
	}
	if got := first.Spec.Args; len(got) != 1 || got[0] != "sleep" {
		t.Errorf("first args %v", got)
	}
	if o := second.Origin(); o != (Origin{File: "multi.yaml", Line: 15}) {
		t.Errorf("origin %+v, want multi.yaml:15", o)
	}
}

func TestDecodeAppliesDefaults(t *testing.T) {
	specs, err := Decode("min.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\nspec: {image: x, ports: [{containerPort: 80}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := specs[0].Spec
	if c.RestartPolicy != RestartAlways || c.ImagePullPolicy != PullIfNotPresent || c.StopSignal != "SIGTERM" || c.Ports[0].Protocol != "tcp" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, data := range []string{"", "\n", "# nothing\n", "---\n---\n", "--- ~\n"} {
		specs, err := Decode("empty.yaml", []byte(data))
		if err != nil || len(specs) != 0 {
			t.Errorf("Decode(%q) = %d specs, %v; want none, nil", data, len(specs), err)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	const head = "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\n"
	tests := []struct {
		name string
		data string
		want string
	}{
		{"file too large", head + "# " + strings.Repeat("x", MaxFileSize) + "\n", "more than the 1048576-byte limit"},
		{"too many documents", strings.Repeat(head+"spec: {image: x}\n---\n", MaxDocuments+1), "more than 100 documents"},
		{"billion laughs in a list", head + billionLaughs + "spec:\n  image: x\n  args: *lol9\n", `spec.args[0]: expected text, got a list`},
		{"billion laughs in an unknown field", head + billionLaughs + "spec: {image: x}\nbomb: *lol9\n", `bomb: unknown field "bomb"`},
		{"merge bomb", head + mergeBomb + "spec:\n  <<: *m9\n", "aliases expand to more than 32768 nodes; refusing the file"},
		{"merge bomb in labels", "apiVersion: reconciler/v1\nkind: Container\n" + mergeBomb + "metadata: {name: a, labels: {<<: *m9}}\nspec: {image: x}\n", "aliases expand to more than"},
		{"alias cycle", "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a, labels: &l {x: y, <<: *l}}\nspec: {image: x}\n", "alias *l refers to itself"},
		{"deep flow nesting", head + "spec: {image: x}\nx: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n", "nested deeper than 32 levels"},
		{"deep block nesting", head + "spec: {image: x}\nx:\n" + strings.Repeat("- ", 10000) + "x\n", "nested deeper than 32 levels"},
		{"deeper than yaml allows", head + "x: " + strings.Repeat("[", 20000) + "\n", "exceeded max depth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			specs, err := Decode("bomb.yaml", []byte(tt.data))
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode = %d specs, %v; want an error containing %q", len(specs), err, tt.want)
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines > maxErrors+2 {
				t.Errorf("%d errors, want at most %d", lines, maxErrors+2)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("decoding allocated %d MiB, want under 64 MiB", alloc>>20)
			}
		})
	}
}

// billionLaughs defines nine levels of ten-fold aliases: 10^9 strings
// once expanded.
const billionLaughs = `x-lol0: &lol0 lol
x-lol1: &lol1 [*lol0,*lol0,*lol0,*lol0,*lol0,*lol0,*lol0,*lol0,*lol0,*lol0]
x-lol2: &lol2 [*lol1,*lol1,*lol1,*lol1,*lol1,*lol1,*lol1,*lol1,*lol1,*lol1]
x-lol3: &lol3 [*lol2,*lol2,*lol2,*lol2,*lol2,*lol2,*lol2,*lol2,*lol2,*lol2]
x-lol4: &lol4 [*lol3,*lol3,*lol3,*lol3,*lol3,*lol3,*lol3,*lol3,*lol3,*lol3]
x-lol5: &lol5 [*lol4,*lol4,*lol4,*lol4,*lol4,*lol4,*lol4,*lol4,*lol4,*lol4]
x-lol6: &lol6 [*lol5,*lol5,*lol5,*lol5,*lol5,*lol5,*lol5,*lol5,*lol5,*lol5]
x-lol7: &lol7 [*lol6,*lol6,*lol6,*lol6,*lol6,*lol6,*lol6,*lol6,*lol6,*lol6]
x-lol8: &lol8 [*lol7,*lol7,*lol7,*lol7,*lol7,*lol7,*lol7,*lol7,*lol7,*lol7]
x-lol9: &lol9 [*lol8,*lol8,*lol8,*lol8,*lol8,*lol8,*lol8,*lol8,*lol8,*lol8]
`

// mergeBomb does the same through merge keys, which a strict decoder
// must expand to find unknown and duplicate fields.
const mergeBomb = `x-m0: &m0 {image: x}
x-m1: &m1 {<<: [*m0,*m0,*m0,*m0,*m0,*m0,*m0,*m0,*m0,*m0]}
x-m2: &m2 {<<: [*m1,*m1,*m1,*m1,*m1,*m1,*m1,*m1,*m1,*m1]}
x-m3: &m3 {<<: [*m2,*m2,*m2,*m2,*m2,*m2,*m2,*m2,*m2,*m2]}
x-m4: &m4 {<<: [*m3,*m3,*m3,*m3,*m3,*m3,*m3,*m3,*m3,*m3]}
x-m5: &m5 {<<: [*m4,*m4,*m4,*m4,*m4,*m4,*m4,*m4,*m4,*m4]}
x-m6: &m6 {<<: [*m5,*m5,*m5,*m5,*m5,*m5,*m5,*m5,*m5,*m5]}
x-m7: &m7 {<<: [*m6,*m6,*m6,*m6,*m6,*m6,*m6,*m6,*m6,*m6]}
x-m8: &m8 {<<: [*m7,*m7,*m7,*m7,*m7,*m7,*m7,*m7,*m7,*m7]}
x-m9: &m9 {<<: [*m8,*m8,*m8,*m8,*m8,*m8,*m8,*m8,*m8,*m8]}
`

func TestDecodeJSON(t *testing.T) {
	const obj = `{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": {"name": "a"}, "spec": {"image": "x", "resources": {"cpus": 0.5, "memory": "64Mi"}, "terminationGracePeriod": "5s"}}`
	tests := []struct {
		name  string
		body  string
		specs int
		want  string // an error substring; empty for none
	}{
		{"one object", obj, 1, ""},
		{"array", "[" + obj + ",\n" + strings.Replace(obj, `"a"`, `"b"`, 1) + "]", 2, ""},
		{"empty array", "[]", 0, ""},
		{"unknown field", "{\n\"apiVersion\": \"reconciler/v1\", \"kind\": \"Container\", \"metadata\": {\"name\": \"a\"},\n\"spec\": {\"image\": \"x\",\n  \"resourcs\": {}}}", 0, `line 4: spec.resourcs: unknown field "resourcs"`},
		{"duplicate field", `{"apiVersion": "reconciler/v1", "apiVersion": "reconciler/v1"}`, 0, `apiVersion: field given twice`},
		{"wrong type", strings.Replace(obj, `"5s"`, `5`, 1), 0, `spec.terminationGracePeriod: "5" is not a duration`},
		{"string for an integer", strings.Replace(obj, `"image": "x"`, `"image": "x", "maxRestarts": "3"`, 1), 0, `spec.maxRestarts: "3" is not an integer`},
		{"float for an integer", strings.Replace(obj, `"image": "x"`, `"image": "x", "maxRestarts": 3.5`, 1), 0, `spec.maxRestarts: "3.5" is not an integer`},
		{"invalid", "{\n\"apiVersion\": }", 0, "line 2: invalid JSON"},
		{"truncated", `{"apiVersion": "reconciler/v1"`, 0, "invalid JSON: unexpected EOF"},
		{"trailing data", obj + " {}", 0, "data after the top-level value"},
		{"not an object", `"web"`, 0, "expected a spec object or an array of them"},
		{"array of strings", `["web"]`, 0, `expected a mapping, got "web"`},
		{"too deep", `{"x": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}", 0, "nested deeper than 32 levels"},
		{"duplicate names", "[" + obj + "," + obj + "]", 0, `metadata.name: "a" is defined twice`},
		{"invalid spec", strings.Replace(obj, `"64Mi"`, `"12x"`, 1), 0, `spec.resources.memory: "12x" is not a quantity`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := DecodeJSON([]byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if len(specs) != tt.specs {
					t.Fatalf("got %d specs, want %d", len(specs), tt.specs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeJSON = %v; want an error containing %q", err, tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("%T is not an ErrorList", err)
			}
		})
	}
}

func TestDecodeJSONMatchesYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := Decode("full.good.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.MarshalIndent(fromYAML, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := DecodeJSON(body)
	if err != nil {
		t.Fatalf("DecodeJSON(%s): %v", body, err)
	}
	if fromJSON[0].Hash() != fromYAML[0].Hash() {
		t.Errorf("hash of the JSON form %s, of the YAML form %s", fromJSON[0].Hash(), fromYAML[0].Hash())
	}
}

func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := Decode(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			out, err := yaml.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Decode("again.yaml", out)
			if err != nil {
				t.Fatalf("%s: decoding the marshalled spec: %v\n%s", f, err, out)
			}
			if len(again) != 1 || again[0].Hash() != s.Hash() {
				t.Errorf("%s: %s changed hash after Marshal and Decode:\n%s", f, s.Metadata.Name, out)
			}
		}
	}
}

// A file of exactly MaxFileSize bytes is within the limit; one byte more is
// not. The padding is comment-only documents, each under MaxDocumentSize.
func TestDecodeFileSizeBoundary(t *testing.T) {
	const spec = "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\nspec: {image: x}\n"
	build := func(size int) []byte {
		var b strings.Builder
		b.WriteString(spec)
		for b.Len() < size {
			b.WriteString("---\n# ")
			n := min(MaxDocumentSize/2, size-b.Len()-1)
			b.WriteString(strings.Repeat("x", max(n, 0)))
			b.WriteString("\n")
		}
		out := []byte(b.String())
		if len(out) != size {
			t.Fatalf("built %d bytes, want %d", len(out), size)
		}
		return out
	}
	specs, err := Decode("big.yaml", build(MaxFileSize))
	if err != nil || len(specs) != 1 {
		t.Fatalf("a file of exactly %d bytes: %d specs, %v; want it accepted", MaxFileSize, len(specs), err)
	}
	_, err = Decode("big.yaml", build(MaxFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "more than the 1048576-byte limit") {
		t.Fatalf("a file of %d bytes: %v; want the size limit", MaxFileSize+1, err)
	}
}

// The JSON body's limits at their edges: exactly MaxFileSize bytes and
// exactly MaxDocuments specs are accepted, one more of either is not.
func TestDecodeJSONLimitEdges(t *testing.T) {
	one := `{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": {"name": "a"}, "spec": {"image": "x"}}`
	pad := func(s string, size int) []byte { return []byte(s + strings.Repeat(" ", size-len(s))) }
	if specs, err := DecodeJSON(pad(one, MaxFileSize)); err != nil || len(specs) != 1 {
		t.Errorf("a body of exactly %d bytes: %d specs, %v; want it accepted", MaxFileSize, len(specs), err)
	}
	if _, err := DecodeJSON(pad(one, MaxFileSize+1)); err == nil || !strings.Contains(err.Error(), "more than the 1048576-byte limit") {
		t.Errorf("a body of %d bytes: %v; want the size limit", MaxFileSize+1, err)
	}
	list := func(n int) []byte {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": {"name": "s%d"}, "spec": {"image": "x"}}`, i)
		}
		return []byte("[" + strings.Join(items, ",\n") + "]")
	}
	if specs, err := DecodeJSON(list(MaxDocuments)); err != nil || len(specs) != MaxDocuments {
		t.Errorf("%d specs: got %d, %v; want them accepted", MaxDocuments, len(specs), err)
	}
	if _, err := DecodeJSON(list(MaxDocuments + 1)); err == nil || !strings.Contains(err.Error(), "more than 100 specs") {
		t.Errorf("%d specs: %v; want the document limit", MaxDocuments+1, err)
	}
}
