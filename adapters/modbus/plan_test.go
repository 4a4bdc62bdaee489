package modbus

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/mappings"
)

// pt builds a point for planner tests.
func pt(t table, addr uint16, n, every int) point {
	return point{mp: mappings.Point{Name: fmt.Sprint(addr), Type: mappings.Uint16}, table: t, addr: addr, n: n, every: every}
}

// blocks prints a plan compactly: "holding 0+4[0 1] coil 3+1[2]".
func blocks(bs []block) string {
	var s []string
	for _, b := range bs {
		s = append(s, fmt.Sprintf("%s %d+%d%v", b.table, b.start, b.count, b.points))
	}
	return strings.Join(s, " ")
}

func TestPlanMerge(t *testing.T) {
	for _, tc := range []struct {
		name           string
		pts            []point
		regs, bits, gp int
		want           string
	}{
		{"adjacent", []point{pt(holding, 0, 2, 1), pt(holding, 2, 2, 1)}, 125, 2000, 0, "holding 0+4[0 1]"},
		{"gap within max_gap", []point{pt(holding, 0, 1, 1), pt(holding, 11, 1, 1)}, 125, 2000, 10, "holding 0+12[0 1]"},
		{"gap beyond max_gap", []point{pt(holding, 0, 1, 1), pt(holding, 12, 1, 1)}, 125, 2000, 10, "holding 0+1[0] holding 12+1[1]"},
		{"limit", []point{pt(holding, 0, 2, 1), pt(holding, 2, 2, 1), pt(holding, 4, 2, 1)}, 4, 2000, 10, "holding 0+4[0 1] holding 4+2[2]"},
		{"overlap", []point{pt(holding, 0, 2, 1), pt(holding, 1, 1, 1)}, 125, 2000, 0, "holding 0+2[0 1]"},
		{"sorted by address", []point{pt(input, 9, 1, 1), pt(input, 0, 1, 1)}, 125, 2000, 10, "input 0+10[1 0]"},
		{"tables apart", []point{pt(holding, 0, 1, 1), pt(input, 1, 1, 1), pt(coil, 0, 1, 1), pt(discrete, 0, 1, 1)}, 125, 2000, 10,
			"holding 0+1[0] input 1+1[1] coil 0+1[2] discrete 0+1[3]"},
		{"bit gaps count 16 per register", []point{pt(coil, 0, 1, 1), pt(coil, 161, 1, 1), pt(coil, 323, 1, 1)}, 125, 2000, 10,
			"coil 0+162[0 1] coil 323+1[2]"},
		{"bit limit", []point{pt(coil, 0, 1, 1), pt(coil, 1999, 1, 1), pt(coil, 2000, 1, 1)}, 125, 2000, 2000, "coil 0+2000[0 1] coil 2000+1[2]"},
		{"top of the address space", []point{pt(holding, 65533, 2, 1), pt(holding, 65535, 1, 1)}, 125, 2000, 0, "holding 65533+3[0 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlanner(tc.pts, tc.regs, tc.bits, tc.gp)
			if got := blocks(pl.plan(pl.all())); got != tc.want {
				t.Errorf("plan = %s, want %s", got, tc.want)
			}
		})
	}
}

// Points with a longer poll_interval join the reads only at the ticks
// where they are due, and merge with the others then.
func TestPlanSchedules(t *testing.T) {
	pts := []point{pt(holding, 0, 1, 1), pt(holding, 1, 1, 5), pt(holding, 2, 1, 1), pt(holding, 50, 1, 10)}
	pl := newPlanner(pts, 125, 2000, 10)
	for _, tc := range []struct {
		last, n int64
		want    string
	}{
		{-1, 0, "holding 0+3[0 1 2] holding 50+1[3]"},
		{0, 1, "holding 0+3[0 2]"},
		{4, 5, "holding 0+3[0 1 2]"},
		{9, 10, "holding 0+3[0 1 2] holding 50+1[3]"},
		{3, 12, "holding 0+3[0 1 2] holding 50+1[3]"}, // ticks skipped while backing off
		{11, 13, "holding 0+3[0 2]"},
	} {
		if got := blocks(pl.plan(pl.due(tc.last, tc.n))); got != tc.want {
			t.Errorf("ticks %d->%d: plan = %s, want %s", tc.last, tc.n, got, tc.want)
		}
	}
}

