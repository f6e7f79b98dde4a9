package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

// budgetWatch follows the daemon's start and die events of this run's
// containers and keeps the most memory (by the specs' requests) and the
// most containers running at once: every start is seen, so no poll can
// miss a moment over the budget.
type budgetWatch struct {
	mu                sync.Mutex
	memory            map[string]int64 // spec name -> its resources.memory
	running           map[string]int64 // container id -> its memory
	maxMemory, maxRun int64
	err               error
}

func watchBudget(ctx context.Context, memory map[string]int64) *budgetWatch {
	w := &budgetWatch{memory: memory, running: map[string]int64{}}
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", testLabel+"="+runID),
		filters.Arg("event", "start"), filters.Arg("event", "die"))
	msgs, errs := dcli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				w.mu.Lock()
				if ctx.Err() == nil {
					w.err = err
				}
				w.mu.Unlock()
				return
			case m := <-msgs:
				w.mu.Lock()
				switch m.Action {
				case events.ActionStart:
					w.running[m.Actor.ID] = w.memory[m.Actor.Attributes["reconciler.spec"]]
				case events.ActionDie:
					delete(w.running, m.Actor.ID)
				}
				var sum int64
				for _, mem := range w.running {
					sum += mem
				}
				w.maxMemory = max(w.maxMemory, sum)
				w.maxRun = max(w.maxRun, int64(len(w.running)))
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *budgetWatch) peaks() (memory, running int64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxMemory, w.maxRun, w.err
}

