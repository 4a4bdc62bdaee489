package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/mappings"
)

// misbehaviour is what a hostile peer does to the requests it picks.
type misbehaviour struct {
	name string
	rtu  bool // RTU over TCP rather than Modbus TCP
	// times is how many requests it misbehaves on before answering well.
	times int
	act   func(c *srvConn, r *request, good []byte, h *hostile)
	// errs says whether the fault must surface as a failed read.
	errs bool
}

// timeout is the device's timeout in a hostile case: short where the case
// waits for it, long where a timeout would be a failure of the test, so that
// a slow machine cannot fake one.
func (m misbehaviour) timeout() time.Duration {
	if m.errs {
		return 200 * time.Millisecond
	}
	return 5 * time.Second
}

// hostile is the state a misbehaving server keeps between requests.
type hostile struct {
	mu    sync.Mutex
	stale []byte   // a reply held back until after the client's timeout
	old   *srvConn // the connection it belongs to
}

// TestHostilePeers runs the driver against servers that break the
// protocol in the ways field devices and gateways do. For each: no panic,
// no goroutine left behind, the fault reported as a bad read when it
// loses the reply, and good readings again once the peer behaves.
func TestHostilePeers(t *testing.T) {
	const value = 42
	bad := func(r *request) []byte { return []byte{r.fc, 2, 0x03, 0xe7} } // 999, never to be reported
	cases := []misbehaviour{
		{name: "wrong transaction id, then the reply", times: 1, act: func(c *srvConn, r *request, good []byte, _ *hostile) {
			w := *r
			w.tid += 100
			_, _ = c.c.Write(c.frame(&w, bad(r)))
			_, _ = c.c.Write(c.frame(r, good))
		}},
		{name: "only wrong transaction ids", times: 2, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			for k := range 3 {
				w := *r
				w.tid += uint16(k + 1)
				_, _ = c.c.Write(c.frame(&w, bad(r)))
			}
		}},
		{name: "short frame", times: 1, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			f := c.frame(r, bad(r))
			_, _ = c.c.Write(f[:len(f)-2])
		}},
		{name: "short frame, then close", times: 2, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			f := c.frame(r, bad(r))
			_, _ = c.c.Write(f[:5])
			_ = c.c.Close()
		}},
		{name: "invalid MBAP header", times: 1, errs: true, act: func(c *srvConn, _ *request, _ []byte, _ *hostile) {
			_, _ = c.c.Write([]byte{0, 1, 0xde, 0xad, 0xff, 0xff, 1, 3, 2, 0, 0})
		}},
		{name: "reply from another unit", times: 1, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			w := *r
			w.unit = 9
			_, _ = c.c.Write(c.frame(&w, bad(r)))
		}},
		{name: "wrong byte count", times: 1, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			_, _ = c.c.Write(c.frame(r, []byte{r.fc, 4, 0, 1, 0, 2}))
		}},
		{name: "duplicate reply with another value", times: 1, act: func(c *srvConn, r *request, good []byte, _ *hostile) {
			_, _ = c.c.Write(append(c.frame(r, good), c.frame(r, bad(r))...))
		}},
		{name: "exception reply", times: 2, errs: true, act: func(c *srvConn, r *request, _ []byte, _ *hostile) {
			c.reply(r, []byte{r.fc | 0x80, 6})
		}},
		{name: "reply after the timeout", times: 1, errs: true, act: func(c *srvConn, r *request, _ []byte, h *hostile) {
			h.mu.Lock()
			h.stale, h.old = c.frame(r, bad(r)), c
			h.mu.Unlock()
		}},
		{name: "closes the socket", times: 2, errs: true, act: func(c *srvConn, _ *request, _ []byte, _ *hostile) {
			_ = c.c.Close()
		}},
		{name: "garbage", times: 1, errs: true, act: func(c *srvConn, _ *request, _ []byte, _ *hostile) {
			_, _ = c.c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		}},
	}
	for _, rtu := range []bool{false, true} {
		for _, m := range cases {
			if rtu && m.name == "invalid MBAP header" {
				continue
			}
			m.rtu = rtu
			kind := "tcp"
			if rtu {
				kind = "rtu+tcp"
				if m.name == "wrong transaction id, then the reply" || m.name == "only wrong transaction ids" {
					continue // RTU frames carry no transaction id
				}
			}
			t.Run(kind+"/"+m.name, func(t *testing.T) { runHostile(t, m, value) })
		}
	}
	t.Run("rtu+tcp/bad CRC", func(t *testing.T) {
		runHostile(t, misbehaviour{name: "bad CRC", rtu: true, times: 2, errs: true,
			act: func(c *srvConn, r *request, good []byte, _ *hostile) {
				f := c.frame(r, good)
				f[len(f)-1] ^= 0x55
				_, _ = c.c.Write(f)
			}}, value)
	})
}

func runHostile(t *testing.T, m misbehaviour, value uint16) {
	noLeak(t)
	srv := newFakeServer(t, m.rtu)
	srv.setRegs(1, false, 0, value)
	h := &hostile{}
	var mu sync.Mutex
	seen := 0
	srv.setHook(func(c *srvConn, r *request) bool {
		mu.Lock()
		seen++
		n := seen
		mu.Unlock()
		h.mu.Lock()
		stale, old := h.stale, h.old
		h.stale = nil
		h.mu.Unlock()
		if stale != nil {
			// The late reply to an earlier request arrives just before
			// this one's, on the connection the earlier one came on.
			_, _ = old.c.Write(stale)
		}
		if n > m.times {
			return false
		}
		m.act(c, r, srv.answer(r), h)
		return true
	})
	devs := mustConfigure(t, fmt.Sprintf("- {name: dev, driver: modbus, url: %q, timeout: %s, poll_interval: 10ms, points: [{name: x, table: holding, address: 0}]}", srv.url(), m.timeout()))
	rs := start(t, devs)
	s := rs.sinks["dev"]
	s.wait(t, "a good reading after the fault", func() bool {
		r, ok := s.last(0)
		return ok && r.err == nil && len(srv.requests()) > m.times
	})
	rs.stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	failed := false
	for _, r := range s.reports {
		if r.err == nil && !r.v.Equal(mappings.UintValue(uint64(value))) {
			t.Errorf("reported %v, which the peer sent only in a broken or late reply", r.v)
		}
		if r.err != nil {
			failed = true
			var ex *Exception
			if !errors.As(r.err, &ex) && !errors.Is(r.err, ErrTimeout) && !errors.Is(r.err, ErrFrame) && !errors.Is(r.err, ErrConnection) {
				t.Errorf("unclassified error %v", r.err)
			}
		}
	}
	if failed != m.errs {
		t.Errorf("a failed read reported: %v, want %v (reports %v)", failed, m.errs, s.reports)
	}
}

// crcOf appends the RTU CRC to a frame, for hand-made frames.
func crcOf(f []byte) []byte {
	crc := crc16(f)
	return binary.LittleEndian.AppendUint16(f, crc)
}
