package conformance

import (
	"os"
	"strings"
	"testing"
)

const claudeCodeDockerfile = "../../docker/claude-code/Dockerfile"

func TestClaudeCodeDockerfile(t *testing.T) {
	src, err := os.ReadFile(claudeCodeDockerfile)
	if err != nil {
		t.Fatalf("read the Dockerfile: %v", err)
	}
	for _, p := range lintDockerfile(string(src)) {
		t.Errorf("docker/claude-code/Dockerfile: %s", p)
	}
}

// goodDockerfile passes every rule; each case below breaks exactly one.
const goodDockerfile = `FROM node:22.21.1-bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
RUN npm install -g @anthropic-ai/claude-code@2.0.31 && npm cache clean --force
ENV DISABLE_AUTOUPDATER=1
USER node
WORKDIR /workspace
ENTRYPOINT ["claude"]
`

func TestLintAcceptsGoodDockerfiles(t *testing.T) {
	tests := map[string]string{
		"the reference":   goodDockerfile,
		"a digest pin":    strings.Replace(goodDockerfile, "node:22.21.1-bookworm-slim", "node@sha256:"+strings.Repeat("a", 64), 1),
		"a registry port": strings.Replace(goodDockerfile, "node:22", "localhost:5000/library/node:22", 1),
		"a named uid":     strings.Replace(goodDockerfile, "USER node", "USER 1000:1000", 1),
		"npm i, quoted":   strings.Replace(goodDockerfile, "npm install -g @anthropic-ai/claude-code@2.0.31", `npm i -g "@anthropic-ai/claude-code@2.0.31" typescript@5.9.3`, 1),
		"a build stage": "FROM golang:1.26.0-bookworm AS build\nRUN true\n" +
			strings.Replace(goodDockerfile, "ENTRYPOINT", "COPY --from=build /go /go\nENTRYPOINT", 1),
		"a stage used as base": "FROM node:22.21.1-bookworm-slim AS base\n" +
			strings.Replace(goodDockerfile, "FROM node:22.21.1-bookworm-slim", "FROM base", 1),
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			for _, p := range lintDockerfile(src) {
				t.Errorf("unexpected problem: %s", p)
			}
		})
	}
}

func TestLintCatchesEachRule(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // goodDockerfile with old replaced by new
		wantRule string
		wantMsg  string
	}{
		{"unparsable", "ENV DISABLE_AUTOUPDATER=1", "ENV DISABLE_AUTOUPDATER=1 BROKEN", ruleParse, "can't find = in"},
		{"no tag", "node:22.21.1-bookworm-slim", "node", rulePinnedBase, "no tag"},
		{"latest", "node:22.21.1-bookworm-slim", "node:latest", rulePinnedBase, "latest moves"},
		{"major only", "node:22.21.1-bookworm-slim", "node:22-bookworm-slim", rulePinnedBase, "not an exact version"},
		{"lts tag", "node:22.21.1-bookworm-slim", "node:lts-slim", rulePinnedBase, "not an exact version"},
		{"variable", "node:22.21.1-bookworm-slim", "node:${NODE_VERSION}", rulePinnedBase, "from a variable"},
		{"cli unpinned", "@anthropic-ai/claude-code@2.0.31", "@anthropic-ai/claude-code", rulePinnedNPM, `"@anthropic-ai/claude-code" without an exact version`},
		{"cli at latest", "claude-code@2.0.31", "claude-code@latest", rulePinnedNPM, "without an exact version"},
		{"cli range", "claude-code@2.0.31", "claude-code@^2.0.31", rulePinnedNPM, "without an exact version"},
		{"cli missing", "npm install -g @anthropic-ai/claude-code@2.0.31 && ", "", rulePinnedNPM, "no RUN installs"},
		{"root by name", "USER node", "USER root", ruleNonRoot, "last USER is root"},
		{"root by uid", "USER node", "USER 0:0", ruleNonRoot, "last USER is root"},
		{"no user", "USER node\n", "", ruleNonRoot, "sets no USER"},
		{"root again at the end", "ENTRYPOINT", "USER root\nENTRYPOINT", ruleNonRoot, "last USER is root"},
		{"other workdir", "WORKDIR /workspace", "WORKDIR /app", ruleWorkdir, "must be /workspace"},
		{"no workdir", "WORKDIR /workspace\n", "", ruleWorkdir, "must be /workspace"},
		{"shell form entrypoint", `ENTRYPOINT ["claude"]`, "ENTRYPOINT claude", ruleEntrypoint, "shell form"},
		{"other entrypoint", `ENTRYPOINT ["claude"]`, `ENTRYPOINT ["bash"]`, ruleEntrypoint, "does not run claude"},
		{"no entrypoint", `ENTRYPOINT ["claude"]`, `CMD ["claude"]`, ruleEntrypoint, "no ENTRYPOINT"},
		{"api key env", "ENV DISABLE_AUTOUPDATER=1", "ENV ANTHROPIC_API_KEY=sk-ant-xyz", ruleNoSecrets, "ENV ANTHROPIC_API_KEY looks like a credential"},
		{"token env, old form", "ENV DISABLE_AUTOUPDATER=1", "ENV GITHUB_TOKEN abc", ruleNoSecrets, "ENV GITHUB_TOKEN"},
		{"secret arg", "ARG DEBIAN_FRONTEND=noninteractive", "ARG NPM_SECRET", ruleNoSecrets, "ARG NPM_SECRET"},
		{"key value", "ENV DISABLE_AUTOUPDATER=1", "ENV DISABLE_AUTOUPDATER=1 HARMLESS=sk-ant-abc", ruleNoSecrets, "ENV HARMLESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodDockerfile, tt.old) {
				t.Fatalf("the good Dockerfile has no %q to replace", tt.old)
			}
			src := strings.Replace(goodDockerfile, tt.old, tt.new, 1)
			probs := lintDockerfile(src)
			if len(probs) != 1 || probs[0].rule != tt.wantRule || !strings.Contains(probs[0].msg, tt.wantMsg) {
				t.Errorf("problems = %v, want one [%s] problem saying %q; Dockerfile:\n%s", probs, tt.wantRule, tt.wantMsg, src)
			}
		})
	}
}
