package serial

import "github.com/prometheus/client_golang/prometheus"

// Reasons a line is dropped: the values of the reason label.
const (
	reasonBadChecksum = "bad_checksum" // an NMEA sentence whose checksum is wrong or missing
	reasonOverlong    = "overlong"     // longer than max_line
	reasonGarbage     = "garbage"      // control characters or invalid UTF-8
	reasonUnparsable  = "unparsable"   // text the format cannot read
)

// deviceMetrics are the counters of one device. Every series carries the
// device name as a constant label, so the collectors of several devices
// register side by side in one registry. Nothing is registered globally.
type deviceMetrics struct {
	lines      prometheus.Counter
	dropped    *prometheus.CounterVec
	portErrors prometheus.Counter
	timeouts   prometheus.Counter
	// One counter per reason, created up front so that every reason is
	// exported, at 0, from the start.
	badChecksum, overlong, garbage, unparsable prometheus.Counter
}

func newDeviceMetrics(device string) *deviceMetrics {
	labels := prometheus.Labels{"device": device}
	m := &deviceMetrics{
		lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldbridge_serial_lines_total", ConstLabels: labels,
			Help: "Non-empty lines read from the serial port, dropped ones included.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_serial_dropped_lines_total", ConstLabels: labels,
			Help: "Lines dropped unpublished, by reason: bad_checksum, overlong, garbage or unparsable.",
		}, []string{"reason"}),
		portErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldbridge_serial_port_errors_total", ConstLabels: labels,
			Help: "Failures to open the serial port or to read or write it once open.",
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldbridge_serial_response_timeouts_total", ConstLabels: labels,
			Help: "Requests that got no valid line back within response_timeout.",
		}),
	}
	m.badChecksum = m.dropped.WithLabelValues(reasonBadChecksum)
	m.overlong = m.dropped.WithLabelValues(reasonOverlong)
	m.garbage = m.dropped.WithLabelValues(reasonGarbage)
	m.unparsable = m.dropped.WithLabelValues(reasonUnparsable)
	return m
}

// Describe implements prometheus.Collector.
func (m *deviceMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.lines.Describe(ch)
	m.dropped.Describe(ch)
	m.portErrors.Describe(ch)
	m.timeouts.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *deviceMetrics) Collect(ch chan<- prometheus.Metric) {
	m.lines.Collect(ch)
	m.dropped.Collect(ch)
	m.portErrors.Collect(ch)
	m.timeouts.Collect(ch)
}
