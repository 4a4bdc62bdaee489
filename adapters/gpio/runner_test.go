package gpio

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/mappings"
)

func boolValues(vs ...bool) []mappings.Value {
	out := make([]mappings.Value, len(vs))
	for i, v := range vs {
		out[i] = mappings.BoolValue(v)
	}
	return out
}

func sameValues(a, b []mappings.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func lastGood(h *harness, point int) (mappings.Value, bool) {
	r, ok := h.sink.last(point)
	return r.value, ok && r.err == nil
}

// An edge is reported when it happens, not at the next poll.
func TestInputEdgeReportedAtOnce(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 1h
    points:
      - {name: door, line: 17, mode: input, bias: pull-up}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), "")
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	if cfg := h.hw.config(17); !cfg.edges || cfg.output || cfg.bias != biasPullUp || cfg.activeLow {
		t.Fatalf("line requested as %+v", cfg)
	}
	for _, level := range []bool{true, false, true} {
		h.hw.drive(17, level)
		eventually(t, "the edge report", func() bool { v, _ := lastGood(h, 0); return v.Equal(mappings.BoolValue(level)) })
	}
	if got := h.sink.changes(0); !sameValues(got, boolValues(false, true, false, true)) {
		t.Fatalf("changes %v", got)
	}
}

func TestInputDebounce(t *testing.T) {
	t.Parallel()
	const debounce = 100 * time.Millisecond
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 1h
    points:
      - {name: door, line: 17, mode: input, debounce: 100ms}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), "")
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })

	// A glitch shorter than the period is no change.
	before := glitch(t, h.sink, 0, debounce/4, 2*debounce,
		func() { h.hw.drive(17, true) }, func() { h.hw.drive(17, false) })
	if got := h.sink.changes(0); len(got) != before {
		t.Fatalf("a glitch was reported: %v", got)
	}

	// A bouncing contact is one change, once it holds for the period.
	start := time.Now()
	for _, level := range []bool{true, false, true, false, true} {
		h.hw.drive(17, level)
	}
	eventually(t, "the debounced change", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
	if took := time.Since(start); took < debounce {
		t.Errorf("reported after %s, before the debounce period", took)
	}
	time.Sleep(debounce)
	if got := h.sink.changes(0); !sameValues(got[before-1:], boolValues(false, true)) {
		t.Fatalf("changes %v", got)
	}
}

// active_low goes to the kernel, which inverts the level: a contact
// pulling the line low reads true.
func TestInputActiveLow(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    chip: /dev/gpiochip0
    poll_interval: 1h
    points:
      - {name: pressed, line: 5, mode: input, active_low: true, bias: pull-down}
`)[0]
	hw := newFakeHW(32)
	hw.driveSilently(5, true)
	h := newHarness(t, dev, hw, "")
	// A device path works like a chip name.
	hw.plug("/dev/gpiochip0", 32)
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	if v, _ := lastGood(h, 0); v.Bool() {
		t.Fatal("a high active-low line reads true")
	}
	if cfg := hw.config(5); !cfg.activeLow || cfg.bias != biasPullDown {
		t.Fatalf("line requested as %+v", cfg)
	}
	hw.drive(5, false)
	eventually(t, "true on a low line", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
}

// Levels are reported at every poll too, so that heartbeats can republish
// them; a level that moved without an edge is picked up there.
func TestInputPolledAndReadBack(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: door, line: 17, mode: input}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), "")
	h.start()
	eventually(t, "five polls", func() bool { _, n := h.sink.lastPoll(); return n >= 5 })
	if n := len(h.sink.of(0)); n < 5 {
		t.Fatalf("%d reports in 5 polls", n)
	}
	h.hw.driveSilently(17, true)
	eventually(t, "the level read back", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
}

func counterValue(h *harness, point int) uint64 {
	v, _ := lastGood(h, point)
	n, _ := v.Uint64()
	return n
}

func pulses(hw *fakeHW, line, n int, width time.Duration) {
	for i := 0; i < n; i++ {
		hw.drive(line, true)
		time.Sleep(width)
		hw.drive(line, false)
		time.Sleep(width)
	}
}

func TestCounterCountsPulses(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: water, line: 3, mode: counter}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), "")
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	pulses(h.hw, 3, 25, 0)
	eventually(t, "a total of 25", func() bool { return counterValue(h, 0) == 25 })
	// Rate point: float64, positive after a burst of pulses.
	eventually(t, "a rate", func() bool {
		v, ok := lastGood(h, 1)
		return ok && v.Kind() == mappings.KindFloat64 && v.Float64() > 0
	})
}

// Bounces inside the debounce period count once; edge: falling counts the
// end of each pulse, so a pulse still in progress is not counted yet.
func TestCounterDebounceAndEdge(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: energy, line: 27, mode: counter, debounce: 20ms, active_low: true, edge: falling, rate: {type: float32}}
`)[0]
	hw := newFakeHW(32)
	hw.driveSilently(27, true) // idle high: an open collector with a pull-up
	h := newHarness(t, dev, hw, "")
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	for i := 0; i < 6; i++ {
		for _, level := range []bool{false, true, false, true, false} { // bouncing leading edge
			hw.drive(27, level)
		}
		time.Sleep(50 * time.Millisecond)
		hw.drive(27, true)
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, "a total of 6", func() bool { return counterValue(h, 0) == 6 })
	hw.drive(27, false) // a 7th pulse begins
	time.Sleep(60 * time.Millisecond)
	if n := counterValue(h, 0); n != 6 {
		t.Fatalf("counted %d before the pulse ended", n)
	}
	hw.drive(27, true)
	eventually(t, "a total of 7", func() bool { return counterValue(h, 0) == 7 })
	if v, _ := lastGood(h, 1); v.Kind() != mappings.KindFloat32 {
		t.Fatalf("rate %v, want a float32", v)
	}
}

