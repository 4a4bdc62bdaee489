package serial

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fieldbridge/gateway/mappings"
)

// parser turns one line into readings. It is used by one goroutine and may
// keep state between lines (the NMEA parser remembers the last fix).
type parser interface {
	// parse reports the readings of line through emit, in point order. A
	// line it refuses returns an error wrapping errBadChecksum or
	// errUnparsable, and then nothing was emitted: a bad line never
	// publishes part of itself.
	parse(line []byte, emit emitFunc) error
}

// emitFunc receives one reading of point i (an index into Info.Points); err
// marks a value the line carried but that is not a measurement.
type emitFunc func(i int, v mappings.Value, err error)

// Reasons a line is refused; the runner counts them apart.
var (
	errBadChecksum = errors.New("bad checksum")
	errUnparsable  = errors.New("unparsable line")
)

// textPoint is a point read from text: a kv key or a regex group.
type textPoint struct {
	index int // into Info.Points
	name  string
	group int // regex: the submatch index
	typ   mappings.Type
}

// convert reads the text s as a value of type t. Float types accept nan and
// inf, which the gateway publishes as a bad reading that still shows the
// sensor answered (an Arduino prints nan for a failed DHT read).
func convert(s string, t mappings.Type) (mappings.Value, error) {
	s = strings.TrimSpace(s)
	if t == mappings.String {
		return mappings.StringValue(s), nil
	}
	if s == "" {
		return mappings.Value{}, errors.New("empty value")
	}
	switch t {
	case mappings.Bool:
		switch strings.ToLower(s) {
		case "true", "1", "on", "yes":
			return mappings.BoolValue(true), nil
		case "false", "0", "off", "no":
			return mappings.BoolValue(false), nil
		}
		return mappings.Value{}, fmt.Errorf("%s is not a bool (true/false, 1/0, on/off, yes/no)", quoteShort(s))
	case mappings.Float32:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return mappings.Value{}, fmt.Errorf("%s is not a float32 number", quoteShort(s))
		}
		return mappings.Float32Value(float32(f)), nil
	case mappings.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return mappings.Value{}, fmt.Errorf("%s is not a number", quoteShort(s))
		}
		return mappings.Float64Value(f), nil
	case mappings.Int16, mappings.Int32, mappings.Int64:
		i, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return mappings.Value{}, fmt.Errorf("%s is not a whole number that fits %s", quoteShort(s), t)
		}
		return mappings.IntValue(i), nil
	case mappings.Uint16, mappings.Uint32, mappings.Uint64:
		u, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, t.Bits())
		if err != nil {
			return mappings.Value{}, fmt.Errorf("%s is not a whole number that fits %s", quoteShort(s), t)
		}
		return mappings.UintValue(u), nil
	}
	return mappings.Value{}, fmt.Errorf("type %s cannot be read from text", t)
}

// quoteShort quotes s for an error message, shortened: the message may be
// published, and a sensor's text is not bounded by much.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
