package gpio

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/mappings"
)

func TestSampleConfigures(t *testing.T) {
	d := configtest.Sample(t, Driver{}, Sample, 1, 1)[0].(*Device)
	var names []string
	for _, p := range d.Info().Points {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "door_open,energy,power,relay" {
		t.Fatalf("points %s", got)
	}
	if d.chip != "gpiochip0" || d.interval != time.Second {
		t.Errorf("chip %q interval %s", d.chip, d.interval)
	}
	energy := d.lines[1]
	if energy.mode != modeCounter || energy.point != 1 || energy.rate != 2 || !energy.activeLow ||
		energy.bias != biasPullUp || energy.debounce != 5*time.Millisecond || energy.count != countRising {
		t.Errorf("energy line: %+v", energy)
	}
	if pt := d.Info().Points[1]; pt.Type != mappings.Uint64 || pt.Scale != 0.001 || pt.Unit != "kWh" {
		t.Errorf("energy point: %+v", pt)
	}
	if pt := d.Info().Points[2]; pt.Type != mappings.Float64 || pt.Scale != 3600 || pt.Unit != "W" || pt.Where != "devices[0].points[1].rate" {
		t.Errorf("rate point: %+v", pt)
	}
	relay := d.lines[2]
	if relay.mode != modeOutput || relay.point != 3 || relay.initial || !relay.activeLow || !relay.writable {
		t.Errorf("relay line: %+v", relay)
	}
}

func TestDefaults(t *testing.T) {
	d := configure(t, `  - name: d
    driver: gpio
    points:
      - {name: in, line: 4, mode: input}
      - {name: pulses, line: 5, mode: counter}
      - {name: out, line: 6, mode: output}
`)[0]
	if d.chip != DefaultChip || d.interval != DefaultPollInterval {
		t.Errorf("chip %q interval %s", d.chip, d.interval)
	}
	pts := d.Info().Points
	if len(pts) != 4 || pts[2].Name != "pulses_rate" || pts[2].Type != mappings.Float64 || pts[1].Type != mappings.Uint64 {
		t.Fatalf("points: %+v", pts)
	}
	if pts[0].Type != mappings.Bool || pts[3].Type != mappings.Bool || pts[3].Writable {
		t.Errorf("bool points: %+v %+v", pts[0], pts[3])
	}
	for _, ls := range d.lines {
		if ls.debounce != 0 || ls.bias != biasAsIs || ls.activeLow || ls.initial {
			t.Errorf("line %d: %+v", ls.offset, ls)
		}
	}
}

// Every problem of an entry is reported at once, at its key, with the
// file position.
func TestConfigErrors(t *testing.T) {
	_, errs := tryConfigure(t, `  - name: d
    driver: gpio
    chip: /dev/gpio chip
    poll_interval: 1ms
    points:
      - {name: a, line: 17, mode: input}
      - {name: b, line: 17, mode: input}
      - {name: c, line: 3, mode: counter, type: float32}
      - {name: e, line: 4, mode: output, type: uint16}
      - {name: f, line: 5, mode: input, type: int16}
      - {name: g, line: 6, mode: output, debounce: 5ms}
      - {name: h, line: 7, mode: input, initial: true}
      - {name: i, line: 8, mode: output, bias: pull-up}
      - {name: j, line: 9, mode: input, edge: rising}
      - {name: k, line: 10, mode: output, rate: {unit: W}}
      - {name: l, line: 11, mode: counter, rate: {type: int16}}
      - {name: m, mode: input}
      - {name: n, line: 12}
      - {name: o, line: 13, mode: blink}
      - {name: p, line: -1, mode: input}
      - {name: q, line: 14, mode: input, debounce: 1m}
      - {name: r, line: 15, mode: input, bias: up}
      - {name: s, line: 16, mode: counter}
      - {name: s_rate, line: 18, mode: input}
      - {name: t, line: 19, mode: input, writable: true}
      - {name: u, line: 20, mode: counter, edge: sideways}
      - {name: v, line: 21, mode: input, pull: up}
      - {name: w, line: 22, mode: input, debounce: -5ms}
`)
	want := []string{
		`gpio.yaml:5:11: devices[0].chip: chip "/dev/gpio chip": want a chip name such as gpiochip0`,
		"devices[0].poll_interval: poll_interval must be at least 10ms",
		"devices[0].points[1].line: line 17 is already used by devices[0].points[0]",
		"devices[0].points[2].type: a counter total is a uint64, not float32",
		"devices[0].points[3].type: uint16 is not possible here: GPIO lines hold only bool values",
		"devices[0].points[4].type: int16 is not possible here",
		"devices[0].points[5].debounce: debounce applies to input and counter lines, not to an output",
		"devices[0].points[6].initial: initial applies to an output, not to an input line",
		"devices[0].points[7].bias: bias applies to input and counter lines, not to an output",
		"devices[0].points[8].edge: edge applies to a counter, not to an input line",
		"devices[0].points[9].rate: rate applies to a counter, not to an output line",
		"devices[0].points[10].rate.type: a rate is a float64 or float32, not int16",
		"devices[0].points[11]: a gpio point needs line",
		"devices[0].points[12]: a gpio point needs mode: input, counter or output",
		`devices[0].points[13].mode: unknown mode "blink" (want input, counter or output)`,
		"devices[0].points[14].line: line must be 0 or more, got -1",
		"devices[0].points[15].debounce: debounce 1m0s is longer than 10s",
		`devices[0].points[16].bias: unknown bias "up" (want pull-up, pull-down or disabled)`,
		`devices[0].points[18].name: point name "s_rate" is already used by devices[0].points[17].rate`,
		"devices[0].points[19].writable: an input line cannot be written: use mode: output",
		`devices[0].points[20].edge: unknown edge "sideways" (want rising, falling or both)`,
		`devices[0].points[21].pull: unknown key "pull"`,
		"devices[0].points[22].debounce: debounce must be 0 or more",
	}
	text := errs.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q", w)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%s", text)
	}
}

