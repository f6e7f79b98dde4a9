package spec

// Tests written against mutants that `make mutate` found alive in this
// package: each pins an edge a user can see (a bound that is inclusive, a
// line number, an error count) that no other test held.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// specDoc is a valid spec document with lines added below spec:.
func specDoc(name string, lines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: %s}\nspec:\n  image: reconciler/box:latest\n", name)
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func errorCount(err error) int {
	var list ErrorList
	if !errors.As(err, &list) {
		return 0
	}
	return len(list)
}

// The bounds of priority are inclusive: ±MaxPriority is what the message
// says is allowed.
func TestPriorityBoundsAreInclusive(t *testing.T) {
	for _, p := range []int{MaxPriority, -MaxPriority} {
		s := validSpec()
		s.Spec.Priority = p
		if errs := s.Validate(); len(errs) > 0 {
			t.Errorf("priority %d: %v; want it accepted", p, errs)
		}
	}
	for _, p := range []int{MaxPriority + 1, -MaxPriority - 1} {
		s := validSpec()
		s.Spec.Priority = p
		if errs := s.Validate(); len(errs) != 1 || errs[0].Path != "spec.priority" {
			t.Errorf("priority %d: %v; want one error on spec.priority", p, errs)
		}
	}
}

// An allow-list of exactly MaxEgressRules entries is accepted.
func TestEgressRuleCountBound(t *testing.T) {
	allow := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("host%d.example.com:443", i)
		}
		return out
	}
	s := validSpec()
	s.Spec.Network = ""
	s.Spec.Egress = &Egress{Allow: allow(MaxEgressRules)}
	if errs := s.Validate(); len(errs) > 0 {
		t.Errorf("%d rules: %v; want them accepted", MaxEgressRules, errs)
	}
	s.Spec.Egress.Allow = allow(MaxEgressRules + 1)
	errs := s.Validate()
	if len(errs) != 1 || errs[0].Path != "spec.egress.allow" || !strings.Contains(errs[0].Msg, "257 entries, at most 256") {
		t.Errorf("%d rules: %v; want spec.egress.allow: 257 entries, at most 256", MaxEgressRules+1, errs)
	}
}

// A range in allowedHostPorts includes both its ends.
func TestHostPortRangeIncludesItsEnds(t *testing.T) {
	p := &Policy{AllowedHostPorts: []string{"9000-9100"}}
	for _, tt := range []struct {
		port int
		ok   bool
	}{{8999, false}, {9000, true}, {9100, true}, {9101, false}} {
		s := validSpec()
		s.Spec.Ports = []Port{{ContainerPort: 80, HostPort: tt.port}}
		errs := p.Check(s)
		if tt.ok && len(errs) > 0 {
			t.Errorf("host port %d with 9000-9100 allowed: %v; want it admitted", tt.port, errs)
		}
		if !tt.ok && (len(errs) != 1 || errs[0].Rule != "allowedHostPorts") {
			t.Errorf("host port %d with 9000-9100 allowed: %v; want a refusal by allowedHostPorts", tt.port, errs)
		}
	}
}

// A refused inline seccomp profile is quoted whole up to 40 bytes, and cut
// with "..." beyond.
func TestRefusedProfileIsAbbreviated(t *testing.T) {
	for _, tt := range []struct {
		profile, want string
	}{
		{strings.Repeat("p", 40), `seccomp profile "` + strings.Repeat("p", 40) + `" is refused`},
		{strings.Repeat("p", 41), `seccomp profile "` + strings.Repeat("p", 40) + `"... is refused`},
	} {
		s := validSpec()
		s.Spec.SecurityOpt = []string{"seccomp=" + tt.profile}
		errs := DefaultPolicy().Check(s)
		if len(errs) != 1 || !strings.Contains(errs[0].Msg, tt.want) {
			t.Errorf("profile of %d bytes: %v; want %q", len(tt.profile), errs, tt.want)
		}
	}
}

// Delay doubles Initial up to Max, whatever the numbers: an odd cap does
// not cut a doubling that fits under it, and a cap near the largest
// duration does not overflow into a negative (immediate) restart.
func TestBackoffDelayEdges(t *testing.T) {
	odd := Backoff{Initial: Duration{time.Second}, Max: Duration{2*time.Second + 1}}
	if got := odd.Delay(1); got != 2*time.Second {
		t.Errorf("initial 1s, max 2s+1ns: Delay(1) = %v, want 2s", got)
	}
	if got := odd.Delay(2); got != 2*time.Second+1 {
		t.Errorf("initial 1s, max 2s+1ns: Delay(2) = %v, want the cap", got)
	}
	const year = 365 * 24 * time.Hour
	huge := Backoff{Initial: Duration{150 * year}, Max: Duration{250 * year}}
	if got := huge.Delay(1); got != huge.Max.Duration {
		t.Errorf("initial 150y, max 250y: Delay(1) = %v, want the cap %v", got, huge.Max.Duration)
	}
	huge.Initial.Duration = time.Second
	if got := huge.Delay(1); got != 2*time.Second {
		t.Errorf("initial 1s, max 250y: Delay(1) = %v, want 2s", got)
	}
}