func readState(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return doc.Totals
}

// Totals are saved while counting and at shutdown, and the next run goes
// on from them; totals of points no longer configured are kept.
func TestCounterTotalsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := saveTotals(dir, map[string]uint64{"energy": 1000, "old": 7}); err != nil {
		t.Fatal(err)
	}
	devs := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: energy, line: 27, mode: counter}
      - {name: water, line: 3, mode: counter}
`)
	hw := newFakeHW(32)
	h := newHarness(t, devs[0], hw, dir)
	h.start()
	eventually(t, "the saved total", func() bool { return counterValue(h, 0) == 1000 })
	pulses(hw, 27, 5, 0)
	pulses(hw, 3, 2, 0)
	// Saved within saveEvery while running: a crash loses at most that.
	eventually(t, "totals saved while running", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, stateFile))
		return err == nil && strings.Contains(string(b), `"energy":1005`) && strings.Contains(string(b), `"water":2`)
	})
	pulses(hw, 27, 1, 0)
	eventually(t, "1006", func() bool { return counterValue(h, 0) == 1006 })
	h.stop()
	if got := readState(t, dir); got["energy"] != 1006 || got["water"] != 2 || got["old"] != 7 {
		t.Fatalf("saved at shutdown: %v", got)
	}

	h2 := newHarness(t, configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: energy, line: 27, mode: counter}
      - {name: water, line: 3, mode: counter}
`)[0], hw, dir)
	h2.start()
	eventually(t, "totals restored", func() bool { return counterValue(h2, 0) == 1006 && counterValue(h2, 2) == 2 })
	pulses(hw, 27, 3, 0)
	eventually(t, "1009", func() bool { return counterValue(h2, 0) == 1009 })
}

