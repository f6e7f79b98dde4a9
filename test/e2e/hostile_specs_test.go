package e2e

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/container"
	volumeapi "github.com/docker/docker/api/types/volume"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec/spectest"
)

var _ = Describe("Security: hostile specs", func() {
	It("refuses every door through the spec directory, the API and validate, naming the field and the rule", func(ctx SpecContext) {
		secretDir := GinkgoT().TempDir()
		Expect(syscall.Mkfifo(filepath.Join(secretDir, "fifo"), 0o600)).To(Succeed())
		policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedSecretPaths: [%s]\n", secretDir)), 0o600)).To(Succeed())
		a := startAgent("--policy", policy)
		instance := a.instance(ctx)
		volume := fname("shared-data")
		_, err := dcli.VolumeCreate(ctx, volumeapi.CreateOptions{Name: volume, Labels: map[string]string{testLabel: runID}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(dcli.VolumeRemove(ctx, volume, false)).To(Succeed()) })
		doors := spectest.HostileDoors(secretDir, volume)
		file := func(i int) string { return fmt.Sprintf("hostile-%02d.yaml", i) }
		name := func(i int) string { return fname(fmt.Sprintf("hostile-%02d", i)) }

		By("the same spec without a door passes each entry: the positive control")
		benign := fname("benign")
		a.WriteSpec(benign+".yaml", Spec(benign, tickArgs))
		_, err = a.API().Apply(ctx, []byte(Spec(fname("benign-api"), tickArgs)), "application/yaml", true)
		Expect(err).NotTo(HaveOccurred(), "the API accepts it (dry run)")
		Expect(a.runCLI(ctx, "validate", "--policy", policy, filepath.Join(a.SpecsDir, benign+".yaml")).code).To(Equal(0))
		Eventually(runningOf(ctx, dcli, instance, benign)).WithTimeout(setupBudget).Should(Not(BeEmpty()))

		for i, d := range doors {
			a.WriteSpec(file(i), Spec(name(i), tickArgs, d.Spec...))
		}

		By("the spec directory: a door the policy shuts is stored Refused, naming its field and rule; an invalid spec is a file error")
		invalid := 0
		for _, d := range doors {
			if d.Rule == "" {
				invalid++
			}
		}
		Expect(invalid).To(BeNumerically("<", len(doors)), "most doors are policy refusals")
		var report string
		Eventually(func() int {
			report = a.runCLI(ctx, "get").stderr
			return strings.Count(report, "spec file ")
		}).WithTimeout(converge).Should(Equal(invalid))
		for i, d := range doors {
			if d.Rule == "" {
				Expect(report).To(MatchRegexp(`(?m)^  .*%s:\d+: %s: `, regexp.QuoteMeta(file(i)), regexp.QuoteMeta(d.Field)),
					"get names %s for %q", d.Field, d.Name)
				continue
			}
			Eventually(func() (string, error) {
				v, err := a.API().Get(ctx, name(i))
				if err != nil || v.Status == nil {
					return "", err
				}
				return string(v.Status.Phase) + " " + v.Status.Message, nil
			}).WithTimeout(converge).Should(MatchRegexp(`^Refused .*%s.*%s`, regexp.QuoteMeta(d.Field), d.Rule),
				"the status of %q names %s and %s", d.Name, d.Field, d.Rule)
			Expect(runningOf(ctx, dcli, instance, name(i))()).Error().To(HaveOccurred(), "%q has no container", d.Name)
		}

		By("the API: 400, naming the field and the rule")
		for i, d := range doors {
			_, err := a.API().Apply(ctx, []byte(Spec(name(i), tickArgs, d.Spec...)), "application/yaml", false)
			var apiErr *api.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue(), "%q is refused: %v", d.Name, err)
			Expect(apiErr.Status).To(Equal(400))
			Expect(apiErr.Field).To(Equal(d.Field), d.Name)
			Expect(apiErr.Rule).To(Equal(d.Rule), d.Name)
		}

		By("validate: a non-zero exit and file:line: field")
		for i, d := range doors {
			path := filepath.Join(a.SpecsDir, file(i))
			res := a.runCLI(ctx, "validate", "--policy", policy, path)
			Expect(res.code).NotTo(Equal(0), d.Name)
			Expect(res.stdout+res.stderr).To(MatchRegexp(`%s:\d+: %s: `, regexp.QuoteMeta(path), regexp.QuoteMeta(d.Field)), d.Name)
		}

		By("no container for any of them, while the benign one runs")
		f, err := listFleet(ctx, dcli, instance)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.bySpec).To(HaveLen(1))
		Expect(f.bySpec).To(HaveKey(benign))
		st, err := a.Status(ctx, benign)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Phase).To(Equal(model.PhaseRunning), "the agent keeps working")
		sum := &faultSummary{Scenario: "hostile specs", Faults: len(doors), Specs: 1, Converged: 1}
		sum.note("%d doors refused by the spec directory, the API and validate, each naming field and rule", len(doors))
		sum.print()
	})

	It("secrets: a secret file is read-only in the container and nowhere else; new content replaces the container", func(ctx SpecContext) {
		secretDir := GinkgoT().TempDir()
		value := func() string {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			return "s3cr3t-" + hex.EncodeToString(b)
		}
		first, second := value(), value()
		key := filepath.Join(secretDir, "api-key")
		Expect(os.WriteFile(key, []byte(first), 0o600)).To(Succeed())
		policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		Expect(os.WriteFile(policy, []byte(fmt.Sprintf("allowedSecretPaths: [%s]\n", secretDir)), 0o600)).To(Succeed())
		a := startAgent("--policy", policy)
		instance := a.instance(ctx)
		name := fname("secret-file")
		a.WriteSpec(name+".yaml", cliSpec(name, tickArgs, fmt.Sprintf("secrets: [{file: %s}]", key)))
		var id string
		Eventually(func() (err error) { id, err = runningOf(ctx, dcli, instance, name)(); return err }).WithTimeout(setupBudget).Should(Succeed())

		By("the container reads it at /run/secrets/api-key, and cannot write it")
		Expect(readInContainer(ctx, id, "/run/secrets/api-key")).To(Equal(first))
		Expect(a.runCLI(ctx, "exec", name, "--", "/box", "touch", "--file", "/tmp/writable").code).To(Equal(0),
			"exec writes elsewhere in the container: the positive control")
		res := a.runCLI(ctx, "exec", name, "--", "/box", "touch", "--file", "/run/secrets/api-key")
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stdout + res.stderr).To(ContainSubstring("read-only file system"))

		By("docker inspect shows a read-only bind of the agent's copy, not the content; the env has none of it")
		in, raw, err := dcli.ContainerInspectWithRaw(ctx, id, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(first))
		Expect(strings.Join(in.Config.Env, "\n")).NotTo(ContainSubstring(first))
		var copyPath string
		for _, m := range in.Mounts {
			if m.Destination == "/run/secrets/api-key" {
				copyPath = m.Source
				Expect(m.RW).To(BeFalse())
			}
		}
		Expect(copyPath).To(HavePrefix(filepath.Join(a.Dir, "secrets", instance)+"/"), "the copy lives beside the state file")
		fi, err := os.Stat(filepath.Dir(copyPath))
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o700)))

		By("the content is in none of the agent's outputs")
		places := map[string]string{"agent log": a.Log()}
		places["GET spec"] = asJSON(a.API().Get(ctx, name))
		places["inspect"] = asJSON(a.API().Inspect(ctx, name))
		places["events"] = asJSON(a.API().Events(ctx, api.EventQuery{}))
		state, err := os.ReadFile(a.State)
		Expect(err).NotTo(HaveOccurred())
		places["state file"] = string(state)
		places["describe"] = a.mustCLI(ctx, "describe", name)
		Expect(places["GET spec"]).To(ContainSubstring(key), "the spec shows where the secret comes from")
		for where, text := range places {
			Expect(text).NotTo(ContainSubstring(first), "the secret leaked into the %s", where)
		}

		By("a restarted agent adopts it without replacing it: the HMAC key is kept in the state file")
		a.Stop()
		a.Start()
		Consistently(runningOf(ctx, dcli, instance, name)).WithTimeout(2*resync + rescan).Should(Equal(id))

		By("new content replaces the container, which then reads the new content")
		Expect(os.WriteFile(key, []byte(second), 0o600)).To(Succeed())
		var newID string
		Eventually(func() (string, error) {
			var err error
			newID, err = runningOf(ctx, dcli, instance, name)()
			return newID, err
		}).WithTimeout(resync + 2*startBudget).ShouldNot(Or(BeEmpty(), Equal(id)))
		Expect(readInContainer(ctx, newID, "/run/secrets/api-key")).To(Equal(second))
		_, err = os.Stat(copyPath)
		Expect(os.IsNotExist(err)).To(BeTrue(), "the old copy went with its container: %v", err)

		By("a FIFO in its place is refused without blocking: the running container is kept and the status says why")
		Expect(os.Remove(key)).To(Succeed())
		Expect(syscall.Mkfifo(key, 0o600)).To(Succeed())
		Eventually(func() (model.Status, error) { return a.Status(ctx, name) }).WithTimeout(converge).Should(And(
			HaveField("Message", ContainSubstring("not a regular file (a FIFO)")), HaveField("ContainerID", newID)))
		Expect(runningOf(ctx, dcli, instance, name)()).To(Equal(newID))

		By("deleting the spec removes the container and the agent's copies")
		a.RemoveSpec(name + ".yaml")
		Eventually(func() map[string][]container.Summary {
			f, err := listFleet(ctx, dcli, instance)
			Expect(err).NotTo(HaveOccurred())
			return f.bySpec
		}).WithTimeout(converge).Should(BeEmpty())
		Eventually(func() bool {
			_, err := os.Stat(filepath.Join(a.Dir, "secrets", instance, name))
			return os.IsNotExist(err)
		}).WithTimeout(converge).Should(BeTrue())
	})
})

// readInContainer reads a file as the container sees it, through the
// daemon's archive API (the box image has no cat).
func readInContainer(ctx SpecContext, id, path string) (string, error) {
	rc, _, err := dcli.CopyFromContainer(ctx, id, path)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(tr)
	return string(b), err
}
