package conformance

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The rules a coding-agent image must follow; each problem names one.
const (
	ruleParse      = "parse"
	rulePinnedBase = "pinned-base"
	rulePinnedNPM  = "pinned-npm"
	ruleNonRoot    = "non-root"
	ruleWorkdir    = "workdir"
	ruleEntrypoint = "entrypoint"
	ruleNoSecrets  = "no-secrets"
)

const cliPackage = "@anthropic-ai/claude-code"

type problem struct {
	rule string
	line int
	msg  string
}

func (p problem) String() string { return fmt.Sprintf("line %d: [%s] %s", p.line, p.rule, p.msg) }

var (
	// An exact version: 22.21.1, v1.2.3, 22.21.1-bookworm-slim.
	exactVersionTag = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+_.][0-9A-Za-z._-]+)?$`)
	// name@1.2.3 or @scope/name@1.2.3-rc.1; not a range, tag or bare name.
	exactNPMPackage = regexp.MustCompile(`^(@[^/@\s]+/)?[^/@\s]+@[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	secretName      = regexp.MustCompile(`(?i)key|token|secret|passw(or)?d|credential`)
	shellSeparators = regexp.MustCompile(`&&|\|\||[;|\n]`)
)

// lintDockerfile parses src with BuildKit's parser and returns every broken
// rule. The final stage is the image that runs, so USER, WORKDIR and
// ENTRYPOINT are checked there; FROM, npm installs and secrets everywhere.
func lintDockerfile(src string) []problem {
	res, err := parser.Parse(strings.NewReader(src))
	if err != nil {
		return []problem{{ruleParse, 0, err.Error()}}
	}
	var probs []problem
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		probs = append(probs, problem{ruleParse, line, w.Short})
	}
	var (
		stages               = map[string]bool{}
		user, workdir, entry *parser.Node
		cliInstalled         bool
	)
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "from":
			probs = append(probs, checkFrom(n, stages)...)
			if a := values(n); len(a) == 3 && strings.EqualFold(a[1], "as") {
				stages[strings.ToLower(a[2])] = true
			}
			user, workdir, entry = nil, nil, nil
		case "run":
			p, installed := checkRun(n)
			probs = append(probs, p...)
			cliInstalled = cliInstalled || installed
		case "env", "arg":
			probs = append(probs, checkNoSecrets(n)...)
		case "user":
			user = n
		case "workdir":
			workdir = n
		case "entrypoint":
			entry = n
		}
	}
	if !cliInstalled {
		probs = append(probs, problem{rulePinnedNPM, 0, "no RUN installs " + cliPackage + "@x.y.z"})
	}
	return append(probs, checkFinalStage(user, workdir, entry)...)
}

func checkFrom(n *parser.Node, stages map[string]bool) []problem {
	args := values(n)
	if len(args) == 0 {
		return []problem{{rulePinnedBase, n.StartLine, "FROM names no image"}}
	}
	ref := args[0]
	if ref == "scratch" || stages[strings.ToLower(ref)] {
		return nil
	}
	fail := func(format string, a ...any) []problem {
		return []problem{{rulePinnedBase, n.StartLine, fmt.Sprintf("FROM %s: ", ref) + fmt.Sprintf(format, a...)}}
	}
	if strings.Contains(ref, "$") {
		return fail("the image comes from a variable; write the pinned reference literally")
	}
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") {
			return fail("%q is not a sha256 digest", digest)
		}
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok:
		return fail("no tag, so it means latest; pin an exact version such as node:22.21.1-bookworm-slim")
	case tag == "latest":
		return fail("latest moves; pin an exact version such as node:22.21.1-bookworm-slim")
	case !exactVersionTag.MatchString(tag):
		return fail("tag %q is not an exact version (x.y.z); a tag such as 22 or lts moves", tag)
	}
	return nil
}

// checkRun checks every npm install in a RUN and reports whether one of
// them installs the CLI.
func checkRun(n *parser.Node) ([]problem, bool) {
	script := strings.Join(values(n), " ")
	for _, h := range n.Heredocs {
		script += "\n" + h.Content
	}
	var probs []problem
	cliInstalled := false
	for _, cmd := range shellSeparators.Split(script, -1) {
		words := strings.Fields(strings.NewReplacer(`"`, "", `'`, "", `\`, "").Replace(cmd))
		if len(words) < 2 || words[0] != "npm" || !isNPMInstall(words[1]) {
			continue
		}
		for _, pkg := range words[2:] {
			if strings.HasPrefix(pkg, "-") {
				continue
			}
			cliInstalled = cliInstalled || pkg == cliPackage || strings.HasPrefix(pkg, cliPackage+"@")
			if !exactNPMPackage.MatchString(pkg) {
				probs = append(probs, problem{rulePinnedNPM, n.StartLine,
					fmt.Sprintf("npm installs %q without an exact version; write it as name@x.y.z", pkg)})
			}
		}
	}
	return probs, cliInstalled
}

// isNPMInstall knows npm's aliases of install, typos included.
func isNPMInstall(verb string) bool {
	switch verb {
	case "install", "i", "add", "isntall", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal":
		return true
	}
	return false
}

func checkNoSecrets(n *parser.Node) []problem {
	var names []string
	kind := strings.ToUpper(n.Value)
	if kind == "ENV" {
		// ENV nodes come in triples: name, value, separator.
		for k := n.Next; k != nil && k.Next != nil; k = k.Next.Next.Next {
			names = append(names, k.Value+"="+k.Next.Value)
		}
	} else {
		names = values(n)
	}
	var probs []problem
	for _, kv := range names {
		name, value, _ := strings.Cut(kv, "=")
		if secretName.MatchString(name) || strings.HasPrefix(value, "sk-ant-") {
			probs = append(probs, problem{ruleNoSecrets, n.StartLine, fmt.Sprintf(
				"%s %s looks like a credential; pass it at run time (env valueFrom a secret file), never in the image",
				kind, name)})
		}
	}
	return probs
}

func checkFinalStage(user, workdir, entry *parser.Node) []problem {
	var probs []problem
	switch {
	case user == nil:
		probs = append(probs, problem{ruleNonRoot, 0, "the final stage sets no USER, so it runs as root"})
	default:
		name, _, _ := strings.Cut(strings.Join(values(user), ""), ":")
		if name == "root" || name == "0" {
			probs = append(probs, problem{ruleNonRoot, user.StartLine, "the last USER is root; use node (uid 1000)"})
		}
	}
	if workdir == nil || path.Clean(strings.Join(values(workdir), " ")) != "/workspace" {
		line := 0
		if workdir != nil {
			line = workdir.StartLine
		}
		probs = append(probs, problem{ruleWorkdir, line, "the final WORKDIR must be /workspace, where the workspace is mounted"})
	}
	switch {
	case entry == nil:
		probs = append(probs, problem{ruleEntrypoint, 0, `the final stage has no ENTRYPOINT; want ["claude"]`})
	case !entry.Attributes["json"]:
		probs = append(probs, problem{ruleEntrypoint, entry.StartLine,
			`ENTRYPOINT is in shell form, so /bin/sh gets the stop signal instead of claude; want ["claude"]`})
	case len(values(entry)) == 0 || values(entry)[0] != "claude":
		probs = append(probs, problem{ruleEntrypoint, entry.StartLine,
			fmt.Sprintf(`ENTRYPOINT %q does not run claude; want ["claude"]`, values(entry))})
	}
	return probs
}

// values returns the arguments of an instruction.
func values(n *parser.Node) []string {
	var vs []string
	for a := n.Next; a != nil; a = a.Next {
		vs = append(vs, a.Value)
	}
	return vs
}
