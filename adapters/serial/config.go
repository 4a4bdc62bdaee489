package serial

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Limits and defaults of a device entry.
const (
	// MinPollInterval is the shortest time between two requests.
	MinPollInterval = 10 * time.Millisecond
	// DefaultMaxLine is the longest line kept; longer ones are dropped and
	// counted. It bounds memory whatever a broken sensor sends.
	DefaultMaxLine = 4 << 10
	// MaxRequest is the longest request string, after escapes.
	MaxRequest = 1 << 10

	minMaxLine             = 64
	maxMaxLine             = 1 << 20
	defaultBaud            = 9600
	defaultPollInterval    = time.Second
	defaultResponseTimeout = time.Second
)

// The formats of a device's lines.
const (
	FormatNMEA  = "nmea"
	FormatJSON  = "json"
	FormatRegex = "regex"
	FormatKV    = "kv"
)

// lineMode is the setting of a serial line.
type lineMode struct {
	baud     int
	dataBits int
	parity   byte // 'N', 'E' or 'O'
	stopBits int
}

func (m lineMode) String() string {
	return fmt.Sprintf("%d %d%c%d", m.baud, m.dataBits, m.parity, m.stopBits)
}

type serialConfig struct {
	Baud     int    `yaml:"baud"`
	Parity   string `yaml:"parity"`
	DataBits int    `yaml:"data_bits"`
	StopBits int    `yaml:"stop_bits"`
}

type pointConfig struct {
	mappings.Spec `yaml:",inline"`
	Field         string `yaml:"field"` // json: the field, dotted for nested objects
	Group         string `yaml:"group"` // regex: the named group
	Key           string `yaml:"key"`   // kv: the key
}

type deviceConfig struct {
	adapters.Common `yaml:",inline"`
	Port            string        `yaml:"port"`
	Serial          *serialConfig `yaml:"serial"`
	Format          string        `yaml:"format"`
	Pattern         string        `yaml:"pattern"`
	Request         *string       `yaml:"request"`
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	MaxLine         config.Size   `yaml:"max_line"`
	Points          []pointConfig `yaml:"points"`
}

