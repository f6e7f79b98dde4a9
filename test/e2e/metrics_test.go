package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// reconnectMax is the agent's longest wait between two tries to reach the
// daemon.
const reconnectMax = 10 * time.Second

var _ = Describe("Metrics and probes", func() {
	It("count exactly what a crash, a restart and a delete did", func(ctx SpecContext) {
		a := startAgent()
		before := a.Metrics()
		a.WriteSpec("crashy.yaml", Spec("crashy", []string{"exit", "--code", "1", "--after", "1s"},
			"restartPolicy: OnFailure", "maxRestarts: 1"))
		failed := `reconciler_specs{phase="Failed"}`
		// Two runs of one second each, the second right after the first.
		Eventually(a.Metrics).WithTimeout(converge + 2*time.Second + startBudget).
			Should(HaveKeyWithValue(failed, before[failed]+1))

		a.RemoveSpec("crashy.yaml")
		Eventually(func() int { return len(containers(ctx, "crashy")) }).
			WithTimeout(rescan + resync + startBudget).Should(BeZero())
		Eventually(a.Metrics).WithTimeout(resync).Should(HaveKeyWithValue(failed, before[failed]))
		after := a.Metrics()

		delta := func(key string) float64 {
			GinkgoHelper()
			Expect(after).To(HaveKey(key))
			return after[key] - before[key]
		}
		// Histogram counts are keyed name{labels}_count (see Agent.Metrics).
		want := map[string]float64{
			`reconciler_container_exits_total{reason="Error"}`:                     2,
			`reconciler_container_exits_total{reason="StoppedByAgent"}`:            0,
			`reconciler_container_exits_total{reason="External"}`:                  0,
			`reconciler_container_restarts_total`:                                  1,
			`reconciler_container_operations_total{operation="create"}`:            1,
			`reconciler_container_operations_total{operation="start"}`:             2,
			`reconciler_container_operations_total{operation="stop"}`:              0,
			`reconciler_container_operations_total{operation="remove"}`:            1,
			`reconciler_docker_events_total{action="create"}`:                      1,
			`reconciler_docker_events_total{action="start"}`:                       2,
			`reconciler_docker_events_total{action="die"}`:                         2,
			`reconciler_docker_events_total{action="destroy"}`:                     1,
			`reconciler_reconcile_total{result="error"}`:                           0,
			`reconciler_event_stream_reconnects_total`:                             0,
			`reconciler_spec_errors`:                                               0,
			`reconciler_convergence_seconds_count`:                                 1,
			`reconciler_docker_request_errors_total{operation="create"}`:           0,
			`reconciler_docker_request_errors_total{operation="start"}`:            0,
			`reconciler_docker_request_duration_seconds{operation="create"}_count`: 1,
		}
		wrong := map[string]string{}
		for key, w := range want {
			if d := delta(key); d != w {
				wrong[key] = fmt.Sprintf("moved by %v, want %v", d, w)
			}
		}
		Expect(wrong).To(BeEmpty(), "counter deltas over the lifecycle")
		for _, phase := range []string{"Pending", "Running", "Backoff", "Succeeded", "Failed", "Error"} {
			key := `reconciler_specs{phase="` + phase + `"}`
			Expect(delta(key)).To(BeZero(), "a deleted spec leaves no phase behind: "+key)
		}
		Expect(delta(`reconciler_reconcile_total{result="success"}`)).To(BeNumerically(">", 0))
		Expect(delta(`reconciler_workqueue_adds_total`)).To(BeNumerically(">", 0))
		Expect(delta(`reconciler_reconcile_duration_seconds_count`)).To(BeNumerically(">", 0))
		Expect(after).To(HaveKeyWithValue(`reconciler_ready`, 1.0))
		Expect(after).To(HaveKeyWithValue(`reconciler_healthy`, 1.0))
	})

	It("say not ready while the daemon is unreachable, and ready once it answers", func(ctx SpecContext) {
		daemon := newDaemonProxy()
		a := launchAgent("--docker-host", "unix://"+daemon.path)
		Eventually(a.probe("/healthz")).WithTimeout(startBudget).Should(Equal(http.StatusOK),
			func() string { return "alive while the daemon is away; log:\n" + a.Log() })
		Expect(a.probe("/readyz")()).To(Equal(http.StatusServiceUnavailable))

		daemon.restore()
		Eventually(a.probe("/readyz")).WithTimeout(reconnectMax + startBudget).Should(Equal(http.StatusOK))
		before := a.Metrics()
		Expect(before).To(HaveKeyWithValue(`reconciler_ready`, 1.0))

		daemon.cut()
		Eventually(a.probe("/readyz")).WithTimeout(resync + startBudget).Should(Equal(http.StatusServiceUnavailable))
		Expect(a.probe("/healthz")()).To(Equal(http.StatusOK), "a daemon away is no reason to restart the agent")
		Expect(a.Metrics()).To(HaveKeyWithValue(`reconciler_ready`, 0.0))

		daemon.restore()
		Eventually(a.probe("/readyz")).WithTimeout(reconnectMax + resync + startBudget).Should(Equal(http.StatusOK))
		after := a.Metrics()
		Expect(after[`reconciler_event_stream_reconnects_total`]-before[`reconciler_event_stream_reconnects_total`]).
			To(Equal(1.0), "one gap, one reconnect")
		Expect(after[`reconciler_docker_request_errors_total{operation="ping"}`]).
			To(BeNumerically(">", before[`reconciler_docker_request_errors_total{operation="ping"}`]))
	})
})

// probe returns the status code of a GET of path on the metrics address.
func (a *Agent) probe(path string) func() (int, error) {
	return func() (int, error) {
		resp, err := http.Get("http://" + a.MetricsAddr + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// daemonProxy is a unix socket that forwards to the test's Docker daemon:
// an agent pointed at it loses the daemon at cut, as when dockerd stops,
// and finds it again at restore. It starts cut.
type daemonProxy struct {
	path            string
	network, target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
}

func newDaemonProxy() *daemonProxy {
	u, err := client.ParseHostURL(dcli.DaemonHost())
	Expect(err).NotTo(HaveOccurred())
	// For a unix host, Host holds the socket's path.
	p := &daemonProxy{path: filepath.Join(GinkgoT().TempDir(), "docker.sock"), network: u.Scheme, target: u.Host,
		conns: map[net.Conn]struct{}{}}
	DeferCleanup(p.cut)
	return p
}

func (p *daemonProxy) restore() {
	l, err := net.Listen("unix", p.path)
	Expect(err).NotTo(HaveOccurred())
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

// cut closes the socket and every connection through it.
func (p *daemonProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *daemonProxy) forward(c net.Conn) {
	d, err := net.Dial(p.network, p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, d) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(d, c)
	go pipe(c, d)
	<-done
	_ = c.Close()
	_ = d.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, d)
	p.mu.Unlock()
}

// track registers a forwarded pair, or closes it when the proxy was cut
// meanwhile.
func (p *daemonProxy) track(c, d net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l == nil {
		_ = c.Close()
		_ = d.Close()
		return false
	}
	p.conns[c], p.conns[d] = struct{}{}, struct{}{}
	return true
}
