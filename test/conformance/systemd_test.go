package conformance

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	unitFile      = "../../contrib/systemd/reconciler.service"
	agentFlagsSrc = "../../cmd/reconciler/agent.go"
)

// unit is a parsed systemd unit: section -> key -> every value, in order
// (a key may repeat, and an empty assignment resets it as systemd does).
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// words returns every space-separated word of every value of key.
func (u unit) words(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// parseUnit reads the INI dialect of systemd.syntax(7): [Section] headers,
// Key=Value lines, # and ; comments, a trailing backslash continuing a line.
func parseUnit(src string) (unit, error) {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	n, pending := 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += strings.TrimSpace(cont) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value in a section", n, line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if val == "" {
			u[section][key] = []string{""}
			continue
		}
		u[section][key] = append(u[section][key], val)
	}
	if pending != "" {
		return nil, fmt.Errorf("the file ends inside a continued line")
	}
	return u, sc.Err()
}

func TestParseUnit(t *testing.T) {
	u, err := parseUnit("# c\n[A]\nK=1\nK=2\n; c\nL=x \\\n  y\nE=v\nE=\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u["A"]["K"]; !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("K = %q", got)
	}
	if got := u.get("A", "L"); got != "x y" {
		t.Errorf("L = %q, want the continued line joined", got)
	}
	if got := u["A"]["E"]; !slices.Equal(got, []string{""}) {
		t.Errorf("E = %q, want reset by the empty assignment", got)
	}
	for _, bad := range []string{"K=1\n", "[A\n", "[A]\nnokey\n", "[A]\nK=1 \\\n"} {
		if _, err := parseUnit(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(src))
	if err != nil {
		t.Fatalf("%s: %v", unitFile, err)
	}
	for _, kv := range [][3]string{
		{"Service", "Type", "notify"},
		{"Service", "Restart", "always"},
		{"Service", "StateDirectory", "reconciler"},
		{"Service", "RuntimeDirectory", "reconciler"},
		{"Service", "ConfigurationDirectory", "reconciler"},
		{"Service", "LogsDirectory", "reconciler"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.get(kv[0], kv[1]); got != kv[2] {
			t.Errorf("[%s] %s=%q, want %q", kv[0], kv[1], got, kv[2])
		}
	}

	// Docker is wanted and waited for, never required: a daemon restart
	// must not take the agent down with it.
	for _, key := range []string{"Wants", "After"} {
		if !slices.Contains(u.words("Unit", key), "docker.service") {
			t.Errorf("[Unit] %s lacks docker.service", key)
		}
	}
	for _, key := range []string{"Requires", "BindsTo", "Requisite", "PartOf"} {
		if slices.Contains(u.words("Unit", key), "docker.service") {
			t.Errorf("[Unit] %s=docker.service: a daemon restart would stop the agent", key)
		}
	}

	wd, err := time.ParseDuration(u.get("Service", "WatchdogSec"))
	if err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec=%q: want a duration of at least 10s (%v)", u.get("Service", "WatchdogSec"), err)
	}

	// The daemon is reached over AF_UNIX, the metrics over TCP.
	families := u.words("Service", "RestrictAddressFamilies")
	for _, f := range []string{"AF_UNIX", "AF_INET", "AF_INET6"} {
		if !slices.Contains(families, f) {
			t.Errorf("RestrictAddressFamilies lacks %s", f)
		}
	}
	for _, key := range []string{"InaccessiblePaths", "TemporaryFileSystem", "BindReadOnlyPaths"} {
		for _, p := range u.words("Service", key) {
			p = strings.TrimLeft(p, "-+")
			if p == "/run" || p == "/var/run" || strings.HasPrefix("/run/docker.sock", p+"/") {
				t.Errorf("%s=%s hides the Docker socket", key, p)
			}
		}
	}
	if u.get("Service", "PrivateNetwork") == "yes" {
		t.Error("PrivateNetwork=yes: nobody could scrape /metrics")
	}

	// ExecStart: the paths of the operator contract, inside the
	// directories systemd creates, with flags the agent has.
	exec := u.words("Service", "ExecStart")
	if len(exec) < 2 || exec[1] != "agent" {
		t.Fatalf("ExecStart=%q: want `reconciler agent ...`", exec)
	}
	flags := map[string]string{}
	for i := 2; i < len(exec); i++ {
		name, ok := strings.CutPrefix(exec[i], "--")
		if !ok {
			t.Errorf("ExecStart: %q is not a flag", exec[i])
			continue
		}
		if i+1 < len(exec) && !strings.HasPrefix(exec[i+1], "--") {
			flags[name] = exec[i+1]
			i++
		} else {
			flags[name] = ""
		}
	}
	dirs := map[string]string{
		"specs-dir": path.Join("/etc", u.get("Service", "ConfigurationDirectory")),
		"state":     path.Join("/var/lib", u.get("Service", "StateDirectory")),
		"socket":    path.Join("/run", u.get("Service", "RuntimeDirectory")),
		"audit-log": path.Join("/var/log", u.get("Service", "LogsDirectory")),
	}
	for flag, want := range map[string]string{
		"specs-dir": "/etc/reconciler/specs",
		"state":     "/var/lib/reconciler/state.db",
		"socket":    "/run/reconciler/reconciler.sock",
		"audit-log": "/var/log/reconciler/audit.log", // on by default under systemd
	} {
		if flags[flag] != want {
			t.Errorf("ExecStart --%s %q, want %q", flag, flags[flag], want)
		}
		if !strings.HasPrefix(flags[flag], dirs[flag]+"/") {
			t.Errorf("--%s %s is outside %s, which systemd creates for it", flag, flags[flag], dirs[flag])
		}
	}
	agentSrc, err := os.ReadFile(agentFlagsSrc)
	if err != nil {
		t.Fatal(err)
	}
	for flag := range flags {
		if !regexp.MustCompile(`f\.\w+Var\([^,]+, "` + regexp.QuoteMeta(flag) + `"`).Match(agentSrc) {
			t.Errorf("ExecStart --%s: `reconciler agent` has no such flag", flag)
		}
	}
}
