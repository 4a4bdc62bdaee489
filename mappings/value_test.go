package mappings

import (
	"math"
	"strings"
	"testing"
)

func TestParseType(t *testing.T) {
	for typ := Bool; typ <= String; typ++ {
		for _, s := range []string{typ.String(), strings.ToUpper(typ.String())} {
			got, err := ParseType(s)
			if err != nil || got != typ {
				t.Errorf("ParseType(%q) = %v, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "float", "int", "flaot32", "uint8", " int16"} {
		if _, err := ParseType(s); err == nil || !strings.Contains(err.Error(), "want bool, int16") {
			t.Errorf("ParseType(%q) error = %v", s, err)
		}
	}
}

func TestTypeProperties(t *testing.T) {
	tests := []struct {
		typ             Type
		bits, regs      int
		integer, isFlt  bool
		registersOf5Reg int
	}{
		{Bool, 1, 1, false, false, 1},
		{Int16, 16, 1, true, false, 1},
		{Uint16, 16, 1, true, false, 1},
		{Int32, 32, 2, true, false, 2},
		{Uint32, 32, 2, true, false, 2},
		{Float32, 32, 2, false, true, 2},
		{Int64, 64, 4, true, false, 4},
		{Uint64, 64, 4, true, false, 4},
		{Float64, 64, 4, false, true, 4},
		{String, 0, 0, false, false, 5},
	}
	for _, tc := range tests {
		if tc.typ.Bits() != tc.bits || tc.typ.Registers(0) != tc.regs || tc.typ.Registers(5) != tc.registersOf5Reg ||
			tc.typ.IsInteger() != tc.integer || tc.typ.IsFloat() != tc.isFlt {
			t.Errorf("%v: Bits %d Registers(0) %d Registers(5) %d IsInteger %v IsFloat %v", tc.typ,
				tc.typ.Bits(), tc.typ.Registers(0), tc.typ.Registers(5), tc.typ.IsInteger(), tc.typ.IsFloat())
		}
	}
}

func TestParseOrder(t *testing.T) {
	good := []struct {
		s    string
		typ  Type
		want Order
	}{
		{"", Int16, AB}, {"AB", Uint16, AB}, {"ba", Int16, BA},
		{"", Float32, ABCD}, {"CDAB", Int32, CDAB}, {"BADC", Uint32, BADC}, {"DCBA", Float32, DCBA},
		{"", Float64, ABCDEFGH}, {"GHEFCDAB", Int64, GHEFCDAB}, {"BADCFEHG", Uint64, BADCFEHG}, {"HGFEDCBA", Float64, HGFEDCBA},
		{"", String, AB}, {"BA", String, BA},
		{"", Bool, 0},
	}
	for _, tc := range good {
		got, err := ParseOrder(tc.s, tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("ParseOrder(%q, %v) = %v, %v; want %v", tc.s, tc.typ, got, err, tc.want)
		}
	}
	bad := []struct {
		s    string
		typ  Type
		want string
	}{
		{"ABCD", Int16, "order ABCD does not fit int16: int16 takes AB or BA"},
		{"AB", Float32, "order AB does not fit float32: float32 takes ABCD, CDAB, BADC or DCBA"},
		{"ABCDEFGH", Uint32, "uint32 takes ABCD, CDAB, BADC or DCBA"},
		{"ABCD", Float64, "order ABCD does not fit float64: float64 takes ABCDEFGH, GHEFCDAB, BADCFEHG or HGFEDCBA"},
		{"ABCD", String, "string takes AB or BA (the byte order inside each register)"},
		{"AB", Bool, "bool takes no order"},
		{"ACBD", Float32, `unknown order "ACBD": float32 takes ABCD`},
		{"little", Int16, `unknown order "little"`},
		{"", 0, "unknown"},
	}
	for _, tc := range bad {
		_, err := ParseOrder(tc.s, tc.typ)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseOrder(%q, %v) error = %v, want %q", tc.s, tc.typ, err, tc.want)
		}
	}
}

func TestValueText(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Float32Value(123.456), "123.456"},
		{Float64Value(float64(float32(123.456))), "123.45600128173828"},
		{Float64Value(123.456), "123.456"},
		{Float32Value(0.1), "0.1"},
		{Float32Value(1234567.5), "1234567.5"},
		{Float32Value(3e9), "3000000000"},
		{Float32Value(1e-7), "1e-7"},
		{Float32Value(1e30), "1e+30"},
		{Float64Value(1e21), "1e+21"},
		{Float64Value(1e20), "100000000000000000000"},
		{Float64Value(0.000001), "0.000001"},
		{Float64Value(-0.0000001), "-1e-7"},
		{Float64Value(0), "0"},
		{Float64Value(math.Copysign(0, -1)), "-0"},
		{Float64Value(math.NaN()), "NaN"},
		{Float32Value(float32(math.Inf(-1))), "-Inf"},
		{Float64Value(math.Inf(1)), "+Inf"},
		{IntValue(math.MinInt64), "-9223372036854775808"},
		{UintValue(math.MaxUint64), "18446744073709551615"},
		{BoolValue(true), "true"},
		{BoolValue(false), "false"},
		{StringValue("a \"b\"\n"), "a \"b\"\n"},
		{Value{}, ""},
	}
	for _, tc := range tests {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.v, got, tc.want)
		}
		b, err := tc.v.AppendText([]byte("x="))
		if err != nil || string(b) != "x="+tc.want {
			t.Errorf("AppendText = %q, %v", b, err)
		}
	}
}

