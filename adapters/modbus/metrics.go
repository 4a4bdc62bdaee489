package modbus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// errorKinds are the values of the kind label of the errors metric.
var errorKinds = [...]string{"timeout", "exception", "frame", "connection"}

// deviceMetrics are the Modbus metrics of one device. Every series carries
// the device name as a constant label, so the collectors of several devices
// register side by side in one registry. Nothing is registered globally.
type deviceMetrics struct {
	requests    prometheus.Counter
	errors      *prometheus.CounterVec
	byKind      [len(errorKinds)]prometheus.Counter
	latency     prometheus.Histogram
	lastSuccess prometheus.Gauge
}

func newDeviceMetrics(device string) *deviceMetrics {
	labels := prometheus.Labels{"device": device}
	m := &deviceMetrics{
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldbridge_modbus_requests_total", ConstLabels: labels,
			Help: "Modbus requests sent to the device (reads and writes).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_modbus_errors_total", ConstLabels: labels,
			Help: "Failed Modbus requests by kind: timeout, exception, frame (malformed reply) or connection.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldbridge_modbus_request_duration_seconds", ConstLabels: labels,
			Help:    "Time from sending a Modbus request to its reply or failure.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldbridge_modbus_last_success_timestamp_seconds", ConstLabels: labels,
			Help: "Unix time of the device's last successful request.",
		}),
	}
	for i, k := range errorKinds {
		// Created up front so that every kind is exported, at 0, from the start.
		m.byKind[i] = m.errors.WithLabelValues(k)
	}
	return m
}

// observe records one request that started at start and ended with err.
func (m *deviceMetrics) observe(start time.Time, err error) {
	now := time.Now()
	m.requests.Inc()
	m.latency.Observe(now.Sub(start).Seconds())
	if err == nil {
		m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		return
	}
	kind := errorKind(err)
	for i, k := range errorKinds {
		if k == kind {
			m.byKind[i].Inc()
		}
	}
}

// Describe implements prometheus.Collector.
func (m *deviceMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.errors.Describe(ch)
	m.latency.Describe(ch)
	m.lastSuccess.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *deviceMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.errors.Collect(ch)
	m.latency.Collect(ch)
	m.lastSuccess.Collect(ch)
}

// Collector returns the device's Modbus metrics (requests, errors by kind,
// request latency, last success), unregistered: the gateway registers it
// in its own registry. Each device has its own; they register side by side.
func (d *Device) Collector() prometheus.Collector { return d.metrics }
