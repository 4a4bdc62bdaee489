package modbus

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Protocol limits and defaults of a device entry.
const (
	// MaxRegistersPerRead is the most registers one read (FC3, FC4) returns.
	MaxRegistersPerRead = 125
	// MaxBitsPerRead is the most coils or discrete inputs one read (FC1,
	// FC2) returns.
	MaxBitsPerRead = 2000
	// MinPollInterval is the fastest poll the driver accepts.
	MinPollInterval = 10 * time.Millisecond

	defaultPollInterval = time.Second
	defaultTimeout      = time.Second
	defaultMaxGap       = 10
	defaultTCPPort      = "502"
	maxUnitID           = 247
	// maxSchedules bounds the distinct point poll_intervals of a device:
	// the due schedules of a poll are a bit set.
	maxSchedules = 64
)

// table is one of the four Modbus data tables.
type table uint8

const (
	holding table = iota + 1
	input
	coil
	discrete
)

func parseTable(s string) (table, bool) {
	switch strings.ToLower(s) {
	case "holding":
		return holding, true
	case "input":
		return input, true
	case "coil":
		return coil, true
	case "discrete":
		return discrete, true
	}
	return 0, false
}

func (t table) String() string {
	switch t {
	case holding:
		return "holding"
	case input:
		return "input"
	case coil:
		return "coil"
	case discrete:
		return "discrete"
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// bits reports whether the table holds single bits rather than registers.
func (t table) bits() bool { return t == coil || t == discrete }

// plural names what a read of the table returns, for messages.
func (t table) plural() string {
	switch t {
	case holding:
		return "holding registers"
	case input:
		return "input registers"
	case coil:
		return "coils"
	}
	return "discrete inputs"
}

// singular names one register or bit of the table, for messages.
func (t table) singular() string {
	switch t {
	case holding:
		return "holding register"
	case input:
		return "input register"
	case coil:
		return "coil"
	}
	return "discrete input"
}

// options are the mapping rules the table imposes on a point.
func (t table) options() mappings.Options {
	switch t {
	case coil:
		return mappings.Options{DefaultType: mappings.Bool, BoolOnly: true, Source: t.plural()}
	case discrete:
		return mappings.Options{DefaultType: mappings.Bool, BoolOnly: true, ReadOnly: true, Source: t.plural()}
	case input:
		return mappings.Options{DefaultType: mappings.Uint16, RegisterTable: true, ReadOnly: true, Source: t.plural()}
	}
	return mappings.Options{DefaultType: mappings.Uint16, RegisterTable: true, Source: t.plural()}
}

// scheme is the transport named by a device URL.
type scheme uint8

const (
	schemeTCP        scheme = iota + 1 // tcp://host:port, Modbus TCP (MBAP)
	schemeRTU                          // rtu:///dev/ttyX, RTU on a serial port
	schemeRTUOverTCP                   // rtu+tcp://host:port, RTU frames through a TCP serial server
)

// endpoint is where a device is reached; devices with the same endpoint
// share one connection and one goroutine.
type endpoint struct {
	scheme scheme
	addr   string // host:port, or the serial device path
}

func (e endpoint) String() string {
	switch e.scheme {
	case schemeTCP:
		return "tcp://" + e.addr
	case schemeRTU:
		return "rtu://" + e.addr
	}
	return "rtu+tcp://" + e.addr
}

// parseURL reads tcp://host[:port], rtu:///dev/ttyX or rtu+tcp://host:port.
func parseURL(s string) (endpoint, error) {
	sch, rest, ok := strings.Cut(s, "://")
	if !ok {
		return endpoint{}, fmt.Errorf("url %q: want tcp://host:port, rtu:///dev/ttyX or rtu+tcp://host:port", s)
	}
	switch strings.ToLower(sch) {
	case "tcp", "rtu+tcp":
		e := endpoint{scheme: schemeTCP}
		if strings.ToLower(sch) == "rtu+tcp" {
			e.scheme = schemeRTUOverTCP
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil && e.scheme == schemeTCP {
			// tcp://host without a port: Modbus TCP's registered port.
			host, port, err = net.SplitHostPort(rest + ":" + defaultTCPPort)
		}
		if err != nil {
			return endpoint{}, fmt.Errorf("url %q: want %s://host:port", s, sch)
		}
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			return endpoint{}, fmt.Errorf("url %q: missing or invalid host", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("url %q: port must be 1..65535", s)
		}
		e.addr = net.JoinHostPort(strings.ToLower(host), port)
		return e, nil
	case "rtu":
		if !strings.HasPrefix(rest, "/") {
			return endpoint{}, fmt.Errorf("url %q: want rtu:// and an absolute device path, such as rtu:///dev/ttyUSB0", s)
		}
		return endpoint{scheme: schemeRTU, addr: path.Clean(rest)}, nil
	}
	return endpoint{}, fmt.Errorf("url %q: unknown scheme %q (want tcp, rtu or rtu+tcp)", s, sch)
}

// charTime is how long one character takes on the line: a start bit, 8
// data bits, the parity bit and the stop bits.
func charTime(m serialline.Mode) time.Duration {
	bits := 1 + 8 + m.StopBits
	if m.Parity != serialline.ParityNone {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(m.Baud)
}

// frameGap is the silence that separates two RTU frames: 3.5 characters,
// and a fixed 1.75 ms above 19200 baud as the serial line specification
// sets, because shorter gaps cannot be timed reliably.
func frameGap(m serialline.Mode) time.Duration {
	if m.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return charTime(m) * 7 / 2
}

type pointConfig struct {
	mappings.Spec `yaml:",inline"`
	Table         string        `yaml:"table"`
	Address       *int          `yaml:"address"`
	PollInterval  time.Duration `yaml:"poll_interval"`
}

type deviceConfig struct {
	adapters.Common     `yaml:",inline"`
	URL                 string             `yaml:"url"`
	UnitID              *int               `yaml:"unit_id"`
	Timeout             time.Duration      `yaml:"timeout"`
	MaxRegistersPerRead *int               `yaml:"max_registers_per_read"`
	MaxBitsPerRead      *int               `yaml:"max_bits_per_read"`
	MaxGap              *int               `yaml:"max_gap"`
	Serial              *serialline.Config `yaml:"serial"`
	Points              []pointConfig      `yaml:"points"`
}

// point is a configured point: where it is read and how it decodes.
type point struct {
	mp    mappings.Point
	table table
	addr  uint16
	// n is the registers the point spans, or 1 for a coil or discrete input.
	n int
	// every is the point's poll_interval in device ticks (>= 1).
	every int
}

// end is one past the point's last register or bit.
func (p *point) end() int { return int(p.addr) + p.n }

// Device is a configured Modbus device.
type Device struct {
	info     adapters.Info
	ep       endpoint
	serial   serialline.Mode // rtu:// only
	unit     byte
	timeout  time.Duration
	interval time.Duration
	maxRegs  int
	maxBits  int
	maxGap   int
	points   []point
	metrics  *deviceMetrics
}

// Info implements adapters.Device.
func (d *Device) Info() adapters.Info { return d.info }

// Configure implements adapters.Driver. It reports every problem of the
// entry through raw's decoder, at its key path, and does no I/O.
func (Driver) Configure(raw config.Raw) adapters.Device {
	var c deviceConfig
	e := adapters.Decode(raw, &c)
	base := e.Path()

	dev := &Device{
		info:    adapters.Info{Name: c.Name, Driver: Driver{}.Name()},
		unit:    1,
		timeout: defaultTimeout,
		maxRegs: MaxRegistersPerRead,
		maxBits: MaxBitsPerRead,
		maxGap:  defaultMaxGap,
	}

	switch ep, err := parseURL(c.URL); {
	case c.URL == "":
		e.Fail(e.Key("url"), "url is required: tcp://host:port, rtu:///dev/ttyX or rtu+tcp://host:port")
	case err != nil:
		e.Fail(e.Key("url"), "%v", err)
	default:
		dev.ep = ep
	}

	if c.UnitID != nil {
		u := *c.UnitID
		switch {
		case u < 0 || u > maxUnitID:
			e.Fail(e.Key("unit_id"), "unit_id %d outside 0..%d", u, maxUnitID)
		case u == 0 && dev.ep.scheme != schemeTCP && dev.ep.scheme != 0:
			e.Fail(e.Key("unit_id"), "unit_id 0 is the RTU broadcast address, which never answers a read: use 1..%d", maxUnitID)
		default:
			dev.unit = byte(u)
		}
	}
	if c.Timeout != 0 || e.Has("timeout") {
		if c.Timeout <= 0 {
			e.Fail(e.Key("timeout"), "timeout must be positive")
		} else {
			dev.timeout = c.Timeout
		}
	}
	dev.interval = e.PollInterval(c.PollInterval, defaultPollInterval, MinPollInterval)
	limit := func(k string, v *int, lo, hi int, dst *int) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			e.Fail(e.Key(k), "%s %d outside %d..%d", k, *v, lo, hi)
			return
		}
		*dst = *v
	}
	limit("max_registers_per_read", c.MaxRegistersPerRead, 1, MaxRegistersPerRead, &dev.maxRegs)
	limit("max_bits_per_read", c.MaxBitsPerRead, 1, MaxBitsPerRead, &dev.maxBits)
	limit("max_gap", c.MaxGap, 0, MaxRegistersPerRead, &dev.maxGap)

	if dev.ep.scheme == schemeRTU {
		dev.serial = serialline.Default()
	}
	if c.Serial != nil {
		sp := e.Key("serial")
		if dev.ep.scheme != schemeRTU && dev.ep.scheme != 0 {
			if dev.ep.scheme == schemeTCP {
				e.Fail(sp, "serial applies only to rtu:// urls: a tcp:// device has no serial line")
			} else {
				e.Fail(sp, "serial applies only to rtu:// urls: the line of an rtu+tcp:// device is set in its serial server")
			}
		} else {
			dev.serial = checkSerial(e, sp, *c.Serial)
		}
	}

	if len(c.Points) == 0 {
		e.Fail(e.Key("points"), "a modbus device needs at least one point")
	}
	intervals := map[int]bool{}
	for i := range c.Points {
		pc := &c.Points[i]
		pp := e.PointPath(i)
		t, tok := parseTable(pc.Table)
		opts := t.options()
		switch {
		case pc.Table == "":
			e.Fail(pp, "table is required: holding, input, coil or discrete")
		case !tok:
			e.Fail(e.At(pp, "table"), "unknown table %q (want holding, input, coil or discrete)", pc.Table)
		}
		if !tok {
			// Check the rest as a holding register, the common case, so
			// that its other problems are reported in the same run.
			opts = holding.options()
		}
		mp, mok := adapters.Compile(e.Decoder(), pp, &pc.Spec, opts)
		e.Check(mok)
		p := point{mp: mp, table: t, n: 1, every: 1}
		if !t.bits() && mok {
			p.n = mp.Registers()
		}
		switch a := pc.Address; {
		case a == nil:
			e.Fail(pp, "address is required: the 0-based address on the wire (register 40001 is holding address 0)")
		case *a < 0 || *a > 0xffff:
			e.Fail(e.At(pp, "address"), "address %d outside 0..65535", *a)
		case *a+p.n-1 > 0xffff:
			e.Fail(e.At(pp, "address"), "address %d with %d registers runs past 65535", *a, p.n)
		default:
			p.addr = uint16(*a)
		}
		if tok && !t.bits() && p.n > dev.maxRegs {
			e.Fail(pp, "the point spans %d registers, more than max_registers_per_read (%d) lets one read return", p.n, dev.maxRegs)
		}
		if pc.PollInterval != 0 || e.Decoder().Has(pp+".poll_interval") {
			switch {
			case pc.PollInterval < dev.interval:
				e.Fail(e.At(pp, "poll_interval"), "poll_interval %s is shorter than the device's %s", pc.PollInterval, dev.interval)
			case pc.PollInterval%dev.interval != 0:
				e.Fail(e.At(pp, "poll_interval"), "poll_interval %s is not a multiple of the device's %s: use a multiple so that the point's reads merge with the others", pc.PollInterval, dev.interval)
			default:
				p.every = int(pc.PollInterval / dev.interval)
			}
		}
		intervals[p.every] = true
		dev.points = append(dev.points, p)
		e.AddPoint(&dev.info, mp, pp)
	}
	if len(intervals) > maxSchedules {
		e.Fail(base, "the points use %d different poll_intervals; at most %d are supported", len(intervals), maxSchedules)
	}
	if !e.OK() {
		return nil
	}
	dev.metrics = newDeviceMetrics(dev.info.Name)
	return dev
}

// checkSerial checks the serial key sp of an rtu:// device: Modbus RTU
// sends 8-bit bytes.
func checkSerial(e *adapters.Entry, sp string, sc serialline.Config) serialline.Mode {
	if sc.DataBits == 7 {
		e.Fail(e.At(sp, "data_bits"), "Modbus RTU sends 8-bit bytes: data_bits must be 8 (7 is Modbus ASCII, which this driver does not speak)")
		sc.DataBits = 0 // reported: Check would say it again, less helpfully
	}
	return sc.Check(e, sp, 8)
}
