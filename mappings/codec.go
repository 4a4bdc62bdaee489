package mappings

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
)

// Decode turns registers into a value of type t. words are as they come off
// the wire: each register big-endian, in address order. A fixed-size type
// needs exactly t.Registers words; a string takes all of words, is cut at
// the first NUL and loses trailing spaces. A Bool is true when its register
// is not zero (see DecodeBool for one bit of it). Short or long input and
// an order that does not fit t are errors, never a panic.
func Decode(t Type, o Order, words []uint16) (Value, error) {
	if !t.valid() {
		return Value{}, fmt.Errorf("decode: unknown %v", t)
	}
	o, err := o.resolve(t)
	if err != nil {
		return Value{}, err
	}
	if t == String {
		b := make([]byte, 2*len(words))
		for i, w := range words {
			if o == BA {
				w = bits.ReverseBytes16(w)
			}
			b[2*i], b[2*i+1] = byte(w>>8), byte(w)
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return StringValue(string(bytes.TrimRight(b, " "))), nil
	}
	if n := t.Registers(0); len(words) != n {
		return Value{}, fmt.Errorf("decode: %s needs %d registers, got %d", t, n, len(words))
	}
	if t == Bool {
		return BoolValue(words[0] != 0), nil
	}
	x := join(words, o)
	switch t {
	case Int16:
		return IntValue(int64(int16(x))), nil
	case Int32:
		return IntValue(int64(int32(x))), nil
	case Int64:
		return IntValue(int64(x)), nil
	case Uint16, Uint32, Uint64:
		return UintValue(x), nil
	case Float32:
		return Float32Value(math.Float32frombits(uint32(x))), nil
	}
	return Float64Value(math.Float64frombits(x)), nil
}

// DecodeBool returns bit (0 least significant, 15 most) of a register.
func DecodeBool(word uint16, bit int) (Value, error) {
	if bit < 0 || bit > 15 {
		return Value{}, fmt.Errorf("bit %d outside 0..15", bit)
	}
	return BoolValue(word&(1<<bit) != 0), nil
}

// Encode is the inverse of Decode: it returns the registers that Decode
// turns back into v. An integer type takes an integer Value, or a float one
// that is a whole number, within the type's range; a float type takes any
// number (a float64 too large for float32 is an error); Bool takes a bool;
// String takes a string and is padded with a NUL to whole registers.
func Encode(t Type, o Order, v Value) ([]uint16, error) {
	if !t.valid() {
		return nil, fmt.Errorf("encode: unknown %v", t)
	}
	o, err := o.resolve(t)
	if err != nil {
		return nil, err
	}
	switch t {
	case Bool:
		if v.kind != KindBool {
			return nil, fmt.Errorf("cannot write %s %s to a bool", v.kind, quoteShort(v.String()))
		}
		return []uint16{uint16(v.bits)}, nil
	case String:
		if v.kind != KindString {
			return nil, fmt.Errorf("cannot write %s %s to a string", v.kind, quoteShort(v.String()))
		}
		words := make([]uint16, (len(v.str)+1)/2)
		for i := range words {
			w := uint16(v.str[2*i]) << 8
			if 2*i+1 < len(v.str) {
				w |= uint16(v.str[2*i+1])
			}
			if o == BA {
				w = bits.ReverseBytes16(w)
			}
			words[i] = w
		}
		return words, nil
	}
	x, err := toBits(t, v)
	if err != nil {
		return nil, err
	}
	return split(x, t.Registers(0), o), nil
}

// toBits returns the big-endian bit pattern of v as type t.
func toBits(t Type, v Value) (uint64, error) {
	switch {
	case t == Float32:
		switch v.kind {
		case KindFloat32:
			return v.bits, nil
		case KindInt, KindUint, KindFloat64:
			f := v.Float64()
			f32 := float32(f)
			if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
				return 0, fmt.Errorf("value %s outside the range of float32", formatFloat(f))
			}
			return uint64(math.Float32bits(f32)), nil
		}
	case t == Float64:
		if v.isInt() || v.isFloat() {
			if v.kind == KindFloat64 {
				return v.bits, nil
			}
			return math.Float64bits(v.Float64()), nil
		}
	case v.isInt():
		if t.signed() {
			i, ok := v.Int64()
			if !ok || !t.inRange(float64(i)) {
				return 0, fmt.Errorf("value %s outside the range of %s: %s", v, t, t.rangeText())
			}
			return uint64(i) & (1<<t.Bits() - 1), nil
		}
		u, ok := v.Uint64()
		if !ok || t.Bits() < 64 && u >= 1<<t.Bits() {
			return 0, fmt.Errorf("value %s outside the range of %s: %s", v, t, t.rangeText())
		}
		return u, nil
	case v.isFloat():
		f := v.Float64()
		if f != math.Trunc(f) {
			return 0, fmt.Errorf("value %s is not a whole number, as %s needs", v, t)
		}
		if !t.inRange(f) {
			return 0, fmt.Errorf("value %s outside the range of %s: %s", v, t, t.rangeText())
		}
		if t.signed() {
			return uint64(int64(f)) & (1<<t.Bits() - 1), nil
		}
		return uint64(f), nil
	}
	return 0, fmt.Errorf("cannot write %s %s to %s", v.kind, quoteShort(v.String()), t)
}

// join reads words in order o into one big-endian number.
func join(words []uint16, o Order) uint64 {
	var x uint64
	n := len(words)
	for i := range n {
		w := words[i]
		if o.swapWords() {
			w = words[n-1-i]
		}
		if o.swapBytes() {
			w = bits.ReverseBytes16(w)
		}
		x = x<<16 | uint64(w)
	}
	return x
}

// split is the inverse of join.
func split(x uint64, n int, o Order) []uint16 {
	words := make([]uint16, n)
	for i := n - 1; i >= 0; i-- {
		w := uint16(x)
		x >>= 16
		if o.swapBytes() {
			w = bits.ReverseBytes16(w)
		}
		if o.swapWords() {
			words[n-1-i] = w
		} else {
			words[i] = w
		}
	}
	return words
}

// quoteShort quotes s for a message, cut so that a hostile payload cannot
// flood a log.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
