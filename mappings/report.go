package mappings

import (
	"math"
	"time"
)

// Reporter decides which readings of one point are published. It is owned
// by the goroutine that polls the point and is not safe for concurrent use.
type Reporter struct {
	deadband    float64
	hasDeadband bool
	heartbeat   time.Duration

	last   Value     // the last value published
	lastAt time.Time // when it was published
	fresh  bool      // last is meaningful: a value was published and no failure came after it
	failed bool      // a failure was reported since the last good value
}

// NewReporter returns a reporter for a point with the given deadband (nil:
// publish every poll; 0: only on change; positive: only on a change larger
// than it) and heartbeat (positive: republish an unchanged value at least
// that often).
func NewReporter(deadband *float64, heartbeat time.Duration) *Reporter {
	r := &Reporter{heartbeat: heartbeat}
	if deadband != nil {
		r.deadband, r.hasDeadband = *deadband, true
	}
	return r
}

// Should reports whether the good reading v, taken at now, is published,
// and if so records it as the last published value: the caller must then
// publish it. The first value and the first after a failure always publish.
// A deadband compares with the last published value, not the last polled
// one, so a slow drift is reported once it adds up. Bools and strings
// change when they differ; NaN and infinities change when not Equal. A
// heartbeat fires once now - last publish >= heartbeat, or when the clock
// went backwards.
func (r *Reporter) Should(v Value, now time.Time) bool {
	r.failed = false
	if r.fresh && r.hasDeadband && !r.changed(v) && !r.heartbeatDue(now) {
		return false
	}
	r.last, r.lastAt, r.fresh = v, now, true
	return true
}

func (r *Reporter) changed(v Value) bool {
	if v.Equal(r.last) {
		return false
	}
	if r.deadband == 0 || !v.finite() || !r.last.finite() {
		return true
	}
	if (v.isInt() || v.isFloat()) && (r.last.isInt() || r.last.isFloat()) {
		return math.Abs(v.Float64()-r.last.Float64()) > r.deadband
	}
	return true
}

func (r *Reporter) heartbeatDue(now time.Time) bool {
	if r.heartbeat <= 0 {
		return false
	}
	d := now.Sub(r.lastAt)
	return d >= r.heartbeat || d < 0
}

// Bad records a failed read and reports whether it is published: only the
// first of a run of failures is, and the next good value always publishes.
func (r *Reporter) Bad() bool {
	first := !r.failed
	r.failed, r.fresh = true, false
	return first
}