// A spec file that is not there is reported as not there.
func TestOpenFileMissing(t *testing.T) {
	_, _, err := OpenFile(filepath.Join(t.TempDir(), "gone.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenFile of a missing file: %v; want fs.ErrNotExist", err)
	}
}

// A field written as null, ~ or nothing is unset, as if it were left out.
func TestNullFieldIsUnset(t *testing.T) {
	specs, err := Decode("null.yaml", []byte(specDoc("a", "healthcheck: ~", "workingDir: null", "logging:")))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c := specs[0].Spec
	if c.Healthcheck != nil || c.WorkingDir != "" || c.Logging != nil {
		t.Errorf("healthcheck %v, workingDir %q, logging %v; want all unset", c.Healthcheck, c.WorkingDir, c.Logging)
	}
	_, err = Decode("null.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\nspec:\n  image: null\n"))
	if err == nil || !strings.Contains(err.Error(), "null.yaml:5: spec.image: required") {
		t.Errorf("image: null: %v; want spec.image: required", err)
	}
}

// Decode reports at most maxErrors errors of one document and then says
// it gave up: exactly maxErrors, plus that line.
func TestDecodeErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(specDoc("a"))
	for i := range maxErrors + 10 {
		fmt.Fprintf(&b, "  bad%d: x\n", i)
	}
	_, err := Decode("many.yaml", []byte(b.String()))
	list, _ := err.(ErrorList)
	if len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "too many errors, giving up") {
		t.Fatalf("%d errors (last %v); want %d, the last saying it gave up", len(list), list[len(list)-1], maxErrors+1)
	}
}

// Errors of every document are reported until more than maxErrors are
// found: a first document with exactly maxErrors problems does not hide
// the second's.
func TestDecodeReportsLaterDocuments(t *testing.T) {
	var b strings.Builder
	b.WriteString(specDoc("a"))
	b.WriteString("  env:\n")
	for range maxErrors {
		b.WriteString("  - {name: 1x}\n") // not a variable name
	}
	b.WriteString("---\n" + specDoc("b", "restartPolicy: Sometimes"))
	_, err := Decode("two.yaml", []byte(b.String()))
	if n := errorCount(err); n != maxErrors+1 || !strings.Contains(err.Error(), "spec.restartPolicy") {
		t.Fatalf("%d errors, want %d with the second document's spec.restartPolicy:\n%v", n, maxErrors+1, err)
	}
}

// Nesting up to the limit the message names is accepted; one more level
// is refused, in mappings as in lists, in YAML as in JSON.
func TestNestingLimitIsExact(t *testing.T) {
	nestYAML := func(levels int, open, close string) string {
		return specDoc("a") + "x: " + strings.Repeat(open, levels) + "1" + strings.Repeat(close, levels) + "\n"
	}
	nestJSON := func(levels int, open, close string) string {
		return `{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": {"name": "a"}, "spec": {"image": "x"}, "x": ` +
			strings.Repeat(open, levels) + "1" + strings.Repeat(close, levels) + "}"
	}
	const deep = "nested deeper than 32 levels"
	for _, tt := range []struct {
		name   string
		decode func(levels int) error
	}{
		{"yaml lists", func(n int) error { _, err := Decode("deep.yaml", []byte(nestYAML(n, "[", "]"))); return err }},
		{"yaml mappings", func(n int) error { _, err := Decode("deep.yaml", []byte(nestYAML(n, "{a: ", "}"))); return err }},
		{"yaml mapping keys", func(n int) error {
			_, err := Decode("deep.yaml", []byte(specDoc("a")+"x: {? "+strings.Repeat("[", n-1)+"1"+strings.Repeat("]", n-1)+" : 1}\n"))
			return err
		}},
		{"json lists", func(n int) error { _, err := DecodeJSON([]byte(nestJSON(n, "[", "]"))); return err }},
		{"json mappings", func(n int) error { _, err := DecodeJSON([]byte(nestJSON(n, `{"a": `, "}"))); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// x itself is one level below the document.
			if err := tt.decode(maxDepth - 1); err == nil || strings.Contains(err.Error(), deep) || !strings.Contains(err.Error(), `unknown field "x"`) {
				t.Errorf("%d levels: %v; want only the unknown field", maxDepth, err)
			}
			if err := tt.decode(maxDepth); err == nil || !strings.Contains(err.Error(), deep) {
				t.Errorf("%d levels: %v; want %q", maxDepth+1, err, deep)
			}
		})
	}
}

