package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// wsUser is the numeric user the workspace jobs run as: not root, and
// named by no /etc/passwd (the box image has none).
const wsUser = "4711:4712"

// hashTree digests a tree: every name, mode, owner and content, so that
// any write, chmod or chown below it shows.
func hashTree(dir string) string {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v %d:%d %d\n", rel, fi.Mode(), st.Uid, st.Gid, fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	return hex.EncodeToString(h.Sum(nil))
}

// listTree is the sorted relative paths below dir, as `box ls` prints them.
func listTree(dir string) []string {
	var out []string
	Expect(filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, rel)
		}
		return nil
	})).To(Succeed())
	sort.Strings(out)
	return out
}

func ownerOf(p string) string {
	fi, err := os.Lstat(p)
	Expect(err).NotTo(HaveOccurred())
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// workspaceLine matches describe's line: SOURCE -> TARGET (copy at DIR).
var workspaceLine = regexp.MustCompile(`(?m)^Workspace:\s+(\S+) -> (\S+) \(copy at (\S+)\)$`)

// copyDir is the host path of a spec's latest workspace copy, from describe.
func (a *Agent) copyDir(ctx SpecContext, name string) string {
	out := a.mustCLI(ctx, "describe", name)
	m := workspaceLine.FindStringSubmatch(out)
	Expect(m).NotTo(BeNil(), "describe shows the workspace copy:\n%s", out)
	return m[3]
}

var _ = Describe("workspace", func() {
	It("gives each job a private copy of the source, .git included, owned by its user; cp reads it after the container is gone; it goes at ttlAfterFinished", func(ctx SpecContext) {
		// Fail, not skip: no e2e spec is skipped in CI.
		Expect(os.Geteuid()).To(Equal(0),
			"missing: root; the agent gives a workspace copy to another user only as root (run the suite as root, as CI does)")
		allowed := GinkgoT().TempDir()
		src := filepath.Join(allowed, "repo")
		for p, c := range map[string]string{
			"README.md":            "# repo\n",
			"src/main.go":          "package main\n",
			".git/HEAD":            "ref: refs/heads/main\n",
			".git/config":          "[core]\n\tbare = false\n",
			".git/refs/heads/main": "0123456789abcdef0123456789abcdef01234567\n",
		} {
			Expect(os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(src, p), []byte(c), 0o644)).To(Succeed())
		}
		Expect(os.Chmod(src, 0o755)).To(Succeed())
		Expect(os.Symlink("src/main.go", filepath.Join(src, "main-link"))).To(Succeed())
		before := hashTree(src)
		sourceList := listTree(src)
		Expect(sourceList).To(ContainElements(".git/HEAD", ".git/config", "README.md", "src/main.go"))

		policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedBindPaths: [%s]\n", allowed)), 0o644)).To(Succeed())
		a := startAgent("--policy", policy)
		root := filepath.Join(a.Dir, "workspaces")
		ws := []string{"--user", wsUser, "--workspace", src + ":/workspace"}

		By("a running job sees a clean copy and writes its own file, which the source never sees")
		watcher := fname("ws-watch")
		res := a.runJob(ctx, watcher, append(ws, "--grace", "1s"), "sleep", "--for", "10m")
		Expect(res.code).To(Equal(0), res.stderr)
		Expect(a.mustCLI(ctx, "exec", watcher, "--", "/box", "write", "--file", "/workspace/c.txt", "--text", "from-c")).
			To(ContainSubstring("wrote /workspace/c.txt"))
		ls := a.mustCLI(ctx, "exec", watcher, "--", "/box", "ls", "--dir", "/workspace")
		Expect(strings.Fields(ls)).To(Equal(plus(sourceList, "c.txt")), "the copy is the source, .git included, plus the job's own write")
		watcherCopy := a.copyDir(ctx, watcher)
		Expect(a.mustCLI(ctx, "describe", watcher)).To(MatchRegexp(`WorkspaceCopied\s.*Copied \S+ to %s for %s`, regexp.QuoteMeta(watcherCopy), wsUser))
		Expect(watcherCopy).To(HavePrefix(root+"/"+watcher+"/"), "the copy sits below the default --workspace-root, beside the state file")
		Expect(ownerOf(watcherCopy)).To(Equal(wsUser))
		Expect(ownerOf(filepath.Join(watcherCopy, "c.txt"))).To(Equal(wsUser), "the job wrote as its own user")
		Expect(hashTree(src)).To(Equal(before), "the source is unchanged")

		By("two jobs on the same source, each writing its own file")
		const ttlFactor = 2
		ttl := ttlFactor * startBudget // room for the checks below, each a CLI call
		jobA, jobB := fname("ws-a"), fname("ws-b")
		for job, file := range map[string]string{jobA: "a.txt", jobB: "b.txt"} {
			res := a.runJob(ctx, job, append(ws, "--remove", "--ttl", ttl.String()),
				"write", "--file", "/workspace/"+file, "--text", "from-"+job)
			Expect(res.code).To(Equal(0), res.stderr)
		}
		var finished time.Time
		for _, job := range []string{jobA, jobB} {
			wait := a.runCLI(ctx, "wait", job, "--timeout", converge.String())
			Expect(wait.code).To(Equal(0), wait.stderr)
			Eventually(func() int { return len(containers(ctx, job)) }).WithTimeout(resync+startBudget).Should(BeZero(),
				"removeOnExit: the container goes, the copy stays")
			if f := a.Exits(ctx, job)[0].FinishedAt; f.After(finished) {
				finished = f
			}
		}
		copyA, copyB := a.copyDir(ctx, jobA), a.copyDir(ctx, jobB)
		Expect(copyA).NotTo(Equal(copyB))
		Expect(listTree(copyA)).To(Equal(plus(sourceList, "a.txt")), "job A sees its own write only")
		Expect(listTree(copyB)).To(Equal(plus(sourceList, "b.txt")), "job B sees its own write only")
		for _, p := range []string{".", ".git", ".git/HEAD", "src/main.go", "main-link"} {
			Expect(ownerOf(filepath.Join(copyA, p))).To(Equal(wsUser), "%s of the copy belongs to the spec's user", p)
		}
		Expect(os.Readlink(filepath.Join(copyA, "main-link"))).To(Equal("src/main.go"), "a symlink is copied as a symlink")
		Expect(hashTree(src)).To(Equal(before), "the source is unchanged")

		By("reconciler cp of a file and of a directory, after the container is gone")
		dest := GinkgoT().TempDir()
		a.mustCLI(ctx, "cp", jobA+":/workspace/a.txt", filepath.Join(dest, "a-out.txt"))
		Expect(os.ReadFile(filepath.Join(dest, "a-out.txt"))).To(Equal([]byte("from-" + jobA)))
		a.mustCLI(ctx, "cp", jobB+":/workspace", filepath.Join(dest, "b-tree"))
		Expect(listTree(filepath.Join(dest, "b-tree"))).To(Equal(plus(sourceList, "b.txt")))
		Expect(os.ReadFile(filepath.Join(dest, "b-tree", ".git", "HEAD"))).To(Equal([]byte("ref: refs/heads/main\n")))
		a.mustCLI(ctx, "cp", jobA+":/workspace/.git", dest) // into an existing directory
		Expect(os.ReadFile(filepath.Join(dest, ".git", "config"))).To(ContainSubstring("bare = false"))
		for path, want := range map[string]string{
			"/workspace/../etc/passwd": `holds ".."`,
			"/etc/passwd":              "outside the workspace",
			"/workspace/nope":          "no such file or directory",
		} {
			res := a.runCLI(ctx, "cp", jobA+":"+path, filepath.Join(dest, "refused"))
			Expect(res.code).NotTo(Equal(0))
			Expect(res.stderr).To(ContainSubstring(want))
		}
		Expect(filepath.Join(dest, "refused")).NotTo(BeAnExistingFile())

		By("deleting the running job's spec removes its copy")
		a.mustCLI(ctx, "delete", watcher)
		Eventually(func() bool { _, err := os.Stat(filepath.Join(root, watcher)); return os.IsNotExist(err) }).
			WithTimeout(converge).Should(BeTrue(), "a deleted spec's workspace copies go with it")

		By("the copies go at ttlAfterFinished, with the jobs")
		for _, dir := range []string{copyA, copyB} {
			Eventually(func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) }).
				WithTimeout(ttl+resync+startBudget).WithPolling(250*time.Millisecond).Should(BeTrue(), "the copy %s outlived the TTL", dir)
		}
		Expect(time.Since(finished)).To(BeNumerically(">=", ttl), "not before the TTL")
		res = a.runCLI(ctx, "cp", jobA+":/workspace/a.txt", filepath.Join(dest, "late"))
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stderr).To(ContainSubstring("not found"))
		Expect(hashTree(src)).To(Equal(before), "the source is unchanged at the end")
	})

	It("refuses a workspace source outside allowedBindPaths with the rule's name", func(ctx SpecContext) {
		outside := GinkgoT().TempDir()
		a := startAgent()
		res := a.runJob(ctx, fname("ws-refused"), []string{"--user", wsUser, "--workspace", outside + ":/workspace"}, "ls", "--dir", "/workspace")
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stderr).To(ContainSubstring("spec.workspace.source"))
		Expect(res.stderr).To(ContainSubstring("allowedBindPaths"))
	})
})

// plus is list with more added, sorted as listTree and `box ls` sort.
func plus(list []string, more ...string) []string {
	out := append(append([]string(nil), list...), more...)
	sort.Strings(out)
	return out
}
