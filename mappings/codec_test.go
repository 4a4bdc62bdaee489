package mappings

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// wire lays out the big-endian bytes of a value the way order name says:
// wire byte i is value byte name[i]-'A'. It is an oracle independent of the
// swap logic in join and split.
func wire(be []byte, name string) []uint16 {
	b := make([]byte, len(be))
	for i := range name {
		b[i] = be[name[i]-'A']
	}
	words := make([]uint16, len(b)/2)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return words
}

func be16(x uint16) []byte { return binary.BigEndian.AppendUint16(nil, x) }
func be32(x uint32) []byte { return binary.BigEndian.AppendUint32(nil, x) }
func be64(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }

func ordersOf(t Type) []Order {
	switch orderWidth(t) {
	case 2:
		return []Order{AB, BA}
	case 4:
		return []Order{ABCD, CDAB, BADC, DCBA}
	case 8:
		return []Order{ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA}
	}
	return nil
}

func TestDecodeKnownVectors(t *testing.T) {
	tests := []struct {
		typ   Type
		order Order
		words []uint16
		want  Value
		text  string
	}{
		{Float32, ABCD, []uint16{0x42F6, 0xE979}, Float32Value(123.456), "123.456"},
		{Float32, 0, []uint16{0x42F6, 0xE979}, Float32Value(123.456), "123.456"},
		{Float32, CDAB, []uint16{0xE979, 0x42F6}, Float32Value(123.456), "123.456"},
		{Float32, BADC, []uint16{0xF642, 0x79E9}, Float32Value(123.456), "123.456"},
		{Float32, DCBA, []uint16{0x79E9, 0xF642}, Float32Value(123.456), "123.456"},
		{Uint32, ABCD, []uint16{0xB2D0, 0x5E00}, UintValue(3000000000), "3000000000"},
		{Uint32, CDAB, []uint16{0x5E00, 0xB2D0}, UintValue(3000000000), "3000000000"},
		{Int32, ABCD, []uint16{0xF8A4, 0x32EB}, IntValue(-123456789), "-123456789"},
		{Int32, DCBA, []uint16{0xEB32, 0xA4F8}, IntValue(-123456789), "-123456789"},
		{Int16, AB, []uint16{0xFB2E}, IntValue(-1234), "-1234"},
		{Int16, BA, []uint16{0x2EFB}, IntValue(-1234), "-1234"},
		{Uint16, AB, []uint16{0xFB2E}, UintValue(64302), "64302"},
		{Bool, 0, []uint16{0x0000}, BoolValue(false), "false"},
		{Bool, 0, []uint16{0x0100}, BoolValue(true), "true"},
		{Float64, ABCDEFGH, []uint16{0x405E, 0xDD2F, 0x1A9F, 0xBE77}, Float64Value(123.456), "123.456"},
		{Float64, GHEFCDAB, []uint16{0xBE77, 0x1A9F, 0xDD2F, 0x405E}, Float64Value(123.456), "123.456"},
		{Float64, BADCFEHG, []uint16{0x5E40, 0x2FDD, 0x9F1A, 0x77BE}, Float64Value(123.456), "123.456"},
		{Float64, HGFEDCBA, []uint16{0x77BE, 0x9F1A, 0x2FDD, 0x5E40}, Float64Value(123.456), "123.456"},
		{Float64, 0, []uint16{0xBFB9, 0x9999, 0x9999, 0x999A}, Float64Value(-0.1), "-0.1"},
		{Int64, ABCDEFGH, []uint16{0xEEDD, 0xEF0B, 0x8216, 0x7EEB}, IntValue(-1234567890123456789), "-1234567890123456789"},
		{Int64, GHEFCDAB, []uint16{0x7EEB, 0x8216, 0xEF0B, 0xEEDD}, IntValue(-1234567890123456789), "-1234567890123456789"},
		{Int64, BADCFEHG, []uint16{0xDDEE, 0x0BEF, 0x1682, 0xEB7E}, IntValue(-1234567890123456789), "-1234567890123456789"},
		{Int64, HGFEDCBA, []uint16{0xEB7E, 0x1682, 0x0BEF, 0xDDEE}, IntValue(-1234567890123456789), "-1234567890123456789"},
		{Uint64, ABCDEFGH, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, UintValue(math.MaxUint64), "18446744073709551615"},
		{Uint64, ABCDEFGH, []uint16{0xAB54, 0xA98C, 0xEB1F, 0x0AD2}, UintValue(12345678901234567890), "12345678901234567890"},
		{Uint64, GHEFCDAB, []uint16{0x0AD2, 0xEB1F, 0xA98C, 0xAB54}, UintValue(12345678901234567890), "12345678901234567890"},
		{Uint64, BADCFEHG, []uint16{0x54AB, 0x8CA9, 0x1FEB, 0xD20A}, UintValue(12345678901234567890), "12345678901234567890"},
		{Uint64, HGFEDCBA, []uint16{0xD20A, 0x1FEB, 0x8CA9, 0x54AB}, UintValue(12345678901234567890), "12345678901234567890"},
		{String, AB, []uint16{0x4142, 0x4344}, StringValue("ABCD"), "ABCD"},
		{String, BA, []uint16{0x4241, 0x4443}, StringValue("ABCD"), "ABCD"},
		{String, AB, []uint16{0x4142, 0x4300, 0x0000}, StringValue("ABC"), "ABC"},
		{String, AB, []uint16{0x4142, 0x2020, 0x2020}, StringValue("AB"), "AB"},
		{String, AB, []uint16{0x4120, 0x4200}, StringValue("A B"), "A B"},
		{String, AB, []uint16{0x4100, 0x4242}, StringValue("A"), "A"}, // C string: NUL ends it
		{String, AB, nil, StringValue(""), ""},
	}
	for _, tc := range tests {
		got, err := Decode(tc.typ, tc.order, tc.words)
		if err != nil {
			t.Errorf("Decode(%v, %v, %04X): %v", tc.typ, tc.order, tc.words, err)
			continue
		}
		if got != tc.want || got.String() != tc.text {
			t.Errorf("Decode(%v, %v, %04X) = %#v %q, want %#v %q", tc.typ, tc.order, tc.words, got, got, tc.want, tc.text)
		}
		if tc.typ == String || tc.typ == Bool {
			continue // not one-to-one; see TestEncode
		}
		back, err := Encode(tc.typ, tc.order, got)
		if err != nil || !slices.Equal(back, tc.words) {
			t.Errorf("Encode(%v, %v, %v) = %04X, %v; want %04X", tc.typ, tc.order, got, back, err, tc.words)
		}
	}
}

