package modbus

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPollEveryTable reads every table and type from the in-process
// github.com/simonvetter/modbus server and checks the raw values reported.
func TestPollEveryTable(t *testing.T) {
	noLeak(t)
	srv := newSimServer(t)
	srv.setRegs(false, 0, regsOf(21.5)...)
	srv.setRegs(false, 2, 0xfb2e)                         // int16 -1234
	srv.setRegs(false, 3, 0x5678, 0x1234)                 // uint32 0x12345678, CDAB
	srv.setRegs(false, 5, 1<<3)                           // bit 3
	srv.setRegs(false, 6, 0x4869, 0x2100, 0x2020)         // "Hi!"
	srv.setRegs(false, 9, 0x0102, 0x0304, 0x0506, 0x0708) // uint64
	srv.setRegs(true, 100, 1234)
	srv.mu.Lock()
	srv.co[0], srv.co[1], srv.co[2] = true, false, true
	srv.di[7] = true
	srv.mu.Unlock()
	devs := mustConfigure(t, `- name: dev
  driver: modbus
  url: `+srv.url()+`
  poll_interval: 1h
  points:
    - {name: temp, table: holding, address: 0, type: float32}
    - {name: neg, table: holding, address: 2, type: int16}
    - {name: count, table: holding, address: 3, type: uint32, order: CDAB}
    - {name: flag, table: holding, address: 5, type: bool, bit: 3}
    - {name: noflag, table: holding, address: 5, type: bool, bit: 2}
    - {name: text, table: holding, address: 6, type: string, length: 3}
    - {name: big, table: holding, address: 9, type: uint64}
    - {name: pv, table: input, address: 100, type: int16, scale: 0.1}
    - {name: c0, table: coil, address: 0}
    - {name: c1, table: coil, address: 1}
    - {name: c2, table: coil, address: 2}
    - {name: door, table: discrete, address: 7}`)
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "one poll", func() bool { return len(s.polls) == 1 })
	rs.stop()
	want := []mappings.Value{
		mappings.Float32Value(21.5), mappings.IntValue(-1234), mappings.UintValue(0x12345678),
		mappings.BoolValue(true), mappings.BoolValue(false), mappings.StringValue("Hi!"),
		mappings.UintValue(0x0102030405060708), mappings.IntValue(1234), // raw: the sink scales
		mappings.BoolValue(true), mappings.BoolValue(false), mappings.BoolValue(true), mappings.BoolValue(true),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polls[0] != nil {
		t.Fatalf("poll failed: %v", s.polls[0])
	}
	for i, w := range want {
		r, ok := s.last(i)
		if !ok || r.err != nil || !r.v.Equal(w) || r.v.Kind() != w.Kind() {
			t.Errorf("%s = %v (%v), %v; want %v", devs[0].points[i].mp.Name, r.v, r.v.Kind(), r.err, w)
		}
	}
	if srv.count() != 4 {
		t.Errorf("%d requests, want 4 (one per table)", srv.count())
	}
}

// A merged read answered with exception 2 is split until the point the
// device refuses stands alone; it is reported bad, the others good, and
// later polls read the remembered split without failing again.
func TestExceptionSplitIsolatesPoint(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 10, 11, 12, 13)
	srv.setRegs(1, false, 5, 15, 16, 17) // address 4 does not exist
	var pts []string
	for a := range 8 {
		pts = append(pts, fmt.Sprintf("    - {name: r%d, table: holding, address: %d}", a, a))
	}
	devs := mustConfigure(t, "- name: dev\n  driver: modbus\n  url: "+srv.url()+"\n  poll_interval: 20ms\n  points:\n"+strings.Join(pts, "\n"))
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "three polls", func() bool { return len(s.polls) >= 3 })
	rs.stop()

	s.mu.Lock()
	for _, e := range s.polls {
		if e != nil {
			t.Errorf("poll failed: %v", e)
		}
	}
	for i := range 8 {
		r, _ := s.last(i)
		if i == 4 {
			if !isException(r.err, 2) {
				t.Errorf("r4: err = %v, want exception 2", r.err)
			}
			continue
		}
		if r.err != nil || !r.v.Equal(mappings.UintValue(uint64(10+i))) {
			t.Errorf("r%d = %v, %v", i, r.v, r.err)
		}
	}
	s.mu.Unlock()

	got := func(rs []request) string {
		var b []string
		for _, r := range rs {
			b = append(b, fmt.Sprintf("%d+%d", r.addr, r.qty))
		}
		return strings.Join(b, " ")
	}
	log := srv.requests()
	if first := got(log[:7]); first != "0+8 0+4 4+4 4+2 4+1 5+1 6+2" {
		t.Errorf("first poll: %s", first)
	}
	if second := got(log[7:11]); second != "0+4 4+1 5+1 6+2" {
		t.Errorf("second poll: %s, want the remembered split", second)
	}
}

