package serial

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
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

type pointConfig struct {
	mappings.Spec `yaml:",inline"`
	Field         string `yaml:"field"` // json: the field, dotted for nested objects
	Group         string `yaml:"group"` // regex: the named group
	Key           string `yaml:"key"`   // kv: the key
}

type deviceConfig struct {
	adapters.Common `yaml:",inline"`
	Port            string             `yaml:"port"`
	Serial          *serialline.Config `yaml:"serial"`
	Format          string             `yaml:"format"`
	Pattern         string             `yaml:"pattern"`
	Request         *string            `yaml:"request"`
	ResponseTimeout time.Duration      `yaml:"response_timeout"`
	IdleTimeout     time.Duration      `yaml:"idle_timeout"`
	MaxLine         config.Size        `yaml:"max_line"`
	Points          []pointConfig      `yaml:"points"`
}

// Configure implements adapters.Driver. It reports every problem of the
// entry through raw's decoder, at its key path, and does no I/O.
func (Driver) Configure(raw config.Raw) adapters.Device {
	var c deviceConfig
	e := adapters.Decode(raw, &c)
	dev := &Device{
		info:    adapters.Info{Name: c.Name, Driver: Driver{}.Name()},
		mode:    serialline.Default(),
		format:  strings.ToLower(c.Format),
		maxLine: DefaultMaxLine,
	}

	switch {
	case c.Port == "":
		e.Fail(e.Key("port"), "port is required: the serial device, such as /dev/ttyUSB0 or /dev/serial/by-id/...")
	case !strings.HasPrefix(c.Port, "/"):
		e.Fail(e.Key("port"), "port %q: want an absolute device path, such as /dev/ttyUSB0", c.Port)
	default:
		dev.port = path.Clean(c.Port)
	}
	if c.Serial != nil {
		dev.mode = c.Serial.Check(e, e.Key("serial"), 7, 8)
	}

	// Query/response or streaming.
	if c.Request != nil && *c.Request != "" {
		req, err := unescape(*c.Request)
		switch {
		case err != nil:
			e.Fail(e.Key("request"), "%v", err)
		case len(req) > MaxRequest:
			e.Fail(e.Key("request"), "request is %d bytes long, more than %d", len(req), MaxRequest)
		default:
			dev.request = req
		}
		dev.every = e.PollInterval(c.PollInterval, defaultPollInterval, MinPollInterval)
		dev.respTO = min(defaultResponseTimeout, dev.every)
		if e.Has("response_timeout") {
			switch {
			case c.ResponseTimeout <= 0:
				e.Fail(e.Key("response_timeout"), "response_timeout must be positive")
			case c.ResponseTimeout > dev.every:
				// The next request would go out while one is still waiting.
				e.Fail(e.Key("response_timeout"), "response_timeout %s is longer than poll_interval %s", c.ResponseTimeout, dev.every)
			default:
				dev.respTO = c.ResponseTimeout
			}
		}
		if e.Has("idle_timeout") {
			e.Fail(e.Key("idle_timeout"), "idle_timeout applies to streaming sensors; with request, response_timeout reports a silent sensor")
		}
	} else {
		if e.Has("poll_interval") {
			e.Fail(e.Key("poll_interval"), "poll_interval applies only with request: a streaming sensor is read as its lines arrive")
		}
		if e.Has("response_timeout") {
			e.Fail(e.Key("response_timeout"), "response_timeout applies only with request; idle_timeout reports a streaming sensor that falls silent")
		}
		if e.Has("idle_timeout") {
			if c.IdleTimeout < MinPollInterval {
				e.Fail(e.Key("idle_timeout"), "idle_timeout must be at least %s", MinPollInterval)
			} else {
				dev.idleTO = c.IdleTimeout
			}
		}
	}
	if e.Has("max_line") {
		if c.MaxLine < minMaxLine || c.MaxLine > maxMaxLine {
			e.Fail(e.Key("max_line"), "max_line %s outside %s..%s", c.MaxLine, config.Size(minMaxLine), config.Size(maxMaxLine))
		} else {
			dev.maxLine = int(c.MaxLine)
		}
	}

	var re *regexp.Regexp
	if dev.format == FormatRegex {
		if c.Pattern == "" {
			e.Fail(e.Key("pattern"), "format regex needs a pattern with a named group, such as (?P<temperature>-?[0-9.]+), for each point")
		} else if r, err := regexp.Compile(c.Pattern); err != nil {
			e.Fail(e.Key("pattern"), "invalid pattern: %v", err)
		} else {
			re = r
		}
	} else if e.Has("pattern") {
		e.Fail(e.Key("pattern"), "pattern applies only to format regex")
	}

	pc := pointsConfig{e: e, points: c.Points}
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
		e.Fail(e.Key("format"), "format is required: nmea, json, regex or kv")
	default:
		e.Fail(e.Key("format"), "unknown format %q (want nmea, json, regex or kv)", c.Format)
	}
	if !e.OK() {
		return nil
	}
	dev.metrics = newDeviceMetrics(dev.info.Name)
	return dev
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
	e      *adapters.Entry
	points []pointConfig
}

func (pc *pointsConfig) fail(p, format string, args ...any) { pc.e.Fail(p, format, args...) }

// at is the key path of key k of point i, or the point's own path when k
// is absent.
func (pc *pointsConfig) at(i int, k string) string {
	pp := pc.e.PointPath(i)
	if k == "" {
		return pp
	}
	return pc.e.At(pp, k)
}