// TestEveryOrder decodes one value of every numeric type in every order it
// takes, against the byte-permutation oracle, and encodes it back.
func TestEveryOrder(t *testing.T) {
	values := map[Type]struct {
		be   []byte
		want Value
	}{
		Int16:   {be16(0xFB2E), IntValue(-1234)},
		Uint16:  {be16(0xFB2E), UintValue(0xFB2E)},
		Int32:   {be32(0xF8A432EB), IntValue(-123456789)},
		Uint32:  {be32(0xB2D05E00), UintValue(3000000000)},
		Float32: {be32(0x42F6E979), Float32Value(123.456)},
		Int64:   {be64(0xEEDDEF0B82167EEB), IntValue(-1234567890123456789)},
		Uint64:  {be64(0xAB54A98CEB1F0AD2), UintValue(12345678901234567890)},
		Float64: {be64(0x405EDD2F1A9FBE77), Float64Value(123.456)},
	}
	for typ, v := range values {
		for _, o := range ordersOf(typ) {
			words := wire(v.be, o.String())
			got, err := Decode(typ, o, words)
			if err != nil || !got.Equal(v.want) || got.Kind() != v.want.Kind() {
				t.Errorf("Decode(%v, %v, %04X) = %v, %v; want %v", typ, o, words, got, err, v.want)
			}
			back, err := Encode(typ, o, v.want)
			if err != nil || !slices.Equal(back, words) {
				t.Errorf("Encode(%v, %v, %v) = %04X, %v; want %04X", typ, o, v.want, back, err, words)
			}
		}
	}
	// Strings: AB and BA swap the bytes inside each register only.
	for o, layout := range map[Order]string{AB: "ABCDEF", BA: "BADCFE"} {
		words := wire([]byte("HELLO!"), layout)
		got, err := Decode(String, o, words)
		if err != nil || got.String() != "HELLO!" {
			t.Errorf("Decode(string, %v, %04X) = %q, %v", o, words, got, err)
		}
		back, err := Encode(String, o, got)
		if err != nil || !slices.Equal(back, words) {
			t.Errorf("Encode(string, %v) = %04X, %v; want %04X", o, back, err, words)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		typ   Type
		order Order
		words []uint16
		want  string
	}{
		{Float32, ABCD, []uint16{0x42F6}, "float32 needs 2 registers, got 1"},
		{Float32, ABCD, nil, "float32 needs 2 registers, got 0"},
		{Float32, ABCD, []uint16{1, 2, 3}, "float32 needs 2 registers, got 3"},
		{Float64, 0, []uint16{1, 2, 3}, "float64 needs 4 registers, got 3"},
		{Int16, 0, nil, "int16 needs 1 registers, got 0"},
		{Bool, 0, nil, "bool needs 1 registers, got 0"},
		{Int16, ABCD, []uint16{1}, "order ABCD does not fit int16: int16 takes AB or BA"},
		{Float32, AB, []uint16{1, 2}, "order AB does not fit float32: float32 takes ABCD, CDAB, BADC or DCBA"},
		{Uint64, DCBA, []uint16{1, 2, 3, 4}, "uint64 takes ABCDEFGH, GHEFCDAB, BADCFEHG or HGFEDCBA"},
		{String, ABCD, []uint16{1}, "string takes AB or BA"},
		{Bool, AB, []uint16{1}, "bool takes no order"},
		{0, 0, []uint16{1}, "unknown"},
		{Type(99), 0, []uint16{1}, "unknown"},
	}
	for _, tc := range tests {
		_, err := Decode(tc.typ, tc.order, tc.words)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%v, %v, %v) error = %v, want %q", tc.typ, tc.order, tc.words, err, tc.want)
		}
	}
}

