package serial

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldbridge/gateway/mappings"
)

// nmeaQuantity is one of the values an NMEA receiver's GGA and RMC
// sentences carry.
type nmeaQuantity int

const (
	nmeaLatitude nmeaQuantity = iota
	nmeaLongitude
	nmeaAltitude
	nmeaSatellites
	nmeaFixQuality
	nmeaSpeed
	nmeaCourse
	nmeaCount
)

func (q nmeaQuantity) name() string {
	switch q {
	case nmeaLatitude:
		return "latitude"
	case nmeaLongitude:
		return "longitude"
	case nmeaAltitude:
		return "altitude"
	case nmeaSatellites:
		return "satellites"
	case nmeaFixQuality:
		return "fix_quality"
	case nmeaSpeed:
		return "speed"
	case nmeaCourse:
		return "course"
	}
	return ""
}

// unit is the quantity's default unit.
func (q nmeaQuantity) unit() string {
	switch q {
	case nmeaLatitude, nmeaLongitude, nmeaCourse:
		return "°"
	case nmeaAltitude:
		return "m"
	case nmeaSpeed:
		return "km/h"
	}
	return ""
}

func (q nmeaQuantity) typ() mappings.Type {
	if q == nmeaSatellites || q == nmeaFixQuality {
		return mappings.Uint16
	}
	return mappings.Float64
}

func nmeaQuantityNamed(name string) (nmeaQuantity, bool) {
	for q := range nmeaCount {
		if q.name() == name {
			return q, true
		}
	}
	return 0, false
}

// knotsToKmh is exact: one knot is 1852 m per hour.
const knotsToKmh = 1.852

// nmeaParser reads GGA and RMC sentences of any talker (GP, GN, GL, GA,
// BD...). Other sentences with a valid checksum are valid lines that
// publish nothing.
type nmeaParser struct {
	points [nmeaCount]int // point index of each quantity; -1: not published
	order  []nmeaQuantity // the published quantities, in point order
	// posTime is the UTC time field of the last position reported. GGA and
	// RMC both carry the position of the same fix; it is reported once.
	posTime string
}

func newNMEAParser(points [nmeaCount]int) *nmeaParser {
	p := &nmeaParser{points: points}
	for q, i := range points {
		if i >= 0 {
			p.order = append(p.order, nmeaQuantity(q))
		}
	}
	slices.SortFunc(p.order, func(a, b nmeaQuantity) int { return points[a] - points[b] })
	return p
}

// nmeaReading is what one sentence says, checked before anything is
// emitted.
type nmeaReading struct {
	set   [nmeaCount]bool
	val   [nmeaCount]mappings.Value
	noFix [nmeaCount]bool
}

func (r *nmeaReading) put(q nmeaQuantity, v mappings.Value) { r.set[q], r.val[q] = true, v }
func (r *nmeaReading) void(q nmeaQuantity)                  { r.set[q], r.noFix[q] = true, true }

func (p *nmeaParser) parse(line []byte, emit emitFunc) error {
	body, err := nmeaBody(line)
	if err != nil {
		return err
	}
	f := strings.Split(string(body), ",")
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	var r nmeaReading
	var at string // the sentence's UTC time
	switch id := f[0]; {
	case len(id) == 5 && id[2:] == "GGA" && id[0] != 'P':
		at = field(1)
		if err := r.gga(field); err != nil {
			return fmt.Errorf("%w: %s: %v", errUnparsable, id, err)
		}
	case len(id) == 5 && id[2:] == "RMC" && id[0] != 'P':
		at = field(1)
		if err := r.rmc(field); err != nil {
			return fmt.Errorf("%w: %s: %v", errUnparsable, id, err)
		}
	default:
		return nil
	}
	if r.set[nmeaLatitude] {
		if at != "" && at == p.posTime {
			r.set[nmeaLatitude], r.set[nmeaLongitude] = false, false
		} else {
			p.posTime = at
		}
	}
	for _, q := range p.order {
		i := p.points[q]
		if !r.set[q] {
			continue
		}
		if r.noFix[q] {
			emit(i, mappings.Value{}, ErrNoFix)
		} else {
			emit(i, r.val[q], nil)
		}
	}
	return nil
}

// nmeaBody checks a sentence's framing and checksum and returns what lies
// between '$' and '*'. Every GGA and RMC a receiver sends carries a
// checksum, so a sentence without one is refused as well.
func nmeaBody(line []byte) ([]byte, error) {
	if len(line) == 0 || line[0] != '$' && line[0] != '!' {
		return nil, fmt.Errorf("%w: not an NMEA sentence", errUnparsable)
	}
	star := bytes.LastIndexByte(line, '*')
	if star < 0 || star != len(line)-3 {
		return nil, fmt.Errorf("%w: no checksum", errBadChecksum)
	}
	want, err := strconv.ParseUint(string(line[star+1:]), 16, 8)
	if err != nil {
		return nil, fmt.Errorf("%w: checksum %q is not hex", errBadChecksum, line[star+1:])
	}
	body := line[1:star]
	var sum byte
	for _, c := range body {
		sum ^= c
	}
	if sum != byte(want) {
		return nil, fmt.Errorf("%w: computed %02X, sentence says %02X", errBadChecksum, sum, want)
	}
	if len(body) < 5 {
		return nil, fmt.Errorf("%w: no sentence id", errUnparsable)
	}
	return body, nil
}

