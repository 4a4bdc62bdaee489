package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/modbus/modbustest"
	"github.com/fieldbridge/gateway/mappings"
)

// countSink counts what a benchmark's scans report.
type countSink struct{ reports, bad, polls, failed int }

func (s *countSink) Report(_ int, _ mappings.Value, err error, _ time.Time) {
	s.reports++
	if err != nil {
		s.bad++
	}
}

func (s *countSink) Polled(err error) {
	s.polls++
	if err != nil {
		s.failed++
	}
}

// scanner runs full scans of one device synchronously, as its runner
// would at every tick where all its points are due.
type scanner struct {
	r    *runner
	l    *link
	st   *devState
	env  adapters.Env
	sink *countSink
}

func newScanner(tb testing.TB, d *Device) *scanner {
	s := &scanner{r: &runner{ep: d.ep, mode: d.serial, devs: []*Device{d}}, l: newLink(d.ep, d.serial), sink: &countSink{}}
	s.st = &devState{dev: d, sink: s.sink, pl: newPlanner(d.points, d.maxRegs, d.maxBits, d.maxGap), last: -1}
	s.env = adapters.Env{Log: slog.New(slog.DiscardHandler), Now: time.Now}
	tb.Cleanup(s.l.close)
	return s
}

func (s *scanner) scan(ctx context.Context) error {
	return s.r.pollDevice(ctx, s.env, s.l, s.st, s.st.pl.all())
}

// requests is the requests a full scan takes once the plan settled.
func (s *scanner) requests() int { return len(s.st.pl.plan(s.st.pl.all())) }

// benchScans scans the three-phase meter map at url b.N times and reports
// requests per scan and points per second.
func benchScans(b *testing.B, url, extra string) {
	devs := mustConfigure(b, "- name: meter\n  driver: modbus\n  url: "+url+"\n"+extra+energyMeter)
	s := newScanner(b, devs[0])
	ctx := context.Background()
	if err := s.scan(ctx); err != nil || s.sink.bad > 0 {
		b.Fatalf("warm-up scan: %v, %d bad points", err, s.sink.bad)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.scan(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s.sink.bad > 0 {
		b.Fatalf("%d bad points", s.sink.bad)
	}
	points := len(devs[0].points)
	b.ReportMetric(float64(s.requests()), "requests/scan")
	b.ReportMetric(float64(points*b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(s.requests()), "µs/request")
}

// BenchmarkScan scans an SDM630-like meter (21 float32 points, 42
// registers in 4 runs) with the planner and with one request per point
// (max_registers_per_read: 2), against the in-process server and against
// Debian's pymodbus over Modbus TCP and RTU over TCP.
func BenchmarkScan(b *testing.B) {
	for _, mode := range []struct{ name, extra string }{
		{"planned", ""},
		{"per-point", "  max_registers_per_read: 2\n"},
	} {
		b.Run("inprocess/"+mode.name, func(b *testing.B) {
			srv := newSimServer(b)
			meterValues(func(addr uint16, regs ...uint16) { srv.setRegs(true, addr, regs...) })
			benchScans(b, srv.url(), mode.extra)
		})
		for _, proto := range []modbustest.Mode{modbustest.TCP, modbustest.RTUOverTCP} {
			b.Run("pymodbus-"+string(proto)+"/"+mode.name, func(b *testing.B) {
				ir := make([]uint16, 0x160)
				meterValues(func(addr uint16, regs ...uint16) { copy(ir[addr:], regs) })
				port := modbustest.StartPymodbus(b, proto, map[int]modbustest.Tables{1: {IR: ir}})
				benchScans(b, fmt.Sprintf("%s://127.0.0.1:%d", proto, port), mode.extra)
			})
		}
	}
}