func TestDecodeBool(t *testing.T) {
	for bit := range 16 {
		v, err := DecodeBool(1<<bit, bit)
		if err != nil || !v.Bool() {
			t.Errorf("DecodeBool(1<<%d, %d) = %v, %v", bit, bit, v, err)
		}
		v, err = DecodeBool(^uint16(1<<bit), bit)
		if err != nil || v.Bool() || v.Kind() != KindBool {
			t.Errorf("DecodeBool(^(1<<%d), %d) = %v, %v", bit, bit, v, err)
		}
	}
	for _, bit := range []int{-1, 16, 100} {
		if _, err := DecodeBool(0xFFFF, bit); err == nil {
			t.Errorf("DecodeBool(_, %d) accepted", bit)
		}
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		typ   Type
		order Order
		v     Value
		want  []uint16
	}{
		{Int16, 0, IntValue(-1234), []uint16{0xFB2E}},
		{Int16, 0, UintValue(1234), []uint16{0x04D2}},
		{Int16, 0, Float64Value(-1234), []uint16{0xFB2E}},
		{Uint16, 0, IntValue(65535), []uint16{0xFFFF}},
		{Uint32, CDAB, UintValue(3000000000), []uint16{0x5E00, 0xB2D0}},
		{Float32, 0, Float64Value(123.456), []uint16{0x42F6, 0xE979}},
		{Float32, 0, IntValue(2), []uint16{0x4000, 0x0000}},
		{Float64, 0, Float32Value(0.5), []uint16{0x3FE0, 0, 0, 0}},
		{Int64, 0, IntValue(math.MinInt64), []uint16{0x8000, 0, 0, 0}},
		{Uint64, 0, UintValue(math.MaxUint64), []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{Bool, 0, BoolValue(true), []uint16{1}},
		{Bool, 0, BoolValue(false), []uint16{0}},
		{String, 0, StringValue("ABC"), []uint16{0x4142, 0x4300}},
		{String, BA, StringValue("ABC"), []uint16{0x4241, 0x0043}},
	}
	for _, tc := range tests {
		got, err := Encode(tc.typ, tc.order, tc.v)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%v, %v, %v) = %04X, %v; want %04X", tc.typ, tc.order, tc.v, got, err, tc.want)
		}
	}
	bad := []struct {
		typ  Type
		v    Value
		want string
	}{
		{Int16, IntValue(32768), "value 32768 outside the range of int16: [-32768, 32767]"},
		{Int16, IntValue(-32769), "outside the range of int16"},
		{Uint16, IntValue(-1), "value -1 outside the range of uint16: [0, 65535]"},
		{Uint16, UintValue(65536), "outside the range of uint16"},
		{Int64, UintValue(math.MaxUint64), "outside the range of int64"},
		{Uint64, IntValue(-1), "outside the range of uint64"},
		{Int32, Float64Value(1.5), "not a whole number"},
		{Int32, Float64Value(math.NaN()), "not a whole number"},
		{Int32, Float64Value(3e9), "outside the range of int32"},
		{Uint64, Float64Value(1 << 64), "outside the range of uint64"},
		{Float32, Float64Value(1e39), "outside the range of float32"},
		{Int16, StringValue("x"), `cannot write string "x" to int16`},
		{Int16, BoolValue(true), "cannot write bool"},
		{Float64, StringValue("1"), "cannot write string"},
		{Bool, IntValue(1), "cannot write int"},
		{String, IntValue(1), "cannot write int"},
		{Int16, Value{}, "cannot write none"},
	}
	for _, tc := range bad {
		_, err := Encode(tc.typ, 0, tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Encode(%v, %v) error = %v, want %q", tc.typ, tc.v, err, tc.want)
		}
	}
	if _, err := Encode(Int32, AB, IntValue(1)); err == nil {
		t.Error("Encode accepted an order of the wrong width")
	}
}

