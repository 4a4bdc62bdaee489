package mappings

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Scaling is the linear map from a raw value to the published one:
// value = raw*Scale + Offset. A zero Scale means 1, so the zero Scaling
// passes values through.
type Scaling struct {
	Scale, Offset float64
}

func (s Scaling) identity() bool { return (s.Scale == 0 || s.Scale == 1) && s.Offset == 0 }

func (s Scaling) scale() float64 {
	if s.Scale == 0 {
		return 1
	}
	return s.Scale
}

// Apply returns raw*Scale + Offset. With scale 1 and offset 0, raw is
// returned unchanged, integer precision and float32-ness kept. Otherwise
// the result is a float64 rounded to 15 significant digits, so that
// 1234*0.1 is 123.4 and not 123.40000000000001; a float32 raw enters as the
// decimal it prints as (123.456, not 123.45600128173828). Bools, strings
// and the zero Value pass unchanged.
func (s Scaling) Apply(raw Value) Value {
	if s.identity() || !raw.isInt() && !raw.isFloat() {
		return raw
	}
	f := raw.Float64()
	if raw.kind == KindFloat32 {
		f = shortestAs64(f)
	}
	return Float64Value(round15(f*s.scale() + s.Offset))
}

// round15 rounds f to 15 significant digits, the most a float64 carries for
// every decimal, which drops the noise of one multiplication and addition.
func round15(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return f
	}
	var buf [32]byte
	r, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], f, 'e', 14, 64)), 64)
	if err != nil {
		return f
	}
	return r
}

// shortestAs64 returns the float64 nearest to the shortest decimal that
// reads back as the float32 f.
func shortestAs64(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	var buf [32]byte
	r, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], f, 'e', -1, 32)), 64)
	if err != nil {
		return f
	}
	return r
}

// wholeTolerance is how far, relative to its size, a raw value may be from
// a whole number and still count as one: it absorbs the float error of
// (value - offset) / scale, such as 21.5/0.1 = 214.99999999999997.
const wholeTolerance = 1e-9

// Raw returns the raw value of type t that Apply maps to v: (v - Offset) /
// Scale. For an integer type the raw value must be a whole number (within a
// relative 1e-9, for float error) inside the type's range; for float32 it
// must not overflow. Bool takes 0 or 1 and String no number at all. Errors
// are meant for the user and name the allowed range in the user's units.
func (s Scaling) Raw(v float64, t Type) (Value, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Value{}, errors.New("value is not a finite number")
	}
	r := v
	if !s.identity() {
		r = (v - s.Offset) / s.scale()
	}
	switch {
	case t == Bool:
		if r == 0 || r == 1 {
			return BoolValue(r == 1), nil
		}
		return Value{}, fmt.Errorf("value %s is not a bool: use 0 or 1, true or false", formatFloat(v))
	case t.IsInteger():
		n := math.Round(r)
		if math.Abs(r-n) > wholeTolerance*math.Max(1, math.Abs(r)) {
			if s.identity() {
				return Value{}, fmt.Errorf("value %s is not a whole number, as %s needs", formatFloat(v), t)
			}
			return Value{}, fmt.Errorf("value %s is not a whole step of %s (raw %s)",
				formatFloat(v), s.describe(t), formatFloat(round15(r)))
		}
		if !t.inRange(n) {
			return Value{}, fmt.Errorf("value %s outside the range of %s: %s", formatFloat(v), s.describe(t), s.rangeText(t))
		}
		if n == 0 {
			n = 0 // no -0 in an integer
		}
		if t.signed() {
			return IntValue(int64(n)), nil
		}
		return UintValue(uint64(n)), nil
	case t == Float32:
		if f := float32(r); math.IsInf(float64(f), 0) {
			return Value{}, fmt.Errorf("value %s outside the range of %s: %s", formatFloat(v), s.describe(t), s.rangeText(t))
		}
		return Float32Value(float32(r)), nil
	case t == Float64:
		if math.IsInf(r, 0) {
			return Value{}, fmt.Errorf("value %s outside the range of %s", formatFloat(v), s.describe(t))
		}
		return Float64Value(r), nil
	}
	return Value{}, fmt.Errorf("a %s takes no number", t)
}

// describe names t with its scaling, for messages.
func (s Scaling) describe(t Type) string {
	switch {
	case s.identity():
		return t.String()
	case s.Offset == 0:
		return fmt.Sprintf("%s with scale %s", t, formatFloat(s.scale()))
	}
	return fmt.Sprintf("%s with scale %s and offset %s", t, formatFloat(s.scale()), formatFloat(s.Offset))
}

// userRange is the range of the values that type t can carry after s.
func (s Scaling) userRange(t Type) (lo, hi float64) {
	switch {
	case t.IsInteger():
		lo, hi = t.intRange()
		if t == Int64 || t == Uint64 {
			hi = math.Nextafter(hi, 0)
		}
	case t == Float32:
		lo, hi = -math.MaxFloat32, math.MaxFloat32
	default:
		return math.Inf(-1), math.Inf(1)
	}
	if s.identity() {
		return lo, hi
	}
	lo, hi = round15(lo*s.scale()+s.Offset), round15(hi*s.scale()+s.Offset)
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

func (s Scaling) rangeText(t Type) string {
	if s.identity() && t.IsInteger() {
		return t.rangeText()
	}
	lo, hi := s.userRange(t)
	return "[" + formatFloat(lo) + ", " + formatFloat(hi) + "]"
}
