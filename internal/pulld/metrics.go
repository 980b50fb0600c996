package pulld

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pushpull/pushpull/manifest"
)

// Reconcile results, the values of the result label of pulld_reconciles_total.
const (
	resultOK     = "ok"     // every env serves what the manifest says
	resultFailed = "failed" // some env failed, or waits for a retry
	resultError  = "error"  // the manifest could not be read or used; nothing was done
)

// metrics are pulld's Prometheus metrics, on a registry of their own so
// that nothing else linked into the binary adds to /metrics.
type metrics struct {
	reg              *prometheus.Registry
	reconciles       *prometheus.CounterVec
	actions          *prometheus.CounterVec
	actionDuration   *prometheus.HistogramVec
	downloaded       prometheus.Counter
	lastSuccess      prometheus.Gauge
	nudges           *prometheus.CounterVec
	bucketErrors     prometheus.Counter
	statusErrors     prometheus.Counter
	manifestRevision prometheus.Gauge
	envState         *prometheus.GaugeVec
}

// allStates are the states pulld_env_state reports, one series each.
var allStates = []manifest.State{
	manifest.StateUnknown, manifest.StateDeploying, manifest.StateServing,
	manifest.StateFailed, manifest.StateRolledBack, manifest.StateStopped,
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulld_reconciles_total",
			Help: "Reconciles run, by result: ok (every env serves its manifest entry), failed (some env failed), error (the manifest could not be read or used).",
		}, []string{"result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulld_actions_total",
			Help: "Deploys, rollbacks, restarts and stops run through pkginstall, by action and result (ok or failed).",
		}, []string{"action", "result"}),
		actionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulld_action_duration_seconds",
			Help:    "Duration of deploys, rollbacks, restarts and stops, scripts included.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 12), // 0.1 s … 6 h
		}, []string{"action"}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulld_downloaded_bytes_total",
			Help: "Package bytes downloaded from the bucket.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulld_last_success_timestamp_seconds",
			Help: "Unix time of the end of the last reconcile after which every env served its manifest entry.",
		}),
		nudges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulld_nudges_total",
			Help: "Nudges received, by source.",
		}, []string{"source"}),
		bucketErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulld_bucket_errors_total",
			Help: "Failed reads of the manifest.",
		}),
		statusErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulld_status_write_errors_total",
			Help: "Failed writes of the status document.",
		}),
		manifestRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulld_manifest_revision",
			Help: "Revision of the manifest pulld last acted on.",
		}),
		envState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulld_env_state",
			Help: "1 for the state each env is in, 0 for the others.",
		}, []string{"env", "state"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pulld_build_info",
		Help:        "Always 1; the version label is pulld's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.reg.MustRegister(m.reconciles, m.actions, m.actionDuration, m.downloaded, m.lastSuccess,
		m.nudges, m.bucketErrors, m.statusErrors, m.manifestRevision, m.envState, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{resultOK, resultFailed, resultError} {
		m.reconciles.WithLabelValues(r) // export zeros, so rate() works from the start
	}
	return m
}

// setEnvStates replaces the pulld_env_state series with those of envs.
func (m *metrics) setEnvStates(envs []manifest.EnvStatus) {
	m.envState.Reset()
	for _, e := range envs {
		for _, s := range allStates {
			v := 0.0
			if e.State == s {
				v = 1
			}
			m.envState.WithLabelValues(e.Env, string(s)).Set(v)
		}
	}
}
