package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// The daemon-call scenarios of issue 12: a Docker daemon that hangs,
// fails, stalls a pull or drops the event stream, through faultProxy.
var _ = Describe("Faults: Docker calls", Label("faults"), func() {
	It("a list that hangs: not ready naming it, get answers, specs applied meanwhile converge once it answers", func(ctx SpecContext) {
		hungListScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("daemon away at start: specs are taken from the directory and the API and converge once it answers", func(ctx SpecContext) {
		daemonAwayAtStartScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("pulls that hang hold up only their own specs, and stop after the pull timeout", func(ctx SpecContext) {
		stuckPullScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("a failing pull backs off as ImagePullBackOff, doubling, across an agent restart", func(ctx SpecContext) {
		pullBackoffScenario(ctx)
	}, SpecTimeout(5*time.Minute))

	It("the event stream dropped and not answered: the re-list still picks up a change", func(ctx SpecContext) {
		droppedEventsScenario(ctx)
	}, SpecTimeout(5*time.Minute))
})

// hangReady is how soon a hung daemon call must show on /readyz.
const hangReady = 30 * time.Second

// readyz returns /readyz's status code and body.
func (a *Agent) readyz() (int, string) {
	resp, err := http.Get("http://" + a.MetricsAddr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notReadyWith polls /readyz until it answers 503 with a body saying want.
func (a *Agent) notReadyWith(want string) func() error {
	return func() error {
		code, body := a.readyz()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
			return fmt.Errorf("readyz %d %q, want 503 saying %q", code, body, want)
		}
		return nil
	}
}

// specNames lists the specs the API reports, within a second: it reads the
// state file, never the daemon.
func (a *Agent) specNames(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	vs, err := a.API().List(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names, nil
}

// absentSpec is a spec whose image is nowhere: its pull is what the test
// makes of it.
func absentSpec(name string, args []string, more ...string) string {
	return strings.Replace(Spec(name, args, more...), "image: "+images.BoxImage,
		"image: reconciler/absent-"+runID+"-"+name+":1", 1)
}

func hungListScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "docker list hangs"}
	tick := []string{"tick", "--interval", "1s"}
	px := startFaultProxy()
	a := startAgent("--docker-host", px.host())
	before, fromFile, fromAPI := fname("before"), fname("hung-file"), fname("hung-api")
	a.WriteSpec(before+".yaml", Spec(before, tick))
	Eventually(running(ctx, before)).WithTimeout(setupBudget).Should(Not(BeEmpty()), "the proxy forwards calls")
	By("exec streams pass the proxy")
	res, err := a.API().Exec(ctx, before, []string{"/box", "exit", "--code", "3"})
	Expect(err).NotTo(HaveOccurred())
	Expect(res.ExitCode).To(Equal(3))
	pid := a.cmd.Process.Pid

	By("a slow list is not a hang")
	slow := px.delay("GET", `^/containers/json$`, 2*time.Second)
	slowSpec := fname("slow")
	a.WriteSpec(slowSpec+".yaml", Spec(slowSpec, tick))
	Eventually(running(ctx, slowSpec)).WithTimeout(converge).Should(Not(BeEmpty()))
	Consistently(a.Ready).WithTimeout(2*resync).Should(Succeed(), "lists answering within 2s keep the agent ready")
	Expect(slow.hits.Load()).To(BeNumerically(">", 0))
	px.lift(slow)

	By("list hangs")
	hang := px.hang("GET", `^/containers/json$`)
	at := time.Now()
	sum.Faults++
	Eventually(a.notReadyWith("docker call list")).WithTimeout(hangReady).WithPolling(250 * time.Millisecond).Should(Succeed())
	notReady := time.Since(at)
	_, body := a.readyz()

	By("get answers from the state file; specs are taken from the directory and the API")
	Expect(a.specNames(ctx)).To(ContainElement(before))
	Expect(a.mustCLI(ctx, "get")).To(ContainSubstring(before))
	a.WriteSpec(fromFile+".yaml", Spec(fromFile, tick))
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = a.API().Apply(actx, []byte(Spec(fromAPI, tick)), "application/yaml", false)
	cancel()
	Expect(err).NotTo(HaveOccurred(), "apply while the daemon hangs")
	Eventually(a.specNames).WithContext(ctx).WithTimeout(rescan + startBudget).Should(ContainElements(fromFile, fromAPI))
	Expect(containers(ctx, fromFile)).To(BeEmpty(), "nothing is created while every list hangs")
	Expect(hang.hits.Load()).To(BeNumerically(">", 0))

	By("list answers again")
	px.lift(hang)
	lifted := time.Now()
	for _, n := range []string{fromFile, fromAPI, before, slowSpec} {
		Eventually(running(ctx, n)).WithTimeout(converge).Should(Not(BeEmpty()), n)
	}
	convergedIn := time.Since(lifted)
	Eventually(a.Ready).WithTimeout(resync + startBudget).Should(Succeed())
	Expect(a.Exited()).To(BeFalse())
	Expect(a.cmd.Process.Pid).To(Equal(pid), "no agent restart")

	sum.Faults++
	sum.Specs, sum.Converged = 4, 4
	sum.note("lists delayed 2s: ready, converged (%d calls); lists hung: readyz 503 after %s: %q; %d list calls held; 2 specs applied during the hang converged %s after it ended; exec through the proxy exit 3",
		slow.hits.Load(), notReady.Round(100*time.Millisecond), strings.TrimSpace(body), hang.hits.Load(), convergedIn.Round(100*time.Millisecond))
	sum.print()
	Expect(notReady).To(BeNumerically("<=", hangReady))
}

func daemonAwayAtStartScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "daemon away at start"}
	tick := []string{"tick", "--interval", "1s"}
	var notes []string
	for _, way := range []string{"every call but _ping fails", "no socket"} {
		By("the daemon away: " + way)
		px := newFaultProxy()
		var broken *faultRule
		if way == "every call but _ping fails" {
			broken = px.fail("", `^/[^_]`, http.StatusInternalServerError, "injected: daemon broken")
			px.listen()
		}
		a := launchAgent("--docker-host", px.host())
		slug := strings.Fields(way)[0]
		fromFile, fromAPI := fname("away-"+slug+"-file"), fname("away-"+slug+"-api")
		a.WriteSpec(fromFile+".yaml", Spec(fromFile, tick))
		Eventually(func() error {
			_, err := a.API().Apply(ctx, []byte(Spec(fromAPI, tick)), "application/yaml", false)
			return err
		}).WithTimeout(startBudget).Should(Succeed(), "apply while the daemon is away")
		Eventually(a.specNames).WithContext(ctx).WithTimeout(rescan + startBudget).Should(ContainElements(fromFile, fromAPI))
		Expect(a.mustCLI(ctx, "get")).To(And(ContainSubstring(fromFile), ContainSubstring(fromAPI)))
		code, body := a.readyz()
		Expect(code).To(Equal(http.StatusServiceUnavailable), body)
		Expect(containers(ctx, fromFile)).To(BeEmpty())
		if broken != nil {
			Expect(broken.hits.Load()).To(BeNumerically(">", 0))
		}
		sum.Faults++
		pid := a.cmd.Process.Pid

		By("the daemon answers")
		back := time.Now()
		if broken != nil {
			px.lift(broken)
		} else {
			px.listen()
		}
		for _, n := range []string{fromFile, fromAPI} {
			Eventually(running(ctx, n)).WithTimeout(reconnectMax+converge).Should(Not(BeEmpty()), n)
		}
		took := time.Since(back)
		Eventually(a.Ready).WithTimeout(reconnectMax + resync + startBudget).Should(Succeed())
		Expect(a.cmd.Process.Pid).To(Equal(pid), "no agent restart")
		sum.Specs += 2
		sum.Converged += 2
		notes = append(notes, fmt.Sprintf("%s: readyz %q, converged %s after it answered", way,
			strings.TrimSpace(body), took.Round(100*time.Millisecond)))
	}
	sum.Notes = notes
	sum.print()
}

func stuckPullScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "pulls hang"}
	const stall = 6 * time.Second
	tick := []string{"tick", "--interval", "1s"}
	px := startFaultProxy()
	hang := px.hang("POST", `^/images/create$`)
	a := startAgent("--docker-host", px.host(), "--docker-timeout", "pull="+stall.String(),
		"--image-pull-backoff", "1s")
	// Three images for a pool of two: the pool is full and a pull waits.
	stuck := []string{fname("stuck-a"), fname("stuck-b"), fname("stuck-c")}
	for _, n := range stuck {
		a.WriteSpec(n+".yaml", absentSpec(n, tick))
	}
	Eventually(hang.hits.Load).WithTimeout(rescan+startBudget).Should(BeNumerically(">=", 2), "pulls started")
	sum.Faults = 3

	other := fname("other")
	at := time.Now()
	a.WriteSpec(other+".yaml", Spec(other, tick))
	Eventually(running(ctx, other)).WithTimeout(converge).Should(Not(BeEmpty()), "a spec with its image converges beside stuck pulls")
	took := time.Since(at)
	Expect(a.Metrics()).To(HaveKeyWithValue(`reconciler_image_pulls_total{result="success"}`, 0.0))
	for _, n := range stuck {
		st, err := a.Status(ctx, n)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Phase).To(BeElementOf(model.PhasePending, model.PhaseImagePullBackOff), n)
		Expect(containers(ctx, n)).To(BeEmpty())
	}
	Expect(a.Ready()).To(Succeed(), "a stuck pull is not a daemon that hangs")

	By("a pull without progress stops after the pull timeout")
	Eventually(func() float64 { return a.Metrics()[`reconciler_image_pulls_total{result="stalled"}`] }).
		WithTimeout(2*stall + startBudget).Should(BeNumerically(">=", 1))
	Eventually(func() string {
		st, _ := a.Status(ctx, stuck[0])
		return string(st.Phase) + ": " + st.Message
	}).WithTimeout(2*stall + startBudget).Should(ContainSubstring("ImagePullBackOff: Back-off"))
	st, _ := a.Status(ctx, stuck[0])
	Expect(st.Message).To(ContainSubstring("no progress for " + stall.String()))
	m := a.Metrics()
	Expect(m[`reconciler_image_pull_duration_seconds_count`]).To(BeNumerically(">=", 1))

	sum.Specs = 4
	sum.Converged = 1
	sum.note("%s converged in %s while %d pulls were held; stalled pulls %v; %s: %s", other,
		took.Round(100*time.Millisecond), hang.hits.Load(), m[`reconciler_image_pulls_total{result="stalled"}`],
		stuck[0], st.Message)
	sum.print()
}

func pullBackoffScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "pull fails"}
	const initial = time.Second
	const msg = "injected: pull access denied, repository does not exist"
	px := startFaultProxy()
	failing := px.fail("POST", `^/images/create$`, http.StatusInternalServerError, msg)
	a := startAgent("--docker-host", px.host(), "--image-pull-backoff", initial.String())
	n := fname("pullfail")
	a.WriteSpec(n+".yaml", absentSpec(n, []string{"tick"}))
	message := func() string {
		st, err := a.Status(ctx, n)
		if err != nil {
			return err.Error()
		}
		return string(st.Phase) + ": " + st.Message
	}
	var seen []string
	for _, d := range []time.Duration{initial, 2 * initial, 4 * initial} {
		want := fmt.Sprintf("ImagePullBackOff: Back-off %s pulling image ", d)
		Eventually(message).WithTimeout(d + rescan + startBudget).WithPolling(100 * time.Millisecond).
			Should(And(HavePrefix(want), ContainSubstring(msg)))
		seen = append(seen, d.String())
	}
	st, err := a.Status(ctx, n)
	Expect(err).NotTo(HaveOccurred())
	Expect(st.NextTryAt.Sub(st.UpdatedAt)).To(BeNumerically("~", 4*initial, initial))
	Expect(a.Metrics()[`reconciler_image_pulls_total{result="failure"}`]).To(BeNumerically(">=", 3))

	By("an agent restart keeps the back-off")
	a.Stop()
	sum.Faults = int(failing.hits.Load()) + 1
	a.Start()
	Eventually(func() error {
		m := message()
		switch {
		case strings.HasPrefix(m, "ImagePullBackOff: Back-off 8s"):
			return nil
		case strings.HasPrefix(m, "ImagePullBackOff: Back-off 4s"), strings.HasPrefix(m, "Pending: pulling image"):
			return errors.New("not yet: " + m)
		}
		return StopTrying("the back-off did not go on from 4s after the restart: " + m)
	}).WithTimeout(8*initial + startBudget).WithPolling(50 * time.Millisecond).Should(Succeed())
	seen = append(seen, "restart", "8s")
	Expect(containers(ctx, n)).To(BeEmpty())
	sum.Specs = 1
	sum.note("back-off %s; message %q", strings.Join(seen, ", "), message())
	sum.print()
}

