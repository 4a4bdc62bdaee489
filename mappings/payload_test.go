package mappings

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var _ interface {
	AppendText([]byte) ([]byte, error)
} = Value{}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"json": FormatJSON, "": FormatJSON, "value": FormatValue} {
		if got, err := ParseFormat(s); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"JSON", "raw", "text"} {
		if _, err := ParseFormat(s); err == nil || !strings.Contains(err.Error(), "want json or value") {
			t.Errorf("ParseFormat(%q) error = %v", s, err)
		}
	}
	if FormatJSON.String() != "json" || FormatValue.String() != "value" {
		t.Error("Format.String")
	}
}

func TestAppendPayload(t *testing.T) {
	// A local zone must not leak into ts.
	ts := time.Date(2026, 11, 25, 20, 0, 0, 120_999_999, time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		format Format
		r      Reading
		want   string // "" with ok false: nothing to publish
	}{
		{"float32", FormatJSON, Reading{Value: Float32Value(123.456), Unit: "°C", Time: ts},
			`{"value":123.456,"unit":"°C","ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"no unit", FormatJSON, Reading{Value: Float64Value(123.4), Time: ts},
			`{"value":123.4,"ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"whole second", FormatJSON, Reading{Value: IntValue(-1234), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			`{"value":-1234,"ts":"2026-01-02T03:04:05.000Z","quality":"good"}`},
		{"uint64", FormatJSON, Reading{Value: UintValue(math.MaxUint64), Unit: "Wh", Time: ts},
			`{"value":18446744073709551615,"unit":"Wh","ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"bool", FormatJSON, Reading{Value: BoolValue(true), Time: ts},
			`{"value":true,"ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"string escaped", FormatJSON, Reading{Value: StringValue("a\"b\\c\n\x01\xffé"), Unit: "x\ty", Time: ts},
			`{"value":"a\"b\\c\n\u0001\ufffdé","unit":"x\ty","ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"large float", FormatJSON, Reading{Value: Float32Value(1234567.5), Time: ts},
			`{"value":1234567.5,"ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"tiny float", FormatJSON, Reading{Value: Float64Value(1e-9), Time: ts},
			`{"value":1e-9,"ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{"NaN", FormatJSON, Reading{Value: Float32Value(float32(math.NaN())), Unit: "°C", Time: ts},
			`{"value":null,"unit":"°C","ts":"2026-11-25T19:00:00.120Z","quality":"bad","error":"not a number"}`},
		{"Inf", FormatJSON, Reading{Value: Float64Value(math.Inf(-1)), Time: ts},
			`{"value":null,"ts":"2026-11-25T19:00:00.120Z","quality":"bad","error":"infinite"}`},
		{"failed read", FormatJSON, Reading{Value: Float64Value(1), Unit: "°C", Err: errors.New(`read "boiler": timeout`), Time: ts},
			`{"quality":"bad","error":"read \"boiler\": timeout","ts":"2026-11-25T19:00:00.120Z"}`},
		{"no value", FormatJSON, Reading{Time: ts}, ""},

		{"value float32", FormatValue, Reading{Value: Float32Value(123.456), Unit: "°C", Time: ts}, "123.456"},
		{"value scaled", FormatValue, Reading{Value: (Scaling{Scale: 0.1}).Apply(IntValue(1234))}, "123.4"},
		{"value int", FormatValue, Reading{Value: IntValue(-5)}, "-5"},
		{"value bool", FormatValue, Reading{Value: BoolValue(false)}, "false"},
		{"value string raw", FormatValue, Reading{Value: StringValue(`a "b"`)}, `a "b"`},
		{"value failed read", FormatValue, Reading{Err: errors.New("timeout")}, ""},
		{"value NaN", FormatValue, Reading{Value: Float64Value(math.NaN())}, ""},
		{"value Inf", FormatValue, Reading{Value: Float32Value(float32(math.Inf(1)))}, ""},
		{"value empty string", FormatValue, Reading{Value: StringValue("")}, ""},
		{"value no value", FormatValue, Reading{}, ""},
	}
	for _, tc := range tests {
		prefix := []byte("prefix:")
		got, ok := AppendPayload(prefix, tc.format, tc.r)
		if ok != (tc.want != "") || string(got) != "prefix:"+tc.want {
			t.Errorf("%s: AppendPayload = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
		if ok && tc.format == FormatJSON && !json.Valid(got[len("prefix:"):]) {
			t.Errorf("%s: invalid JSON %s", tc.name, got)
		}
	}
}

func TestAppendPayloadAllocations(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, v := range []Value{Float32Value(123.456), Float64Value(-0.1), UintValue(math.MaxUint64), BoolValue(true), StringValue("on\n"), Float64Value(math.NaN())} {
		r := Reading{Value: v, Unit: "°C", Time: time.Now()}
		if n := testing.AllocsPerRun(100, func() { buf, _ = AppendPayload(buf[:0], FormatJSON, r) }); n != 0 {
			t.Errorf("JSON payload of %v: %v allocations", v, n)
		}
		if n := testing.AllocsPerRun(100, func() { buf, _ = AppendPayload(buf[:0], FormatValue, r) }); n != 0 {
			t.Errorf("value payload of %v: %v allocations", v, n)
		}
	}
	raw := IntValue(1234)
	s := Scaling{Scale: 0.1}
	if n := testing.AllocsPerRun(100, func() { raw = s.Apply(raw) }); n != 0 {
		t.Errorf("Apply: %v allocations", n)
	}
}

func TestAppendCommandError(t *testing.T) {
	ts := time.Date(2026, 11, 25, 19, 0, 0, 120e6, time.UTC)
	got := AppendCommandError(nil, errors.New("value 120 outside write_range [0, 90]"), []byte(`{"value": 120}`), ts)
	want := `{"error":"value 120 outside write_range [0, 90]","payload":"{\"value\": 120}","ts":"2026-11-25T19:00:00.120Z"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	long := AppendCommandError(nil, errors.New("x"), []byte(strings.Repeat("é", 1000)), ts)
	if !json.Valid(long) || len(long) > 400 {
		t.Errorf("long payload: %d bytes, valid %v", len(long), json.Valid(long))
	}
}

func BenchmarkAppendPayloadJSON(b *testing.B) {
	buf := make([]byte, 0, 256)
	r := Reading{Value: Float32Value(123.456), Unit: "°C", Time: time.Date(2026, 11, 25, 19, 0, 0, 120e6, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendPayload(buf[:0], FormatJSON, r)
	}
}

// BenchmarkReading is the per-reading work of a poll: decode, scale,
// report, payload.
func BenchmarkReading(b *testing.B) {
	buf := make([]byte, 0, 256)
	words := []uint16{0x04D2}
	s := Scaling{Scale: 0.1}
	rep := NewReporter(nil, 0)
	now := time.Date(2026, 11, 25, 19, 0, 0, 120e6, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		raw, _ := Decode(Int16, AB, words)
		v := s.Apply(raw)
		if rep.Should(v, now) {
			buf, _ = AppendPayload(buf[:0], FormatJSON, Reading{Value: v, Unit: "bar", Time: now})
		}
	}
}
