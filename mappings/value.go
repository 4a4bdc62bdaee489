package mappings

import (
	"math"
	"strconv"
)

// Kind is what a Value holds.
type Kind uint8

// The kinds of Value. Signed integer types decode to KindInt, unsigned ones
// to KindUint, so that a uint64 keeps all 64 bits.
const (
	KindNone Kind = iota // the zero Value: no value
	KindBool
	KindInt
	KindUint
	KindFloat32
	KindFloat64
	KindString
)

// String names k.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindUint:
		return "uint"
	case KindFloat32:
		return "float32"
	case KindFloat64:
		return "float64"
	case KindString:
		return "string"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one decoded or scaled value. It keeps integers exact and
// remembers a float32, so that it prints at 32-bit precision (123.456, not
// 123.45600128173828). Values are small, immutable and compared with Equal.
type Value struct {
	kind Kind
	bits uint64 // bool 0/1, int64 two's complement, uint64, float32 or float64 bits
	str  string
}

// BoolValue returns a bool Value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.bits = 1
	}
	return v
}

// IntValue returns a signed integer Value.
func IntValue(i int64) Value { return Value{kind: KindInt, bits: uint64(i)} }

// UintValue returns an unsigned integer Value.
func UintValue(u uint64) Value { return Value{kind: KindUint, bits: u} }

// Float32Value returns a float32 Value; its bits, NaN payloads included,
// are kept.
func Float32Value(f float32) Value {
	return Value{kind: KindFloat32, bits: uint64(math.Float32bits(f))}
}

// Float64Value returns a float64 Value.
func Float64Value(f float64) Value { return Value{kind: KindFloat64, bits: math.Float64bits(f)} }

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// Kind returns what v holds.
func (v Value) Kind() Kind { return v.kind }

// Bool returns the value of a bool Value, false for any other kind.
func (v Value) Bool() bool { return v.kind == KindBool && v.bits != 0 }

// Int64 returns v as an int64 when v is an integer that fits one exactly.
func (v Value) Int64() (int64, bool) {
	switch v.kind {
	case KindInt:
		return int64(v.bits), true
	case KindUint:
		return int64(v.bits), v.bits <= math.MaxInt64
	}
	return 0, false
}

// Uint64 returns v as a uint64 when v is a non-negative integer.
func (v Value) Uint64() (uint64, bool) {
	switch v.kind {
	case KindUint:
		return v.bits, true
	case KindInt:
		return v.bits, int64(v.bits) >= 0
	}
	return 0, false
}

// Float64 returns v as a float64: numbers converted (a large integer may
// round), a bool as 0 or 1, NaN for a string or no value.
func (v Value) Float64() float64 {
	switch v.kind {
	case KindBool:
		return float64(v.bits)
	case KindInt:
		return float64(int64(v.bits))
	case KindUint:
		return float64(v.bits)
	case KindFloat32:
		return float64(math.Float32frombits(uint32(v.bits)))
	case KindFloat64:
		return math.Float64frombits(v.bits)
	}
	return math.NaN()
}

func (v Value) isInt() bool   { return v.kind == KindInt || v.kind == KindUint }
func (v Value) isFloat() bool { return v.kind == KindFloat32 || v.kind == KindFloat64 }

// finite reports whether v is not a NaN or infinite float.
func (v Value) finite() bool {
	if !v.isFloat() {
		return true
	}
	f := v.Float64()
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// Equal reports whether v and w hold the same value. Integers compare
// exactly whatever their signedness; floats compare as float64 values,
// except that NaN equals NaN, so a sensor stuck at NaN is no change. An
// integer never equals a float, nor a number a bool or a string.
func (v Value) Equal(w Value) bool {
	switch {
	case v.isInt() && w.isInt():
		if v.kind == w.kind {
			return v.bits == w.bits
		}
		// int against uint: equal only when the signed one is not negative.
		s := v
		if s.kind == KindUint {
			s = w
		}
		return int64(s.bits) >= 0 && v.bits == w.bits
	case v.isFloat() && w.isFloat():
		a, b := v.Float64(), w.Float64()
		return a == b || a != a && b != b
	case v.kind != w.kind:
		return false
	case v.kind == KindString:
		return v.str == w.str
	}
	return v.bits == w.bits
}

// String prints v as AppendText does.
func (v Value) String() string {
	if v.kind == KindString {
		return v.str
	}
	var buf [32]byte
	b, _ := v.AppendText(buf[:0])
	return string(b)
}

// AppendText appends v as text: integers exact, a float32 with the fewest
// digits that read back as the same float32, a float64 likewise at 64 bits,
// bools as true or false, strings raw, no value as nothing. Floats use
// plain decimals from 1e-6 to 1e21 and exponents outside, as JSON encoders
// do, so that a meter at 1234567.5 kWh does not print as 1.2345675e+06.
// NaN and infinities print as NaN, +Inf and -Inf. The error is always nil;
// the method satisfies encoding.TextAppender.
func (v Value) AppendText(b []byte) ([]byte, error) {
	switch v.kind {
	case KindBool:
		return strconv.AppendBool(b, v.bits != 0), nil
	case KindInt:
		return strconv.AppendInt(b, int64(v.bits), 10), nil
	case KindUint:
		return strconv.AppendUint(b, v.bits, 10), nil
	case KindFloat32:
		return appendFloat(b, float64(math.Float32frombits(uint32(v.bits))), 32), nil
	case KindFloat64:
		return appendFloat(b, math.Float64frombits(v.bits), 64), nil
	case KindString:
		return append(b, v.str...), nil
	}
	return b, nil
}

// appendFloat prints f with the shortest digits at bitSize, in the notation
// encoding/json uses.
func appendFloat(b []byte, f float64, bitSize int) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && !math.IsInf(abs, 0) {
		if bitSize == 32 {
			a := float32(abs)
			if a < 1e-6 || a >= 1e21 {
				format = 'e'
			}
		} else if abs < 1e-6 || abs >= 1e21 {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bitSize)
	if format == 'e' {
		// 1e-07 reads better as 1e-7.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// formatFloat prints a float64 for messages.
func formatFloat(f float64) string {
	var buf [32]byte
	return string(appendFloat(buf[:0], f, 64))
}
