// Package metrics holds the Prometheus metrics of a Palvella server: runs
// by status, job queue depth and wait, job and action durations, plugin
// state and restarts, trigger firings and rejections. The metrics live in
// one registry per server ([New]) rather than in the global default
// registry, so that several servers (tests, a program embedding two) do
// not share counters.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are one server's metrics.
type Metrics struct {
	reg *prometheus.Registry

	// RunsStarted counts runs started, by trigger type.
	RunsStarted *prometheus.CounterVec
	// RunsFinished counts runs that ended, by status.
	RunsFinished *prometheus.CounterVec
	// RunsActive is the number of runs not ended, by status.
	RunsActive *prometheus.GaugeVec
	// JobsQueued is the number of jobs waiting for a worker.
	JobsQueued prometheus.Gauge
	// JobQueueWait is how long jobs waited between queued and running.
	JobQueueWait prometheus.Histogram
	// JobDuration and ActionDuration are how long jobs and actions ran,
	// by final status.
	JobDuration    *prometheus.HistogramVec
	ActionDuration *prometheus.HistogramVec
	// TriggerFirings counts trigger firings by type and outcome
	// (started, rejected, dropped, failed); TriggerRejections counts
	// rejected webhook calls by reason.
	TriggerFirings    *prometheus.CounterVec
	TriggerRejections *prometheus.CounterVec
	// WebhookLatency is the time from a webhook call's arrival to its run
	// being queued.
	WebhookLatency prometheus.Histogram
	// LogFollowers is the number of live log followers.
	LogFollowers prometheus.Gauge
	// PluginCalls is how long calls to plugins took, by plugin, gRPC
	// method and outcome (ok or error); streams count their opening.
	PluginCalls *prometheus.HistogramVec
}

// PluginState is what the plugin collector reads about one plugin.
type PluginState struct {
	Name     string
	State    string
	Restarts int
}

// New returns a fresh set of metrics. plugins, if not nil, is read at each
// scrape for the plugin gauges.
func New(plugins func() []PluginState) *Metrics {
	durations := []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		RunsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palvella_runs_started_total",
			Help: "Runs started, by trigger type."}, []string{"trigger"}),
		RunsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palvella_runs_finished_total",
			Help: "Runs that ended, by final status."}, []string{"status"}),
		RunsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "palvella_runs_active",
			Help: "Runs not ended, by status."}, []string{"status"}),
		JobsQueued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "palvella_jobs_queued",
			Help: "Jobs queued and waiting for a worker."}),
		JobQueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "palvella_job_queue_wait_seconds",
			Help: "Time jobs waited between queued and running.", Buckets: durations}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "palvella_job_duration_seconds",
			Help: "Time jobs ran, by final status.", Buckets: durations}, []string{"status"}),
		ActionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "palvella_action_duration_seconds",
			Help: "Time actions ran, by type and final status.", Buckets: durations}, []string{"type", "status"}),
		TriggerFirings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palvella_trigger_firings_total",
			Help: "Trigger firings, by trigger type and outcome."}, []string{"type", "outcome"}),
		TriggerRejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palvella_webhook_rejections_total",
			Help: "Rejected webhook calls, by reason."}, []string{"reason"}),
		WebhookLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "palvella_webhook_to_queued_seconds",
			Help: "Time from a webhook call's arrival to its run being queued.", Buckets: prometheus.DefBuckets}),
		LogFollowers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "palvella_log_followers",
			Help: "Live log followers attached."}),
		PluginCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "palvella_plugin_call_seconds",
			Help:    "Time calls to plugins took, by plugin, method and outcome; streams count their opening.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 5}}, []string{"plugin", "method", "outcome"}),
	}
	m.reg.MustRegister(m.RunsStarted, m.RunsFinished, m.RunsActive, m.JobsQueued, m.JobQueueWait, m.JobDuration,
		m.ActionDuration, m.TriggerFirings, m.TriggerRejections, m.WebhookLatency, m.LogFollowers, m.PluginCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if plugins != nil {
		m.reg.MustRegister(&pluginCollector{list: plugins})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry, for a program that adds its own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	pluginUp = prometheus.NewDesc("palvella_plugin_up",
		"1 when the plugin is running, by plugin and state.", []string{"plugin", "state"}, nil)
	pluginRestarts = prometheus.NewDesc("palvella_plugin_restarts_total",
		"Times the plugin host restarted a crashed plugin.", []string{"plugin"}, nil)
)

// pluginCollector reads the plugin host's state at each scrape.
type pluginCollector struct{ list func() []PluginState }

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginUp
	ch <- pluginRestarts
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.list() {
		up := 0.0
		if p.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUp, prometheus.GaugeValue, up, p.Name, p.State)
		ch <- prometheus.MustNewConstMetric(pluginRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
	}
}

// ObservePluginCall records one call to a plugin. A nil Metrics records
// nothing.
func (m *Metrics) ObservePluginCall(plugin, method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.PluginCalls.WithLabelValues(plugin, method, outcome).Observe(d.Seconds())
}