func droppedEventsScenario(ctx SpecContext) {
	sum := &faultSummary{Scenario: "event stream dropped"}
	px := startFaultProxy()
	// No periodic resync in this test's time: only the re-list that
	// follows a subscription repairs what an event would have said.
	a := startAgent("--docker-host", px.host(), "--resync", "10m")
	web := fname("dropped")
	a.WriteSpec(web+".yaml", Spec(web, []string{"tick", "--interval", "1s"}))
	Eventually(running(ctx, web)).WithTimeout(setupBudget).Should(Not(BeEmpty()))
	id, err := running(ctx, web)()
	Expect(err).NotTo(HaveOccurred())
	events := func() float64 {
		total := 0.0
		for k, v := range a.Metrics() {
			if strings.HasPrefix(k, "reconciler_docker_events_total") {
				total += v
			}
		}
		return total
	}
	Expect(events()).To(BeNumerically(">", 0), "events reach the agent through the proxy")

	By("the stream is cut and new subscriptions are not answered")
	hold := px.hang("GET", `^/events$`)
	Expect(px.dropEvents()).To(BeNumerically(">=", 1))
	sum.Faults++
	Eventually(hold.hits.Load).WithTimeout(reconnectMax).Should(BeNumerically(">=", 1))
	at := time.Now()
	Expect(dcli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})).To(Succeed())
	Eventually(func() error {
		nid, err := running(ctx, web)()
		if err == nil && nid == id {
			return errors.New("not replaced yet")
		}
		return err
	}).WithTimeout(hangReady+reconnectMax+startBudget).Should(Succeed(), "the re-list after a failed subscription sees the removal")
	took := time.Since(at)
	Eventually(a.notReadyWith("docker call events")).WithTimeout(hangReady).Should(Succeed())
	_, body := a.readyz()

	px.lift(hold)
	Eventually(a.Ready).WithTimeout(reconnectMax + startBudget).Should(Succeed())
	m := a.Metrics()
	Expect(m[`reconciler_event_stream_reconnects_total`]).To(BeNumerically(">=", 1))
	f, err := listFleet(ctx, dcli, a.instance(ctx))
	Expect(err).NotTo(HaveOccurred())
	sum.Specs, sum.Converged = 1, 1
	sum.Duplicates, sum.Orphans = f.duplicates(), len(f.orphans(map[string]bool{web: true}))
	sum.note("removed container replaced %s later from the re-list, resync 10m; %d subscriptions held; readyz %q; %v reconnects",
		took.Round(100*time.Millisecond), hold.hits.Load(), strings.TrimSpace(body), m[`reconciler_event_stream_reconnects_total`])
	sum.print()
	Expect(sum.Duplicates + sum.Orphans).To(BeZero())
}
