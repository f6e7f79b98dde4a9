package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

var tickArgs = []string{"tick", "--interval", "1s"}

// policyScenario writes specs that go beyond the baseline profile: each is
// refused with an error naming the field and the policy knob, no container
// is created, and the agent-level policy file lets three of them run.
func policyScenario(ctx SpecContext) {
	bindSrc := GinkgoT().TempDir()
	refused := []struct {
		name, more, field, knob string
		allowed                 bool
	}{
		{fname("privileged"), "privileged: true", "spec.privileged", "allowPrivileged", true},
		{fname("bind"), fmt.Sprintf("mounts: [{type: bind, source: %s, target: /data}]", bindSrc), "spec.mounts[0].source", "allowedBindPaths", true},
		{fname("sysadmin"), "capAdd: [SYS_ADMIN]", "spec.capAdd[0]", "allowedCapabilities", true},
		{fname("hostnet"), "network: host", "spec.network", "allowHostNetwork", false},
		{fname("hostpid"), "hostPID: true", "spec.hostPID", "allowHostPID", false},
		{fname("device"), "devices: [/dev/null]", "spec.devices[0]", "allowDevices", false},
		{fname("seccomp"), "securityOpt: [seccomp=unconfined]", "spec.securityOpt[0]", "allowUnconfined", false},
	}
	a := startAgent()
	instance := a.instance(ctx)
	for _, r := range refused {
		a.WriteSpec(r.name+".yaml", Spec(r.name, tickArgs, r.more))
	}
	// A spec file the policy refuses is stored and shown Refused (not kept
	// at an older definition as a file error would be).
	for _, r := range refused {
		Eventually(func() (model.Status, error) { return a.Status(ctx, r.name) }).WithTimeout(converge).Should(And(
			HaveField("Phase", model.PhaseRefused),
			HaveField("Message", And(ContainSubstring(r.name+".yaml: "), ContainSubstring(r.field), ContainSubstring("refused by policy"),
				ContainSubstring(r.knob)))), "the status of %s", r.name)
		Expect(a.Log()).To(ContainSubstring(r.field+": "), "the agent log reports %s", r.name)
	}
	m := a.Metrics()
	for _, r := range refused {
		Expect(m).To(HaveKeyWithValue(fmt.Sprintf("reconciler_policy_refusals_total{rule=%q}", r.knob), 1.0))
	}
	Expect(m).To(HaveKeyWithValue("reconciler_spec_errors", 0.0), "a refusal by policy is not a file error")
	st, err := a.Status(ctx, refused[0].name)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "refused: %s\n", st.Message)
	_, err = a.API().Apply(ctx, []byte(Spec(fname("api-privileged"), tickArgs, "privileged: true")), "application/yaml", false)
	var apiErr *api.APIError
	Expect(err).To(BeAssignableToTypeOf(apiErr), "the API refuses it too")
	Expect(err.Error()).To(And(ContainSubstring("refused by policy"), ContainSubstring("allowPrivileged")))
	Consistently(func() map[string][]container.Summary {
		f, err := listFleet(ctx, dcli, instance)
		Expect(err).NotTo(HaveOccurred())
		return f.bySpec
	}).WithTimeout(resync).Should(BeEmpty(), "no container for a refused spec")

	By("an agent policy file allows privileged, a bind path and SYS_ADMIN")
	policy := filepath.Join(a.Dir, "policy.yaml")
	Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowPrivileged: true\nallowedCapabilities: [SYS_ADMIN]\nallowedBindPaths: [%s]\n", bindSrc)), 0o600)).To(Succeed())
	a.Stop()
	a.ExtraArgs = append(a.ExtraArgs, "--policy", policy)
	a.Start()
	allowed := 0
	for _, r := range refused {
		if r.allowed {
			allowed++
		}
	}
	for _, r := range refused {
		if !r.allowed {
			Eventually(a.phase(ctx, r.name)).WithTimeout(converge).Should(Equal(model.PhaseRefused), r.name)
		}
	}
	// This machine's runtime cannot run privileged containers ("unable to
	// apply caps"): the agent's part is to create it as asked.
	Eventually(func() (bool, error) {
		in, err := dcli.ContainerInspect(ctx, "reconciler-"+fname("privileged"))
		if err != nil {
			return false, err
		}
		return in.HostConfig.Privileged, nil
	}).WithTimeout(converge).Should(BeTrue(), "created privileged")
	for _, n := range []string{fname("bind"), fname("sysadmin")} {
		Eventually(runningOf(ctx, dcli, instance, n)).WithTimeout(converge).Should(Not(BeEmpty()), n)
	}
	in, err := dcli.ContainerInspect(ctx, "reconciler-"+fname("sysadmin"))
	Expect(err).NotTo(HaveOccurred())
	Expect(strings.Join(in.HostConfig.CapAdd, ",")).To(ContainSubstring("SYS_ADMIN"))
	in, err = dcli.ContainerInspect(ctx, "reconciler-"+fname("bind"))
	Expect(err).NotTo(HaveOccurred())
	Expect(in.Mounts).To(ContainElement(HaveField("Source", bindSrc)))
	sum := &faultSummary{Scenario: "policy", Faults: len(refused), Specs: allowed, Converged: allowed}
	sum.note("%d specs beyond the baseline refused with field and knob named, in their status, the log, the metric and the API; %d accepted once the policy file allows them",
		len(refused), allowed)
	sum.print()
}

