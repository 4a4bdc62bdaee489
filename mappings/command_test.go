package mappings

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// compile builds a point from a spec for tests, failing on any error.
func compile(t testing.TB, s Spec, opt Options) Point {
	t.Helper()
	p, errs := s.Compile(opt)
	if len(errs) > 0 {
		t.Fatalf("Compile(%+v): %v", s, errs)
	}
	return p
}

func TestParseCommand(t *testing.T) {
	reg := Options{RegisterTable: true}
	setpoint := compile(t, Spec{Name: "setpoint", Type: "int16", Scale: ptr(0.1), Writable: true, WriteRange: []float64{0, 90}}, reg)
	pump := compile(t, Spec{Name: "pump", Writable: true}, Options{DefaultType: Bool, BoolOnly: true})
	raw16 := compile(t, Spec{Name: "raw", Type: "uint16", Writable: true}, reg)
	i16 := compile(t, Spec{Name: "i16", Type: "int16", Writable: true}, reg)
	u64 := compile(t, Spec{Name: "u64", Type: "uint64", Writable: true}, reg)
	i64 := compile(t, Spec{Name: "i64", Type: "int64", Writable: true}, reg)
	f32 := compile(t, Spec{Name: "f32", Type: "float32", Writable: true}, reg)
	f64p := compile(t, Spec{Name: "f64", Type: "float64", Scale: ptr(2), Offset: ptr(1), Writable: true}, reg)
	temp := compile(t, Spec{Name: "temp", Type: "uint16", Scale: ptr(0.1), Offset: ptr(-40), Writable: true}, reg)
	readOnly := compile(t, Spec{Name: "ro", Type: "int16"}, reg)

	good := []struct {
		p       Point
		payload string
		want    Value
	}{
		{setpoint, "21.5", IntValue(215)},
		{setpoint, " 21.5\n", IntValue(215)},
		{setpoint, `{"value": 21.5}`, IntValue(215)},
		{setpoint, `{"value":"21.5"}`, IntValue(215)},
		{setpoint, `"21.5"`, IntValue(215)},
		{setpoint, "0", IntValue(0)},
		{setpoint, "90", IntValue(900)},
		{setpoint, "9e1", IntValue(900)},
		{setpoint, "+.5", IntValue(5)},
		{setpoint, "-0", IntValue(0)},
		{pump, "true", BoolValue(true)},
		{pump, "FALSE", BoolValue(false)},
		{pump, "on", BoolValue(true)},
		{pump, "Off", BoolValue(false)},
		{pump, "1", BoolValue(true)},
		{pump, "0", BoolValue(false)},
		{pump, `{"value": true}`, BoolValue(true)},
		{pump, `{"value": 0}`, BoolValue(false)},
		{pump, `{"value": "on"}`, BoolValue(true)},
		{raw16, "65535", UintValue(65535)},
		{raw16, "1.0", UintValue(1)},
		{raw16, "-0", UintValue(0)},
		{raw16, "007", UintValue(7)},
		{i16, "-32768", IntValue(-32768)},
		{u64, "18446744073709551615", UintValue(math.MaxUint64)},
		{u64, `{"value": 18446744073709551615}`, UintValue(math.MaxUint64)},
		{i64, "-9223372036854775808", IntValue(math.MinInt64)},
		{i64, "9007199254740993", IntValue(9007199254740993)}, // 2^53+1: exact, not via float64
		{f32, "123.456", Float32Value(123.456)},
		{f32, "-1e-3", Float32Value(-0.001)},
		{f64p, "4", Float64Value(1.5)},
		{temp, "25.3", UintValue(653)},
		{temp, "-40", UintValue(0)},
	}
	for _, tc := range good {
		got, err := ParseCommand([]byte(tc.payload), tc.p)
		if err != nil || got != tc.want {
			t.Errorf("ParseCommand(%q, %s) = %#v, %v; want %#v", tc.payload, tc.p.Name, got, err, tc.want)
			continue
		}
		if _, err := Encode(tc.p.Type, tc.p.Order, got); err != nil {
			t.Errorf("Encode of command %q for %s: %v", tc.payload, tc.p.Name, err)
		}
	}

	bad := []struct {
		p       Point
		payload string
		want    string
	}{
		{setpoint, "120", "value 120 outside write_range [0, 90]"},
		{setpoint, "-0.1", "value -0.1 outside write_range [0, 90]"},
		{setpoint, "21.55", "value 21.55 is not a whole step of int16 with scale 0.1 (raw 215.5)"},
		{setpoint, "", "empty payload"},
		{setpoint, "  ", "empty payload"},
		{setpoint, "abc", `"abc" is not a number`},
		{setpoint, "true", `"true" is not a number`},
		{setpoint, "0x10", "not a number"},
		{setpoint, "1_0", "not a number"},
		{setpoint, "NaN", "not a number"},
		{setpoint, "inf", "not a number"},
		{setpoint, "1e", "not a number"},
		{setpoint, ".", "not a number"},
		{setpoint, "1 2", "not a number"},
		{setpoint, `{"value": 21.5`, "invalid JSON"},
		{setpoint, `{"val": 21.5}`, `JSON payload needs "value"`},
		{setpoint, `{"value": 21.5, "ts": 1}`, `unknown key "ts": a command holds only "value"`},
		{setpoint, `{"value": null}`, "value is null"},
		{setpoint, `{"value": [1]}`, "value must be a number or a bool"},
		{setpoint, `{"value": {"value": 1}}`, "value must be a number or a bool"},
		{setpoint, `{"value": ""}`, "empty value"},
		{setpoint, `"21.5`, "invalid JSON string"},
		{pump, "2", `"2" is not a bool: use true/false, on/off or 1/0`},
		{pump, "yes", "is not a bool"},
		{pump, `{"value": 1.0}`, "is not a bool"},
		{raw16, "65536", "value 65536 outside the range of uint16: [0, 65535]"},
		{raw16, "-1", "value -1 outside the range of uint16: [0, 65535]"},
		{raw16, "1.5", "value 1.5 is not a whole number, as uint16 needs"},
		{i16, "32768", "value 32768 outside the range of int16: [-32768, 32767]"},
		{i16, "99999999999999999999999", "outside the range of int16"},
		{u64, "18446744073709551616", "value 18446744073709551616 outside the range of uint64: [0, 18446744073709551615]"},
		{i64, "9223372036854775808", "outside the range of int64"},
		{f32, "1e39", "value 1e+39 outside the range of float32"},
		{f64p, "1e400", "value 1e400 outside the range of float64 with scale 2 and offset 1"},
		{temp, "-41", "value -41 outside the range of uint16 with scale 0.1 and offset -40: [-40, 6513.5]"},
		{readOnly, "1", "point is not writable"},
		{Point{Name: "s", Type: String, Writable: true}, "abc", "a string point cannot be written"},
	}
	for _, tc := range bad {
		_, err := ParseCommand([]byte(tc.payload), tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCommand(%q, %s) error = %v, want %q", tc.payload, tc.p.Name, err, tc.want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	reg := Options{RegisterTable: true}
	points := []Point{
		compile(f, Spec{Name: "a", Type: "int16", Scale: ptr(0.1), Writable: true, WriteRange: []float64{0, 90}}, reg),
		compile(f, Spec{Name: "b", Writable: true}, Options{DefaultType: Bool, BoolOnly: true}),
		compile(f, Spec{Name: "c", Type: "uint64", Writable: true}, reg),
		compile(f, Spec{Name: "d", Type: "float32", Writable: true}, reg),
		compile(f, Spec{Name: "e", Type: "uint16", Scale: ptr(0.1), Offset: ptr(-40), Writable: true, WriteRange: []float64{-40, 100}}, reg),
		compile(f, Spec{Name: "f", Type: "int64", Scale: ptr(-3), Writable: true}, reg),
	}
	for _, s := range []string{"21.5", `{"value": 21.5}`, "on", "1e3", `"7"`, "-0", "18446744073709551615", `{"value":"x"}`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, payload []byte, which uint8) {
		p := points[int(which)%len(points)]
		raw, err := ParseCommand(payload, p)
		if err != nil {
			if msg := err.Error(); msg == "" || !utf8.ValidString(msg) && utf8.Valid(payload) {
				t.Fatalf("error %q", msg)
			}
			return
		}
		words, err := Encode(p.Type, p.Order, raw)
		if err != nil {
			t.Fatalf("ParseCommand(%q) = %v, which Encode refuses: %v", payload, raw, err)
		}
		back, err := Decode(p.Type, p.Order, words)
		if err != nil || !back.Equal(raw) && !(raw.isFloat() && back.isFloat()) {
			t.Fatalf("Decode(Encode(%v)) = %v, %v", raw, back, err)
		}
		if p.Type != Bool && p.WriteRange != nil {
			v := p.Scaling.Apply(back).Float64()
			if v < p.WriteRange[0]-1e-9 || v > p.WriteRange[1]+1e-9 {
				t.Fatalf("ParseCommand(%q) wrote %v, outside write_range %v", payload, v, *p.WriteRange)
			}
		}
	})
}
