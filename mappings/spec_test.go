package mappings

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func iptr(i int) *int { return &i }

func TestSpecYAMLKeys(t *testing.T) {
	want := []string{"name", "type", "order", "length", "bit", "scale", "offset", "unit", "deadband",
		"heartbeat", "topic", "writable", "write_range"}
	st := reflect.TypeFor[Spec]()
	var got []string
	for f := range st.Fields() {
		got = append(got, f.Tag.Get("yaml"))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("yaml keys %v, want %v", got, want)
	}
}

func TestCompile(t *testing.T) {
	reg := Options{RegisterTable: true}
	coil := Options{DefaultType: Bool, BoolOnly: true, Source: "coils"}
	input := Options{RegisterTable: true, ReadOnly: true}

	p := compile(t, Spec{Name: "temperature", Type: "float32", Order: "ABCD", Unit: "°C", Deadband: ptr(0.1), Heartbeat: time.Minute}, reg)
	want := Point{Name: "temperature", Type: Float32, Order: ABCD, Scaling: Scaling{Scale: 1}, Unit: "°C", Deadband: ptr(0.1), Heartbeat: time.Minute}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("temperature:\n got %+v\nwant %+v", p, want)
	}
	p = compile(t, Spec{Name: "setpoint", Type: "int16", Scale: ptr(0.1), Writable: true, WriteRange: []float64{0, 90}}, reg)
	if p.Order != AB || p.Scale != 0.1 || p.Offset != 0 || !p.Writable || *p.WriteRange != [2]float64{0, 90} || p.Registers() != 1 {
		t.Errorf("setpoint: %+v", p)
	}
	p = compile(t, Spec{Name: "serial_no", Type: "string", Length: 10, Order: "BA"}, reg)
	if p.Type != String || p.Length != 10 || p.Order != BA || p.Registers() != 10 {
		t.Errorf("string: %+v", p)
	}
	p = compile(t, Spec{Name: "alarm", Type: "bool", Bit: iptr(15), Writable: true, Deadband: ptr(0)}, reg)
	if p.Type != Bool || p.Bit != 15 || p.Order != 0 || *p.Deadband != 0 {
		t.Errorf("bit: %+v", p)
	}
	p = compile(t, Spec{Name: "pump", Writable: true, Topic: "plant-a-gw1/pumps/boiler"}, coil)
	if p.Type != Bool || p.Topic.String() != "plant-a-gw1/pumps/boiler" {
		t.Errorf("coil: %+v", p)
	}
	p = compile(t, Spec{Name: "sine"}, Options{DefaultType: Float64})
	if p.Type != Float64 || p.Order != ABCDEFGH {
		t.Errorf("default type: %+v", p)
	}
	compile(t, Spec{Name: "energy", Type: "UINT64", Order: "hgfedcba", Scale: ptr(-0.001), Offset: ptr(5)}, input)

	bad := []struct {
		name string
		s    Spec
		opt  Options
		want []FieldError
	}{
		{"no name", Spec{Type: "int16"}, reg, []FieldError{{"name", "a point needs a name"}}},
		{"slash", Spec{Name: "a/b", Type: "int16"}, reg, []FieldError{{"name", `name "a/b" may hold only letters, digits, '_' and '-'`}}},
		{"wildcard", Spec{Name: "a+", Type: "int16"}, reg, []FieldError{{"name", `name "a+" may hold only letters, digits, '_' and '-'`}}},
		{"no type", Spec{Name: "x"}, reg, []FieldError{{"type", "a point needs a type (" + typeList + ")"}}},
		{"bad type", Spec{Name: "x", Type: "float", Scale: ptr(2), Order: "ABCD"}, reg, []FieldError{{"type", `unknown type "float" (want ` + typeList + ")"}}},
		{"coil float", Spec{Name: "x", Type: "float32"}, coil, []FieldError{{"type", "float32 is not possible here: coils hold only bool values"}}},
		{"order length", Spec{Name: "x", Type: "int16", Order: "ABCD"}, reg, []FieldError{{"order", "order ABCD does not fit int16: int16 takes AB or BA"}}},
		{"order 64", Spec{Name: "x", Type: "float64", Order: "CDAB"}, reg, []FieldError{{"order", "order CDAB does not fit float64: float64 takes ABCDEFGH, GHEFCDAB, BADCFEHG or HGFEDCBA"}}},
		{"order on bool", Spec{Name: "x", Type: "bool", Bit: iptr(1), Order: "AB"}, reg, []FieldError{{"order", "order AB does not fit bool: bool takes no order"}}},
		{"order on coil", Spec{Name: "x", Order: "AB"}, coil, []FieldError{{"order", "order applies only to points read from registers"}}},
		{"length on int", Spec{Name: "x", Type: "int32", Length: 2}, reg, []FieldError{{"length", "length applies only to a string"}}},
		{"string without length", Spec{Name: "x", Type: "string"}, reg, []FieldError{{"length", "a string needs length: the number of registers, 1..123 (2 characters each)"}}},
		{"string too long", Spec{Name: "x", Type: "string", Length: 124}, reg, []FieldError{{"length", "length 124 outside 1..123 registers"}}},
		{"string negative", Spec{Name: "x", Type: "string", Length: -1}, reg, []FieldError{{"length", "length -1 outside 1..123 registers"}}},
		{"length off registers", Spec{Name: "x", Type: "string", Length: 4}, Options{}, []FieldError{{"length", "length applies only to a string read from registers"}}},
		{"bit on int", Spec{Name: "x", Type: "int16", Bit: iptr(3)}, reg, []FieldError{{"bit", "bit applies only to a bool read from a register"}}},
		{"bit on coil", Spec{Name: "x", Bit: iptr(3)}, coil, []FieldError{{"bit", "bit applies only to a bool read from a register"}}},
		{"bit range", Spec{Name: "x", Type: "bool", Bit: iptr(16)}, reg, []FieldError{{"bit", "bit 16 outside 0..15"}}},
		{"bool needs bit", Spec{Name: "x", Type: "bool"}, reg, []FieldError{{"bit", "a bool read from a register needs bit: 0..15"}}},
		{"scale on bool", Spec{Name: "x", Scale: ptr(2)}, coil, []FieldError{{"scale", "scale on a bool"}}},
		{"offset on string", Spec{Name: "x", Type: "string", Length: 2, Offset: ptr(1)}, reg, []FieldError{{"offset", "offset on a string"}}},
		{"scale zero", Spec{Name: "x", Type: "int16", Scale: ptr(0)}, reg, []FieldError{{"scale", "scale must not be 0"}}},
		{"deadband negative", Spec{Name: "x", Type: "int16", Deadband: ptr(-1)}, reg, []FieldError{{"deadband", "deadband must be a number >= 0"}}},
		{"deadband on bool", Spec{Name: "x", Deadband: ptr(0.5)}, coil, []FieldError{{"deadband", "deadband on a bool can only be 0 (publish on change)"}}},
		{"heartbeat negative", Spec{Name: "x", Type: "int16", Deadband: ptr(0), Heartbeat: -time.Second}, reg, []FieldError{{"heartbeat", "heartbeat must be >= 0"}}},
		{"heartbeat alone", Spec{Name: "x", Type: "int16", Heartbeat: time.Second}, reg, []FieldError{{"heartbeat", "heartbeat has no effect without deadband: every poll publishes"}}},
		{"topic", Spec{Name: "x", Type: "int16", Topic: "a/{pont}"}, reg, []FieldError{{"topic", `topic "a/{pont}": unknown placeholder {pont} (want {gateway}, {device} or {point})`}}},
		{"topic wildcard", Spec{Name: "x", Type: "int16", Topic: "a/#"}, reg, []FieldError{{"topic", `topic "a/#" holds a wildcard (+ or #)`}}},
		{"string writable", Spec{Name: "x", Type: "string", Length: 2, Writable: true}, reg, []FieldError{{"writable", "a string point cannot be writable"}}},
		{"read-only", Spec{Name: "x", Type: "int16", Writable: true}, input, []FieldError{{"writable", "points of this source are read-only"}}},
		{"range without writable", Spec{Name: "x", Type: "int16", WriteRange: []float64{0, 1}}, reg, []FieldError{{"write_range", "write_range needs writable: true"}}},
		{"range of three", Spec{Name: "x", Type: "int16", Writable: true, WriteRange: []float64{0, 1, 2}}, reg, []FieldError{{"write_range", "write_range must be [min, max], got 3 numbers"}}},
		{"range empty", Spec{Name: "x", Type: "int16", Writable: true, WriteRange: []float64{}}, reg, []FieldError{{"write_range", "write_range must be [min, max], got 0 numbers"}}},
		{"range reversed", Spec{Name: "x", Type: "int16", Writable: true, WriteRange: []float64{90, 0}}, reg, []FieldError{{"write_range", "write_range min 90 is above max 0"}}},
		{"range on bool", Spec{Name: "x", Writable: true, WriteRange: []float64{0, 1}}, coil, []FieldError{{"write_range", "write_range on a bool"}}},
		{"range beyond type", Spec{Name: "x", Type: "uint16", Scale: ptr(0.1), Writable: true, WriteRange: []float64{-1, 100}}, reg,
			[]FieldError{{"write_range", "write_range [-1, 100] exceeds what uint16 with scale 0.1 can hold: [0, 6553.5]"}}},
		{"several", Spec{Name: "bad name", Type: "float32", Order: "AB", Scale: ptr(0), Deadband: ptr(-1)}, reg, []FieldError{
			{"name", `name "bad name" may hold only letters, digits, '_' and '-'`},
			{"order", "order AB does not fit float32: float32 takes ABCD, CDAB, BADC or DCBA"},
			{"scale", "scale must not be 0"},
			{"deadband", "deadband must be a number >= 0"},
		}},
	}
	for _, tc := range bad {
		_, errs := tc.s.Compile(tc.opt)
		if !reflect.DeepEqual(errs, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, errs, tc.want)
		}
	}
	e := FieldError{Key: "scale", Msg: "scale on a bool"}
	if e.Error() != "scale: scale on a bool" || !strings.HasPrefix(error(e).Error(), "scale") {
		t.Error(e.Error())
	}
}

func TestCompileDoesNotAlias(t *testing.T) {
	s := Spec{Name: "x", Type: "int16", Deadband: ptr(1), Writable: true, WriteRange: []float64{0, 10}}
	p := compile(t, s, Options{RegisterTable: true})
	*s.Deadband, s.WriteRange[1] = 5, 20
	if *p.Deadband != 1 || p.WriteRange[1] != 10 {
		t.Errorf("the point follows its spec: %v %v", *p.Deadband, *p.WriteRange)
	}
}