var _ = Describe("admission", func() {
	It("runs at most the budget while 10 jobs queue, admits them in priority order, and keeps the queue through a kill -9 of the agent", func(ctx SpecContext) {
		const mi = 1 << 20
		// The memory budget fits two jobs; --max-running-jobs 3 is set too
		// but binds later, so memory is what they wait for.
		a := startAgent("--allocatable", "memory=64Mi", "--max-running-jobs", "3")
		// One client for the polls: a client per call leaves a keep-alive
		// connection per call, and the agent serves --http-max-conns.
		cl := a.API()
		status := func(name string) (model.Status, error) {
			v, err := cl.Get(ctx, name)
			if err != nil || v.Status == nil {
				return model.Status{}, fmt.Errorf("status of %s: %v", name, err)
			}
			return *v.Status, nil
		}
		// A job runs long enough for the queue to be seen and for the agent
		// to die with jobs running and queued, and short enough for ten.
		// A quarter of what one start may take under load: two admitted
		// together overlap even when their starts do not come together.
		run := max(2*time.Second+4*startP90, startBudget/4)
		mem := map[string]int64{}

		blocker, huge := fname("adm-blocker"), fname("adm-huge")
		mem[blocker] = 64 * mi
		watch := watchBudget(ctx, mem)
		apply := func(docs ...string) {
			GinkgoHelper()
			_, err := cl.Apply(ctx, []byte(strings.Join(docs, "---\n")), "application/yaml", false)
			Expect(err).NotTo(HaveOccurred())
		}

		By("a spec larger than the whole budget is refused, not queued for ever")
		apply(Spec(huge, []string{"sleep"}, "restartPolicy: Never", "resources: {memory: 128Mi}"))
		Eventually(status).WithArguments(huge).WithTimeout(converge).WithPolling(100 * time.Millisecond).Should(And(
			HaveField("Phase", model.PhaseError),
			HaveField("Message", ContainSubstring("resources.memory 128Mi is more than the agent's whole allocatable memory 64Mi"))))
		Expect(containers(ctx, huge)).To(BeEmpty())

		By("a blocker takes the whole budget, so that the ten arrive into a queue")
		apply(Spec(blocker, []string{"sleep"}, "restartPolicy: Never", "priority: 100", "resources: {memory: 64Mi}"))
		Eventually(status).WithArguments(blocker).WithTimeout(converge).WithPolling(100 * time.Millisecond).
			Should(HaveField("Phase", model.PhaseRunning))

		prios := []int{0, 5, 1, 5, 2, 0, 3, 1, 4, 2}
		jobs := make([]string, len(prios))
		docs := make([]string, len(prios))
		for i, p := range prios {
			jobs[i] = fname(fmt.Sprintf("adm-job%d", i))
			mem[jobs[i]] = 32 * mi
			docs[i] = Spec(jobs[i], []string{"exit", "--code", "0", "--after", run.String()},
				"restartPolicy: Never", fmt.Sprintf("priority: %d", p), "resources: {memory: 32Mi}")
		}
		// Admission order: priority, higher first, then arrival (the order
		// of the documents in the one apply).
		order := slices.Clone(jobs)
		slices.SortStableFunc(order, func(x, y string) int {
			return prios[slices.Index(jobs, y)] - prios[slices.Index(jobs, x)]
		})
		apply(docs...)

		By("all ten wait in phase Queued, each with what it waits for and its position")
		for pos, name := range order {
			Eventually(status).WithArguments(name).WithTimeout(converge).WithPolling(100*time.Millisecond).Should(And(
				HaveField("Phase", model.PhaseQueued),
				HaveField("Message", Equal(fmt.Sprintf("waiting for memory: needs 32Mi, 0 free of 64Mi; position %d of 10", pos+1)))),
				"status of %s", name)
		}
		Expect(a.mustCLI(ctx, "get", order[9])).To(MatchRegexp(`Queued .*position 10 of 10`))
		Expect(a.mustCLI(ctx, "describe", order[0])).To(And(ContainSubstring("Priority:     5"), ContainSubstring("Phase:        Queued")))
		evs, err := cl.Events(ctx, api.EventQuery{Spec: order[9]})
		Expect(err).NotTo(HaveOccurred())
		queued := 0
		for _, e := range evs {
			if e.Reason == "Queued" {
				queued += e.Count
			}
		}
		Expect(queued).To(Equal(1), "one Queued event when it entered the queue, not one per change of position: %+v", evs)
		// The gauges follow the statuses by a moment.
		Eventually(a.Metrics).WithTimeout(resync).Should(And(
			HaveKeyWithValue("reconciler_queue_depth", 10.0),
			HaveKeyWithValue(`reconciler_allocatable{resource="memory"}`, float64(64*mi)),
			HaveKeyWithValue(`reconciler_allocated{resource="memory"}`, float64(64*mi))))
		Expect(containers(ctx, order[0])).To(BeEmpty(), "nothing queued was created")

		By("the blocker goes; the jobs run two at a time")
		Expect(cl.Delete(ctx, blocker)).To(Succeed())
		done := func() int {
			n := 0
			for _, j := range jobs {
				if ex, err := cl.Exits(ctx, j, 1); err == nil && len(ex) > 0 {
					n++
				}
			}
			return n
		}
		// Enough waves for three jobs to have ended.
		wave := run + startBudget
		Eventually(done).WithTimeout(converge + 3*wave).WithPolling(200 * time.Millisecond).Should(BeNumerically(">=", 3))

		By("kill -9 of the agent with jobs running and queued; a new agent on the same state file goes on")
		a.Kill9()
		a.Start()
		cl = a.API()
		m := a.Metrics()
		Expect(m[`reconciler_queue_depth`]).To(BeNumerically(">", 0), "the restarted agent found the queue in the state file")
		Expect(m).To(HaveKeyWithValue(`reconciler_allocatable{resource="memory"}`, float64(64*mi)))

		Eventually(done).WithTimeout(converge + 10*wave).WithPolling(250 * time.Millisecond).Should(Equal(10))

		By("never more than the budget ran, and it was used (two at a time)")
		peakMem, peakRun, err := watch.peaks()
		Expect(err).NotTo(HaveOccurred())
		Expect(peakRun).To(Equal(int64(2)), "two jobs ran at once: the watch sees concurrency")
		Expect(peakMem).To(BeNumerically("<=", 64*mi), "memory of the running containers stayed within --allocatable")

		By("all finished, in priority order")
		started := map[string]time.Time{}
		for _, j := range jobs {
			ex, err := cl.Exits(ctx, j, 0)
			Expect(err).NotTo(HaveOccurred())
			Expect(ex).To(HaveLen(1), "%s ran once", j)
			Expect(ex[0].Reason).To(Equal(model.ReasonCompleted), "%s: %+v", j, ex[0])
			started[j] = ex[0].StartedAt
		}
		byStart := slices.Clone(jobs)
		slices.SortFunc(byStart, func(x, y string) int { return started[x].Compare(started[y]) })
		// Two slots: the two admitted at once may start in either order,
		// nothing else may move.
		for i, name := range byStart {
			Expect(slices.Index(order, name)-i).To(BeNumerically("~", 0, 1),
				"started in order %v, want the queue's order %v", byStart, order)
		}

		Eventually(a.Metrics).WithTimeout(resync).Should(And(
			HaveKeyWithValue("reconciler_queue_depth", 0.0),
			HaveKeyWithValue(`reconciler_allocated{resource="memory"}`, 0.0)))
		m = a.Metrics()
		Expect(m["reconciler_queue_wait_seconds_count"]).To(BeNumerically(">", 0), "the new agent admitted queued jobs and timed their wait")
		Expect(m).To(HaveKey(`reconciler_specs{phase="Queued"}`))
	})
})
