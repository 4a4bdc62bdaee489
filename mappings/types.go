package mappings

import (
	"fmt"
	"math"
	"strings"
)

// Type is the data type of a point: how many registers it spans and how
// they are read. The zero Type is no type.
type Type uint8

// The point types of the configuration contract.
const (
	Bool Type = iota + 1
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
	String
)

const typeList = "bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string"

// ParseType parses a type name as the configuration writes it ("float32").
// Case is ignored.
func ParseType(s string) (Type, error) {
	for t := Bool; t <= String; t++ {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want %s)", s, typeList)
}

// String returns the configuration name of t.
func (t Type) String() string {
	switch t {
	case Bool:
		return "bool"
	case Int16:
		return "int16"
	case Uint16:
		return "uint16"
	case Int32:
		return "int32"
	case Uint32:
		return "uint32"
	case Int64:
		return "int64"
	case Uint64:
		return "uint64"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case String:
		return "string"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= Bool && t <= String }

// Bits is the width of a fixed-size type: 1 for Bool, 16, 32 or 64 for
// numbers, 0 for String, whose size is its length.
func (t Type) Bits() int {
	switch t {
	case Bool:
		return 1
	case Int16, Uint16:
		return 16
	case Int32, Uint32, Float32:
		return 32
	case Int64, Uint64, Float64:
		return 64
	}
	return 0
}

// Registers is the number of 16-bit registers a value of type t spans. A
// string spans length registers (two characters each); a Bool read from a
// register spans one.
func (t Type) Registers(length int) int {
	switch {
	case t == String:
		return max(length, 0)
	case t == Bool:
		return 1
	}
	return t.Bits() / 16
}

// IsInteger reports whether t is one of the signed or unsigned integer types.
func (t Type) IsInteger() bool { return t >= Int16 && t <= Uint64 }

// IsFloat reports whether t is Float32 or Float64.
func (t Type) IsFloat() bool { return t == Float32 || t == Float64 }

func (t Type) signed() bool { return t == Int16 || t == Int32 || t == Int64 }

// intRange is the range of an integer type. For the 64-bit types the float64
// bounds are 2^63 and 2^64, one past the maximum: callers compare with < hi.
func (t Type) intRange() (lo, hi float64) {
	switch t {
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Uint16:
		return 0, math.MaxUint16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Uint32:
		return 0, math.MaxUint32
	case Int64:
		return math.MinInt64, 1 << 63
	case Uint64:
		return 0, 1 << 64
	}
	return 0, 0
}

// inRange reports whether the whole number n fits the integer type t.
func (t Type) inRange(n float64) bool {
	lo, hi := t.intRange()
	if t == Int64 || t == Uint64 {
		return n >= lo && n < hi
	}
	return n >= lo && n <= hi
}

// rangeText prints the range of an integer type exactly.
func (t Type) rangeText() string {
	switch t {
	case Int64:
		return "[-9223372036854775808, 9223372036854775807]"
	case Uint64:
		return "[0, 18446744073709551615]"
	}
	lo, hi := t.intRange()
	return fmt.Sprintf("[%d, %d]", int64(lo), int64(hi))
}

// Order is the byte and word order of a multi-register value on the wire,
// named by where the bytes of the big-endian value (A most significant)
// arrive. The zero Order means the type's default, the big-endian one.
type Order uint8

// The orders of the configuration contract: AB and BA for 16-bit types and
// for the bytes inside each register of a string; four for 32-bit and four
// for 64-bit types.
const (
	AB Order = iota + 1
	BA
	ABCD
	CDAB
	BADC
	DCBA
	ABCDEFGH
	GHEFCDAB
	BADCFEHG
	HGFEDCBA
)

// String returns the configuration name of o; the zero Order is "default".
func (o Order) String() string {
	switch o {
	case 0:
		return "default"
	case AB:
		return "AB"
	case BA:
		return "BA"
	case ABCD:
		return "ABCD"
	case CDAB:
		return "CDAB"
	case BADC:
		return "BADC"
	case DCBA:
		return "DCBA"
	case ABCDEFGH:
		return "ABCDEFGH"
	case GHEFCDAB:
		return "GHEFCDAB"
	case BADCFEHG:
		return "BADCFEHG"
	case HGFEDCBA:
		return "HGFEDCBA"
	}
	return fmt.Sprintf("Order(%d)", uint8(o))
}

// width is the number of bytes an order describes.
func (o Order) width() int {
	switch {
	case o == AB || o == BA:
		return 2
	case o >= ABCD && o <= DCBA:
		return 4
	case o >= ABCDEFGH && o <= HGFEDCBA:
		return 8
	}
	return 0
}

func (o Order) swapBytes() bool {
	return o == BA || o == BADC || o == DCBA || o == BADCFEHG || o == HGFEDCBA
}

func (o Order) swapWords() bool {
	return o == CDAB || o == DCBA || o == GHEFCDAB || o == HGFEDCBA
}

// orderWidth is the width of the orders type t accepts; 0 for Bool, which
// takes none.
func orderWidth(t Type) int {
	if t == String {
		return 2
	}
	if t == Bool {
		return 0
	}
	return t.Bits() / 8
}

func defaultOrder(width int) Order {
	switch width {
	case 2:
		return AB
	case 4:
		return ABCD
	case 8:
		return ABCDEFGH
	}
	return 0
}

func orderChoices(t Type) string {
	switch orderWidth(t) {
	case 2:
		if t == String {
			return "string takes AB or BA (the byte order inside each register)"
		}
		return t.String() + " takes AB or BA"
	case 4:
		return t.String() + " takes ABCD, CDAB, BADC or DCBA"
	case 8:
		return t.String() + " takes ABCDEFGH, GHEFCDAB, BADCFEHG or HGFEDCBA"
	}
	return t.String() + " takes no order"
}

// ParseOrder parses the order of a point of type t. Empty means the type's
// default (AB, ABCD or ABCDEFGH); case is ignored. Bool takes no order, so
// only "" is accepted for it, giving the zero Order.
func ParseOrder(s string, t Type) (Order, error) {
	if !t.valid() {
		return 0, fmt.Errorf("order for unknown %v", t)
	}
	w := orderWidth(t)
	if s == "" {
		return defaultOrder(w), nil
	}
	for o := AB; o <= HGFEDCBA; o++ {
		if !strings.EqualFold(s, o.String()) {
			continue
		}
		if o.width() != w {
			return 0, fmt.Errorf("order %s does not fit %s: %s", o, t, orderChoices(t))
		}
		return o, nil
	}
	return 0, fmt.Errorf("unknown order %q: %s", s, orderChoices(t))
}

// resolve returns the order to use for t: the default for the zero Order,
// an error for an order of the wrong width.
func (o Order) resolve(t Type) (Order, error) {
	w := orderWidth(t)
	if o == 0 {
		return defaultOrder(w), nil
	}
	if o.width() != w {
		return 0, fmt.Errorf("order %s does not fit %s: %s", o, t, orderChoices(t))
	}
	return o, nil
}