// secretsScenario gives containers an env value from a file only the
// agent may read, and looks for the value everywhere the agent writes.
func secretsScenario(ctx SpecContext) {
	dir := GinkgoT().TempDir()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	secret := "s3cr3t-" + hex.EncodeToString(b)
	private, open := filepath.Join(dir, "token"), filepath.Join(dir, "token-open")
	Expect(os.WriteFile(private, []byte(secret+"\n"), 0o600)).To(Succeed())
	Expect(os.WriteFile(open, []byte(secret+"\n"), 0o644)).To(Succeed())
	Expect(os.Chmod(open, 0o644)).To(Succeed()) // whatever the umask

	show, job, leaky := fname("env-show"), fname("env-job"), fname("env-open")
	envFrom := func(file string) string {
		return fmt.Sprintf("env: [{name: TOKEN, valueFrom: {file: %s}}, {name: PLAIN, value: visible}]", file)
	}
	policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
	Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedSecretPaths: [%s]\n", dir)), 0o600)).To(Succeed())
	a := startAgent("--policy", policy)
	instance := a.instance(ctx)
	a.WriteSpec(show+".yaml", Spec(show, []string{"env", "--stay"}, envFrom(private)))
	// The ledger keeps a log tail: this one prints nothing of its env.
	a.WriteSpec(job+".yaml", Spec(job, []string{"exit", "--code", "3"}, envFrom(private), "restartPolicy: Never"))
	a.WriteSpec(leaky+".yaml", Spec(leaky, []string{"sleep"}, envFrom(open)))

	id := ""
	Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, show)(); return err }).WithTimeout(setupBudget).Should(Succeed())
	Eventually(func() (string, error) {
		rc, err := dcli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true})
		if err != nil {
			return "", err
		}
		defer rc.Close()
		var out bytes.Buffer
		_, err = stdcopy.StdCopy(&out, io.Discard, rc)
		return out.String(), err
	}).WithTimeout(startBudget).Should(ContainSubstring("TOKEN="+secret), "the container sees the secret")
	Eventually(a.phase(ctx, job)).WithTimeout(converge).Should(Equal(model.PhaseFailed))
	Expect(a.Exits(ctx, job)).To(HaveLen(1))
	Eventually(func() (model.Status, error) { return a.Status(ctx, leaky) }).WithTimeout(converge).Should(And(
		HaveField("Phase", model.PhaseError), HaveField("Message", ContainSubstring("readable by every user"))),
		"a world-readable secret file is refused")
	Expect(a.Log()).To(ContainSubstring("readable by every user"))
	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	Expect(f.bySpec).NotTo(HaveKey(leaky), "no container with a secret anyone could read")

	By("the value appears in none of the agent's outputs")
	places := map[string]string{"agent log (debug)": a.Log()}
	places["GET /v1/specs"] = asJSON(a.API().List(ctx))
	for _, n := range []string{show, job, leaky} {
		places["GET spec "+n] = asJSON(a.API().Get(ctx, n))
		places["exits of "+n] = asJSON(a.API().Exits(ctx, n, 0))
	}
	places["events"] = asJSON(a.API().Events(ctx, api.EventQuery{}))
	places["inspect "+show] = asJSON(a.API().Inspect(ctx, show))
	places["/v1/errors"] = asJSON(a.API().FileErrors(ctx))
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	Expect(err).NotTo(HaveOccurred())
	places["/metrics"] = string(metrics)
	state, err := os.ReadFile(a.State) // status, events and the exit ledger with its log tails
	Expect(err).NotTo(HaveOccurred())
	places["state file"] = string(state)
	Expect(places["exits of "+job]).To(ContainSubstring(`"exitCode":3`), "the ledger was read")
	for where, text := range places {
		Expect(text).NotTo(ContainSubstring(secret), "the secret leaked into the %s", where)
	}
	Expect(places["GET spec "+show]).To(ContainSubstring(private), "the spec shows where the value comes from")
	sum := &faultSummary{Scenario: "secrets", Faults: 1, Specs: 2, Converged: 2}
	sum.note("value seen by the container; absent from %d places (log, API specs/status/events/exits/inspect/errors, metrics, state file); 0644 file refused",
		len(places))
	sum.print()
}

