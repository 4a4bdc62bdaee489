package mappings

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Format is the payload format of readings. The zero Format is JSON, the
// default.
type Format uint8

// The payload formats of the configuration contract.
const (
	// FormatJSON: {"value":21.5,"unit":"°C","ts":"...","quality":"good"}.
	FormatJSON Format = iota
	// FormatValue: the bare value as text.
	FormatValue
)

// ParseFormat parses "json" or "value"; empty means json.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json", "":
		return FormatJSON, nil
	case "value":
		return FormatValue, nil
	}
	return 0, fmt.Errorf("unknown payload format %s (want json or value)", quoteShort(s))
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatValue:
		return "value"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Reading is one outcome of reading a point: a value, or an error.
type Reading struct {
	Value Value // the scaled value; ignored when Err is set
	Unit  string
	Time  time.Time
	Err   error // a failed read
}

// tsLayout is RFC 3339 in UTC with exactly milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendTimestamp appends t as every payload's "ts" gives it: RFC 3339
// in UTC with exactly three decimals, such as 2026-11-25T19:00:00.120Z.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, tsLayout)
}

// AppendPayload appends the payload of r in format f to dst and reports
// whether there is anything to publish.
//
// JSON, keys in this order, ts always UTC with three decimals, unit left out
// when empty:
//
//	{"value":123.456,"unit":"°C","ts":"2026-11-25T19:00:00.120Z","quality":"good"}
//	{"quality":"bad","error":"timeout","ts":"2026-11-25T19:00:00.120Z"}
//
// A NaN or infinite float is a bad reading that still has a value slot, so
// that a subscriber sees the device answered:
//
//	{"value":null,"unit":"°C","ts":"...","quality":"bad","error":"not a number"}
//
// (the error is "infinite" for ±Inf). FormatValue writes the bare value
// (see Value.AppendText) and publishes nothing for a failed read, a NaN or
// infinite float or an empty string, since an empty retained payload would
// erase the last value. A Reading without Err and with the zero Value
// publishes nothing in either format. The JSON path does not allocate when
// dst has room, except to print Err.
func AppendPayload(dst []byte, f Format, r Reading) ([]byte, bool) {
	v := r.Value
	if r.Err == nil && v.kind == KindNone {
		return dst, false
	}
	if f == FormatValue {
		if r.Err != nil || !v.finite() || v.kind == KindString && v.str == "" {
			return dst, false
		}
		dst, _ = v.AppendText(dst)
		return dst, true
	}
	if r.Err != nil {
		dst = append(dst, `{"quality":"bad","error":`...)
		dst = AppendJSONString(dst, r.Err.Error())
		dst = append(dst, `,"ts":"`...)
		dst = AppendTimestamp(dst, r.Time)
		return append(dst, `"}`...), true
	}
	dst = append(dst, `{"value":`...)
	bad := ""
	switch v.kind {
	case KindString:
		dst = AppendJSONString(dst, v.str)
	case KindFloat32, KindFloat64:
		if x := v.Float64(); math.IsNaN(x) {
			bad = "not a number"
		} else if math.IsInf(x, 0) {
			bad = "infinite"
		}
		if bad != "" {
			dst = append(dst, "null"...)
			break
		}
		fallthrough
	default:
		dst, _ = v.AppendText(dst)
	}
	if r.Unit != "" {
		dst = append(dst, `,"unit":`...)
		dst = AppendJSONString(dst, r.Unit)
	}
	dst = append(dst, `,"ts":"`...)
	dst = AppendTimestamp(dst, r.Time)
	if bad != "" {
		dst = append(dst, `","quality":"bad","error":"`...)
		dst = append(dst, bad...)
		return append(dst, `"}`...), true
	}
	return append(dst, `","quality":"good"}`...), true
}

// maxEchoedPayload bounds how much of a rejected command is echoed back.
const maxEchoedPayload = 256

// AppendCommandError appends the answer to a rejected command, published on
// {topic}/set/error:
//
//	{"error":"value 120 outside write_range [0, 90]","payload":"120","ts":"2026-11-25T19:00:00.120Z"}
//
// The payload is echoed as a JSON string (invalid UTF-8 replaced), cut to
// 256 bytes.
func AppendCommandError(dst []byte, err error, payload []byte, ts time.Time) []byte {
	if len(payload) > maxEchoedPayload {
		payload = payload[:maxEchoedPayload]
	}
	dst = append(dst, `{"error":`...)
	dst = AppendJSONString(dst, err.Error())
	dst = append(dst, `,"payload":`...)
	dst = AppendJSONString(dst, string(payload))
	dst = append(dst, `,"ts":"`...)
	dst = AppendTimestamp(dst, ts)
	return append(dst, `"}`...)
}

// AppendJSONString appends s as a JSON string, with invalid UTF-8 replaced
// by U+FFFD so the payload stays valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + 1
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