// JSON errors name the line of the value, even after a trailing space,
// and a syntax error at the end of a line names that line.
func TestJSONErrorLines(t *testing.T) {
	body := "{\"apiVersion\": \"reconciler/v1\", \"kind\": \"Container\",\n\"metadata\": {\"name\": \"a\"},\n\"spec\": {\"image\": \n[5]}}"
	_, err := DecodeJSON([]byte(body))
	if err == nil || !strings.Contains(err.Error(), "line 4: spec.image") {
		t.Errorf("image on line 4 after a trailing space: %v; want line 4: spec.image", err)
	}
	_, err = DecodeJSON([]byte("{\"apiVersion\": \"reconciler/v1\",,\n\"kind\": \"Container\"}"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 1: invalid JSON") {
		t.Errorf("a second comma at the end of line 1: %v; want line 1: invalid JSON", err)
	}
	// The stray comma opens line 2: the newline before it is not the error.
	_, err = DecodeJSON([]byte("{\"apiVersion\": \"reconciler/v1\",\n,\"kind\": \"Container\"}"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: invalid JSON") {
		t.Errorf("a stray comma opening line 2: %v; want line 2: invalid JSON", err)
	}
	_, err = DecodeJSON([]byte("{\"apiVersion\": \"reconciler/v1\",\n\n   x}"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 3: invalid JSON") {
		t.Errorf("a bad character indented on line 3: %v; want line 3: invalid JSON", err)
	}
}

// A JSON mapping with more than MaxItems entries is refused, counting them
// all.
func TestJSONMappingEntriesLimit(t *testing.T) {
	labels := make([]string, MaxItems+5)
	for i := range labels {
		labels[i] = fmt.Sprintf(`"k%d": "v"`, i)
	}
	body := `{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": {"name": "a", "labels": {` + strings.Join(labels, ", ") + `}}, "spec": {"image": "x"}}`
	_, err := DecodeJSON([]byte(body))
	if err == nil || !strings.Contains(err.Error(), "metadata.labels: 1029 entries, more than the 1024 limit") {
		t.Errorf("1029 labels: %v; want metadata.labels: 1029 entries, more than the 1024 limit", err)
	}
}

// IsStartFirst is true only for updateStrategy StartFirst.
func TestIsStartFirst(t *testing.T) {
	for _, tt := range []struct {
		u    *UpdateStrategy
		want bool
	}{{nil, false}, {&UpdateStrategy{}, false}, {&UpdateStrategy{Type: StopFirst}, false}, {&UpdateStrategy{Type: StartFirst}, true}} {
		c := ContainerSpec{UpdateStrategy: tt.u}
		if got := c.IsStartFirst(); got != tt.want {
			t.Errorf("IsStartFirst with %+v = %v, want %v", tt.u, got, tt.want)
		}
	}
}

// A label key prefix may be a DNS subdomain of up to 253 bytes.
func TestLabelPrefixLength(t *testing.T) {
	prefix := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	s := validSpec()
	s.Metadata.Labels = map[string]string{prefix + "/x": "y"}
	if errs := s.Validate(); len(errs) > 0 {
		t.Errorf("a %d-byte prefix: %v; want it accepted", len(prefix), errs)
	}
	s.Metadata.Labels = map[string]string{prefix + "d/x": "y"}
	if errs := s.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Msg, "the prefix must be a DNS subdomain") {
		t.Errorf("a %d-byte prefix: %v; want the prefix refused", len(prefix)+1, errs)
	}
}

// Merge keys count towards the nesting limit as the levels they stand
// for: a chain of merges, each through an alias, is refused once its
// aliases sit deeper than maxDepth, wherever the chain starts.
func TestMergeChainDepth(t *testing.T) {
	// chain defines anchors c0..cK in top-level fields (each an unknown
	// field, reported as such), each merging the one before.
	chain := func(k int, first string, list bool) string {
		var b strings.Builder
		fmt.Fprintf(&b, "x0: &c0 %s\n", first)
		for i := 1; i <= k; i++ {
			if list {
				fmt.Fprintf(&b, "x%d: &c%d {<<: [*c%d]}\n", i, i, i-1)
			} else {
				fmt.Fprintf(&b, "x%d: &c%d {<<: *c%d}\n", i, i, i-1)
			}
		}
		return b.String()
	}
	const head = "apiVersion: reconciler/v1\nkind: Container\n"
	for _, tt := range []struct {
		name string
		doc  func(k int) string
		ok   int // the longest chain accepted
	}{
		// The root's aliases sit at depth 0, 2, ...: 16 links reach 32.
		{"at the root", func(k int) string {
			return chain(k, "{kind: Container}", false) + "apiVersion: reconciler/v1\nmetadata: {name: a}\nspec: {image: x}\n<<: *c" + fmt.Sprint(k) + "\n"
		}, 16},
		// Under spec, one level down: 1, 3, ...
		{"under spec", func(k int) string {
			return head + chain(k, "{image: x}", false) + "metadata: {name: a}\nspec: {<<: *c" + fmt.Sprint(k) + "}\n"
		}, 15},
		// spec given as an alias: the alias is a level of its own.
		{"under an aliased spec", func(k int) string {
			return head + chain(k, "{image: x}", false) + fmt.Sprintf("xs: &s {<<: *c%d}\n", k) + "metadata: {name: a}\nspec: *s\n"
		}, 15},
		// In an item of a list: 3, 5, ...
		{"in an env item", func(k int) string {
			return head + chain(k, "{name: A}", false) + "metadata: {name: a}\nspec: {image: x, env: [{<<: *c" + fmt.Sprint(k) + "}]}\n"
		}, 14},
		// Merging a list of aliases costs a level for the list: 1, 4, ...
		{"through lists", func(k int) string {
			return chain(k, "{kind: Container}", true) + "apiVersion: reconciler/v1\nmetadata: {name: a}\nspec: {image: x}\n<<: [*c" + fmt.Sprint(k) + "]\n"
		}, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const deep = "nested deeper than 32 levels"
			_, err := Decode("chain.yaml", []byte(tt.doc(tt.ok)))
			if err == nil || strings.Contains(err.Error(), deep) || !strings.Contains(err.Error(), `unknown field "x0"`) {
				t.Errorf("a chain of %d: %v; want only the unknown fields", tt.ok, err)
			}
			_, err = Decode("chain.yaml", []byte(tt.doc(tt.ok+1)))
			if err == nil || !strings.Contains(err.Error(), deep) {
				t.Errorf("a chain of %d: %v; want %q", tt.ok+1, err, deep)
			}
		})
	}
}

// A value in an error message is quoted whole up to 40 bytes.
func TestDescribeQuotesUpTo40Bytes(t *testing.T) {
	for _, tt := range []struct{ val, want string }{
		{strings.Repeat("m", 40), `metadata: expected a mapping, got "` + strings.Repeat("m", 40) + `"`},
		{strings.Repeat("m", 41), `metadata: expected a mapping, got "` + strings.Repeat("m", 40) + `"...`},
	} {
		_, err := Decode("m.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: "+tt.val+"\nspec: {image: x}\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(tt.want, `"...`) != strings.Contains(err.Error(), `"...`) {
			t.Errorf("metadata of %d bytes: %v; want %q", len(tt.val), err, tt.want)
		}
	}
}

// A field whose decoding failed is reported once: not again as the
// fields below it that validation then finds missing.
func TestNoValidationErrorsBelowAFailedField(t *testing.T) {
	_, err := Decode("m.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: [web]\nspec: {image: x}\n"))
	if n := errorCount(err); n != 1 || !strings.Contains(err.Error(), "m.yaml:3: metadata: expected a mapping, got a list") {
		t.Errorf("metadata as a list: %d errors, %v; want only metadata: expected a mapping", n, err)
	}
}