// Configure implements adapters.Driver. It reports every problem of the
// entry through raw's decoder, at its key path, and does no I/O.
func (Driver) Configure(raw config.Raw) adapters.Device {
	d := raw.Decoder()
	before := len(d.Errors())
	var c deviceConfig
	raw.Decode(&c)
	base := raw.Path()
	ok := len(d.Errors()) == before // unknown keys and values of the wrong type
	fail := func(p, format string, args ...any) {
		d.Errorf(p, format, args...)
		ok = false
	}
	key := func(k string) string {
		if d.Has(base + "." + k) {
			return base + "." + k
		}
		return base
	}
	if err := mappings.ValidName(c.Name); err != nil && c.Name != "" {
		fail(key("name"), "%v", err) // a missing name is the registry's to report
	}
	dev := &Device{
		info:    adapters.Info{Name: c.Name, Driver: Driver{}.Name()},
		mode:    lineMode{baud: defaultBaud, dataBits: 8, parity: 'N', stopBits: 1},
		format:  strings.ToLower(c.Format),
		maxLine: DefaultMaxLine,
	}

	switch {
	case c.Port == "":
		fail(key("port"), "port is required: the serial device, such as /dev/ttyUSB0 or /dev/serial/by-id/...")
	case !strings.HasPrefix(c.Port, "/"):
		fail(key("port"), "port %q: want an absolute device path, such as /dev/ttyUSB0", c.Port)
	default:
		dev.port = path.Clean(c.Port)
	}
	if c.Serial != nil {
		dev.mode = checkSerial(d, key("serial"), *c.Serial, &ok)
	}

	// Query/response or streaming.
	if c.Request != nil && *c.Request != "" {
		req, err := unescape(*c.Request)
		switch {
		case err != nil:
			fail(key("request"), "%v", err)
		case len(req) > MaxRequest:
			fail(key("request"), "request is %d bytes long, more than %d", len(req), MaxRequest)
		default:
			dev.request = req
		}
		dev.every = defaultPollInterval
		if d.Has(base + ".poll_interval") {
			if c.PollInterval < MinPollInterval {
				fail(key("poll_interval"), "poll_interval must be at least %s", MinPollInterval)
			} else {
				dev.every = c.PollInterval
			}
		}
		dev.respTO = min(defaultResponseTimeout, dev.every)
		if d.Has(base + ".response_timeout") {
			switch {
			case c.ResponseTimeout <= 0:
				fail(key("response_timeout"), "response_timeout must be positive")
			case c.ResponseTimeout > dev.every:
				// The next request would go out while one is still waiting.
				fail(key("response_timeout"), "response_timeout %s is longer than poll_interval %s", c.ResponseTimeout, dev.every)
			default:
				dev.respTO = c.ResponseTimeout
			}
		}
		if d.Has(base + ".idle_timeout") {
			fail(key("idle_timeout"), "idle_timeout applies to streaming sensors; with request, response_timeout reports a silent sensor")
		}
	} else {
		if d.Has(base + ".poll_interval") {
			fail(key("poll_interval"), "poll_interval applies only with request: a streaming sensor is read as its lines arrive")
		}
		if d.Has(base + ".response_timeout") {
			fail(key("response_timeout"), "response_timeout applies only with request; idle_timeout reports a streaming sensor that falls silent")
		}
		if d.Has(base + ".idle_timeout") {
			if c.IdleTimeout < MinPollInterval {
				fail(key("idle_timeout"), "idle_timeout must be at least %s", MinPollInterval)
			} else {
				dev.idleTO = c.IdleTimeout
			}
		}
	}
	if d.Has(base + ".max_line") {
		if c.MaxLine < minMaxLine || c.MaxLine > maxMaxLine {
			fail(key("max_line"), "max_line %s outside %s..%s", c.MaxLine, config.Size(minMaxLine), config.Size(maxMaxLine))
		} else {
			dev.maxLine = int(c.MaxLine)
		}
	}

	var re *regexp.Regexp
	if dev.format == FormatRegex {
		if c.Pattern == "" {
			fail(key("pattern"), "format regex needs a pattern with a named group, such as (?P<temperature>-?[0-9.]+), for each point")
		} else if r, err := regexp.Compile(c.Pattern); err != nil {
			fail(key("pattern"), "invalid pattern: %v", err)
		} else {
			re = r
		}
	} else if d.Has(base + ".pattern") {
		fail(key("pattern"), "pattern applies only to format regex")
	}

	pc := pointsConfig{d: d, base: base, device: c.Name, points: c.Points, ok: &ok}
	switch dev.format {
	case FormatNMEA:
		dev.parser = pc.nmea(&dev.info)
	case FormatJSON:
		dev.parser = pc.json(&dev.info)
	case FormatKV:
		dev.parser = pc.kv(&dev.info)
	case FormatRegex:
		dev.parser = pc.regex(&dev.info, re)
	case "":
		fail(key("format"), "format is required: nmea, json, regex or kv")
	default:
		fail(key("format"), "unknown format %q (want nmea, json, regex or kv)", c.Format)
	}
	if !ok {
		return nil
	}
	dev.metrics = newDeviceMetrics(dev.info.Name)
	return dev
}

func checkSerial(d *config.Decoder, sp string, sc serialConfig, ok *bool) lineMode {
	m := lineMode{baud: defaultBaud, dataBits: 8, parity: 'N', stopBits: 1}
	fail := func(k, format string, args ...any) {
		p := sp + "." + k
		if !d.Has(p) {
			p = sp
		}
		d.Errorf(p, format, args...)
		*ok = false
	}
	if d.Has(sp+".baud") || sc.Baud != 0 {
		if sc.Baud < 50 || sc.Baud > 4000000 {
			fail("baud", "baud %d outside 50..4000000", sc.Baud)
		} else {
			m.baud = sc.Baud
		}
	}
	switch strings.ToLower(sc.Parity) {
	case "", "n", "none":
	case "e", "even":
		m.parity = 'E'
	case "o", "odd":
		m.parity = 'O'
	default:
		fail("parity", "unknown parity %q (want N, E or O)", sc.Parity)
	}
	switch sc.DataBits {
	case 0, 8:
	case 7:
		m.dataBits = 7
	default:
		fail("data_bits", "data_bits must be 7 or 8, got %d", sc.DataBits)
	}
	switch sc.StopBits {
	case 0, 1:
	case 2:
		m.stopBits = 2
	default:
		fail("stop_bits", "stop_bits must be 1 or 2, got %d", sc.StopBits)
	}
	return m
}