func TestValueEqual(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		a, b Value
		want bool
	}{
		{IntValue(5), IntValue(5), true},
		{IntValue(5), UintValue(5), true},
		{UintValue(5), IntValue(5), true},
		{IntValue(-1), UintValue(math.MaxUint64), false},
		{UintValue(math.MaxUint64), IntValue(-1), false},
		{UintValue(math.MaxUint64), UintValue(math.MaxUint64 - 1), false},
		{IntValue(5), Float64Value(5), false},
		{Float32Value(1.5), Float64Value(1.5), true},
		{Float32Value(0.1), Float64Value(0.1), false},
		{Float64Value(nan), Float64Value(nan), true},
		{Float32Value(float32(nan)), Float64Value(nan), true},
		{Float64Value(nan), Float64Value(1), false},
		{Float64Value(0), Float64Value(math.Copysign(0, -1)), true},
		{BoolValue(true), BoolValue(true), true},
		{BoolValue(true), BoolValue(false), false},
		{BoolValue(true), IntValue(1), false},
		{StringValue("a"), StringValue("a"), true},
		{StringValue("a"), StringValue("b"), false},
		{StringValue(""), Value{}, false},
		{Value{}, Value{}, true},
	}
	for _, tc := range tests {
		if got := tc.a.Equal(tc.b); got != tc.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	if i, ok := UintValue(math.MaxUint64).Int64(); ok {
		t.Errorf("Int64 of MaxUint64 = %d, ok", i)
	}
	if u, ok := IntValue(-1).Uint64(); ok {
		t.Errorf("Uint64 of -1 = %d, ok", u)
	}
	if i, ok := UintValue(7).Int64(); !ok || i != 7 {
		t.Errorf("Int64 of 7 = %d, %v", i, ok)
	}
	if _, ok := Float64Value(7).Int64(); ok {
		t.Error("a float reported an integer")
	}
	if BoolValue(true).Float64() != 1 || !math.IsNaN(StringValue("1").Float64()) || !math.IsNaN(Value{}.Float64()) {
		t.Error("Float64 of bool, string or none")
	}
	if !BoolValue(true).Bool() || IntValue(1).Bool() {
		t.Error("Bool")
	}
}

func TestScalingApply(t *testing.T) {
	tests := []struct {
		s    Scaling
		raw  Value
		want string
		kind Kind
	}{
		{Scaling{}, UintValue(math.MaxUint64), "18446744073709551615", KindUint},
		{Scaling{Scale: 1}, Float32Value(123.456), "123.456", KindFloat32},
		{Scaling{Scale: 0.1}, IntValue(1234), "123.4", KindFloat64},
		{Scaling{Scale: 0.01}, IntValue(-1234), "-12.34", KindFloat64},
		{Scaling{Scale: 0.1, Offset: -40}, UintValue(653), "25.3", KindFloat64},
		{Scaling{Scale: 1, Offset: 0.1}, Float64Value(0.2), "0.3", KindFloat64},
		{Scaling{Scale: 0.1}, Float32Value(123.456), "12.3456", KindFloat64},
		{Scaling{Scale: 10}, IntValue(123), "1230", KindFloat64},
		{Scaling{Scale: -1}, IntValue(5), "-5", KindFloat64},
		{Scaling{Scale: 0.1}, Float64Value(math.NaN()), "NaN", KindFloat64},
		{Scaling{Scale: 2}, BoolValue(true), "true", KindBool},
		{Scaling{Scale: 2}, StringValue("x"), "x", KindString},
	}
	for _, tc := range tests {
		got := tc.s.Apply(tc.raw)
		if got.String() != tc.want || got.Kind() != tc.kind {
			t.Errorf("%+v.Apply(%v) = %v (%v), want %s (%v)", tc.s, tc.raw, got, got.Kind(), tc.want, tc.kind)
		}
	}
}

