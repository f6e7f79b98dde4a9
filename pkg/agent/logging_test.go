package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/spec"
)

// A spec's env values reach the container and nothing else: the agent logs
// every decision about the spec, in both formats and at debug level, and
// no line carries a value.
func TestLogsNeverCarryEnvValues(t *testing.T) {
	inline, fromFile := "inline-"+randomHex(t), "file-"+randomHex(t)
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "db-password")
	if err := os.WriteFile(secretPath, []byte(fromFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	specsDir := filepath.Join(dir, "specs")
	if err := os.Mkdir(specsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	const name = "leaky"
	doc := fmt.Sprintf(`apiVersion: reconciler/v1
kind: Container
metadata: {name: %s}
spec:
  image: reconciler/box:latest
  restartPolicy: OnFailure
  maxRestarts: 1
  env:
  - {name: API_TOKEN, value: %s}
  - {name: DB_PASSWORD, valueFrom: {file: %s}}
`, name, inline, secretPath)
	file := filepath.Join(specsDir, "leaky.yaml")
	writeFile(t, file, doc)

	var out syncBuffer
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&out, debug), slog.NewJSONHandler(&out, debug)))
	ta := newTestAgent(t, log)
	ta.Policy.Set(&spec.Policy{AllowedSecretPaths: []string{dir}})
	code := 1
	ta.rt.ExitOnStart = &code
	ta.rt.Output = "API_TOKEN=" + inline + "\nDB_PASSWORD=" + fromFile + "\n" // a program that prints its env
	src := source.New(ta.Store, source.Options{Dir: specsDir, Log: log,
		Changed: ta.Controller.DesiredChanged})
	ta.connect()
	ta.run(t)

	sync := func() {
		t.Helper()
		if err := src.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	phase := func() model.Phase {
		st, err := ta.Store.GetStatus(name)
		if err != nil {
			return ""
		}
		return st.Phase
	}

	// Created, started, crashed, restarted, crashed again: Failed.
	sync()
	eventually(t, "spec Failed after its one restart", func() bool { return phase() == model.PhaseFailed })
	// The file breaks, with a value in an unknown field: refused, last good spec kept.
	writeFile(t, file, strings.Replace(doc, "  restartPolicy:", "  tokn: "+inline+"\n  restartPolicy:", 1))
	sync()
	if len(src.Errors()) != 1 {
		t.Fatalf("broken file not refused: %v", src.Errors())
	}
	// The file goes: the spec and its container go.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	sync()
	eventually(t, "container removed", func() bool { return len(ta.rt.Containers()) == 0 })

	creates := ta.rt.Creates()
	if len(creates) != 1 || creates[0].Env["DB_PASSWORD"] != fromFile || creates[0].Spec.Spec.Env[0].Value != inline {
		t.Fatalf("the values did not reach the daemon; the test proves nothing: %+v", creates)
	}
	logs := out.String()
	for _, secret := range []string{inline, fromFile} {
		if strings.Contains(logs, secret) {
			t.Errorf("log carries an env value %q:\n%s", secret, logs)
		}
	}
	// One line per decision, naming the spec and the reason.
	for _, want := range [][]string{
		{`msg="container exited"`, `spec=leaky`, `reason=Error`, `phase=Failed`},
		{`"msg":"container exited"`, `"spec":"leaky"`, `"reason":"Error"`},
		{`msg="spec file refused; its last good specs stay in force"`, `unknown field \"tokn\"`},
		{`msg="spec deleted: no longer in any file"`, `spec=leaky`},
	} {
		if !hasLine(logs, want...) {
			t.Errorf("no log line with %q:\n%s", want, logs)
		}
	}
}

func hasLine(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
