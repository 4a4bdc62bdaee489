package modbus

import (
	"encoding/binary"
	"errors"
	"io"
	"log"
	"math"
	"net"
	"sync"
	"testing"

	simon "github.com/simonvetter/modbus"
)

// request is one request as a test server parsed it.
type request struct {
	conn      int // which accepted connection, from 1
	tid       uint16
	unit, fc  byte
	addr, qty uint16
	pdu       []byte // function code and data
}

// model is the data of one unit: an address that is not in a map does not
// exist, and reading it answers exception 2.
type model struct {
	hr, ir map[uint16]uint16
	co, di map[uint16]bool
}

func newModel() *model {
	return &model{hr: map[uint16]uint16{}, ir: map[uint16]uint16{}, co: map[uint16]bool{}, di: map[uint16]bool{}}
}

// fakeServer is a Modbus server written for the tests: Modbus TCP, or RTU
// frames over TCP, with a data model and a hook that can misbehave.
type fakeServer struct {
	t   *testing.T
	ln  net.Listener
	rtu bool

	mu    sync.Mutex
	units map[byte]*model
	log   []request
	conns []net.Conn
	// hook, when set, sees each request first; it returns true when it
	// took care of the request (answered, dropped or broke the link).
	hook func(c *srvConn, r *request) bool
	wg   sync.WaitGroup
}

// srvConn is one accepted connection of a fakeServer.
type srvConn struct {
	s  *fakeServer
	c  net.Conn
	id int
}

func newFakeServer(t *testing.T, rtu bool) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, rtu: rtu, units: map[byte]*model{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) url() string {
	if s.rtu {
		return "rtu+tcp://" + s.addr()
	}
	return "tcp://" + s.addr()
}

func (s *fakeServer) close() {
	_ = s.ln.Close()
	s.dropConns()
	s.wg.Wait()
}

// dropConns closes every open connection, as a rebooting device does.
func (s *fakeServer) dropConns() {
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
}

func (s *fakeServer) unit(u byte) *model {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.units[u]
	if m == nil {
		m = newModel()
		s.units[u] = m
	}
	return m
}

// setRegs stores holding (or input, with in) registers from addr.
func (s *fakeServer) setRegs(u byte, in bool, addr uint16, vals ...uint16) {
	m := s.unit(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range vals {
		if in {
			m.ir[addr+uint16(i)] = v
		} else {
			m.hr[addr+uint16(i)] = v
		}
	}
}

func (s *fakeServer) setHook(h func(c *srvConn, r *request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// requests returns a copy of the request log.
func (s *fakeServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.log...)
}

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for id := 1; ; id++ {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(&srvConn{s: s, c: c, id: id})
		}()
	}
}

func (s *fakeServer) serve(c *srvConn) {
	for {
		r, err := c.read()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.log = append(s.log, *r)
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(c, r) {
			continue
		}
		c.reply(r, s.answer(r))
	}
}

func (c *srvConn) read() (*request, error) {
	r := &request{conn: c.id}
	if c.s.rtu {
		var h [2]byte
		if _, err := io.ReadFull(c.c, h[:]); err != nil {
			return nil, err
		}
		r.unit, r.fc = h[0], h[1]
		n := 4 // address and quantity, or address and value
		switch r.fc {
		case 15, 16:
			var rest [5]byte
			if _, err := io.ReadFull(c.c, rest[:]); err != nil {
				return nil, err
			}
			body := make([]byte, int(rest[4])+2)
			if _, err := io.ReadFull(c.c, body); err != nil {
				return nil, err
			}
			r.pdu = append(append([]byte{r.fc}, rest[:]...), body[:len(body)-2]...)
			r.addr, r.qty = binary.BigEndian.Uint16(rest[:]), binary.BigEndian.Uint16(rest[2:])
			return r, nil
		case 22:
			n = 6
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(c.c, body); err != nil {
			return nil, err
		}
		frame := append(append([]byte{}, h[:]...), body...)
		if crc := crc16(frame[:len(frame)-2]); frame[len(frame)-2] != byte(crc) || frame[len(frame)-1] != byte(crc>>8) {
			return nil, errors.New("bad request CRC")
		}
		r.pdu = frame[1 : len(frame)-2]
	} else {
		var h [7]byte
		if _, err := io.ReadFull(c.c, h[:]); err != nil {
			return nil, err
		}
		r.tid, r.unit = binary.BigEndian.Uint16(h[:]), h[6]
		n := int(binary.BigEndian.Uint16(h[4:])) - 1
		if n < 1 || n > 253 {
			return nil, errors.New("bad MBAP length")
		}
		r.pdu = make([]byte, n)
		if _, err := io.ReadFull(c.c, r.pdu); err != nil {
			return nil, err
		}
		r.fc = r.pdu[0]
	}
	if len(r.pdu) >= 5 {
		r.addr, r.qty = binary.BigEndian.Uint16(r.pdu[1:]), binary.BigEndian.Uint16(r.pdu[3:])
	}
	return r, nil
}

// frame wraps a reply PDU for request r in the connection's framing.
func (c *srvConn) frame(r *request, pdu []byte) []byte {
	if c.s.rtu {
		f := append([]byte{r.unit}, pdu...)
		crc := crc16(f)
		return append(f, byte(crc), byte(crc>>8))
	}
	f := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(f, r.tid)
	binary.BigEndian.PutUint16(f[4:], uint16(len(pdu)+1))
	f[6] = r.unit
	return append(f, pdu...)
}

func (c *srvConn) reply(r *request, pdu []byte) {
	if pdu == nil {
		return // no such unit: stay silent, as a gateway without the device does
	}
	_, _ = c.c.Write(c.frame(r, pdu))
}

// answer computes the reply PDU to r from the model; nil for an unknown unit.
func (s *fakeServer) answer(r *request) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.units[r.unit]
	if m == nil {
		return nil
	}
	exc := func(code byte) []byte { return []byte{r.fc | 0x80, code} }
	switch r.fc {
	case 1, 2:
		bits := m.co
		if r.fc == 2 {
			bits = m.di
		}
		out := []byte{r.fc, byte((r.qty + 7) / 8)}
		out = append(out, make([]byte, (r.qty+7)/8)...)
		for i := range r.qty {
			v, ok := bits[r.addr+i]
			if !ok {
				return exc(2)
			}
			if v {
				out[2+i/8] |= 1 << (i % 8)
			}
		}
		return out
	case 3, 4:
		regs := m.hr
		if r.fc == 4 {
			regs = m.ir
		}
		out := []byte{r.fc, byte(2 * r.qty)}
		for i := range r.qty {
			v, ok := regs[r.addr+i]
			if !ok {
				return exc(2)
			}
			out = binary.BigEndian.AppendUint16(out, v)
		}
		return out
	case 5:
		if _, ok := m.co[r.addr]; !ok {
			return exc(2)
		}
		m.co[r.addr] = r.qty == 0xff00
		return r.pdu[:5]
	case 6:
		if _, ok := m.hr[r.addr]; !ok {
			return exc(2)
		}
		m.hr[r.addr] = r.qty
		return r.pdu[:5]
	case 15:
		for i := range r.qty {
			if _, ok := m.co[r.addr+i]; !ok {
				return exc(2)
			}
			m.co[r.addr+i] = r.pdu[6+i/8]>>(i%8)&1 == 1
		}
		return r.pdu[:5]
	case 16:
		for i := range r.qty {
			if _, ok := m.hr[r.addr+i]; !ok {
				return exc(2)
			}
			m.hr[r.addr+i] = binary.BigEndian.Uint16(r.pdu[6+2*i:])
		}
		return r.pdu[:5]
	case 22:
		v, ok := m.hr[r.addr]
		if !ok {
			return exc(2)
		}
		and, or := binary.BigEndian.Uint16(r.pdu[3:]), binary.BigEndian.Uint16(r.pdu[5:])
		m.hr[r.addr] = v&and | or&^and
		return r.pdu[:7]
	}
	return exc(1)
}

