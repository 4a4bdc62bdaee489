package modbus

import (
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/devmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// errorKinds are the values of the kind label of the errors metric.
var errorKinds = [...]string{"timeout", "exception", "frame", "connection"}

// deviceMetrics are the Modbus metrics of one device.
type deviceMetrics struct {
	set         *devmetrics.Set // collects the others
	requests    prometheus.Counter
	byKind      []prometheus.Counter // by errorKinds
	latency     prometheus.Histogram
	lastSuccess prometheus.Gauge
}

func newDeviceMetrics(device string) *deviceMetrics {
	s := devmetrics.New(device)
	return &deviceMetrics{
		set: s,
		requests: s.Counter("fieldbridge_modbus_requests_total",
			"Modbus requests sent to the device (reads and writes)."),
		byKind: s.Counters("fieldbridge_modbus_errors_total",
			"Failed Modbus requests by kind: timeout, exception, frame (malformed reply) or connection.",
			"kind", errorKinds[:]...),
		latency: s.Histogram("fieldbridge_modbus_request_duration_seconds",
			"Time from sending a Modbus request to its reply or failure.",
			[]float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}),
		lastSuccess: s.Gauge("fieldbridge_modbus_last_success_timestamp_seconds",
			"Unix time of the device's last successful request."),
	}
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

// Collector returns the device's Modbus metrics (requests, errors by kind,
// request latency, last success), unregistered: the gateway registers it
// in its own registry. Each device has its own; they register side by side.
func (d *Device) Collector() prometheus.Collector { return d.metrics.set }
