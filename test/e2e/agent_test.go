package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/images"
)

// countEvents counts the daemon's create and start events for a spec's
// containers between since and until.
func countEvents(ctx context.Context, specName string, since, until time.Time) (creates, starts int) {
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", testLabel+"="+runID),
		filters.Arg("label", "reconciler.spec="+specName))
	msgs, errs := dcli.Events(ctx, events.ListOptions{Filters: f,
		Since: since.Format(time.RFC3339Nano), Until: until.Format(time.RFC3339Nano)})
	for {
		select {
		case m := <-msgs:
			switch m.Action {
			case events.ActionCreate:
				creates++
			case events.ActionStart:
				starts++
			}
		case err := <-errs:
			if err != nil && !errors.Is(err, io.EOF) {
				Expect(err).NotTo(HaveOccurred())
			}
			return creates, starts
		}
	}
}

func running(ctx context.Context, name string) func() (string, error) {
	return func() (string, error) {
		c, err := runningContainer(ctx, name)
		return c.ID, err
	}
}

var _ = Describe("The agent", func() {
	tick := []string{"tick", "--interval", "1s"}
	// web is this run's name for the spec: a container another run left
	// behind (a killed test process) cannot hold it.
	var web string
	BeforeEach(func() { web = fname("web") })

	It("converges a new spec with one create and one start, and no churn after", func(ctx SpecContext) {
		a := startAgent()
		since := time.Now()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, web)()
		// Two resyncs and rescans pass without anything changing.
		Consistently(running(ctx, web)).WithTimeout(2 * resync).Should(Equal(id))
		creates, starts := countEvents(ctx, web, since, time.Now())
		Expect(creates).To(Equal(1), "container creates")
		Expect(starts).To(Equal(1), "container starts")
		c := containers(ctx, web)[0]
		Expect(c.Names).To(ConsistOf("/reconciler-" + web))
		Expect(c.Labels).To(HaveKeyWithValue("reconciler.managed", "true"))
		Expect(c.Labels).To(HaveKey("reconciler.spec-hash"))
		Expect(c.Labels).To(HaveKey("reconciler.instance"))
		inspect, err := dcli.ContainerInspect(ctx, c.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(inspect.HostConfig.RestartPolicy.Name)).To(Equal("no"), "Docker's own restart policy stays off")
	})

	It("replaces the container of a changed spec, with grace", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		old, _ := running(ctx, web)()
		oldHash := containers(ctx, web)[0].Labels["reconciler.spec-hash"]

		a.WriteSpec("web.yaml", Spec(web, []string{"tick", "--interval", "500ms"}))
		Eventually(running(ctx, web)).WithTimeout(converge + 2*time.Second).Should(And(Not(BeEmpty()), Not(Equal(old))))
		Expect(containers(ctx, web)).To(HaveLen(1), "the old container is removed")
		Expect(containers(ctx, web)[0].Labels["reconciler.spec-hash"]).NotTo(Equal(oldHash))
	})

	It("recreates a hand-removed container", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		old, _ := running(ctx, web)()
		Expect(dcli.ContainerRemove(ctx, old, container.RemoveOptions{Force: true})).To(Succeed())
		Eventually(running(ctx, web)).WithTimeout(resync + startBudget).Should(And(Not(BeEmpty()), Not(Equal(old))))
	})

	It("stops and removes the container of a deleted spec file", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		a.RemoveSpec("web.yaml")
		Eventually(func() int { return len(containers(ctx, web)) }).WithTimeout(rescan + resync + 2*time.Second + startBudget).Should(BeZero())
	})

	It("never touches a foreign container holding the wanted name, and reports the conflict", func(ctx SpecContext) {
		a := startAgent()
		decoy, err := dcli.ContainerCreate(ctx, &container.Config{Image: images.BoxImage, Cmd: []string{"sleep"},
			Labels: map[string]string{testLabel: runID}}, nil, nil, nil, "reconciler-squatted")
		Expect(err).NotTo(HaveOccurred())
		Expect(dcli.ContainerStart(ctx, decoy.ID, container.StartOptions{})).To(Succeed())

		a.WriteSpec("squatted.yaml", Spec("squatted", tick))
		Eventually(a.Metrics).WithTimeout(converge).Should(HaveKeyWithValue(`reconciler_specs{phase="Error"}`, 1.0))
		Expect(a.Log()).To(ContainSubstring("NameConflict"))
		Consistently(func() (string, error) {
			in, err := dcli.ContainerInspect(ctx, decoy.ID)
			return in.State.Status, err
		}).WithTimeout(2 * resync).Should(Equal("running"))
		in, err := dcli.ContainerInspect(ctx, decoy.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Name).To(Equal("/reconciler-squatted"), "the decoy is not renamed")
	})

	It("keeps running containers when a file turns invalid, and reports the error", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, web)()

		bad := Spec(web, tick, "resourcs: {memory: 64Mi}")
		line := 1 + strings.Count(bad[:strings.Index(bad, "resourcs")], "\n")
		a.WriteSpec("web.yaml", bad)
		Eventually(a.Metrics).WithTimeout(2 * rescan).Should(HaveKeyWithValue("reconciler_spec_errors", 1.0))
		Eventually(a.Log).Should(And(ContainSubstring(fmt.Sprintf("web.yaml:%d: spec.resourcs: unknown field", line))))
		Consistently(running(ctx, web)).WithTimeout(2 * resync).Should(Equal(id))

		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(a.Metrics).WithTimeout(2 * rescan).Should(HaveKeyWithValue("reconciler_spec_errors", 0.0))
		Expect(running(ctx, web)()).To(Equal(id), "a file fixed back to the same spec changes nothing")
	})

	It("never stops or removes an unlabelled container, even one with a look-alike name", func(ctx SpecContext) {
		a := startAgent()
		var ids []string
		for _, name := range []string{"reconciler-lookalike-" + runID, "plain-" + runID} {
			c, err := dcli.ContainerCreate(ctx, &container.Config{Image: images.BoxImage, Cmd: []string{"sleep"},
				Labels: map[string]string{testLabel: runID, "reconciler.spec": web}}, nil, nil, nil, name)
			Expect(err).NotTo(HaveOccurred())
			Expect(dcli.ContainerStart(ctx, c.ID, container.StartOptions{})).To(Succeed())
			ids = append(ids, c.ID)
		}
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(func() error {
			_, err := dcli.ContainerInspect(ctx, "reconciler-"+web)
			return err
		}).WithTimeout(converge).Should(Succeed())
		a.RemoveSpec("web.yaml")
		Eventually(func() error {
			_, err := dcli.ContainerInspect(ctx, "reconciler-"+web)
			return err
		}).WithTimeout(converge).Should(HaveOccurred())
		Consistently(func() []string {
			var states []string
			for _, id := range ids {
				in, err := dcli.ContainerInspect(ctx, id)
				Expect(err).NotTo(HaveOccurred())
				states = append(states, in.State.Status)
			}
			return states
		}).WithTimeout(2 * resync).Should(Equal([]string{"running", "running"}))
	})

	It("leaves containers running on SIGTERM and adopts them on restart without restarting", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, web)()
		a.Stop()
		Expect(running(ctx, web)()).To(Equal(id), "still running after the agent stopped")
		since := time.Now()
		a.Start()
		Consistently(running(ctx, web)).WithTimeout(2 * resync).Should(Equal(id))
		creates, starts := countEvents(ctx, web, since, time.Now())
		Expect([]int{creates, starts}).To(Equal([]int{0, 0}), "adoption creates and starts nothing")
	})

	It("adopts without duplicates after kill -9, and handles files changed while it was down", func(ctx SpecContext) {
		a := startAgent()
		a.WriteSpec("web.yaml", Spec(web, tick))
		a.WriteSpec("gone.yaml", Spec("gone", tick))
		Eventually(running(ctx, web)).WithTimeout(converge).Should(Not(BeEmpty()))
		Eventually(running(ctx, "gone")).WithTimeout(converge).Should(Not(BeEmpty()))
		id, _ := running(ctx, web)()
		a.Kill9()
		a.RemoveSpec("gone.yaml")
		a.WriteSpec("new.yaml", Spec("new", tick))
		a.Start()
		Eventually(running(ctx, "new")).WithTimeout(converge).Should(Not(BeEmpty()))
		Eventually(func() int { return len(containers(ctx, "gone")) }).WithTimeout(converge).Should(BeZero())
		Expect(running(ctx, web)()).To(Equal(id))
		Expect(containers(ctx, web)).To(HaveLen(1))
	})

	It("refuses to start a second agent on the same state file, within seconds", func(ctx SpecContext) {
		a := startAgent()
		second := exec2(ctx, "agent", "--specs-dir", a.SpecsDir, "--state", a.State,
			"--socket", filepath.Join(a.Dir, "second.sock"), "--metrics-addr", freeAddr())
		Expect(second.err).To(HaveOccurred())
		Expect(second.elapsed).To(BeNumerically("<", 10*time.Second))
		Expect(second.stderr).To(ContainSubstring("locked by another process"))
		Expect(second.stderr).To(ContainSubstring(a.State))
		_, err := os.Stat(a.State)
		Expect(err).NotTo(HaveOccurred())
	})
})
