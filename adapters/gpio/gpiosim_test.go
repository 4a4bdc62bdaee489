//go:build gpiosim

// These tests run the driver on the real GPIO character device, against
// the kernel's gpio-sim, inside the VM that vmtest/run.sh boots. They
// expect /sys/kernel/config/gpio-sim/chip0/bank0 to be live with at least
// 16 lines, and change its lines, so they never run on a host.

package gpio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/mappings"
)

const simBank = "/sys/kernel/config/gpio-sim/chip0"

// sim is the gpio-sim chip the VM set up.
type sim struct {
	t    *testing.T
	chip string // gpiochipN
	dir  string // its sysfs folder, holding sim_gpioN/{pull,value}
}

func newSim(t *testing.T) *sim {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("gpio-sim is not set up (run through vmtest/run.sh): %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	dev := read(filepath.Join(simBank, "dev_name"))
	chip := read(filepath.Join(simBank, "bank0", "chip_name"))
	return &sim{t: t, chip: chip, dir: filepath.Join("/sys/devices/platform", dev, chip)}
}

// pull drives an input: gpio-sim's pull is the level an external circuit
// would put on the line.
func (s *sim) pull(line int, up bool) {
	s.t.Helper()
	v := "pull-down"
	if up {
		v = "pull-up"
	}
	if err := os.WriteFile(fmt.Sprintf("%s/sim_gpio%d/pull", s.dir, line), []byte(v), 0); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sim) pullState(line int) string {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("%s/sim_gpio%d/pull", s.dir, line))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// value is the electrical level of a line, as the simulated chip sees it.
func (s *sim) value(line int) bool {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("%s/sim_gpio%d/value", s.dir, line))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b)) == "1"
}

// device configures one device on the sim chip; the text goes under
// `points:`.
func (s *sim) device(name, points string) *Device {
	s.t.Helper()
	return configure(s.t, fmt.Sprintf("  - name: %s\n    driver: gpio\n    chip: %s\n    poll_interval: 50ms\n    points:\n%s", name, s.chip, points))[0]
}

func (s *sim) run(dev *Device, dir string) *harness {
	h := newHarnessOn(s.t, dev, newHardware(), dir)
	h.start()
	eventually(s.t, "the device to open", func() bool { err, n := h.sink.lastPoll(); return n > 0 && err == nil })
	return h
}