// "Did you mean" names the closest field, the first in sort order on a
// tie, and nothing for a name three edits from every field.
func TestUnknownFieldHint(t *testing.T) {
	for _, tt := range []struct{ field, want string }{
		{"hostPPP", `unknown field "hostPPP" (did you mean "hostIPC"?)`}, // two edits from hostIPC and hostPID
		{"envxy", `unknown field "envxy" (did you mean "env"?)`},
		{"envxyz", `unknown field "envxyz"`},
	} {
		for range 10 { // map order varies; a tie must not
			_, err := Decode("h.yaml", []byte(specDoc("a", tt.field+": true")))
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Fatalf("%s: %v; want it to end with %q", tt.field, err, tt.want)
			}
		}
	}
}

// Locate puts an error about a list item that was never written (the
// spec changed after decoding) on the line of the list.
func TestLocateItemBeyondTheList(t *testing.T) {
	specs, err := Decode("l.yaml", []byte(specDoc("a", "args:", "  - one")))
	if err != nil {
		t.Fatal(err)
	}
	errs := specs[0].Locate(ErrorList{{Path: "spec.args[1]", Msg: "x"}, {Path: "spec.args[0]", Msg: "y"}})
	if errs[0].Line != 6 || errs[1].Line != 7 {
		t.Errorf("lines %d and %d; want 6 (args) for an item never written and 7 for args[0]", errs[0].Line, errs[1].Line)
	}
}

