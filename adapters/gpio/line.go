package gpio

import "time"

// hardware requests GPIO lines. The real one talks to the kernel's GPIO
// character device; tests use a fake, since the kernel that runs them has
// no GPIO.
type hardware interface {
	// request claims one line of chip with cfg. For an input (edges true)
	// onEdge is called for every edge the kernel reports, from a goroutine
	// of the hardware's own: it must not block. The returned line is used
	// by one goroutine at a time.
	request(chip string, cfg lineConfig, onEdge func(edge)) (hwLine, error)
}

// hwLine is one requested line. Values are active states: the kernel
// applies active_low.
type hwLine interface {
	value() (bool, error)
	set(active bool) error
	// close releases the line and returns once onEdge is no longer running.
	close() error
}

// lineConfig is what the kernel is asked for one line.
type lineConfig struct {
	offset    int
	output    bool
	initial   bool // output only: the active state set by the request
	activeLow bool
	bias      bias
	edges     bool // input only: report both edges
}

// edge is one edge event of a line.
type edge struct {
	active bool      // the line's active state after the edge
	at     time.Time // when the kernel saw it, on the local clock
}

// bias is a line's internal pull resistor.
type bias uint8

// The biases a point may ask for; biasAsIs leaves the chip's setting.
const (
	biasAsIs bias = iota
	biasPullUp
	biasPullDown
	biasDisabled
)

func (b bias) String() string {
	switch b {
	case biasPullUp:
		return "pull-up"
	case biasPullDown:
		return "pull-down"
	case biasDisabled:
		return "disabled"
	}
	return "as-is"
}