// unescape interprets \r, \n, \t, \\ and \xHH in a request string, so that
// a plain or single-quoted YAML scalar can carry control characters (YAML
// double quotes already interpret their own escapes).
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New(`a lone backslash at the end (write \\ for one)`)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("\\x needs two hex digits")
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("\\x%s is not two hex digits", s[i+1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c (known: \\r \\n \\t \\\\ \\xHH)", s[i])
		}
	}
	return out, nil
}

// pointsConfig compiles the points of one device entry for its format.
type pointsConfig struct {
	d      *config.Decoder
	base   string
	device string
	points []pointConfig
	ok     *bool
	names  map[string]bool
}

func (pc *pointsConfig) fail(p, format string, args ...any) {
	pc.d.Errorf(p, format, args...)
	*pc.ok = false
}

// at is the key path of key k of point i, or the point's own path when k
// is absent.
func (pc *pointsConfig) at(i int, k string) string {
	pp := fmt.Sprintf("%s.points[%d]", pc.base, i)
	if k != "" && pc.d.Has(pp+"."+k) {
		return pp + "." + k
	}
	return pp
}

// refuse reports the format-specific keys of point i that format does not
// use: each format reads the line its own way.
func (pc *pointsConfig) refuse(i int, p *pointConfig, format string) {
	for _, k := range []struct{ key, val, owner string }{
		{"field", p.Field, FormatJSON}, {"group", p.Group, FormatRegex}, {"key", p.Key, FormatKV},
	} {
		if k.owner != format && (k.val != "" || pc.d.Has(pc.at(i, "")+"."+k.key)) {
			pc.fail(pc.at(i, k.key), "%s applies only to format %s", k.key, k.owner)
		}
	}
}

// compile checks point i's mapping keys and its name's uniqueness, and adds
// it to info. ok is false when the point is unusable.
func (pc *pointsConfig) compile(info *adapters.Info, i int, p *pointConfig, def mappings.Type) (mappings.Point, bool) {
	pp := pc.at(i, "")
	mp, ok := adapters.Compile(pc.d, pp, &p.Spec, mappings.Options{DefaultType: def, ReadOnly: true})
	if !ok {
		*pc.ok = false
	}
	if mp.Name != "" {
		if pc.names == nil {
			pc.names = map[string]bool{}
		}
		if pc.names[mp.Name] {
			pc.fail(pc.at(i, "name"), "point name %q is used twice in device %s", mp.Name, pc.device)
			ok = false
		}
		pc.names[mp.Name] = true
	}
	info.Points = append(info.Points, adapters.Point{Point: mp, Where: pp})
	return mp, ok
}

// needPoints reports a json, kv or regex device without points.
func (pc *pointsConfig) needPoints(format, what string) bool {
	if len(pc.points) > 0 {
		return true
	}
	p := pc.base
	if pc.d.Has(p + ".points") {
		p += ".points"
	}
	// Topics and ACLs are settled at start-up, so the points cannot come
	// from whatever fields the first lines happen to hold.
	pc.fail(p, "format %s needs points: list the %s to publish, each as a point", format, what)
	return false
}