// Aliases and merge keys may add exactly maxAliasNodes visits to the
// nodes a file holds: a file that spends the whole budget is accepted,
// one more visit refuses it, and a file whose first document spends it
// all is refused as a whole, never cut short to its first spec.
func TestAliasBudgetIsExact(t *testing.T) {
	// doc1 spends its budget through a merge of 31 copies of 1000 labels
	// into logging options (32000 visits beyond the nodes written, less
	// the 31 aliases and the list written in the merge), then one visit
	// per *s in args.
	doc1 := func(k int) string {
		var b strings.Builder
		b.WriteString("apiVersion: reconciler/v1\nkind: Container\nmetadata:\n  name: a\n  labels: &l {")
		for i := range 1000 {
			fmt.Fprintf(&b, "k%d: v, ", i)
		}
		b.WriteString("}\nspec:\n  image: &s x\n  logging: {driver: local, options: {<<: [" + strings.Repeat("*l, ", 31) + "]}}\n")
		b.WriteString("  args: [" + strings.Repeat("*s, ", k) + "]\n")
		return b.String()
	}
	const spare = 799 // the *s that spend exactly the rest of the budget
	if specs, err := Decode("a.yaml", []byte(doc1(spare))); err != nil || len(specs) != 1 {
		t.Fatalf("a file spending exactly its budget: %d specs, %v; want it accepted", len(specs), err)
	}
	if _, err := Decode("a.yaml", []byte(doc1(spare+1))); err == nil || !strings.Contains(err.Error(), "aliases expand to more than 32768 nodes") {
		t.Fatalf("one visit over the budget: %v; want it refused", err)
	}
	// A second document adds its nodes to the budget; with the first
	// spending all of it, the second has nothing left.
	doc2 := specDoc("b")
	docs, ferr := parseYAML([]byte(doc2))
	if ferr != nil {
		t.Fatal(ferr)
	}
	n2 := nodeBudget(docs...) - maxAliasNodes
	for _, k := range []int{spare + n2 - 1, spare + n2} {
		specs, err := Decode("ab.yaml", []byte(doc1(k)+"---\n"+doc2))
		if err == nil && len(specs) != 2 {
			t.Errorf("%d *s: %d specs and no error; want both specs or an error", k, len(specs))
		}
	}
	if _, err := Decode("ab.yaml", []byte(doc1(spare+n2)+"---\n"+doc2)); err == nil {
		t.Errorf("a first document spending the whole budget: accepted; want the second refused")
	}
}

// A secret without a file still has its target checked when one is
// given; with neither, there is no target to check at all.
func TestSecretWithoutFileTarget(t *testing.T) {
	s := validSpec()
	s.Spec.Secrets = []SecretFile{{Target: "key"}}
	errs := s.Validate()
	if len(errs) != 2 || errs[0].Path != "spec.secrets[0].file" || errs[1].Path != "spec.secrets[0].target" {
		t.Errorf("a secret with no file and a relative target: %v; want file required and target not absolute", errs)
	}
	s.Spec.Secrets = []SecretFile{{}}
	s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: DefaultSecretsDir}}
	if errs := s.Validate(); len(errs) != 1 || errs[0].Path != "spec.secrets[0].file" {
		t.Errorf("an empty secret beside a mount at %s: %v; want only file required", DefaultSecretsDir, errs)
	}
}

// A text field may be written as !!binary (base64), as YAML allows.
func TestBinaryText(t *testing.T) {
	specs, err := Decode("b.yaml", []byte(specDoc("a", "workingDir: !!binary L3NydmRpcg==")))
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Spec.WorkingDir; got != "/srvdir" {
		t.Errorf("workingDir = %q, want the decoded /srvdir", got)
	}
}

// Admit hands back the host path of each admitted bind mount, by its
// index: what the container is created with.
func TestAdmitReturnsBinds(t *testing.T) {
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := validSpec()
	s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: "/tmp"}, {Type: "bind", Source: dir, Target: "/data"}}
	binds, errs := (&Policy{AllowedBindPaths: []string{dir}}).Admit(s)
	if len(errs) > 0 || len(binds) != 1 || binds[1] != real {
		t.Fatalf("Admit = %v, %v; want mount 1 bound from %s", binds, errs, real)
	}
}
