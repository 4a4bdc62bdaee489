// Package gpio is the driver for GPIO lines of a Linux board (a Raspberry
// Pi, an industrial PC's digital I/O) through the kernel's GPIO character
// device (/dev/gpiochipN).
//
// Each point is one line in one of three modes:
//
//   - input: a contact (door, float switch, alarm relay) read as a bool.
//     Edges are debounced here and reported as soon as the level is stable;
//     the level is also reported at every poll_interval, so that the
//     mapping's heartbeat can republish it.
//   - counter: pulses of an S0 energy meter or a reed-switch water meter.
//     The point publishes the total (uint64), and a second point the pulse
//     rate per second. Totals are saved in the device's state folder, so
//     that a restart goes on counting from where it stopped.
//   - output: a relay or a lamp, set by commands on {topic}/set and read
//     back after each write; `initial` is the level set at start.
//
// One goroutine owns a device's lines: it applies edges, polls and
// commands in order. Lines that cannot be opened (no chip, a busy line, no
// permission) fail the device, which is retried with backoff.
package gpio

import (
	_ "embed"
	"time"

	"github.com/fieldbridge/gateway/adapters"
)

// Sample is an example device entry for this driver.
//
//go:embed sample.yaml
var Sample []byte

// Limits and defaults of the device keys.
const (
	// DefaultChip is the chip of a device without `chip`: the SoC's own
	// lines on a Raspberry Pi.
	DefaultChip = "gpiochip0"
	// DefaultPollInterval is how often levels, totals and rates are
	// reported when poll_interval is not set.
	DefaultPollInterval = time.Second
	// MinPollInterval is the fastest poll accepted; edges are reported at
	// once whatever the poll interval.
	MinPollInterval = 10 * time.Millisecond
	// MaxDebounce bounds debounce: longer is most likely a wrong unit (20s
	// for 20ms), and a counter counts at most one pulse per 2*debounce.
	MaxDebounce = 10 * time.Second
)

const (
	// minBackoff and maxBackoff bound the wait before reopening a device
	// whose lines could not be requested or read.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// saveEvery is how often, at most, counter totals are written to disk:
	// a power cut loses at most this much counting, and an SD card is not
	// written at every pulse.
	saveEvery = 5 * time.Second
)

// Driver is the GPIO driver. Its zero value is ready to use.
type Driver struct{}

var (
	_ adapters.Driver = Driver{}
	_ adapters.Device = (*Device)(nil)
	_ adapters.Runner = (*runner)(nil)
)

// Name implements adapters.Driver.
func (Driver) Name() string { return "gpio" }

// Runners implements adapters.Driver: each device has its own goroutine.
// Lines of one chip need no shared connection; two devices that claim the
// same line see it busy when they open it.
func (Driver) Runners(devices []adapters.Device) []adapters.Runner {
	out := make([]adapters.Runner, 0, len(devices))
	for _, ad := range devices {
		if d, ok := ad.(*Device); ok {
			out = append(out, newRunner(d, newHardware()))
		}
	}
	return out
}

// Device is a configured GPIO device: one chip and its lines.
type Device struct {
	info     adapters.Info
	chip     string
	interval time.Duration
	lines    []lineSpec
}

// Info implements adapters.Device. A counter adds its rate point right
// after its total.
func (d *Device) Info() adapters.Info { return d.info }