// A corrupt state file is moved aside and reported; counting starts from 0
// and a good file replaces it.
func TestCounterCorruptState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{\"version\":1,\"tot"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: energy, line: 27, mode: counter}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), dir)
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	if n := counterValue(h, 0); n != 0 {
		t.Fatalf("total %d from a corrupt file", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "corrupt") {
		t.Fatalf("corruption not logged as an error:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile+".corrupt")); err != nil {
		t.Fatalf("corrupt file not kept: %v", err)
	}
	pulses(h.hw, 27, 2, 0)
	eventually(t, "2", func() bool { return counterValue(h, 0) == 2 })
	h.stop()
	if got := readState(t, dir); got["energy"] != 2 {
		t.Fatalf("saved %v", got)
	}
}

// Without a state file (first start) or a state folder, counting starts
// from 0 with a warning.
func TestCounterNoState(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{t.TempDir(), ""} {
		dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: energy, line: 27, mode: counter}
`)[0]
		h := newHarness(t, dev, newFakeHW(32), dir)
		h.start()
		eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
		pulses(h.hw, 27, 1, 0)
		eventually(t, "1", func() bool { return counterValue(h, 0) == 1 })
		h.stop()
		if logs := h.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "start from 0") {
			t.Errorf("dir %q: no warning:\n%s", dir, logs)
		}
	}
}

func TestCounterSetByCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 1h
    points:
      - {name: energy, line: 27, mode: counter, writable: true}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), dir)
	h.start()
	if err := h.command(0, mappings.UintValue(123456)); err != nil {
		t.Fatal(err)
	}
	if n := counterValue(h, 0); n != 123456 {
		t.Fatalf("reported %d", n)
	}
	// Saved at once, not at the next periodic save.
	if got := readState(t, dir); got["energy"] != 123456 {
		t.Fatalf("saved %v", got)
	}
	if err := h.command(0, mappings.IntValue(-1)); err == nil {
		t.Fatal("a negative total was accepted")
	}
}

func TestOutputInitialAndCommands(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 1h
    points:
      - {name: relay, line: 22, mode: output, active_low: true, initial: true, writable: true}
      - {name: lamp, line: 23, mode: output}
      - {name: door, line: 17, mode: input}
`)[0]
	hw := newFakeHW(32)
	h := newHarness(t, dev, hw, "")
	h.start()
	eventually(t, "the first report", func() bool { _, ok := lastGood(h, 0); return ok })
	if cfg := hw.config(22); !cfg.output || !cfg.initial || !cfg.activeLow || cfg.edges {
		t.Fatalf("relay requested as %+v", cfg)
	}
	// Active low: on is a low line.
	if hw.physical(22) {
		t.Fatal("initial true on an active-low output left the line high")
	}
	if v, _ := lastGood(h, 0); !v.Bool() {
		t.Fatal("initial state not reported")
	}
	if cfg := hw.config(23); !cfg.output || cfg.initial || hw.physical(23) {
		t.Fatalf("lamp: %+v", cfg)
	}

	before := len(h.sink.of(0))
	if err := h.command(0, mappings.BoolValue(false)); err != nil {
		t.Fatal(err)
	}
	if !hw.physical(22) {
		t.Fatal("off did not raise the line")
	}
	rs := h.sink.of(0)
	if len(rs) != before+1 || rs[len(rs)-1].value.Bool() || rs[len(rs)-1].err != nil {
		t.Fatalf("read back not reported: %+v", rs)
	}
	if err := h.command(0, mappings.BoolValue(true)); err != nil || hw.physical(22) {
		t.Fatalf("on: %v, line high %v", err, hw.physical(22))
	}

	for _, c := range []struct {
		point int
		raw   mappings.Value
		want  string
	}{
		{0, mappings.UintValue(1), "an output takes a bool"},
		{1, mappings.BoolValue(true), "not writable"},
		{2, mappings.BoolValue(true), "not writable"},
		{9, mappings.BoolValue(true), "not writable"},
	} {
		if err := h.command(c.point, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("command %d %v: %v, want %q", c.point, c.raw, err, c.want)
		}
	}
	if hw.physical(23) {
		t.Error("a refused command changed a line")
	}
}

