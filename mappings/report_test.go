package mappings

import (
	"math"
	"testing"
	"time"
)

// step is one poll: a value (or a failure when bad), the seconds since the
// start, and whether it is published.
type step struct {
	v    Value
	sec  float64
	bad  bool
	want bool
}

func runSteps(t *testing.T, name string, r *Reporter, steps []step) {
	t.Helper()
	start := time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)
	for i, s := range steps {
		now := start.Add(time.Duration(s.sec * float64(time.Second)))
		var got bool
		if s.bad {
			got = r.Bad()
		} else {
			got = r.Should(s.v, now)
		}
		if got != s.want {
			t.Errorf("%s: step %d (%v at %gs, bad %v): published %v, want %v", name, i, s.v, s.sec, s.bad, got, s.want)
		}
	}
}

func f64(f float64) Value { return Float64Value(f) }

func ptr(f float64) *float64 { return &f }

func TestReporter(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		deadband  *float64
		heartbeat time.Duration
		steps     []step
	}{
		{"no deadband: every poll", nil, 0, []step{
			{v: f64(1), sec: 0, want: true},
			{v: f64(1), sec: 1, want: true},
			{v: f64(1), sec: 2, want: true},
			{bad: true, sec: 3, want: true},
			{bad: true, sec: 4, want: false},
			{v: f64(1), sec: 5, want: true},
		}},
		{"deadband 0: on change", ptr(0), 0, []step{
			{v: f64(1), sec: 0, want: true},
			{v: f64(1), sec: 1, want: false},
			{v: f64(1.0000001), sec: 2, want: true},
			{v: f64(1.0000001), sec: 3, want: false},
			{v: f64(1), sec: 4, want: true},
			{v: f64(1), sec: 1000, want: false}, // no heartbeat
		}},
		{"positive deadband compares with the last published value", ptr(0.5), 0, []step{
			{v: f64(10), sec: 0, want: true},
			{v: f64(10.3), sec: 1, want: false},
			{v: f64(10.5), sec: 2, want: false}, // not more than the deadband
			{v: f64(10.6), sec: 3, want: true},  // drifted 0.6 from 10
			{v: f64(10.2), sec: 4, want: false},
			{v: f64(10.0), sec: 5, want: true},
			{v: f64(9.8), sec: 6, want: false},
			{v: f64(9.4), sec: 7, want: true},
		}},
		{"integers", ptr(2), 0, []step{
			{v: IntValue(100), want: true},
			{v: IntValue(102), want: false},
			{v: IntValue(97), want: true},
			{v: UintValue(97), want: false},
		}},
		{"heartbeat republishes an unchanged value", ptr(0), 10 * time.Second, []step{
			{v: f64(1), sec: 0, want: true},
			{v: f64(1), sec: 5, want: false},
			{v: f64(1), sec: 9.999, want: false},
			{v: f64(1), sec: 10, want: true},
			{v: f64(1), sec: 15, want: false},
			{v: f64(2), sec: 16, want: true}, // a change restarts the heartbeat
			{v: f64(2), sec: 25, want: false},
			{v: f64(2), sec: 26, want: true},
			{v: f64(2), sec: 20, want: true}, // clock went back
			{v: f64(2), sec: 21, want: false},
		}},
		{"heartbeat with a positive deadband", ptr(1), time.Minute, []step{
			{v: f64(20), sec: 0, want: true},
			{v: f64(20.5), sec: 30, want: false},
			{v: f64(20.5), sec: 60, want: true},
			{v: f64(21.2), sec: 61, want: false},
			{v: f64(21.6), sec: 62, want: true},
		}},
		{"after a failure the next good value publishes", ptr(0), 0, []step{
			{bad: true, sec: 0, want: true}, // a failure at start publishes once
			{bad: true, sec: 1, want: false},
			{v: f64(5), sec: 2, want: true},
			{v: f64(5), sec: 3, want: false},
			{bad: true, sec: 4, want: true},
			{bad: true, sec: 5, want: false},
			{bad: true, sec: 6, want: false},
			{v: f64(5), sec: 7, want: true}, // unchanged, but the last publish was the failure
			{v: f64(5), sec: 8, want: false},
		}},
		{"NaN and infinities", ptr(1), 0, []step{
			{v: f64(1), want: true},
			{v: f64(nan), want: true},
			{v: f64(nan), want: false},
			{v: f64(1), want: true},
			{v: f64(math.Inf(1)), want: true},
			{v: f64(math.Inf(1)), want: false},
			{v: f64(math.Inf(-1)), want: true},
			{v: f64(0), want: true},
		}},
		{"bools change when they differ", ptr(0), 0, []step{
			{v: BoolValue(false), want: true},
			{v: BoolValue(false), want: false},
			{v: BoolValue(true), want: true},
			{v: BoolValue(true), want: false},
			{v: BoolValue(false), want: true},
		}},
		{"strings change when they differ", ptr(0), 0, []step{
			{v: StringValue("AB"), want: true},
			{v: StringValue("AB"), want: false},
			{v: StringValue("ABC"), want: true},
		}},
		{"float32 at 32-bit precision", ptr(0), 0, []step{
			{v: Float32Value(123.456), want: true},
			{v: Float32Value(123.456), want: false},
			{v: Float32Value(math.Nextafter32(123.456, 200)), want: true},
		}},
	}
	for _, tc := range tests {
		runSteps(t, tc.name, NewReporter(tc.deadband, tc.heartbeat), tc.steps)
	}
}

func TestReporterDoesNotAliasDeadband(t *testing.T) {
	d := 1.0
	r := NewReporter(&d, 0)
	d = 100
	r.Should(f64(0), time.Time{})
	if !r.Should(f64(2), time.Time{}) {
		t.Error("the reporter followed a change of the caller's deadband")
	}
}