// Other exceptions mark the block's points bad; the device still answered.
func TestExceptionMarksPointsBad(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 1, 2)
	srv.setHook(func(c *srvConn, r *request) bool {
		c.reply(r, []byte{r.fc | 0x80, 4})
		return true
	})
	devs := mustConfigure(t, "- name: dev\n  driver: modbus\n  url: "+srv.url()+"\n  poll_interval: 1h\n  points:\n    - {name: a, table: holding, address: 0}\n    - {name: b, table: holding, address: 1}")
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "one poll", func() bool { return len(s.polls) == 1 })
	rs.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polls[0] != nil {
		t.Errorf("Polled(%v), want nil: the device answered", s.polls[0])
	}
	for i := range 2 {
		if r, _ := s.last(i); !isException(r.err, 4) || !strings.Contains(r.err.Error(), "server device failure") {
			t.Errorf("point %d: %v", i, r.err)
		}
	}
}

// Several unit ids on one url share one connection and are polled in turn.
func TestUnitsShareConnection(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 111)
	srv.setRegs(2, false, 0, 222)
	devs := mustConfigure(t, fmt.Sprintf(`- {name: a, driver: modbus, url: %q, unit_id: 1, poll_interval: 10ms, points: [{name: x, table: holding, address: 0}]}
- {name: b, driver: modbus, url: %q, unit_id: 2, poll_interval: 10ms, points: [{name: x, table: holding, address: 0}]}`, srv.url(), srv.url()))
	rs := start(t, devs)
	for name, want := range map[string]uint64{"a": 111, "b": 222} {
		s := rs.sinks[name]
		s.wait(t, name+" polled 5 times", func() bool { return s.goodPolls() >= 5 })
		if v := s.lastGood(t, 0); !v.Equal(mappings.UintValue(want)) {
			t.Errorf("%s = %v, want %d", name, v, want)
		}
	}
	rs.stop()
	for _, r := range srv.requests() {
		if r.conn != 1 {
			t.Fatalf("request on connection %d: the devices did not share one", r.conn)
		}
	}
}

// A device that stops answering fails its polls and backs off; the other
// device on the same connection keeps being polled; it recovers when the
// device answers again.
func TestFailingDeviceBacksOff(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 1)
	devs := mustConfigure(t, fmt.Sprintf(`- {name: good, driver: modbus, url: %q, unit_id: 1, poll_interval: 20ms, points: [{name: x, table: holding, address: 0}]}
- {name: dead, driver: modbus, url: %q, unit_id: 2, poll_interval: 20ms, timeout: 50ms, points: [{name: x, table: holding, address: 0}]}`, srv.url(), srv.url()))
	rs := start(t, devs)
	good, dead := rs.sinks["good"], rs.sinks["dead"]
	dead.wait(t, "6 failed polls", func() bool { return dead.failedPolls() >= 6 })
	good.wait(t, "12 good polls", func() bool { return good.goodPolls() >= 12 })

	units := map[byte]int{}
	for _, r := range srv.requests() {
		units[r.unit]++
	}
	if units[2] >= units[1] {
		t.Errorf("the dead unit got %d requests, the good one %d: no backoff", units[2], units[1])
	}
	good.mu.Lock()
	if n := good.failedPolls(); n != 0 {
		t.Errorf("the good device failed %d polls", n)
	}
	good.mu.Unlock()
	dead.mu.Lock()
	if r, _ := dead.last(0); !errors.Is(r.err, ErrTimeout) {
		t.Errorf("dead point: %v, want a timeout", r.err)
	}
	dead.mu.Unlock()

	srv.setRegs(2, false, 0, 2)
	dead.wait(t, "recovery", func() bool { return len(dead.polls) > 0 && dead.polls[len(dead.polls)-1] == nil })
	if v := dead.lastGood(t, 0); !v.Equal(mappings.UintValue(2)) {
		t.Errorf("after recovery: %v", v)
	}
	rs.stop()

	// The metrics tell the story: requests, timeouts, latency, last success.
	reg := prometheus.NewRegistry()
	reg.MustRegister(Driver{}.Collectors([]adapters.Device{devs[0], devs[1]})...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, min := range map[string]float64{
		"fieldbridge_modbus_requests_total,device=good":                 12,
		"fieldbridge_modbus_requests_total,device=dead":                 7,
		"fieldbridge_modbus_errors_total,device=dead,kind=timeout":      6,
		"fieldbridge_modbus_request_duration_seconds,device=good":       12,
		"fieldbridge_modbus_last_success_timestamp_seconds,device=good": 1,
		"fieldbridge_modbus_last_success_timestamp_seconds,device=dead": 1,
		"fieldbridge_modbus_errors_total,device=good,kind=exception":    0,
		"fieldbridge_modbus_errors_total,device=good,kind=connection":   0,
	} {
		if v, ok := got[key]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v", key, v, ok, min)
		}
	}
	if v := got["fieldbridge_modbus_errors_total,device=good,kind=timeout"]; v != 0 {
		t.Errorf("the good device counted %v timeouts", v)
	}
}

