package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// WorkerState is what the worker collector reads about one remote worker
// at each scrape.
type WorkerState struct {
	Name     string
	Jobs     int
	Capacity int
	Drained  bool
	// HeartbeatAge is the time since its last heartbeat, in seconds.
	HeartbeatAge float64
	// LeaseAge is the time since the least recently renewed lease this
	// server holds for the worker, in seconds; negative when it holds
	// none.
	LeaseAge float64
}

var (
	workerJobs = prometheus.NewDesc("palvella_worker_jobs",
		"Jobs the remote worker runs, as its last heartbeat said.", []string{"worker"}, nil)
	workerCapacity = prometheus.NewDesc("palvella_worker_capacity",
		"Jobs the remote worker runs at once.", []string{"worker"}, nil)
	workerDrained = prometheus.NewDesc("palvella_worker_drained",
		"1 when the remote worker is drained (leases no more).", []string{"worker"}, nil)
	workerHeartbeat = prometheus.NewDesc("palvella_worker_heartbeat_age_seconds",
		"Time since the remote worker's last heartbeat.", []string{"worker"}, nil)
	workerLease = prometheus.NewDesc("palvella_worker_lease_age_seconds",
		"Time since the least recently renewed of the job leases this server holds for the remote worker (renewed every quarter of --lease-ttl; near half of it, the worker stops the job).", []string{"worker"}, nil)
)

// RegisterWorkers adds the remote workers' gauges, read from list at each
// scrape.
func (m *Metrics) RegisterWorkers(list func() []WorkerState) {
	m.reg.MustRegister(&workerCollector{list: list})
}

type workerCollector struct{ list func() []WorkerState }

func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{workerJobs, workerCapacity, workerDrained, workerHeartbeat, workerLease} {
		ch <- d
	}
}

func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.list() {
		drained := 0.0
		if w.Drained {
			drained = 1
		}
		ch <- prometheus.MustNewConstMetric(workerJobs, prometheus.GaugeValue, float64(w.Jobs), w.Name)
		ch <- prometheus.MustNewConstMetric(workerCapacity, prometheus.GaugeValue, float64(w.Capacity), w.Name)
		ch <- prometheus.MustNewConstMetric(workerDrained, prometheus.GaugeValue, drained, w.Name)
		ch <- prometheus.MustNewConstMetric(workerHeartbeat, prometheus.GaugeValue, w.HeartbeatAge, w.Name)
		if w.LeaseAge >= 0 {
			ch <- prometheus.MustNewConstMetric(workerLease, prometheus.GaugeValue, w.LeaseAge, w.Name)
		}
	}
}
