// Package serial is the driver for line-oriented sensors on a serial port:
// GPS receivers (NMEA 0183), boards printing one JSON object per line,
// weather stations and analysers printing `key=value` pairs or text that a
// regular expression takes apart.
//
// A tour:
//
//   - config.go decodes a device entry strictly, without I/O, and compiles
//     the line parser of its format.
//   - lines.go cuts the byte stream into lines and sorts out what is no
//     line at all: overlong runs and binary garbage.
//   - nmea.go, jsonline.go, kv.go and regex.go parse one line each; a line
//     they refuse reports nothing.
//   - runner.go owns the port: it opens it, reads it, sends the request of
//     query/response sensors, reopens it with backoff when it disappears,
//     and closes it when the context ends, which also ends a blocked read.
//   - metrics.go counts lines and what was dropped, per device.
package serial

import (
	_ "embed"
	"errors"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/prometheus/client_golang/prometheus"
)

// Sample is an example configuration of devices for this driver.
//
//go:embed sample.yaml
var Sample []byte

// Errors that the driver reports through Sink.Polled and Sink.Report; tell
// them apart with errors.Is.
var (
	// ErrPort means the serial port could not be opened, or failed while
	// open (a USB adapter unplugged). The port is reopened with backoff.
	ErrPort = errors.New("serial port unavailable")
	// ErrNoResponse means a request got no valid line back within the
	// device's response_timeout.
	ErrNoResponse = errors.New("no response")
	// ErrIdle means a streaming sensor sent no valid line within its
	// idle_timeout.
	ErrIdle = errors.New("sensor silent")
	// ErrNoFix is reported for the position, altitude, speed and course of
	// a GPS receiver that says it has no fix: the values it sends then are
	// not measurements.
	ErrNoFix = errors.New("no GPS fix")
)

// Driver is the serial line-sensor driver. Its zero value is ready to use.
type Driver struct{}

var (
	_ adapters.Driver = Driver{}
	_ adapters.Device = (*Device)(nil)
	_ adapters.Runner = (*runner)(nil)
)

// Name implements adapters.Driver.
func (Driver) Name() string { return "serial" }

// Runners implements adapters.Driver: one runner per port. A port carries
// one sensor's lines, so a second device on the same port cannot be read;
// its runner reports that through the device's status instead.
func (Driver) Runners(devices []adapters.Device) []adapters.Runner {
	var out []adapters.Runner
	owner := map[string]*Device{}
	for _, ad := range devices {
		d, ok := ad.(*Device)
		if !ok {
			continue
		}
		r := &runner{dev: d}
		if first := owner[d.port]; first != nil {
			r.conflict = first.info.Name
		} else {
			owner[d.port] = d
		}
		out = append(out, r)
	}
	return out
}

// Device is a configured serial sensor.
type Device struct {
	info    adapters.Info
	port    string
	mode    serialline.Mode
	format  string
	request []byte        // nil: a streaming sensor
	every   time.Duration // between requests
	respTO  time.Duration
	idleTO  time.Duration // 0: silence is not reported
	maxLine int
	parser  func() parser // a fresh parser per run: parsers keep state
	metrics *deviceMetrics
}

// Info implements adapters.Device.
func (d *Device) Info() adapters.Info { return d.info }

// Collector returns the device's line counters (lines read, lines dropped
// by reason, port errors, request timeouts), unregistered: the gateway
// registers it in its own registry. Each device has its own; they register
// side by side.
func (d *Device) Collector() prometheus.Collector { return d.metrics.set }