// TestRoundTrip checks Decode(Encode(v)) == v and Encode(Decode(w)) == w
// for random values and words of every type in every order.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for typ := Bool + 1; typ < String; typ++ {
		for _, o := range ordersOf(typ) {
			for range 2000 {
				words := make([]uint16, typ.Registers(0))
				for i := range words {
					words[i] = uint16(rng.Uint32())
				}
				v, err := Decode(typ, o, words)
				if err != nil {
					t.Fatalf("Decode(%v, %v, %04X): %v", typ, o, words, err)
				}
				back, err := Encode(typ, o, v)
				if err != nil || !slices.Equal(back, words) {
					t.Fatalf("Encode(%v, %v, Decode(%04X) = %v) = %04X, %v", typ, o, words, v, back, err)
				}
				again, err := Decode(typ, o, back)
				if err != nil || !again.Equal(v) || again.Kind() != v.Kind() {
					t.Fatalf("Decode(Encode(%v)) = %v, %v", v, again, err)
				}
			}
		}
	}
}

func TestUint64MaxRoundTrip(t *testing.T) {
	words := []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}
	v, err := Decode(Uint64, 0, words)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := v.Uint64(); !ok || u != math.MaxUint64 || v.String() != "18446744073709551615" {
		t.Fatalf("got %v (%d, %v)", v, u, ok)
	}
	if same := (Scaling{}).Apply(v); same != v {
		t.Fatalf("identity scaling changed %v to %v", v, same)
	}
	back, err := Encode(Uint64, 0, v)
	if err != nil || !slices.Equal(back, words) {
		t.Fatalf("Encode = %04X, %v", back, err)
	}
}

func BenchmarkDecodeFloat32(b *testing.B) {
	words := []uint16{0x42F6, 0xE979}
	b.ReportAllocs()
	for b.Loop() {
		v, err := Decode(Float32, CDAB, words)
		if err != nil || v.Kind() != KindFloat32 {
			b.Fatal(v, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(Float32), uint8(ABCD), []byte{0x42, 0xF6, 0xE9, 0x79})
	f.Add(uint8(Uint64), uint8(HGFEDCBA), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(String), uint8(BA), []byte("hello\x00 "))
	f.Add(uint8(Int16), uint8(0), []byte{0xFB})
	f.Add(uint8(Bool), uint8(0), []byte{0, 1})
	f.Fuzz(func(t *testing.T, typ, order uint8, raw []byte) {
		words := make([]uint16, len(raw)/2)
		for i := range words {
			words[i] = binary.BigEndian.Uint16(raw[2*i:])
		}
		ty, o := Type(typ%12), Order(order%12)
		v, err := Decode(ty, o, words)
		if err != nil {
			return
		}
		back, err := Encode(ty, o, v)
		if err != nil {
			t.Fatalf("Encode(%v, %v, %v): %v", ty, o, v, err)
		}
		switch {
		case ty == String:
			// Trimming loses padding: only the text must survive.
			again, err := Decode(ty, o, back)
			if err != nil || again != v {
				t.Fatalf("string %q came back as %q, %v", v, again, err)
			}
		case ty == Bool:
			if (back[0] != 0) != (words[0] != 0) {
				t.Fatalf("bool %04X came back as %04X", words, back)
			}
		case math.IsNaN(v.Float64()):
			// NaN payloads are kept, but do not rely on it across platforms.
		default:
			if !slices.Equal(back, words) {
				t.Fatalf("Encode(%v, %v, Decode(%04X) = %v) = %04X", ty, o, words, v, back)
			}
		}
	})
}
