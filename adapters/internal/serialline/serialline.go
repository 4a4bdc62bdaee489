// Package serialline is the setting of a serial line (baud, parity, data
// and stop bits) as the drivers on a serial port share it: the `serial:`
// key of a device entry, its check and defaults, and the mode to open the
// port with.
package serialline

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fieldbridge/gateway/adapters"
	"go.bug.st/serial"
)

// Parities of a line, as Mode.Parity holds them.
const (
	ParityNone = 'N'
	ParityEven = 'E'
	ParityOdd  = 'O'
)

// DefaultBaud is the baud rate of a line without `baud`.
const DefaultBaud = 9600

// Limits of `baud`: Check applies them, and a command's --baud flag must too.
const (
	MinBaud = 50
	MaxBaud = 4000000
)

// Config is the `serial:` key of a device entry.
type Config struct {
	Baud     int    `yaml:"baud"`
	Parity   string `yaml:"parity"`
	DataBits int    `yaml:"data_bits"`
	StopBits int    `yaml:"stop_bits"`
}

// Mode is a checked line setting.
type Mode struct {
	Baud     int
	DataBits int
	Parity   byte // ParityNone, ParityEven or ParityOdd
	StopBits int
}

// Default is the setting of a line whose entry does not say: 9600 8N1.
func Default() Mode {
	return Mode{Baud: DefaultBaud, DataBits: 8, Parity: ParityNone, StopBits: 1}
}

// String writes the setting the usual way, such as 9600 8N1.
func (m Mode) String() string {
	return fmt.Sprintf("%d %d%c%d", m.Baud, m.DataBits, m.Parity, m.StopBits)
}

// Port is the mode to open the line with.
func (m Mode) Port() *serial.Mode {
	p := &serial.Mode{BaudRate: m.Baud, DataBits: m.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch m.Parity {
	case ParityEven:
		p.Parity = serial.EvenParity
	case ParityOdd:
		p.Parity = serial.OddParity
	}
	if m.StopBits == 2 {
		p.StopBits = serial.TwoStopBits
	}
	return p
}

// ParseParity reads N, E or O, or none, even or odd, in any case; empty is
// none.
func ParseParity(s string) (byte, bool) {
	switch strings.ToLower(s) {
	case "", "n", "none":
		return ParityNone, true
	case "e", "even":
		return ParityEven, true
	case "o", "odd":
		return ParityOdd, true
	}
	return 0, false
}

// Check checks c, the value of key path p of entry e, reports each problem
// at its key and returns the setting, with Default's values where a key is
// absent. dataBits lists the data bits the driver speaks, 8 (the default)
// among them; a driver with more to say about a refused value checks it
// before.
func (c Config) Check(e *adapters.Entry, p string, dataBits ...int) Mode {
	m := Default()
	fail := func(k, format string, args ...any) { e.Fail(e.At(p, k), format, args...) }
	if e.Decoder().Has(p+".baud") || c.Baud != 0 {
		if c.Baud < MinBaud || c.Baud > MaxBaud {
			fail("baud", "baud %d outside %d..%d", c.Baud, MinBaud, MaxBaud)
		} else {
			m.Baud = c.Baud
		}
	}
	if parity, ok := ParseParity(c.Parity); ok {
		m.Parity = parity
	} else {
		fail("parity", "unknown parity %q (want N, E or O)", c.Parity)
	}
	switch {
	case c.DataBits == 0:
	case slices.Contains(dataBits, c.DataBits):
		m.DataBits = c.DataBits
	default:
		fail("data_bits", "data_bits must be %s, got %d", oneOf(dataBits), c.DataBits)
	}
	switch c.StopBits {
	case 0, 1:
	case 2:
		m.StopBits = 2
	default:
		fail("stop_bits", "stop_bits must be 1 or 2, got %d", c.StopBits)
	}
	return m
}

// oneOf lists values for a message: 8, or 7 or 8, or 5, 6, 7 or 8.
func oneOf(values []int) string {
	var b strings.Builder
	for i, v := range values {
		switch {
		case i == 0:
		case i == len(values)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}

// Guard lets a context end a blocked Read by closing the port from another
// goroutine, and only then: closing it while its owner writes or runs an
// ioctl could hit a descriptor number that was meanwhile reused, and
// go.bug.st/serial's Write does not check that the port is still open.
// After Cancel, Read returns context.Canceled; the owner closes the port.
type Guard struct {
	mu        sync.Mutex
	port      serial.Port
	reading   bool
	cancelled bool
}

// NewGuard guards port.
func NewGuard(port serial.Port) *Guard { return &Guard{port: port} }

// Cancel ends a blocked Read, or makes the next one fail.
func (g *Guard) Cancel() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cancelled = true
	if g.reading {
		// Close wakes the Read through go.bug.st/serial's signal pipe and
		// waits for it to return.
		_ = g.port.Close()
	}
}

// Read reads the port, unless Cancel came first.
func (g *Guard) Read(b []byte) (int, error) {
	g.mu.Lock()
	if g.cancelled {
		g.mu.Unlock()
		return 0, context.Canceled
	}
	g.reading = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.reading = false
		g.mu.Unlock()
	}()
	return g.port.Read(b)
}