// asJSON is an API answer as JSON, for looking for what must not be in it.
func asJSON(v any, err error) string {
	GinkgoHelper()
	Expect(err).NotTo(HaveOccurred())
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return string(raw)
}

// refusedRestartScenario takes a bind mount's source away under a running
// container and kills it: the policy, checked before every start, refuses
// the restart (the agent cannot stat the source) instead of leaving it to
// the daemon, so there is no create or start at all, let alone a hot loop;
// the spec recovers once the source is back.
func refusedRestartScenario(ctx SpecContext) {
	base := GinkgoT().TempDir()
	src := filepath.Join(base, "src")
	Expect(os.Mkdir(src, 0o755)).To(Succeed())
	policy := filepath.Join(base, "policy.yaml")
	Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedBindPaths: [%s]\n", base)), 0o600)).To(Succeed())
	a := startAgent("--policy", policy)
	instance := a.instance(ctx)
	name := fname("mount")
	a.WriteSpec(name+".yaml", Spec(name, tickArgs, fmt.Sprintf("mounts: [{type: bind, source: %s, target: /data}]", src),
		"backoff: {max: 4s}"))
	id, err := "", error(nil)
	Eventually(func() error { id, err = runningOf(ctx, dcli, instance, name)(); return err }).WithTimeout(setupBudget).Should(Succeed())

	// Running is recorded after the start call returned (and was counted).
	Eventually(a.phase(ctx, name)).WithTimeout(converge).Should(Equal(model.PhaseRunning))
	Expect(os.Remove(src)).To(Succeed())
	before := a.Metrics()
	Expect(dcli.ContainerKill(ctx, id, "SIGKILL")).To(Succeed())
	Eventually(a.exitCount(ctx, name)).WithTimeout(converge).Should(Equal(1), "the kill is recorded")
	Eventually(func() (model.Status, error) { return a.Status(ctx, name) }).WithTimeout(converge).Should(And(
		HaveField("Phase", model.PhaseRefused),
		HaveField("Message", And(ContainSubstring("cannot stat "+src), ContainSubstring("allowedBindPaths")))))
	const watch = 3 * resync
	Consistently(a.exitCount(ctx, name)).WithTimeout(watch).Should(Equal(1), "no further runs")
	after := a.Metrics()
	calls := 0.0
	for _, op := range []string{"create", "start"} {
		key := `reconciler_docker_request_duration_seconds{operation="` + op + `"}_count`
		calls += after[key] - before[key]
	}
	Expect(calls).To(BeZero(), "create and start calls while the source is gone")

	Expect(os.Mkdir(src, 0o755)).To(Succeed())
	Eventually(runningOf(ctx, dcli, instance, name)).WithTimeout(4*time.Second + converge).Should(Not(BeEmpty()))
	sum := &faultSummary{Scenario: "refused restart", Faults: 1, Specs: 1, Converged: 1}
	sum.note("%.0f create/start calls while the bind source was gone (refused by policy, phase Refused); running again once it is back",
		calls)
	sum.print()
}