// gga reads $--GGA,time,lat,N,lon,E,quality,satellites,hdop,altitude,M,...
func (r *nmeaReading) gga(field func(int) string) error {
	quality, err := strconv.ParseUint(field(6), 10, 8)
	if err != nil || quality > 9 {
		return fmt.Errorf("fix quality %q", field(6))
	}
	r.put(nmeaFixQuality, mappings.UintValue(quality))
	if s := field(7); s != "" {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return fmt.Errorf("satellites %q", s)
		}
		r.put(nmeaSatellites, mappings.UintValue(n))
	}
	if quality == 0 {
		// Receivers repeat a stale position, or none, while searching.
		r.void(nmeaLatitude)
		r.void(nmeaLongitude)
		r.void(nmeaAltitude)
		return nil
	}
	if err := r.position(field(2), field(3), field(4), field(5)); err != nil {
		return err
	}
	if s := field(9); s != "" {
		if u := field(10); u != "" && u != "M" {
			return fmt.Errorf("altitude unit %q", u)
		}
		alt, err := parseDecimal(s)
		if err != nil {
			return fmt.Errorf("altitude %q", s)
		}
		r.put(nmeaAltitude, mappings.Float64Value(alt))
	}
	return nil
}

// rmc reads $--RMC,time,status,lat,N,lon,E,knots,course,date,magvar,E,mode.
func (r *nmeaReading) rmc(field func(int) string) error {
	var valid bool
	switch field(2) {
	case "A":
		valid = true
	case "V":
	default:
		return fmt.Errorf("status %q", field(2))
	}
	// NMEA 2.3 adds a mode; N (not valid) overrides status A on some receivers.
	if field(12) == "N" {
		valid = false
	}
	if !valid {
		for _, q := range []nmeaQuantity{nmeaLatitude, nmeaLongitude, nmeaSpeed, nmeaCourse} {
			r.void(q)
		}
		return nil
	}
	if err := r.position(field(3), field(4), field(5), field(6)); err != nil {
		return err
	}
	if s := field(7); s != "" {
		knots, err := parseDecimal(s)
		if err != nil || knots < 0 {
			return fmt.Errorf("speed %q", s)
		}
		// 1.852 has three decimals: the product is exact at three more.
		r.put(nmeaSpeed, mappings.Float64Value(roundTo(knots*knotsToKmh, decimals(s)+3)))
	}
	if s := field(8); s != "" {
		course, err := parseDecimal(s)
		if err != nil || course < 0 || course > 360 {
			return fmt.Errorf("course %q", s)
		}
		r.put(nmeaCourse, mappings.Float64Value(course))
	}
	return nil
}

func (r *nmeaReading) position(lat, ns, lon, ew string) error {
	la, err := parseCoordinate(lat, ns, 2, 'N', 'S', 90)
	if err != nil {
		return fmt.Errorf("latitude: %v", err)
	}
	lo, err := parseCoordinate(lon, ew, 3, 'E', 'W', 180)
	if err != nil {
		return fmt.Errorf("longitude: %v", err)
	}
	r.put(nmeaLatitude, mappings.Float64Value(la))
	r.put(nmeaLongitude, mappings.Float64Value(lo))
	return nil
}

// parseCoordinate reads NMEA's (d)ddmm.mmmm and a hemisphere into signed
// decimal degrees, south and west negative. The result is rounded to the
// precision the receiver sent: minutes with k decimals give degrees with
// k+2, so 4807.038 is 48.1173 and not 48.117300000000004.
func parseCoordinate(s, hemi string, degDigits int, pos, neg byte, limit float64) (float64, error) {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		dot = len(s)
	}
	if dot != degDigits+2 {
		return 0, fmt.Errorf("%q is not %sdmm.mmmm", s, strings.Repeat("d", degDigits-1))
	}
	deg, err := strconv.ParseUint(s[:degDigits], 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q: degrees", s)
	}
	minutes, err := parseDecimal(s[degDigits:])
	if err != nil || minutes < 0 || minutes >= 60 {
		return 0, fmt.Errorf("%q: minutes", s)
	}
	v := roundTo(float64(deg)+minutes/60, decimals(s)+2)
	if v > limit {
		return 0, fmt.Errorf("%q is beyond %g degrees", s, limit)
	}
	switch {
	case len(hemi) == 1 && hemi[0] == pos:
	case len(hemi) == 1 && hemi[0] == neg:
		v = -v
	default:
		return 0, fmt.Errorf("hemisphere %q (want %c or %c)", hemi, pos, neg)
	}
	return v, nil
}

// parseDecimal reads a plain decimal number: digits, one optional dot, an
// optional leading minus. NMEA has no exponents, NaN or infinities, and a
// field holding one is corrupt.
func parseDecimal(s string) (float64, error) {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && strings.IndexByte(s[i+1:], '.') < 0:
		case c == '-' && i == 0:
		default:
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if digits == 0 || digits > 15 {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return strconv.ParseFloat(s, 64)
}

// decimals is the number of digits after the dot of a decimal number.
func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// roundTo rounds f to n decimals through its decimal text, so that the
// result is the float64 nearest to that decimal.
func roundTo(f float64, n int) float64 {
	n = min(n, 15)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'f', n, 64), 64)
	if err != nil {
		return f
	}
	return r
}
