package modbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
)

const writeDevice = `- name: dev
  driver: modbus
  url: %s
  poll_interval: 1h
  points:
    - {name: pump, table: coil, address: 3, writable: true}
    - {name: setpoint, table: holding, address: 20, type: int16, scale: 0.1, writable: true, write_range: [0, 90]}
    - {name: limit, table: holding, address: 30, type: float32, order: CDAB, writable: true}
    - {name: enable, table: holding, address: 40, type: bool, bit: 3, writable: true}
    - {name: missing, table: holding, address: 50, writable: true}
    - {name: status, table: holding, address: 41}`

// Commands are written with FC5, FC6, FC16 and FC22 (never a
// read-modify-write of a bit), read back, reported, and answered once.
func TestCommandsWriteAndReadBack(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.unit(1)
	srv.mu.Lock()
	srv.units[1].co[3] = false
	srv.mu.Unlock()
	srv.setRegs(1, false, 20, 0)
	srv.setRegs(1, false, 30, 0, 0)
	srv.setRegs(1, false, 40, 0x00f0, 0x1234)
	devs := mustConfigure(t, fmt.Sprintf(writeDevice, srv.url()))
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "the first poll", func() bool { return len(s.polls) == 1 })

	for _, tc := range []struct {
		point int
		raw   mappings.Value
		fc    byte
		check func(m *model) bool
	}{
		{0, mappings.BoolValue(true), 5, func(m *model) bool { return m.co[3] }},
		{1, mappings.IntValue(-215), 6, func(m *model) bool { return m.hr[20] == 0xff29 }},
		{2, mappings.Float32Value(1.5), 16, func(m *model) bool { return m.hr[30] == 0x0000 && m.hr[31] == 0x3fc0 }},
		{3, mappings.BoolValue(true), 22, func(m *model) bool { return m.hr[40] == 0x00f8 && m.hr[41] == 0x1234 }},
		{3, mappings.BoolValue(false), 22, func(m *model) bool { return m.hr[40] == 0x00f0 }},
		{0, mappings.BoolValue(false), 5, func(m *model) bool { return !m.co[3] }},
	} {
		n := len(srv.requests())
		if err := rs.command(t, "dev", tc.point, tc.raw); err != nil {
			t.Fatalf("write %v to point %d: %v", tc.raw, tc.point, err)
		}
		log := srv.requests()[n:]
		if len(log) != 2 || log[0].fc != tc.fc || log[1].fc > 4 {
			t.Errorf("point %d: requests %+v, want FC%d then a read back", tc.point, log, tc.fc)
		}
		srv.mu.Lock()
		ok := tc.check(srv.units[1])
		srv.mu.Unlock()
		if !ok {
			t.Errorf("point %d: the device does not hold %v", tc.point, tc.raw)
		}
		s.mu.Lock()
		r, _ := s.last(tc.point)
		s.mu.Unlock()
		if r.err != nil || !r.v.Equal(tc.raw) {
			t.Errorf("point %d: read back %v, %v; want %v", tc.point, r.v, r.err, tc.raw)
		}
	}

	// A refused write is answered with the exception and not read back.
	n := len(srv.requests())
	err := rs.command(t, "dev", 4, mappings.UintValue(1))
	var ex *Exception
	if !errors.As(err, &ex) || ex.Code != 2 || !strings.Contains(err.Error(), "holding register 50") {
		t.Errorf("write to a missing register: %v", err)
	}
	if got := len(srv.requests()) - n; got != 1 {
		t.Errorf("%d requests for a refused write, want 1", got)
	}
	// Points that cannot be written are refused without a request.
	for _, p := range []int{5, -1, 99} {
		if err := rs.command(t, "dev", p, mappings.UintValue(1)); err == nil {
			t.Errorf("write to point %d accepted", p)
		}
	}
	// A value of the wrong kind is refused before anything is sent.
	if err := rs.command(t, "dev", 0, mappings.UintValue(1)); err == nil {
		t.Error("a number written to a coil")
	}
	if got := len(srv.requests()) - n; got != 1 {
		t.Errorf("refused commands sent %d requests", got-1)
	}
}

// Commands for a device are applied in the order they arrived.
func TestCommandsInArrivalOrder(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 20, 0)
	srv.unit(1).co[3] = false
	devs := mustConfigure(t, fmt.Sprintf(writeDevice, srv.url()))
	rs := start(t, devs)
	results := make(chan error, 10)
	go func() {
		for v := range int64(10) {
			rs.cmds["dev"] <- adapters.Command{Point: 1, Raw: mappings.IntValue(v), Sender: "s", Topic: "t",
				Done: func(err error) { results <- err }}
		}
	}()
	for range 10 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	var got []uint16
	for _, r := range srv.requests() {
		if r.fc == 6 {
			got = append(got, r.qty)
		}
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("writes arrived as %v", got)
	}
}

// A device that refuses FC5 and FC6 with exception 1 is written with FC15
// and FC16 instead, from then on directly.
func TestWriteFallsBackToMultiple(t *testing.T) {
	noLeak(t)
	srv := newFakeServer(t, false)
	srv.setRegs(1, false, 20, 0)
	srv.unit(1).co[3] = false
	srv.setHook(func(c *srvConn, r *request) bool {
		if r.fc == 5 || r.fc == 6 {
			c.reply(r, []byte{r.fc | 0x80, 1})
			return true
		}
		return false
	})
	devs := mustConfigure(t, fmt.Sprintf(writeDevice, srv.url()))
	rs := start(t, devs)
	for range 2 {
		if err := rs.command(t, "dev", 1, mappings.IntValue(5)); err != nil {
			t.Fatal(err)
		}
		if err := rs.command(t, "dev", 0, mappings.BoolValue(true)); err != nil {
			t.Fatal(err)
		}
	}
	var fcs []byte
	for _, r := range srv.requests() {
		if r.fc > 4 {
			fcs = append(fcs, r.fc)
		}
	}
	if fmt.Sprint(fcs) != "[6 16 5 15 16 15]" {
		t.Errorf("write functions %v", fcs)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.units[1].hr[20] != 5 || !srv.units[1].co[3] {
		t.Error("the fallback writes did not land")
	}
}