func TestPlanSplitRemembers(t *testing.T) {
	pts := []point{pt(holding, 0, 1, 1), pt(holding, 1, 1, 1), pt(holding, 2, 1, 1), pt(holding, 3, 1, 1), pt(holding, 4, 1, 1)}
	pl := newPlanner(pts, 125, 2000, 10)
	b := pl.plan(pl.all())[0]
	l, r, ok := pl.split(b)
	if !ok || blocks([]block{l, r}) != "holding 0+2[0 1] holding 2+3[2 3 4]" {
		t.Fatalf("split = %s", blocks([]block{l, r}))
	}
	if got := blocks(pl.plan(pl.all())); got != "holding 0+2[0 1] holding 2+3[2 3 4]" {
		t.Errorf("plan after the split = %s", got)
	}
	if _, _, ok := pl.split(block{table: holding, start: 0, count: 1, points: []int{0}}); ok {
		t.Error("a block of one point split")
	}
}

// energyMeter is an Eastron SDM630's map as sample.yaml gives it: 21
// float32 input registers (42 registers) in 4 runs.
const energyMeter = `  points:
    - {name: voltage_l1, table: input, address: 0x0000, type: float32}
    - {name: voltage_l2, table: input, address: 0x0002, type: float32}
    - {name: voltage_l3, table: input, address: 0x0004, type: float32}
    - {name: current_l1, table: input, address: 0x0006, type: float32}
    - {name: current_l2, table: input, address: 0x0008, type: float32}
    - {name: current_l3, table: input, address: 0x000A, type: float32}
    - {name: power_l1, table: input, address: 0x000C, type: float32}
    - {name: power_l2, table: input, address: 0x000E, type: float32}
    - {name: power_l3, table: input, address: 0x0010, type: float32}
    - {name: power_total, table: input, address: 0x0034, type: float32}
    - {name: apparent_power_total, table: input, address: 0x0038, type: float32}
    - {name: reactive_power_total, table: input, address: 0x003C, type: float32}
    - {name: power_factor_total, table: input, address: 0x003E, type: float32}
    - {name: frequency, table: input, address: 0x0046, type: float32}
    - {name: import_energy, table: input, address: 0x0048, type: float32}
    - {name: export_energy, table: input, address: 0x004A, type: float32}
    - {name: voltage_l1_l2, table: input, address: 0x00C8, type: float32}
    - {name: voltage_l2_l3, table: input, address: 0x00CA, type: float32}
    - {name: voltage_l3_l1, table: input, address: 0x00CC, type: float32}
    - {name: energy_total, table: input, address: 0x0156, type: float32}
    - {name: reactive_energy_total, table: input, address: 0x0158, type: float32}
`

// meterValues fills the meter's registers: each point holds its address
// as a float32 plus 0.5, and the gaps between points exist, as on the
// real meter.
func meterValues(set func(addr uint16, regs ...uint16)) {
	set(0, make([]uint16, 0x160)...)
	for _, a := range meterAddrs {
		set(a, regsOf(float32(a)+0.5)...)
	}
}

var meterAddrs = []uint16{0, 2, 4, 6, 8, 10, 12, 14, 16, 0x34, 0x38, 0x3c, 0x3e, 0x46, 0x48, 0x4a, 0xc8, 0xca, 0xcc, 0x156, 0x158}

// TestEnergyMeterRequestsPerScan measures, against the in-process server,
// the requests one full scan of a three-phase meter costs: 4 with the
// planner, against 21 when every point is read alone (what
// max_registers_per_read: 2 forces for float32 points).
func TestEnergyMeterRequestsPerScan(t *testing.T) {
	noLeak(t)
	srv := newSimServer(t)
	meterValues(func(addr uint16, regs ...uint16) { srv.setRegs(true, addr, regs...) })
	for _, tc := range []struct {
		extra string
		want  int
	}{
		{"", 4},
		{"  max_registers_per_read: 2\n", 21},
	} {
		devs := mustConfigure(t, "- name: meter\n  driver: modbus\n  url: "+srv.url()+"\n  poll_interval: 1h\n"+tc.extra+energyMeter)
		before := srv.count()
		rs := start(t, devs)
		s := rs.sinks["meter"]
		s.wait(t, "the first poll", func() bool { return len(s.polls) == 1 })
		rs.stop()
		if got := srv.count() - before; got != tc.want {
			t.Errorf("%q: %d requests per scan, want %d", tc.extra, got, tc.want)
		}
		s.mu.Lock()
		if s.polls[0] != nil || len(s.reports) != 21 {
			t.Errorf("poll %v, %d reports", s.polls[0], len(s.reports))
		}
		for _, r := range s.reports {
			want := float32(devs[0].points[r.i].addr) + 0.5
			if r.err != nil || !r.v.Equal(mappings.Float32Value(want)) {
				t.Errorf("point %s = %v, %v; want %v", devs[0].points[r.i].mp.Name, r.v, r.err, want)
			}
		}
		s.mu.Unlock()
		t.Logf("%d points, %d requests per scan (%s)", len(devs[0].points), tc.want, strings.TrimSpace(tc.extra))
	}
}