func (pc *pointsConfig) nmea(info *adapters.Info) func() parser {
	var idx [nmeaCount]int
	for q := range idx {
		idx[q] = -1
	}
	if len(pc.points) == 0 {
		// Every quantity, with its default unit.
		for q := range nmeaCount {
			spec := mappings.Spec{Name: q.name(), Unit: q.unit()}
			mp, _ := spec.Compile(mappings.Options{DefaultType: q.typ(), ReadOnly: true})
			idx[q] = len(info.Points)
			info.Points = append(info.Points, adapters.Point{Point: mp, Where: pc.base})
		}
	}
	for i := range pc.points {
		p := &pc.points[i]
		pc.refuse(i, p, FormatNMEA)
		q, known := nmeaQuantityNamed(p.Name)
		if !known && p.Name != "" {
			pc.fail(pc.at(i, "name"), "format nmea publishes latitude, longitude, altitude, satellites, fix_quality, speed and course, not %q", p.Name)
		}
		if p.Type != "" && known {
			pc.fail(pc.at(i, "type"), "the type of an nmea point is fixed: %s is %s", q.name(), q.typ())
		}
		p.Type = ""
		if known && !pc.d.Has(pc.at(i, "")+".unit") {
			p.Unit = q.unit()
		}
		def := mappings.Float64
		if known {
			def = q.typ()
		}
		n := len(info.Points)
		if _, ok := pc.compile(info, i, p, def); ok && known {
			idx[q] = n
		}
	}
	return func() parser { return newNMEAParser(idx) }
}

func (pc *pointsConfig) json(info *adapters.Info) func() parser {
	if !pc.needPoints(FormatJSON, "fields") {
		return nil
	}
	var pts []jsonPoint
	for i := range pc.points {
		p := &pc.points[i]
		pc.refuse(i, p, FormatJSON)
		field := p.Field
		if field == "" {
			field = p.Name
		}
		if pc.d.Has(pc.at(i, "")+".field") && (p.Field == "" || strings.HasPrefix(field, ".") || strings.HasSuffix(field, ".") || strings.Contains(field, "..")) {
			pc.fail(pc.at(i, "field"), "field %q: want a field name, or names joined by dots for nested objects (outer.inner)", p.Field)
		}
		n := len(info.Points)
		mp, ok := pc.compile(info, i, p, mappings.Float64)
		if ok {
			pts = append(pts, jsonPoint{index: n, field: field, path: strings.Split(field, "."), typ: mp.Type})
		}
	}
	return func() parser { return &jsonParser{points: pts} }
}

func (pc *pointsConfig) kv(info *adapters.Info) func() parser {
	if !pc.needPoints(FormatKV, "keys") {
		return nil
	}
	var pts []textPoint
	for i := range pc.points {
		p := &pc.points[i]
		pc.refuse(i, p, FormatKV)
		k := p.Key
		if k == "" {
			k = p.Name
		}
		if pc.d.Has(pc.at(i, "")+".key") && (p.Key == "" || strings.ContainsAny(p.Key, " \t,;=:\"")) {
			pc.fail(pc.at(i, "key"), "key %q: want a key without spaces, commas, semicolons, '=', ':' or quotes", p.Key)
		}
		n := len(info.Points)
		mp, ok := pc.compile(info, i, p, mappings.Float64)
		if ok {
			pts = append(pts, textPoint{index: n, name: k, typ: mp.Type})
		}
	}
	return func() parser { return newKVParser(pts) }
}

func (pc *pointsConfig) regex(info *adapters.Info, re *regexp.Regexp) func() parser {
	if !pc.needPoints(FormatRegex, "named groups of the pattern") {
		return nil
	}
	var pts []textPoint
	for i := range pc.points {
		p := &pc.points[i]
		pc.refuse(i, p, FormatRegex)
		g := p.Group
		if g == "" {
			g = p.Name
		}
		n := len(info.Points)
		// A capture is text: only the point can say what it holds.
		mp, ok := pc.compile(info, i, p, 0)
		if re == nil || g == "" {
			continue
		}
		gi := re.SubexpIndex(g)
		if gi < 0 {
			k := "group"
			if !pc.d.Has(pc.at(i, "") + ".group") {
				k = "name"
			}
			pc.fail(pc.at(i, k), "the pattern has no group named %q: write (?P<%s>...)", g, g)
			continue
		}
		if ok {
			pts = append(pts, textPoint{index: n, name: g, group: gi, typ: mp.Type})
		}
	}
	return func() parser { return &regexParser{re: re, points: pts} }
}