func TestConfigDeviceErrors(t *testing.T) {
	_, errs := tryConfigure(t, `  - name: "bad name"
    driver: gpio
  - name: ok
    driver: gpio
    points:
      - {name: x, line: 1, mode: input, deadband: 0.5}
      - {name: y, line: 2, mode: output, writable: true, write_range: [0, 1]}
      - {name: z, line: 3, mode: counter, scale: 0.5}
`)
	want := []string{
		"devices[0].name: name",
		"devices[0]: a gpio device needs at least one point",
		"devices[1].points[0].deadband: deadband on a bool can only be 0",
		"devices[1].points[1].write_range: write_range on a bool",
	}
	text := errs.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in\n%s", w, text)
		}
	}
	if strings.Contains(text, "points[2]") {
		t.Errorf("a scaled counter is valid:\n%s", text)
	}
}

func TestWritable(t *testing.T) {
	d := configure(t, `  - name: d
    driver: gpio
    points:
      - {name: in, line: 1, mode: input}
      - {name: pulses, line: 2, mode: counter, writable: true}
      - {name: out, line: 3, mode: output, writable: true}
      - {name: fixed, line: 4, mode: output, initial: true}
`)[0]
	want := map[string]bool{"in": false, "pulses": true, "pulses_rate": false, "out": true, "fixed": false}
	for _, p := range d.Info().Points {
		if p.Writable != want[p.Name] {
			t.Errorf("%s: writable %v", p.Name, p.Writable)
		}
	}
}

// A counter command is in the point's units: with scale 0.001 (kWh per
// pulse) the gateway turns 12345.6 kWh into 12345600 pulses.
func TestCounterCommandUnits(t *testing.T) {
	d := configure(t, string(Sample))[0]
	raw, err := mappings.ParseCommand([]byte(`{"value": 12345.6}`), d.Info().Points[1].Point)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := raw.Uint64(); !ok || n != 12345600 {
		t.Fatalf("raw %v", raw)
	}
	if _, err := mappings.ParseCommand([]byte(`-1`), d.Info().Points[1].Point); err == nil {
		t.Fatal("a negative total was accepted")
	}
}