func TestScalingRaw(t *testing.T) {
	good := []struct {
		s    Scaling
		v    float64
		typ  Type
		want Value
	}{
		{Scaling{Scale: 0.1}, 21.5, Int16, IntValue(215)},
		{Scaling{Scale: 0.1}, 123.4, Int16, IntValue(1234)},
		{Scaling{Scale: 0.01}, 0.29, Uint16, UintValue(29)},
		{Scaling{Scale: 0.1, Offset: -40}, 25.3, Uint16, UintValue(653)},
		{Scaling{}, -32768, Int16, IntValue(-32768)},
		{Scaling{}, 65535, Uint16, UintValue(65535)},
		{Scaling{Scale: 0.1}, -0.0, Int16, IntValue(0)},
		{Scaling{}, 4294967295, Uint32, UintValue(4294967295)},
		{Scaling{}, 1 << 53, Int64, IntValue(1 << 53)},
		{Scaling{}, 1.5, Float32, Float32Value(1.5)},
		{Scaling{Scale: 2}, 3, Float64, Float64Value(1.5)},
		{Scaling{}, 1, Bool, BoolValue(true)},
		{Scaling{}, 0, Bool, BoolValue(false)},
	}
	for _, tc := range good {
		got, err := tc.s.Raw(tc.v, tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("%+v.Raw(%v, %v) = %#v, %v; want %#v", tc.s, tc.v, tc.typ, got, err, tc.want)
		}
		if err == nil && tc.typ != Bool {
			if back := tc.s.Apply(got).Float64(); math.Abs(back-tc.v) > 1e-9 {
				t.Errorf("Apply(Raw(%v)) = %v", tc.v, back)
			}
		}
	}
	bad := []struct {
		s    Scaling
		v    float64
		typ  Type
		want string
	}{
		{Scaling{Scale: 0.1}, 21.55, Int16, "value 21.55 is not a whole step of int16 with scale 0.1 (raw 215.5)"},
		{Scaling{}, 1.5, Int32, "value 1.5 is not a whole number, as int32 needs"},
		{Scaling{Scale: 0.1}, 4000, Int16, "value 4000 outside the range of int16 with scale 0.1: [-3276.8, 3276.7]"},
		{Scaling{Scale: 0.1, Offset: -40}, -50, Uint16, "value -50 outside the range of uint16 with scale 0.1 and offset -40: [-40, 6513.5]"},
		{Scaling{Scale: -1}, 1, Uint16, "outside the range of uint16 with scale -1: [-65535, 0]"},
		{Scaling{}, 70000, Uint16, "value 70000 outside the range of uint16: [0, 65535]"},
		{Scaling{}, -1, Uint64, "value -1 outside the range of uint64: [0, 18446744073709551615]"},
		{Scaling{}, 1 << 63, Int64, "outside the range of int64: [-9223372036854775808, 9223372036854775807]"},
		{Scaling{}, 1 << 64, Uint64, "outside the range of uint64"},
		{Scaling{}, 1e39, Float32, "value 1e+39 outside the range of float32: [-3.4028234663852886e+38, 3.4028234663852886e+38]"},
		{Scaling{Scale: 1e-300}, 1e300, Float64, "outside the range of float64"},
		{Scaling{}, math.NaN(), Float32, "not a finite number"},
		{Scaling{}, math.Inf(1), Int16, "not a finite number"},
		{Scaling{}, 2, Bool, "value 2 is not a bool"},
		{Scaling{}, 1, String, "a string takes no number"},
	}
	for _, tc := range bad {
		_, err := tc.s.Raw(tc.v, tc.typ)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Raw(%v, %v) error = %v, want %q", tc.s, tc.v, tc.typ, err, tc.want)
		}
	}
}
