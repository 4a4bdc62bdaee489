package modbus

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/config")

// TestConfigGolden compares the problems reported for each
// testdata/config/*.yaml to its .golden file.
func TestConfigGolden(t *testing.T) { configtest.Golden(t, Driver{}, *update) }

// The sample embedded in the package is a valid configuration.
func TestSampleIsValid(t *testing.T) {
	devs := configtest.Sample(t, Driver{}, Sample, 3, 3) // three connections
	// The meter's 21 points are read in 4 requests.
	m := devs[1].(*Device)
	pl := newPlanner(m.points, m.maxRegs, m.maxBits, m.maxGap)
	if got := len(pl.plan(pl.all())); got != 4 {
		t.Errorf("meter: %d requests per full scan, want 4", got)
	}
	if got := len(pl.plan(pl.due(0, 1))); got != 3 {
		t.Errorf("meter: %d requests while the energy counters are not due, want 3", got)
	}
}

func TestDefaults(t *testing.T) {
	d := mustConfigure(t, `- name: d
  driver: modbus
  url: tcp://10.0.0.1
  points:
    - {name: r, table: holding, address: 0}
    - {name: c, table: coil, address: 0}
    - {name: s, table: holding, address: 1, type: string, length: 4}`)[0]
	if d.ep != (endpoint{schemeTCP, "10.0.0.1:502"}) || d.unit != 1 || d.timeout != time.Second ||
		d.interval != time.Second || d.maxRegs != 125 || d.maxBits != 2000 || d.maxGap != 10 {
		t.Errorf("defaults: %+v", d)
	}
	if p := d.points[0]; p.mp.Type != mappings.Uint16 || p.n != 1 || p.every != 1 {
		t.Errorf("register point defaults: %+v", p)
	}
	if p := d.points[1]; p.mp.Type != mappings.Bool || p.n != 1 {
		t.Errorf("coil point defaults: %+v", p)
	}
	if p := d.points[2]; p.n != 4 {
		t.Errorf("string spans %d registers, want 4", p.n)
	}
	r := mustConfigure(t, `- name: d
  driver: modbus
  url: rtu:///dev/ttyUSB0
  points: [{name: r, table: input, address: 0}]`)[0]
	if r.serial != (serialline.Mode{Baud: 9600, DataBits: 8, Parity: 'N', StopBits: 1}) {
		t.Errorf("serial defaults: %+v", r.serial)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]endpoint{
		"tcp://10.0.0.1:502":      {schemeTCP, "10.0.0.1:502"},
		"tcp://Meter.local":       {schemeTCP, "meter.local:502"},
		"TCP://[fe80::1]:1502":    {schemeTCP, "[fe80::1]:1502"},
		"tcp://[::1]":             {schemeTCP, "[::1]:502"},
		"rtu:///dev/ttyUSB0":      {schemeRTU, "/dev/ttyUSB0"},
		"rtu:///dev/../dev/ttyS1": {schemeRTU, "/dev/ttyS1"},
		"rtu+tcp://10.0.0.2:4001": {schemeRTUOverTCP, "10.0.0.2:4001"},
	} {
		got, err := parseURL(in)
		if err != nil || got != want {
			t.Errorf("parseURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.1:502", "udp://h:1", "tcp://", "tcp://h:0", "tcp://h:x",
		"rtu+tcp://h", "rtu://ttyUSB0", "tcp://a/b:1", "tcp://user@h:502"} {
		if e, err := parseURL(in); err == nil {
			t.Errorf("parseURL(%q) = %+v, want an error", in, e)
		}
	}
}

// Devices on one url share a runner; the serial settings of the first
// device on a port win, and a device that disagrees fails its polls.
func TestRunnersGroupByURL(t *testing.T) {
	devs, errs := configure(t, `- {name: a, driver: modbus, url: "tcp://10.0.0.1:502", unit_id: 1, points: [{name: x, table: holding, address: 0}]}
- {name: b, driver: modbus, url: "tcp://10.0.0.1", unit_id: 2, points: [{name: x, table: holding, address: 0}]}
- {name: c, driver: modbus, url: "rtu+tcp://10.0.0.1:502", points: [{name: x, table: holding, address: 0}]}
- {name: d, driver: modbus, url: "rtu:///dev/ttyS0", unit_id: 1, points: [{name: x, table: input, address: 0}]}
- {name: e, driver: modbus, url: "rtu:///dev/ttyS0", unit_id: 2, points: [{name: x, table: input, address: 0}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rs := Driver{}.Runners(devs)
	if len(rs) != 3 {
		t.Fatalf("want 3 runners, got %d", len(rs))
	}
	names := func(r adapters.Runner) (out []string) {
		for _, d := range r.(*runner).devs {
			out = append(out, d.info.Name)
		}
		return out
	}
	if got := strings.Join(names(rs[0]), ","); got != "a,b" {
		t.Errorf("first runner polls %s, want a,b", got)
	}
	if got := strings.Join(names(rs[2]), ","); got != "d,e" {
		t.Errorf("serial runner polls %s, want d,e", got)
	}
	if got := len(Driver{}.Collectors(devs)); got != 5 {
		t.Errorf("%d collectors, want one per device", got)
	}
}

func TestWritable(t *testing.T) {
	devs := mustConfigure(t, `- name: d
  driver: modbus
  url: tcp://10.0.0.1
  points:
    - {name: coil, table: coil, address: 0, writable: true}
    - {name: reg, table: holding, address: 0, type: float32, writable: true}
    - {name: bit, table: holding, address: 2, type: bool, bit: 4, writable: true}
    - {name: ro, table: holding, address: 3}
    - {name: inbit, table: input, address: 0, type: bool, bit: 1}`)
	for i, want := range []bool{true, true, true, false, false} {
		if got := devs[0].info.Points[i].Writable; got != want {
			t.Errorf("%s: writable %v, want %v", devs[0].info.Points[i].Name, got, want)
		}
	}
}