// simServer is the in-process github.com/simonvetter/modbus server: a
// third-party Modbus TCP implementation for the integration tests.
type simServer struct {
	mu       sync.Mutex
	hr, ir   map[uint16]uint16
	co, di   map[uint16]bool
	requests int
	srv      *simon.ModbusServer
	addr     string
}

// newSimServer starts it on a free loopback port. The library cannot
// listen on port 0 and report the port, so a free port is taken from the
// kernel first and retried if another process grabbed it meanwhile.
func newSimServer(t testing.TB) *simServer {
	t.Helper()
	s := &simServer{hr: map[uint16]uint16{}, ir: map[uint16]uint16{}, co: map[uint16]bool{}, di: map[uint16]bool{}}
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		srv, err := simon.NewServer(&simon.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 20,
			Logger: log.New(io.Discard, "", 0)}, s)
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = srv.Start(); lastErr == nil {
			s.srv, s.addr = srv, addr
			t.Cleanup(func() { _ = srv.Stop() })
			return s
		}
	}
	t.Fatalf("cannot start the in-process Modbus server: %v", lastErr)
	return nil
}

func (s *simServer) url() string { return "tcp://" + s.addr }

func (s *simServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *simServer) setRegs(in bool, addr uint16, vals ...uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range vals {
		if in {
			s.ir[addr+uint16(i)] = v
		} else {
			s.hr[addr+uint16(i)] = v
		}
	}
}

func (s *simServer) HandleCoils(req *simon.CoilsRequest) ([]bool, error) {
	return s.bits(s.co, req.Addr, req.Quantity, req.IsWrite, req.Args)
}

func (s *simServer) HandleDiscreteInputs(req *simon.DiscreteInputsRequest) ([]bool, error) {
	return s.bits(s.di, req.Addr, req.Quantity, false, nil)
}

func (s *simServer) HandleHoldingRegisters(req *simon.HoldingRegistersRequest) ([]uint16, error) {
	return s.regs(s.hr, req.Addr, req.Quantity, req.IsWrite, req.Args)
}

func (s *simServer) HandleInputRegisters(req *simon.InputRegistersRequest) ([]uint16, error) {
	return s.regs(s.ir, req.Addr, req.Quantity, false, nil)
}

func (s *simServer) bits(m map[uint16]bool, addr, qty uint16, write bool, args []bool) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	out := make([]bool, qty)
	for i := range qty {
		v, ok := m[addr+i]
		if !ok {
			return nil, simon.ErrIllegalDataAddress
		}
		out[i] = v
	}
	if write {
		for i, v := range args {
			m[addr+uint16(i)] = v
		}
	}
	return out, nil
}

func (s *simServer) regs(m map[uint16]uint16, addr, qty uint16, write bool, args []uint16) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	out := make([]uint16, qty)
	for i := range qty {
		v, ok := m[addr+i]
		if !ok {
			return nil, simon.ErrIllegalDataAddress
		}
		out[i] = v
	}
	if write {
		for i, v := range args {
			m[addr+uint16(i)] = v
		}
	}
	return out, nil
}

// regsOf returns float32 v as two registers, high word first (ABCD).
func regsOf(v float32) []uint16 {
	b := binary.BigEndian.AppendUint32(nil, math.Float32bits(v))
	return []uint16{binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])}
}
