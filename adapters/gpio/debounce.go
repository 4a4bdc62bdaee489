package gpio

import "time"

// rateIdle is how long after the last pulse a rate drops to 0. Until then
// it falls as 1/(time since the last pulse), which bounds the true rate.
const rateIdle = time.Hour

// debouncer turns the edges of one line into stable levels: a new level
// counts once no edge came for the debounce period, so a contact bouncing
// for a few milliseconds is one change and a glitch shorter than the
// period is none. With a period of 0 every edge is a change. It runs on
// edge timestamps rather than on when they are handled, so a slow
// goroutine does not stretch, merge or drop pulses.
type debouncer struct {
	period  time.Duration
	stable  bool      // the debounced level
	pending bool      // an edge came that is not settled yet
	level   bool      // the level after the latest edge
	last    time.Time // when the latest edge came
}

// reset sets the stable level, as read when the line is opened.
func (d *debouncer) reset(level bool) {
	d.stable, d.pending = level, false
}

// edge records one edge of the line. The pending level settles first if
// it held for the period up to this edge: changed reports that, and the
// caller acts on it before the edge. Edges handled late, in a burst, are
// thus debounced as they happened.
func (d *debouncer) edge(e edge) (changed bool) {
	changed = d.settle(e.at)
	d.level, d.last, d.pending = e.active, e.at, true
	return changed
}

// due returns when the pending edge settles; ok is false with none.
func (d *debouncer) due() (t time.Time, ok bool) {
	return d.last.Add(d.period), d.pending
}

// settle reports whether the level changed: an edge is pending, no other
// came for the period up to now, and it left a level other than the
// stable one.
func (d *debouncer) settle(now time.Time) bool {
	if !d.pending || now.Sub(d.last) < d.period {
		return false
	}
	d.pending = false
	if d.level == d.stable {
		return false
	}
	d.stable = d.level
	return true
}

// rateMeter estimates pulses per second from the times between pulses,
// which resolves a slow meter (one pulse a minute) that a count per poll
// would show as 0, 0, 1, 0...
type rateMeter struct {
	ref  time.Time // the pulse the current window starts at; zero before any
	last time.Time // the latest pulse
	n    int       // pulses after ref, up to last
	rate float64   // the latest measured rate
}

func (m *rateMeter) pulse(at time.Time) {
	if m.ref.IsZero() {
		m.ref = at
		return
	}
	m.n++
	m.last = at
}

// at returns the rate at now: the mean over the pulses since the previous
// call, or, with none, the previous rate capped by 1/(now - last pulse).
func (m *rateMeter) at(now time.Time) float64 {
	if m.n > 0 {
		if dt := m.last.Sub(m.ref); dt > 0 {
			m.rate = float64(m.n) / dt.Seconds()
		}
		m.ref, m.n = m.last, 0
	}
	if m.ref.IsZero() {
		return 0
	}
	since := now.Sub(m.ref)
	if since >= rateIdle {
		return 0
	}
	if since > 0 {
		return min(m.rate, 1/since.Seconds())
	}
	return m.rate
}
