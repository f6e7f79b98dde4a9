package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/spec"
)

// runClient runs a client subcommand in-process.
func runClient(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "reconciler", SilenceUsage: true, SilenceErrors: true}
	addClientCommands(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), err
}

func TestUnreachableAgentIsOneClearLine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	for _, args := range [][]string{{"get"}, {"describe", "web"}, {"logs", "-f", "web"}, {"events", "-w"}, {"exec", "web", "--", "ls"}} {
		_, err := runClient(t, append([]string{args[0], "--socket", sock}, args[1:]...)...)
		want := "cannot reach the agent at " + sock + " (connect: no such file or directory): start it with 'reconciler agent' or 'make run', or pass --socket"
		if err == nil || err.Error() != want {
			t.Errorf("%v: %v\nwant %s", args, err, want)
		}
	}
	t.Setenv("RECONCILER_SOCKET", sock)
	if _, err := runClient(t, "get"); err == nil || !strings.Contains(err.Error(), sock) {
		t.Errorf("RECONCILER_SOCKET not used: %v", err)
	}
}

func TestServerNeedsTokenAndURL(t *testing.T) {
	t.Setenv("RECONCILER_TOKEN", "")
	if _, err := runClient(t, "get", "--server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "RECONCILER_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	if _, err := runClient(t, "get", "--server", "127.0.0.1:1", "--token", "x"); err == nil || !strings.Contains(err.Error(), "http://host:port") {
		t.Errorf("no scheme: %v", err)
	}
	if _, err := runClient(t, "get", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "use json or yaml") {
		t.Errorf("-o xml: %v", err)
	}
}

func TestWriteYAMLKeepsJSONNamesOrderAndTypes(t *testing.T) {
	v := struct {
		Zed   string            `json:"zed"`
		Alpha int               `json:"alpha"`
		List  []string          `json:"list"`
		Map   map[string]string `json:"map"`
	}{"2", 1, []string{"true", "x: y"}, map[string]string{"b": "1", "a": ""}}
	var b bytes.Buffer
	if err := writeYAML(&b, v); err != nil {
		t.Fatal(err)
	}
	want := "zed: \"2\"\nalpha: 1\nlist:\n  - \"true\"\n  - 'x: y'\nmap:\n  a: \"\"\n  b: \"1\"\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 5 * time.Second: "5s", 119 * time.Second: "119s", 5 * time.Minute: "5m",
		3 * time.Hour: "3h", 47 * time.Hour: "47h", 72 * time.Hour: "3d",
	} {
		if got := age(now.Add(-d), now); got != want {
			t.Errorf("age(%v) = %s, want %s", d, got, want)
		}
	}
	if age(time.Time{}, now) != "-" {
		t.Error("zero time")
	}
}

func TestExpandFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yml", ".hidden.yaml", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := expandFiles([]string{dir, "-", filepath.Join(dir, "notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yaml"), "-", filepath.Join(dir, "notes.txt")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := expandFiles([]string{filepath.Join(dir, "sub.yaml")}); err == nil {
		t.Fatal("a directory without spec files is an error")
	}
	if _, err := expandFiles([]string{filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Fatal("a missing file is an error")
	}
}

func TestLocateNamesTheAppliedFile(t *testing.T) {
	ae := &api.APIError{Status: 400, Message: "unknown field", Field: "spec.x", Line: 7}
	if got := locate(ae, "web.yaml").Error(); got != "web.yaml:7: spec.x: unknown field" {
		t.Errorf("got %q", got)
	}
	many := &api.APIError{Status: 400, Errors: []spec.FieldError{{Line: 1, Msg: "a"}, {Line: 2, Msg: "b"}}}
	if got := locate(many, "-").Error(); got != "<stdin>:1: a\n<stdin>:2: b" {
		t.Errorf("got %q", got)
	}
	conflict := &api.APIError{Status: http.StatusConflict, Message: "read-only", File: "/specs/web.yaml"}
	if got := locate(conflict, "mine.yaml").Error(); got != "mine.yaml: read-only" {
		t.Errorf("got %q", got)
	}
	large := &api.APIError{Status: http.StatusRequestEntityTooLarge, Message: "too big"}
	if got := locate(large, "big.yaml").Error(); got != "big.yaml: too big" {
		t.Errorf("got %q", got)
	}
}

func TestApplyRefusesAFileOverTheAPIsBodyLimit(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", api.DefaultMaxBody)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No agent: the file is refused before any connection.
	_, err := runClient(t, "apply", "-f", big, "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), big+" is 262147 bytes, over the 262144 the API accepts") {
		t.Fatalf("apply of a file over the body limit: %v", err)
	}
}
