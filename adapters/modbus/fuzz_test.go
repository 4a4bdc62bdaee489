package modbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/mappings"
	gridx "github.com/grid-x/modbus"
)

// replay is a transport whose peer sends fixed bytes, whatever it is asked.
type replay struct {
	data []byte
	rtu  bool
	buf  [mbapMax]byte
}

func (r *replay) Send(_ context.Context, adu []byte) ([]byte, error) {
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(r.data), io.Discard}
	if r.rtu {
		resp, err := exchangeRTU(rw, adu, r.buf[:])
		return resp, ioError(err)
	}
	resp, _, err := exchangeMBAP(rw, adu, r.buf[:])
	if err != nil {
		return nil, ioError(err)
	}
	return resp, nil
}

func (r *replay) connect(context.Context) error { return nil }
func (r *replay) connected() bool               { return true }
func (r *replay) close()                        {}
func (r *replay) setTimeout(time.Duration)      {}

// fuzzPoints span 10 registers of each register table and 10 bits of
// each bit table, in every shape decodePoint handles.
var fuzzPoints = func() []point {
	var pts []point
	for _, t := range []table{holding, input} {
		pts = append(pts,
			point{mp: mappings.Point{Type: mappings.Float32, Order: mappings.CDAB}, table: t, addr: 0, n: 2},
			point{mp: mappings.Point{Type: mappings.Int16, Order: mappings.BA}, table: t, addr: 2, n: 1},
			point{mp: mappings.Point{Type: mappings.Bool, Bit: 15}, table: t, addr: 3, n: 1},
			point{mp: mappings.Point{Type: mappings.String, Order: mappings.AB, Length: 2}, table: t, addr: 4, n: 2},
			point{mp: mappings.Point{Type: mappings.Uint64, Order: mappings.HGFEDCBA}, table: t, addr: 6, n: 4},
		)
	}
	for _, t := range []table{coil, discrete} {
		for a := range uint16(10) {
			pts = append(pts, point{mp: mappings.Point{Type: mappings.Bool}, table: t, addr: a, n: 1})
		}
	}
	return pts
}()

// fuzzReply feeds reply to a read of table which%4 and decodes every
// point of it: it must never panic, and a read that succeeds must hold
// exactly the data asked for.
func fuzzReply(t *testing.T, rtu bool, which byte, reply []byte) {
	tb := table(which%4) + 1
	tr := &replay{data: reply, rtu: rtu}
	l := &link{tr: tr}
	if rtu {
		l.pk = gridx.NewRTUClientHandler("")
	} else {
		l.pk = gridx.NewTCPClientHandler("")
	}
	l.client = gridx.NewClient2(l.pk, tr)
	b := block{table: tb, start: 0, count: 10}
	for i, p := range fuzzPoints {
		if p.table == tb {
			b.points = append(b.points, i)
		}
	}
	data, err := l.read(context.Background(), 1, time.Second, &b)
	if err != nil {
		return
	}
	want := 20
	if tb.bits() {
		want = 2
	}
	if len(data) != want {
		t.Fatalf("%s read returned %d bytes, want %d", tb, len(data), want)
	}
	var words [MaxRegistersPerRead]uint16
	for _, i := range b.points {
		if _, err := decodePoint(&fuzzPoints[i], &b, data, words[:]); err != nil {
			t.Fatalf("decode of a complete reply: %v", err)
		}
	}
}

// mbapReply frames a PDU as the reply to the first request of a new
// client (transaction id 1, unit 1).
func mbapReply(pdu ...byte) []byte {
	f := []byte{0, 1, 0, 0, 0, 0, 1}
	binary.BigEndian.PutUint16(f[4:], uint16(len(pdu)+1))
	return append(f, pdu...)
}

func regReply(fc byte) []byte {
	return append([]byte{fc, 20}, bytes.Repeat([]byte{0x41, 0x42}, 10)...)
}

// FuzzMBAPReply fuzzes the Modbus TCP reply path: framing, grid-x's PDU
// checks and point decoding.
func FuzzMBAPReply(f *testing.F) {
	f.Add(byte(0), mbapReply(regReply(3)...))
	f.Add(byte(1), mbapReply(regReply(4)...))
	f.Add(byte(2), mbapReply(1, 2, 0xff, 0x03))
	f.Add(byte(3), mbapReply(2, 2, 0x00, 0x01))
	f.Add(byte(0), mbapReply(0x83, 2))
	f.Add(byte(0), append(mbapReply(regReply(3)...)[:9], 0, 0))
	f.Add(byte(0), []byte{0, 2, 0, 0, 0, 3, 1, 0x83, 2, 0, 1, 0, 0, 0, 3, 1, 0x83, 4})
	f.Fuzz(func(t *testing.T, which byte, reply []byte) { fuzzReply(t, false, which, reply) })
}

// FuzzRTUReply fuzzes the RTU reply path: framing, CRC, grid-x's PDU
// checks and point decoding.
func FuzzRTUReply(f *testing.F) {
	f.Add(byte(0), crcOf(append([]byte{1}, regReply(3)...)))
	f.Add(byte(1), crcOf(append([]byte{1}, regReply(4)...)))
	f.Add(byte(2), crcOf([]byte{1, 1, 2, 0xff, 0x03}))
	f.Add(byte(3), crcOf([]byte{1, 2, 2, 0x00, 0x01}))
	f.Add(byte(0), crcOf([]byte{1, 0x83, 2}))
	f.Add(byte(0), []byte{1, 3, 20, 0, 0})
	f.Add(byte(2), crcOf([]byte{1, 1, 0}))
	f.Fuzz(func(t *testing.T, which byte, reply []byte) {
		if which >= 128 && len(reply) >= 4 {
			// Half the inputs get a valid CRC, so that the fuzzer explores
			// what lies behind the CRC check rather than the check.
			reply = crcOf(bytes.Clone(reply[:len(reply)-2]))
		}
		fuzzReply(t, true, which, reply)
	})
}

// The seeds decode as intended, so the fuzzers start from valid replies.
func TestFuzzSeedsDecode(t *testing.T) {
	for _, rtu := range []bool{false, true} {
		var reply []byte
		if rtu {
			reply = crcOf(append([]byte{1}, regReply(3)...))
		} else {
			reply = mbapReply(regReply(3)...)
		}
		tr := &replay{data: reply, rtu: rtu}
		l := &link{tr: tr, pk: gridx.NewTCPClientHandler("")}
		if rtu {
			l.pk = gridx.NewRTUClientHandler("")
		}
		l.client = gridx.NewClient2(l.pk, tr)
		b := block{table: holding, start: 0, count: 10, points: []int{3}}
		data, err := l.read(context.Background(), 1, time.Second, &b)
		if err != nil {
			t.Fatalf("rtu=%v: %v", rtu, err)
		}
		var words [MaxRegistersPerRead]uint16
		if v, err := decodePoint(&fuzzPoints[3], &b, data, words[:]); err != nil || v.String() != "ABAB" {
			t.Errorf("rtu=%v: %v, %v", rtu, v, err)
		}
	}
}
