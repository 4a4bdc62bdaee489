package gpio

import (
	"math"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	d := debouncer{period: 10 * time.Millisecond}
	d.reset(false)
	if d.settle(ms(100)) {
		t.Fatal("change with no edge")
	}

	// A contact bouncing for 3 ms: one change, 10 ms after the last edge.
	for i, level := range []bool{true, false, true, false, true} {
		d.edge(edge{active: level, at: ms(i)})
	}
	if due, ok := d.due(); !ok || !due.Equal(ms(14)) {
		t.Fatalf("due %v %v, want 14ms", due.Sub(t0), ok)
	}
	if d.settle(ms(13)) {
		t.Fatal("settled before the period")
	}
	if !d.settle(ms(14)) || !d.stable {
		t.Fatal("no change to true after the period")
	}
	if d.settle(ms(30)) {
		t.Fatal("second change with no new edge")
	}

	// A glitch shorter than the period is no change.
	d.edge(edge{active: false, at: ms(40)})
	d.edge(edge{active: true, at: ms(42)})
	if d.settle(ms(60)) || !d.stable {
		t.Fatal("a 2 ms glitch changed the level")
	}
	if _, ok := d.due(); ok {
		t.Fatal("still pending after settling")
	}

	// Edges handled late, in a burst, are debounced as they happened: a
	// glitch stays one, a held level changes when the next edge comes.
	d.edge(edge{active: false, at: ms(100)})
	d.edge(edge{active: true, at: ms(101)})
	if d.settle(ms(500)) || !d.stable {
		t.Fatal("a glitch handled late changed the level")
	}
	if d.edge(edge{active: false, at: ms(600)}) || d.edge(edge{active: true, at: ms(650)}) != true || d.stable {
		t.Fatal("a 50 ms low level handled late was not a change")
	}

	// Without a period every edge is a change, even two in a burst.
	z := debouncer{}
	z.reset(false)
	if z.edge(edge{active: true, at: ms(0)}) {
		t.Fatal("debounce 0: change before the first edge settled")
	}
	if !z.edge(edge{active: false, at: ms(0)}) || !z.stable {
		t.Fatal("debounce 0: the high level was lost")
	}
	if !z.settle(ms(0)) || z.stable {
		t.Fatal("debounce 0: the low level was lost")
	}
}

func TestCountOn(t *testing.T) {
	for _, c := range []struct {
		on              countOn
		rising, falling bool
	}{{countRising, true, false}, {countFalling, false, true}, {countBoth, true, true}} {
		if c.on.counts(true) != c.rising || c.on.counts(false) != c.falling {
			t.Errorf("%d: counts(true)=%v counts(false)=%v", c.on, c.on.counts(true), c.on.counts(false))
		}
	}
}

func TestRateMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	var m rateMeter
	if r := m.at(at(1)); r != 0 {
		t.Fatalf("rate before any pulse: %g", r)
	}
	m.pulse(at(1))
	if r := m.at(at(2)); r != 0 {
		t.Fatalf("rate after one pulse: %g", r)
	}

	// A slow meter, one pulse every 10 s, polled every second: the rate is
	// 0.1 between pulses, not 0 or 1.
	for i := 1; i <= 3; i++ {
		m.pulse(at(1 + 10*float64(i)))
		for s := 1; s < 10; s++ {
			if r := m.at(at(1 + 10*float64(i) + float64(s))); !near(r, 0.1) {
				t.Fatalf("pulse %d +%ds: rate %g, want 0.1", i, s, r)
			}
		}
	}
	// The next pulse is late: the rate falls as 1/(time since the last).
	if r := m.at(at(31 + 20)); !near(r, 1.0/20) {
		t.Fatalf("20 s after the last pulse: %g, want 0.05", r)
	}
	// Many pulses per poll: their mean.
	for i := 1; i <= 50; i++ {
		m.pulse(at(51 + 0.02*float64(i)))
	}
	if r := m.at(at(52)); !near(r, 50.0/(52-31)) {
		// The first of them closes the gap since the pulse at 31 s.
		t.Fatalf("burst: %g", r)
	}
	for i := 1; i <= 50; i++ {
		m.pulse(at(52 + 0.02*float64(i)))
	}
	if r := m.at(at(53)); !near(r, 50) {
		t.Fatalf("50 Hz: %g", r)
	}
	// Idle for an hour: 0.
	if r := m.at(at(53 + 3600)); r != 0 {
		t.Fatalf("after an hour: %g", r)
	}
}
