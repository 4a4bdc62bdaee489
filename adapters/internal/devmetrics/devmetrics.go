// Package devmetrics builds the Prometheus metrics of one device of a
// driver. Every series carries the device name as a constant label, so the
// sets of several devices register side by side in one registry; nothing
// is registered globally.
package devmetrics

import "github.com/prometheus/client_golang/prometheus"

// Set is the metrics of one device, a prometheus.Collector of every metric
// made through it.
type Set struct {
	labels  prometheus.Labels
	members []prometheus.Collector
}

var _ prometheus.Collector = (*Set)(nil)

// New returns an empty set for device.
func New(device string) *Set {
	return &Set{labels: prometheus.Labels{"device": device}}
}

// Counter adds a counter.
func (s *Set) Counter(name, help string) prometheus.Counter {
	return add(s, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: s.labels}))
}

// Counters adds a counter with one label and returns its series for
// values, in order. They are created up front so that every value is
// exported, at 0, from the start.
func (s *Set) Counters(name, help, label string, values ...string) []prometheus.Counter {
	vec := add(s, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: s.labels}, []string{label}))
	out := make([]prometheus.Counter, len(values))
	for i, v := range values {
		out[i] = vec.WithLabelValues(v)
	}
	return out
}

// Gauge adds a gauge.
func (s *Set) Gauge(name, help string) prometheus.Gauge {
	return add(s, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: s.labels}))
}

// Histogram adds a histogram with the given bucket bounds.
func (s *Set) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return add(s, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: s.labels, Buckets: buckets}))
}

func add[C prometheus.Collector](s *Set, c C) C {
	s.members = append(s.members, c)
	return c
}

// Describe implements prometheus.Collector.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.members {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.members {
		c.Collect(ch)
	}
}