func TestSimInputEdgesDebounced(t *testing.T) {
	s := newSim(t)
	s.pull(0, false)
	h := s.run(s.device("door", "      - {name: open, line: 0, mode: input, debounce: 50ms}\n"), "")
	if v, _ := lastGood(h, 0); v.Bool() {
		t.Fatal("a pulled-down line reads true")
	}

	// A glitch much shorter than the debounce period is no change.
	before := glitch(t, h.sink, 0, 20*time.Millisecond, 300*time.Millisecond,
		func() { s.pull(0, true) }, func() { s.pull(0, false) })
	if got := h.sink.changes(0); len(got) != before {
		t.Fatalf("glitch reported: %v", got)
	}

	// Held levels are reported, each once past the period.
	for _, up := range []bool{true, false, true} {
		start := time.Now()
		s.pull(0, up)
		eventually(t, "the new level", func() bool { v, _ := lastGood(h, 0); return v.Bool() == up })
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Errorf("reported after %s, inside the debounce period", took)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := h.sink.changes(0); !sameValues(got[before-1:], boolValues(false, true, false, true)) {
		t.Fatalf("changes %v", got)
	}
}

// active_low and bias reach the kernel: the requested pull-up shows in
// gpio-sim, and a low line reads true.
func TestSimInputActiveLowBias(t *testing.T) {
	s := newSim(t)
	s.pull(1, false)
	h := s.run(s.device("button", "      - {name: pressed, line: 1, mode: input, active_low: true, bias: pull-up}\n"), "")
	if got := s.pullState(1); got != "pull-up" {
		t.Fatalf("gpio-sim pull %q after requesting bias pull-up", got)
	}
	if v, _ := lastGood(h, 0); v.Bool() {
		t.Fatal("a pulled-up active-low line reads true")
	}
	s.pull(1, false)
	eventually(t, "pressed", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
	s.pull(1, true)
	eventually(t, "released", func() bool { v, _ := lastGood(h, 0); return !v.Bool() })
}

// N pulses count N, and the total goes on after a restart.
func TestSimCounterPulses(t *testing.T) {
	const n = 40
	s := newSim(t)
	s.pull(2, true) // S0 idle: open collector with a pull-up
	dir := t.TempDir()
	points := "      - {name: energy, line: 2, mode: counter, active_low: true, debounce: 2ms}\n"
	h := s.run(s.device("meter", points), dir)
	toggle := func(count int) {
		for i := 0; i < count; i++ {
			s.pull(2, false)
			time.Sleep(10 * time.Millisecond)
			s.pull(2, true)
			time.Sleep(10 * time.Millisecond)
		}
	}
	toggle(n)
	eventually(t, fmt.Sprintf("a total of %d", n), func() bool { return counterValue(h, 0) == n })
	if v, _ := lastGood(h, 1); v.Float64() <= 0 {
		t.Errorf("rate %v after %d pulses", v, n)
	}
	time.Sleep(100 * time.Millisecond)
	if got := counterValue(h, 0); got != n {
		t.Fatalf("total %d, want %d", got, n)
	}
	h.stop()
	if got := readState(t, dir); got["energy"] != n {
		t.Fatalf("saved %v", got)
	}

	h2 := s.run(s.device("meter", points), dir)
	eventually(t, "the saved total", func() bool { return counterValue(h2, 0) == n })
	toggle(5)
	eventually(t, "the total after a restart", func() bool { return counterValue(h2, 0) == n+5 })
}

// A command sets the output, which gpio-sim shows; active_low inverts it.
func TestSimOutputCommands(t *testing.T) {
	s := newSim(t)
	h := s.run(s.device("relays", `      - {name: lamp, line: 3, mode: output, initial: true, writable: true}
      - {name: relay, line: 4, mode: output, active_low: true, initial: false, writable: true}
`), "")
	if !s.value(3) || !s.value(4) {
		t.Fatalf("initial levels: lamp %v relay %v, want high and high (active low off)", s.value(3), s.value(4))
	}
	if v, _ := lastGood(h, 0); !v.Bool() {
		t.Fatal("initial state not reported")
	}
	for _, on := range []bool{false, true, false} {
		if err := h.command(0, mappings.BoolValue(on)); err != nil {
			t.Fatal(err)
		}
		if s.value(3) != on {
			t.Fatalf("lamp %v: gpio-sim value %v", on, s.value(3))
		}
		if v, _ := lastGood(h, 0); v.Bool() != on {
			t.Fatalf("lamp %v: read back %v", on, v)
		}
		if err := h.command(1, mappings.BoolValue(on)); err != nil {
			t.Fatal(err)
		}
		if s.value(4) == on {
			t.Fatalf("active-low relay %v: gpio-sim value %v", on, s.value(4))
		}
	}
}

func TestSimOpenErrors(t *testing.T) {
	s := newSim(t)
	failure := func(h *harness) error {
		eventually(t, "a failed poll", func() bool { err, _ := h.sink.lastPoll(); return err != nil })
		err, _ := h.sink.lastPoll()
		return err
	}

	missing := newHarnessOn(t, configure(t, `  - name: nochip
    driver: gpio
    chip: gpiochip9
    points:
      - {name: x, line: 0, mode: input}
`)[0], newHardware(), "")
	missing.start()
	if err := failure(missing); !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "gpiochip9 line 0 (x): chip not found: /dev/gpiochip9 does not exist") {
		t.Errorf("missing chip: %v", err)
	}

	holder := s.run(s.device("holder", "      - {name: a, line: 5, mode: input}\n"), "")
	busy := newHarnessOn(t, s.device("busy", "      - {name: b, line: 5, mode: input}\n"), newHardware(), "")
	busy.start()
	if err := failure(busy); !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), s.chip+` line 5 (b): line is busy: held by "fieldbridge"`) {
		t.Errorf("busy line: %v", err)
	}
	holder.stop()
	eventually(t, "the line free again", func() bool { err, _ := busy.sink.lastPoll(); return err == nil })

	far := newHarnessOn(t, s.device("far", "      - {name: c, line: 200, mode: input}\n"), newHardware(), "")
	far.start()
	if err := failure(far); !strings.Contains(err.Error(), "line 200 (c): no such line") {
		t.Errorf("line out of range: %v", err)
	}
}

// Taking the chip away (live = 0) fails the device; bringing it back
// reopens the lines.
func TestSimChipRemoved(t *testing.T) {
	s := newSim(t)
	live := func(on bool) {
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile(filepath.Join(simBank, "live"), []byte(v), 0); err != nil {
			t.Fatalf("live=%s: %v", v, err)
		}
	}
	s.pull(6, false)
	h := s.run(s.device("removable", `      - {name: in, line: 6, mode: input}
      - {name: out, line: 7, mode: output, writable: true}
`), "")
	if err := h.command(1, mappings.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	live(false)
	eventually(t, "a failed poll", func() bool { err, _ := h.sink.lastPoll(); return err != nil })
	err, _ := h.sink.lastPoll()
	t.Logf("with the chip gone: %v", err)
	live(true)
	s = newSim(t)
	eventually(t, "reopened", func() bool { err, _ := h.sink.lastPoll(); return err == nil })
	if !s.value(7) {
		t.Error("output not restored to its commanded level")
	}
	s.pull(6, true)
	eventually(t, "edges after reopening", func() bool { v, _ := lastGood(h, 0); return v.Bool() })
}
