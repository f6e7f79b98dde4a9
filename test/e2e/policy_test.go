package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

// quietWindow is how long a test watches for something that must not
// happen: a few resyncs, each of which would have acted on it.
const quietWindow = 3 * resync

// capSpec needs SYS_ADMIN beyond the baseline: allowed by the loose policy
// (allowedCapabilities), refused by the default one. It runs on this
// machine, which a privileged container does not.
func capSpec(name string, args []string) string {
	return Spec(name, args, "capAdd: [SYS_ADMIN]", "network: none")
}

// capPolicy is the loose policy that admits capSpec.
const capPolicy = "allowedCapabilities: [SYS_ADMIN]\n"

// rewritePolicy replaces a policy file atomically, as a config tool would.
func rewritePolicy(path, content string) {
	tmp := path + ".tmp"
	Expect(os.WriteFile(tmp, []byte(content), 0o600)).To(Succeed())
	Expect(os.Rename(tmp, path)).To(Succeed())
}

// handRemove removes a container as an operator would, behind the agent.
func handRemove(ctx context.Context, id string) {
	err := dcli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// policyHarness is one agent under a policy file, with one spec applied.
type policyHarness struct {
	a        *Agent
	policy   string
	name     string
	instance string
}

// running waits for the spec's one running container and returns its id.
func (h *policyHarness) running(ctx context.Context) string {
	id := ""
	Eventually(func() (err error) { id, err = runningOf(ctx, dcli, h.instance, h.name)(); return err }).
		WithTimeout(converge).Should(Succeed(), "a running container for %s", h.name)
	return id
}

// recreatedAfterRemoval is the positive control for "not recreated": under
// a policy that admits the spec, a container removed by hand comes back.
func (h *policyHarness) recreatedAfterRemoval(ctx context.Context) string {
	old := h.running(ctx)
	handRemove(ctx, old)
	id := ""
	Eventually(func() (err error) {
		id, err = runningOf(ctx, dcli, h.instance, h.name)()
		if err == nil && id == old {
			err = fmt.Errorf("still the removed container")
		}
		return err
	}).WithTimeout(converge).Should(Succeed(), "a hand-removed container is created again under an admitting policy")
	return id
}

// refusedButLeftRunning checks that the spec is Refused for rule, that its
// running container id is left running and not recreated, and that once
// removed by hand it is not created again.
func (h *policyHarness) refusedButLeftRunning(ctx context.Context, id, rule string) {
	Eventually(func() (model.Status, error) { return h.a.Status(ctx, h.name) }).WithTimeout(converge).Should(And(
		HaveField("Phase", model.PhaseRefused),
		HaveField("Message", ContainSubstring("runs under a spec the policy now refuses")),
		HaveField("Message", ContainSubstring(rule))))
	exits := len(h.a.Exits(ctx, h.name))
	Consistently(runningOf(ctx, dcli, h.instance, h.name)).WithTimeout(quietWindow).Should(Equal(id),
		"the running container is left running, not recreated")
	Expect(h.a.Exits(ctx, h.name)).To(HaveLen(exits), "and never stopped")

	handRemove(ctx, id)
	Eventually(func() (model.Status, error) { return h.a.Status(ctx, h.name) }).WithTimeout(converge).Should(
		HaveField("Message", HavePrefix("refused by policy: ")))
	Consistently(func() []container.Summary { return containers(ctx, h.name) }).WithTimeout(quietWindow).Should(BeEmpty(),
		"a refused spec's container is not created again")
	st, err := h.a.Status(ctx, h.name)
	Expect(err).NotTo(HaveOccurred())
	Expect(st.Phase).To(Equal(model.PhaseRefused))
}

// refusedOnce checks the Warning event and the metric of one refusal.
func (h *policyHarness) refusedOnce(ctx context.Context, rule string) {
	evs, err := h.a.API().Events(ctx, api.EventQuery{Spec: h.name})
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, e := range evs {
		if e.Reason == "Refused" {
			n++
			Expect(e.Type).To(Equal(model.EventWarning))
			Expect(e.Message).To(ContainSubstring(rule))
		}
	}
	Expect(n).To(Equal(1), "one Refused event per transition, not one per resync: %+v", evs)
	Expect(h.a.Metrics()).To(HaveKeyWithValue(fmt.Sprintf("reconciler_policy_refusals_total{rule=%q}", rule), 1.0))
}

// startUnderPolicy starts an agent with the policy file content and applies
// a capSpec through the API.
func startUnderPolicy(ctx context.Context, content string, extra ...string) *policyHarness {
	h := &policyHarness{name: fname("cap")}
	dir := GinkgoT().TempDir()
	h.policy = filepath.Join(dir, "policy.yaml")
	rewritePolicy(h.policy, content)
	h.a = startAgent(append([]string{"--policy", h.policy}, extra...)...)
	h.instance = h.a.instance(ctx)
	_, err := h.a.API().Apply(ctx, []byte(capSpec(h.name, tickArgs)), "application/yaml", false)
	Expect(err).NotTo(HaveOccurred())
	return h
}

var _ = Describe("Policy where it matters", func() {
	It("enforces a policy tightened across an agent restart, leaving the running container alone", func(ctx SpecContext) {
		h := startUnderPolicy(ctx, capPolicy)
		id := h.recreatedAfterRemoval(ctx)

		By("restarting the agent with the default policy")
		h.a.Stop()
		rewritePolicy(h.policy, "# the baseline\n")
		h.a.Start()
		h.refusedButLeftRunning(ctx, id, "allowedCapabilities")
		h.refusedOnce(ctx, "allowedCapabilities")
		Expect(h.a.Log()).To(ContainSubstring("spec refused by policy"))
	})

	It("enforces a policy rewritten while the agent runs, reports a bad one, and converges once loosened", func(ctx SpecContext) {
		h := startUnderPolicy(ctx, capPolicy)
		id := h.recreatedAfterRemoval(ctx)

		By("a policy file that does not load keeps the previous policy in force")
		rewritePolicy(h.policy, "allowedCapabilities: [SYS_ADMIN]\nallowEverything: true\n")
		Eventually(h.a.Log).WithTimeout(converge).Should(ContainSubstring("policy file refused; the previous policy stays in force"))
		// The event is recorded just after the log line: wait for it too.
		Eventually(func() ([]model.Event, error) { return h.a.API().Events(ctx, api.EventQuery{}) }).WithTimeout(converge).
			Should(ContainElement(And(HaveField("Reason", "InvalidPolicy"), HaveField("Type", model.EventWarning),
				HaveField("Message", ContainSubstring(`allowEverything`)))))
		Consistently(runningOf(ctx, dcli, h.instance, h.name)).WithTimeout(quietWindow).Should(Equal(id))
		Expect(h.a.phase(ctx, h.name)()).To(Equal(model.PhaseRunning))

		By("rewriting it to the default policy")
		rewritePolicy(h.policy, "# the baseline\n")
		h.refusedButLeftRunning(ctx, id, "allowedCapabilities")
		h.refusedOnce(ctx, "allowedCapabilities")

		By("loosening it again: the refused spec converges")
		rewritePolicy(h.policy, capPolicy)
		h.running(ctx)
		Eventually(h.a.phase(ctx, h.name)).WithTimeout(converge).Should(Equal(model.PhaseRunning))
	})

	It("reloads the policy on SIGHUP", func(ctx SpecContext) {
		// The policy path is a link into another directory, and the rescan
		// is long: an edit of its target is seen on SIGHUP and nothing else.
		target := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		rewritePolicy(target, capPolicy)
		h := startUnderPolicy(ctx, capPolicy, "--rescan", "1h")
		Expect(os.Remove(h.policy)).To(Succeed())
		Expect(os.Symlink(target, h.policy)).To(Succeed())
		id := h.recreatedAfterRemoval(ctx)
		Eventually(h.a.phase(ctx, h.name)).WithTimeout(converge).Should(Equal(model.PhaseRunning))

		Expect(os.WriteFile(target, []byte("# the baseline\n"), 0o600)).To(Succeed())
		Consistently(h.a.phase(ctx, h.name)).WithTimeout(quietWindow).Should(Equal(model.PhaseRunning), "not reloaded before SIGHUP")
		Expect(h.a.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		h.refusedButLeftRunning(ctx, id, "allowedCapabilities")
		Expect(h.a.Exited()).To(BeFalse(), "SIGHUP does not end the agent")
	})

	It("refuses at the next create a symlink planted below an allowed bind path after apply", func(ctx SpecContext) {
		base := GinkgoT().TempDir()
		repo := filepath.Join(base, "work", "repo")
		Expect(os.MkdirAll(filepath.Join(repo, "src"), 0o755)).To(Succeed())
		h := &policyHarness{name: fname("bind"), policy: filepath.Join(base, "policy.yaml")}
		rewritePolicy(h.policy, fmt.Sprintf("allowedBindPaths: [%s]\n", filepath.Join(base, "work")))
		h.a = startAgent("--policy", h.policy)
		h.instance = h.a.instance(ctx)
		src := filepath.Join(repo, "src")
		_, err := h.a.API().Apply(ctx, []byte(Spec(h.name, tickArgs, "network: none",
			fmt.Sprintf("mounts: [{type: bind, source: %s, target: /data}]", src))), "application/yaml", false)
		Expect(err).NotTo(HaveOccurred())
		id := h.recreatedAfterRemoval(ctx)
		in, err := dcli.ContainerInspect(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Mounts).To(ContainElement(HaveField("Source", src)))

		By("replacing a directory below the allowed path with a link to /")
		Expect(os.Rename(repo, repo+".old")).To(Succeed())
		Expect(os.Symlink("/", repo)).To(Succeed())
		h.refusedButLeftRunning(ctx, id, "allowedBindPaths")
		st, err := h.a.Status(ctx, h.name)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Message).To(ContainSubstring(repo + " is a symlink"))
		h.refusedOnce(ctx, "allowedBindPaths")
	})

	It("stores a spec file the policy refuses as Refused: the old definition is not in force, its container runs on", func(ctx SpecContext) {
		a := startAgent()
		instance := a.instance(ctx)
		name := fname("file")
		a.WriteSpec(name+".yaml", Spec(name, tickArgs, "network: none"))
		id := ""
		Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, name)(); return err }).WithTimeout(converge).Should(Succeed())

		a.WriteSpec(name+".yaml", capSpec(name, []string{"sleep"}))
		Eventually(func() string { return a.mustCLI(ctx, "get") }).WithTimeout(converge).Should(
			MatchRegexp(`(?m)^%s\s+Refused\s.*runs under a spec the policy now refuses`, name))
		v, err := a.API().Get(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Spec.Spec.CapAdd).To(Equal([]string{"SYS_ADMIN"}), "the stored definition is the refused one, not the last good")
		Expect(a.runCLI(ctx, "get").stderr).NotTo(ContainSubstring(name+".yaml"), "a refusal by policy is not a file error")
		Consistently(runningOf(ctx, dcli, instance, name)).WithTimeout(quietWindow).Should(Equal(id), "its container is neither removed nor replaced")

		By("a parse error still keeps the last good spec (here the refused one) in force")
		a.WriteSpec(name+".yaml", "apiVersion: reconciler/v1\nkind: [Container\n")
		Eventually(func() string { return a.runCLI(ctx, "get").stderr }).WithTimeout(converge).Should(ContainSubstring(name + ".yaml"))
		v, err = a.API().Get(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Spec.Spec.CapAdd).To(Equal([]string{"SYS_ADMIN"}))
	})

	It("lets the file that has a spec name keep it, across rescans and restarts; validate agrees", func(ctx SpecContext) {
		a := startAgent()
		instance := a.instance(ctx)
		name := fname("owned")
		a.WriteSpec("b.yaml", Spec(name, tickArgs, "network: none"))
		id := ""
		Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, name)(); return err }).WithTimeout(converge).Should(Succeed())

		a.WriteSpec("00-x.yaml", Spec(name, []string{"sleep"}, "network: none"))
		owner, thief := filepath.Join(a.SpecsDir, "b.yaml"), filepath.Join(a.SpecsDir, "00-x.yaml")
		claim := fmt.Sprintf("%s:4: metadata.name: spec %q is already defined in %s, which keeps it", thief, name, owner)
		Eventually(func() string { return a.runCLI(ctx, "get").stderr }).WithTimeout(converge).Should(ContainSubstring(claim))
		// The refusal shows in get as soon as the file is read; its event is
		// recorded just after.
		Eventually(func() ([]model.Event, error) { return a.API().Events(ctx, api.EventQuery{}) }).WithTimeout(converge).
			Should(ContainElement(And(HaveField("Reason", "InvalidSpecFile"), HaveField("Type", model.EventWarning),
				HaveField("Message", ContainSubstring(claim)))))

		a.Stop()
		a.Start()
		Eventually(func() string { return a.runCLI(ctx, "get").stderr }).WithTimeout(converge).Should(ContainSubstring(claim))
		Consistently(runningOf(ctx, dcli, instance, name)).WithTimeout(quietWindow).Should(Equal(id), "b.yaml's container stays")
		v, err := a.API().Get(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Source.Path).To(Equal(owner))

		res := a.runCLI(ctx, "validate", owner, thief)
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring(fmt.Sprintf("%s:4: metadata.name: spec %q is already defined in %s", thief, name, owner)))
	})
})
