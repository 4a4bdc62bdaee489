package serial

import (
	"github.com/fieldbridge/gateway/adapters/internal/devmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a line is dropped: the values of the reason label.
const (
	reasonBadChecksum = "bad_checksum" // an NMEA sentence whose checksum is wrong or missing
	reasonOverlong    = "overlong"     // longer than max_line
	reasonGarbage     = "garbage"      // control characters or invalid UTF-8
	reasonUnparsable  = "unparsable"   // text the format cannot read
)

// deviceMetrics are the counters of one device.
type deviceMetrics struct {
	set        *devmetrics.Set // collects the others
	lines      prometheus.Counter
	portErrors prometheus.Counter
	timeouts   prometheus.Counter
	// Lines dropped, one counter per reason.
	badChecksum, overlong, garbage, unparsable prometheus.Counter
}

func newDeviceMetrics(device string) *deviceMetrics {
	s := devmetrics.New(device)
	m := &deviceMetrics{
		set: s,
		lines: s.Counter("fieldbridge_serial_lines_total",
			"Non-empty lines read from the serial port, dropped ones included."),
	}
	dropped := s.Counters("fieldbridge_serial_dropped_lines_total",
		"Lines dropped unpublished, by reason: bad_checksum, overlong, garbage or unparsable.",
		"reason", reasonBadChecksum, reasonOverlong, reasonGarbage, reasonUnparsable)
	m.badChecksum, m.overlong, m.garbage, m.unparsable = dropped[0], dropped[1], dropped[2], dropped[3]
	m.portErrors = s.Counter("fieldbridge_serial_port_errors_total",
		"Failures to open the serial port or to read or write it once open.")
	m.timeouts = s.Counter("fieldbridge_serial_response_timeouts_total",
		"Requests that got no valid line back within response_timeout.")
	return m
}