// has reports whether point i has key k.
func (pc *pointsConfig) has(i int, k string) bool { return pc.e.Decoder().Has(pc.at(i, "") + "." + k) }

// refuse reports the format-specific keys of point i that format does not
// use: each format reads the line its own way.
func (pc *pointsConfig) refuse(i int, p *pointConfig, format string) {
	for _, k := range []struct{ key, val, owner string }{
		{"field", p.Field, FormatJSON}, {"group", p.Group, FormatRegex}, {"key", p.Key, FormatKV},
	} {
		if k.owner != format && (k.val != "" || pc.has(i, k.key)) {
			pc.fail(pc.at(i, k.key), "%s applies only to format %s", k.key, k.owner)
		}
	}
}

// compile checks point i's mapping keys and adds it to info, which checks
// its name's uniqueness. It returns the point's index in info.Points; ok is
// false when the point's mapping is unusable.
func (pc *pointsConfig) compile(info *adapters.Info, i int, p *pointConfig, def mappings.Type) (n int, mp mappings.Point, ok bool) {
	pp := pc.at(i, "")
	mp, ok = adapters.Compile(pc.e.Decoder(), pp, &p.Spec, mappings.Options{DefaultType: def, ReadOnly: true, Source: "serial sensor values"})
	pc.e.Check(ok)
	return pc.e.AddPoint(info, mp, pp), mp, ok
}

// needPoints reports a json, kv or regex device without points.
func (pc *pointsConfig) needPoints(format, what string) bool {
	if len(pc.points) > 0 {
		return true
	}
	// Topics and ACLs are settled at start-up, so the points cannot come
	// from whatever fields the first lines happen to hold.
	pc.fail(pc.e.Key("points"), "format %s needs points: list the %s to publish, each as a point", format, what)
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
			mp, _ := spec.Compile(mappings.Options{DefaultType: q.typ(), ReadOnly: true, Source: "serial sensor values"})
			idx[q] = pc.e.AddPoint(info, mp, pc.e.Path())
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
		if known && !pc.has(i, "unit") {
			p.Unit = q.unit()
		}
		def := mappings.Float64
		if known {
			def = q.typ()
		}
		if n, _, ok := pc.compile(info, i, p, def); ok && known {
			idx[q] = n
		}
	}
	return func() parser { return newNMEAParser(idx) }
}

// each checks the points of a json, kv or regex device: it refuses the
// keys that other formats own, compiles each point with default type def
// and hands it to use with its index n in info.Points; ok is false when
// the point is unusable.
func (pc *pointsConfig) each(info *adapters.Info, format string, def mappings.Type, use func(i int, p *pointConfig, n int, mp mappings.Point, ok bool)) {
	for i := range pc.points {
		p := &pc.points[i]
		pc.refuse(i, p, format)
		n, mp, ok := pc.compile(info, i, p, def)
		use(i, p, n, mp, ok)
	}
}

func (pc *pointsConfig) json(info *adapters.Info) func() parser {
	if !pc.needPoints(FormatJSON, "fields") {
		return nil
	}
	var pts []jsonPoint
	pc.each(info, FormatJSON, mappings.Float64, func(i int, p *pointConfig, n int, mp mappings.Point, ok bool) {
		field := cmp.Or(p.Field, p.Name)
		if pc.has(i, "field") && (p.Field == "" || strings.HasPrefix(field, ".") || strings.HasSuffix(field, ".") || strings.Contains(field, "..")) {
			pc.fail(pc.at(i, "field"), "field %q: want a field name, or names joined by dots for nested objects (outer.inner)", p.Field)
		} else if ok {
			pts = append(pts, jsonPoint{index: n, field: field, path: strings.Split(field, "."), typ: mp.Type})
		}
	})
	return func() parser { return &jsonParser{points: pts} }
}

func (pc *pointsConfig) kv(info *adapters.Info) func() parser {
	if !pc.needPoints(FormatKV, "keys") {
		return nil
	}
	var pts []textPoint
	pc.each(info, FormatKV, mappings.Float64, func(i int, p *pointConfig, n int, mp mappings.Point, ok bool) {
		if pc.has(i, "key") && (p.Key == "" || strings.ContainsAny(p.Key, " \t,;=:\"")) {
			pc.fail(pc.at(i, "key"), "key %q: want a key without spaces, commas, semicolons, '=', ':' or quotes", p.Key)
		} else if ok {
			pts = append(pts, textPoint{index: n, name: cmp.Or(p.Key, p.Name), typ: mp.Type})
		}
	})
	return func() parser { return newKVParser(pts) }
}

func (pc *pointsConfig) regex(info *adapters.Info, re *regexp.Regexp) func() parser {
	if !pc.needPoints(FormatRegex, "named groups of the pattern") {
		return nil
	}
	var pts []textPoint
	// A capture is text: only the point can say what it holds.
	pc.each(info, FormatRegex, 0, func(i int, p *pointConfig, n int, mp mappings.Point, ok bool) {
		g := cmp.Or(p.Group, p.Name)
		if re == nil || g == "" {
			return
		}
		gi := re.SubexpIndex(g)
		if gi < 0 {
			k := "group"
			if !pc.has(i, "group") {
				k = "name"
			}
			pc.fail(pc.at(i, k), "the pattern has no group named %q: write (?P<%s>...)", g, g)
			return
		}
		if ok {
			pts = append(pts, textPoint{index: n, name: g, group: gi, typ: mp.Type})
		}
	})
	return func() parser { return &regexParser{re: re, points: pts} }
}