// A missing chip fails the device with an error naming chip and line; it
// is retried with backoff and works once the chip appears.
func TestOpenErrorRetried(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    chip: gpiochip4
    poll_interval: 1h
    points:
      - {name: door, line: 17, mode: input}
      - {name: relay, line: 22, mode: output, writable: true}
`)[0]
	hw := newFakeHW(32)
	h := newHarness(t, dev, hw, "")
	h.start()
	eventually(t, "a failed poll", func() bool { err, _ := h.sink.lastPoll(); return err != nil })
	err, _ := h.sink.lastPoll()
	if msg := err.Error(); !strings.Contains(msg, "gpiochip4 line 17 (door)") || !strings.Contains(msg, "chip not found") || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("error %q", msg)
	}
	if r, _ := h.sink.last(1); r.err == nil {
		t.Fatal("points not reported failed")
	}
	// Commands are answered while the device is down.
	if err := h.command(1, mappings.BoolValue(true)); err == nil || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("command while down: %v", err)
	}
	eventually(t, "retries", func() bool { return hw.requestCount() >= 3 })
	if logs := h.logs.String(); strings.Count(logs, "gpio device not available") != 1 {
		t.Errorf("the same failure logged more than once:\n%s", logs)
	}
	hw.plug("gpiochip4", 32)
	eventually(t, "a good poll", func() bool { err, _ := h.sink.lastPoll(); return err == nil })
	if !strings.Contains(h.logs.String(), "open again") {
		t.Error("recovery not logged")
	}
}

// A busy line fails the device, and the lines already requested are
// released rather than held by a device that does not run.
func TestLineBusy(t *testing.T) {
	t.Parallel()
	devs := configure(t, `  - name: first
    driver: gpio
    poll_interval: 1h
    points:
      - {name: door, line: 17, mode: input}
  - name: second
    driver: gpio
    poll_interval: 1h
    points:
      - {name: window, line: 18, mode: input}
      - {name: door, line: 17, mode: input}
`)
	hw := newFakeHW(32)
	h1 := newHarness(t, devs[0], hw, "")
	h1.start()
	eventually(t, "first open", func() bool { err, n := h1.sink.lastPoll(); return n > 0 && err == nil })
	h2 := newHarness(t, devs[1], hw, "")
	h2.start()
	eventually(t, "second fails", func() bool { err, _ := h2.sink.lastPoll(); return err != nil })
	err, _ := h2.sink.lastPoll()
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "gpiochip0 line 17 (door): line is busy") {
		t.Fatalf("error %v", err)
	}
	if hw.held(18) {
		t.Fatal("line 18 held by a device that failed to open")
	}
	h1.stop()
	eventually(t, "second opens once the line is free", func() bool { err, _ := h2.sink.lastPoll(); return err == nil })
}

func TestLineOutOfRange(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 1h
    points:
      - {name: door, line: 40, mode: input}
`)[0]
	h := newHarness(t, dev, newFakeHW(32), "")
	h.start()
	eventually(t, "a failed poll", func() bool { err, _ := h.sink.lastPoll(); return err != nil })
	if err, _ := h.sink.lastPoll(); !strings.Contains(err.Error(), "line 40 (door): no such line") {
		t.Fatalf("error %v", err)
	}
}

// A chip that disappears while running (a USB GPIO expander unplugged)
// fails the device at the next poll; once it is back the lines are
// requested again, outputs at their last commanded level.
func TestChipRemovedWhileRunning(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: door, line: 17, mode: input}
      - {name: relay, line: 22, mode: output, writable: true}
`)[0]
	hw := newFakeHW(32)
	h := newHarness(t, dev, hw, "")
	h.start()
	eventually(t, "open", func() bool { err, n := h.sink.lastPoll(); return n > 0 && err == nil })
	if err := h.command(1, mappings.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	hw.unplug("gpiochip0")
	eventually(t, "a failed poll", func() bool { err, _ := h.sink.lastPoll(); return err != nil })
	if err, _ := h.sink.lastPoll(); !errors.Is(err, syscall.ENODEV) || !strings.Contains(err.Error(), "gpiochip0 line") {
		t.Fatalf("error %v", err)
	}
	hw.plug("gpiochip0", 32)
	eventually(t, "reopened", func() bool { err, _ := h.sink.lastPoll(); return err == nil })
	if !hw.physical(22) {
		t.Fatal("relay not restored to its commanded level")
	}
	hw.drive(17, true)
	eventually(t, "edges after reopening", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
}

func TestCancelReleasesLines(t *testing.T) {
	t.Parallel()
	dev := configure(t, `  - name: d
    driver: gpio
    poll_interval: 10ms
    points:
      - {name: door, line: 17, mode: input}
      - {name: pulses, line: 3, mode: counter}
      - {name: relay, line: 22, mode: output}
`)[0]
	hw := newFakeHW(32)
	h := newHarness(t, dev, hw, "")
	h.start()
	eventually(t, "open", func() bool { return hw.held(17) && hw.held(3) && hw.held(22) })
	h.stop()
	if hw.held(17) || hw.held(3) || hw.held(22) {
		t.Fatal("lines still held after Run returned")
	}
	// Edges after the end go nowhere and do not block.
	hw.drive(17, true)
}