// The connection is reopened after the device drops it.
func TestReconnect(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 7)
	devs := mustConfigure(t, "- {name: dev, driver: modbus, url: "+srv.url()+", poll_interval: 10ms, points: [{name: x, table: holding, address: 0}]}")
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "a good poll", func() bool { return s.goodPolls() >= 1 })
	srv.dropConns()
	s.mu.Lock()
	polls := len(s.polls)
	s.mu.Unlock()
	s.wait(t, "good polls on a new connection", func() bool {
		onNew := false
		for _, r := range srv.requests() {
			onNew = onNew || r.conn > 1
		}
		return onNew && len(s.polls) > polls+2 && s.polls[len(s.polls)-1] == nil
	})
}

// Cancelling the context stops a read that would otherwise wait an hour.
func TestCancelStopsStuckRead(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	got := make(chan struct{})
	var once sync.Once
	srv.setHook(func(*srvConn, *request) bool {
		once.Do(func() { close(got) })
		return true // never answer
	})
	devs := mustConfigure(t, "- {name: dev, driver: modbus, url: "+srv.url()+", timeout: 1h, points: [{name: x, table: holding, address: 0}]}")
	rs := start(t, devs)
	<-got
	rs.stop() // returns only once Run did
	s := rs.sinks["dev"]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.polls)+len(s.reports) != 0 {
		t.Errorf("a cancelled poll reported %v %v; shutting down is not a failure", s.polls, s.reports)
	}
}

// Devices on one serial port must agree on its settings: the first one
// wins and the others fail every poll with an explanation.
func TestSerialSettingsConflict(t *testing.T) {
	noLeak(t)
	devs := mustConfigure(t, `- {name: a, driver: modbus, url: "rtu:///dev/fieldbridge-no-such-port", unit_id: 1, points: [{name: x, table: input, address: 0}]}
- {name: b, driver: modbus, url: "rtu:///dev/fieldbridge-no-such-port", unit_id: 2, serial: {baud: 19200}, points: [{name: x, table: input, address: 0}]}`)
	rs := start(t, devs)
	a, b := rs.sinks["a"], rs.sinks["b"]
	b.wait(t, "a failed poll of b", func() bool { return len(b.polls) > 0 })
	a.wait(t, "a failed poll of a", func() bool { return len(a.polls) > 0 })
	rs.stop()
	if err := b.polls[0]; err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("b: %v", err)
	}
	if err := a.polls[0]; !errors.Is(err, ErrConnection) {
		t.Errorf("a: %v, want a connection error", err)
	}
}

// A point with a longer poll_interval is read only at its ticks, merged
// with the others then.
func TestPointSchedules(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 0, 1, 2)
	devs := mustConfigure(t, "- name: dev\n  driver: modbus\n  url: "+srv.url()+"\n  poll_interval: 10ms\n  points:\n    - {name: fast, table: holding, address: 0}\n    - {name: slow, table: holding, address: 1, poll_interval: 40ms}")
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "12 polls", func() bool { return len(s.polls) >= 12 })
	rs.stop()
	merged, alone := 0, 0
	for _, r := range srv.requests() {
		switch {
		case r.addr == 0 && r.qty == 2:
			merged++
		case r.addr == 0 && r.qty == 1:
			alone++
		default:
			t.Errorf("request %d+%d", r.addr, r.qty)
		}
	}
	// How many of each depends on how punctual the ticks were; both kinds
	// must occur, and the first poll reads everything.
	if log := srv.requests(); log[0].qty != 2 || merged == 0 || alone == 0 {
		t.Errorf("%d merged reads, %d of the fast point alone; want the first merged, and both kinds", merged, alone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[int]int{}
	for _, r := range s.reports {
		n[r.i]++
	}
	if n[1] != merged || n[0] != merged+alone {
		t.Errorf("reports %v for %d merged and %d single reads", n, merged, alone)
	}
}
