package metrics

import "github.com/prometheus/client_golang/prometheus"

// Admission resources, the values of the resource label.
const (
	ResourceMemory = "memory" // bytes
	ResourceCPUs   = "cpus"   // CPUs
)

// Admission holds the collectors of the admission queue
// (--allocatable, --max-running-jobs).
type Admission struct {
	// QueueDepth is how many specs wait in phase Queued.
	QueueDepth prometheus.Gauge
	// QueueWait is the time from entering the queue to being admitted.
	QueueWait   prometheus.Histogram
	Allocatable *prometheus.GaugeVec
	Allocated   *prometheus.GaugeVec
}

func newAdmission(reg *prometheus.Registry) Admission {
	a := Admission{
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_queue_depth", Help: "Specs waiting in the admission queue (phase Queued)."}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_queue_wait_seconds", Help: "Time a spec waited in the admission queue before it was admitted.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 18)}), // 0.25s to about 9h
		Allocatable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_allocatable", Help: "The admission budget (--allocatable): memory in bytes, cpus in CPUs."},
			[]string{"resource"}),
		Allocated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_allocated", Help: "What admitted specs (running or being started) take of the budget: memory in bytes, cpus in CPUs."},
			[]string{"resource"}),
	}
	reg.MustRegister(a.QueueDepth, a.QueueWait, a.Allocatable, a.Allocated)
	for _, r := range []string{ResourceMemory, ResourceCPUs} {
		a.Allocatable.WithLabelValues(r)
		a.Allocated.WithLabelValues(r)
	}
	return a
}
