package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"go.bug.st/serial"
)

// transport carries the ADUs that grid-x's client builds and owns the
// connection. It is used by one goroutine; only a context's AfterFunc
// touches the connection from another one, to stop a stuck read.
type transport interface {
	// Send is gridx.Transporter: one request, one reply.
	Send(ctx context.Context, adu []byte) ([]byte, error)
	connect(ctx context.Context) error
	connected() bool
	close()
	setTimeout(d time.Duration)
}

const (
	mbapHeader = 7   // transaction, protocol, length, unit
	mbapMax    = 260 // the largest Modbus TCP ADU
	rtuMax     = 256 // the largest RTU ADU
	// maxStale bounds the replies to earlier requests skipped while waiting
	// for the current one, so that a peer answering only with wrong
	// transaction ids cannot keep a request alive past its deadline.
	maxStale = 16
	// keepAfterTimeouts is how many requests in a row may time out on a
	// Modbus TCP connection before it is reopened: one slow unit behind a
	// gateway should not reset the others' connection, a dead link should.
	keepAfterTimeouts = 3
)

// longAgo is a deadline in the past: setting it makes a blocked read on a
// net.Conn return at once.
var longAgo = time.Unix(1, 0)

// ioError classifies an error of a read or write on a connection.
func ioError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrFrame), errors.Is(err, ErrTimeout), errors.Is(err, ErrConnection):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: closed by the device", ErrConnection)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %v", ErrConnection, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return fmt.Errorf("%w: %v", ErrConnection, err)
}

// tcpTransport speaks Modbus TCP (MBAP framing) or, with rtu set, RTU frames
// through a TCP serial server.
type tcpTransport struct {
	addr     string
	rtu      bool
	conn     net.Conn
	timeout  time.Duration
	timeouts int // requests in a row that timed out on this connection
	buf      [mbapMax]byte
}

func (t *tcpTransport) setTimeout(d time.Duration) { t.timeout = d }
func (t *tcpTransport) connected() bool            { return t.conn != nil }

func (t *tcpTransport) connect(ctx context.Context) error {
	if t.conn != nil {
		return nil
	}
	d := net.Dialer{Timeout: t.timeout}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConnection, err)
	}
	t.conn, t.timeouts = c, 0
	return nil
}

func (t *tcpTransport) close() {
	if t.conn != nil {
		_ = t.conn.Close()
		t.conn = nil
	}
}

// Send implements gridx.Transporter. The reply aliases the transport's
// buffer: it is valid until the next Send.
func (t *tcpTransport) Send(ctx context.Context, adu []byte) ([]byte, error) {
	c := t.conn
	if c == nil {
		return nil, fmt.Errorf("%w: not connected", ErrConnection)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.rtu {
		// RTU carries no transaction id: drop whatever arrived since the
		// last reply (a late answer) so it cannot pass for this one.
		drain(c, t.buf[:])
	}
	if err := c.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		t.close()
		return nil, ioError(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(longAgo) })
	var (
		resp   []byte
		inSync bool
		err    error
	)
	if t.rtu {
		resp, err = exchangeRTU(c, adu, t.buf[:])
	} else {
		resp, inSync, err = exchangeMBAP(c, adu, t.buf[:])
	}
	if !stop() {
		t.close()
		return nil, ctx.Err()
	}
	if err == nil {
		t.timeouts = 0
		return resp, nil
	}
	err = ioError(err)
	if errors.Is(err, ErrTimeout) {
		t.timeouts++
	}
	// A Modbus TCP stream stays usable after a clean timeout: a late reply
	// is recognised by its transaction id and skipped. Anything else, and
	// any error on RTU over TCP (no transaction id), reopens it.
	if t.rtu || !inSync || t.timeouts >= keepAfterTimeouts {
		t.close()
	}
	return nil, err
}

// drain discards bytes already received on c without waiting for more. A
// read through net.Conn with a past deadline fails before it looks at the
// socket, so the socket is read directly; it is non-blocking, and an empty
// one answers EAGAIN at once.
func drain(c net.Conn, buf []byte) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for range 64 {
		n := 0
		err := rc.Read(func(fd uintptr) bool {
			n = readNow(fd, buf)
			return true // never wait for more
		})
		if err != nil || n <= 0 {
			return
		}
	}
}

// exchangeMBAP writes a Modbus TCP request and reads its reply into buf,
// skipping replies to earlier requests. inSync reports whether the stream
// is still at a frame boundary after an error.
func exchangeMBAP(rw io.ReadWriter, adu, buf []byte) (resp []byte, inSync bool, err error) {
	if len(adu) < mbapHeader+1 {
		return nil, true, fmt.Errorf("%w: request too short", ErrFrame)
	}
	if _, err := rw.Write(adu); err != nil {
		return nil, false, err
	}
	for skipped := 0; ; skipped++ {
		n, err := io.ReadFull(rw, buf[:mbapHeader])
		if err != nil {
			return nil, n == 0, err
		}
		proto := binary.BigEndian.Uint16(buf[2:])
		length := int(binary.BigEndian.Uint16(buf[4:]))
		if proto != 0 || length < 2 || length > mbapMax-6 {
			return nil, false, fmt.Errorf("%w: invalid MBAP header % x", ErrFrame, buf[:mbapHeader])
		}
		if _, err := io.ReadFull(rw, buf[mbapHeader:6+length]); err != nil {
			return nil, false, err
		}
		if buf[0] == adu[0] && buf[1] == adu[1] {
			return buf[:6+length], true, nil
		}
		if skipped >= maxStale {
			return nil, true, fmt.Errorf("%w: %d replies with the wrong transaction id", ErrFrame, skipped+1)
		}
	}
}

// exchangeRTU writes an RTU request and reads its reply into buf.
func exchangeRTU(rw io.ReadWriter, adu, buf []byte) ([]byte, error) {
	if _, err := rw.Write(adu); err != nil {
		return nil, err
	}
	return readRTU(rw, adu, buf)
}

// rtuReplyLen is the length of the normal reply to an RTU request, or 0
// when the request is not one the driver sends.
func rtuReplyLen(req []byte) int {
	if len(req) < 6 {
		return 0
	}
	qty := int(binary.BigEndian.Uint16(req[4:]))
	switch req[1] {
	case 1, 2:
		return 5 + (qty+7)/8
	case 3, 4:
		return 5 + 2*qty
	case 5, 6, 15, 16:
		return 8
	case 22:
		return 10
	}
	return 0
}

// readRTU reads the RTU reply to req from r into buf (at least rtuMax
// bytes). The frame's length follows from its function code and byte
// count, which must be what req asked for; its CRC must match.
func readRTU(r io.Reader, req, buf []byte) ([]byte, error) {
	if len(req) < 4 || len(buf) < rtuMax {
		return nil, fmt.Errorf("%w: request too short", ErrFrame)
	}
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return nil, err
	}
	unit, fc := buf[0], buf[1]
	if unit != req[0] {
		return nil, fmt.Errorf("%w: reply from unit %d to a request for unit %d", ErrFrame, unit, req[0])
	}
	var total int
	switch {
	case fc == req[1]|0x80:
		total = 5
	case fc != req[1]:
		return nil, fmt.Errorf("%w: reply with function %d to function %d", ErrFrame, fc, req[1])
	case fc >= 1 && fc <= 4:
		if _, err := io.ReadFull(r, buf[2:3]); err != nil {
			return nil, err
		}
		total = 5 + int(buf[2])
		if want := rtuReplyLen(req); total != want {
			return nil, fmt.Errorf("%w: reply of %d data bytes, %d expected", ErrFrame, buf[2], want-5)
		}
	default:
		total = rtuReplyLen(req)
		if total == 0 {
			return nil, fmt.Errorf("%w: unsupported function %d", ErrFrame, fc)
		}
	}
	if total > len(buf) {
		return nil, fmt.Errorf("%w: reply of %d bytes", ErrFrame, total)
	}
	have := 2
	if fc >= 1 && fc <= 4 {
		have = 3
	}
	if _, err := io.ReadFull(r, buf[have:total]); err != nil {
		return nil, err
	}
	if crc := crc16(buf[:total-2]); buf[total-2] != byte(crc) || buf[total-1] != byte(crc>>8) {
		return nil, fmt.Errorf("%w: bad CRC", ErrFrame)
	}
	return buf[:total], nil
}

// crc16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF), sent
// low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// serialTransport speaks RTU on a serial port through go.bug.st/serial.
type serialTransport struct {
	path string
	mode serialline.Mode
	// line is the open port (nil when closed) and the guard made with it,
	// which lets a cancelled context end a blocked read; cancel is the
	// guard's Cancel. They live as long as the port, so that a request
	// allocates neither.
	line    serialReader
	cancel  func()
	timeout time.Duration
	// quietSince is when the line last fell silent: the next request waits
	// until it has been quiet for a frame gap (3.5 characters).
	quietSince time.Time
	buf        [rtuMax]byte
}

func (t *serialTransport) setTimeout(d time.Duration) { t.timeout = d }
func (t *serialTransport) connected() bool            { return t.line.port != nil }

func (t *serialTransport) connect(ctx context.Context) (err error) {
	if t.line.port != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := serial.Open(t.path, t.mode.Port())
	if err != nil {
		return fmt.Errorf("%w: open %s: %v", ErrConnection, t.path, err)
	}
	g := serialline.NewGuard(p)
	t.line, t.cancel = serialReader{port: p, guard: g}, g.Cancel
	t.quietSince = time.Now()
	return nil
}

// close closes the port. Its guard goes with it: once cancelled, a guard
// fails every read.
func (t *serialTransport) close() {
	if t.line.port != nil {
		_ = t.line.port.Close()
		t.line, t.cancel = serialReader{}, nil
	}
}

// Send implements gridx.Transporter. The reply aliases the transport's
// buffer: it is valid until the next Send.
func (t *serialTransport) Send(ctx context.Context, adu []byte) (resp []byte, err error) {
	port := t.line.port
	if port == nil {
		return nil, fmt.Errorf("%w: not connected", ErrConnection)
	}
	defer func() {
		// go.bug.st/serial panics inside select() on a descriptor >= 1024
		// (a port reopened late in a long run): fail the port, not the
		// gateway.
		if r := recover(); r != nil {
			t.close()
			resp, err = nil, fmt.Errorf("%w: serial port %s: %v", ErrConnection, t.path, r)
		}
	}()
	if wait := time.Until(t.quietSince.Add(frameGap(t.mode))); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
	// Noise and late replies must not pass for this request's reply.
	if err := port.ResetInputBuffer(); err != nil {
		t.close()
		return nil, ioError(err)
	}
	// A cancelled context closes the port only while a Read blocks on it,
	// never during the Write; the port is then closed for good below, and
	// its guard, which stays cancelled, with it.
	stop := context.AfterFunc(ctx, t.cancel)
	if _, err = port.Write(adu); err == nil {
		// The deadline counts the time both frames take on the line.
		wire := charTime(t.mode) * time.Duration(len(adu)+rtuReplyLen(adu))
		r := &t.line
		r.deadline = time.Now().Add(t.timeout + wire)
		resp, err = readRTU(r, adu, t.buf[:])
		if errors.Is(err, ErrFrame) {
			r.resync(frameGap(t.mode), r.deadline.Add(t.timeout))
		}
	}
	t.quietSince = time.Now()
	if !stop() {
		t.close()
		return nil, ctx.Err()
	}
	if err != nil {
		err = ioError(err)
		if errors.Is(err, ErrConnection) {
			t.close()
		}
		return nil, err
	}
	return resp, nil
}

// serialReader reads a serial port, through its guard, until a deadline.
// go.bug.st/serial reports a read timeout as (0, nil), which io.ReadFull
// would retry forever: here it becomes os.ErrDeadlineExceeded once the
// deadline passed.
type serialReader struct {
	port     serial.Port
	guard    *serialline.Guard // made with port
	deadline time.Time
}

func (r *serialReader) Read(p []byte) (int, error) {
	for {
		rem := time.Until(r.deadline)
		if rem <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		if err := r.port.SetReadTimeout(rem); err != nil {
			return 0, err
		}
		n, err := r.guard.Read(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// resync waits until the line is quiet for gap, so that the rest of a
// garbled frame is not taken for the start of the next reply, then drops
// what arrived. It gives up at limit.
func (r *serialReader) resync(gap time.Duration, limit time.Time) {
	quiet := max(gap, 20*time.Millisecond) // tty latency exceeds the gap
	var scratch [64]byte
	for time.Now().Before(limit) {
		if r.port.SetReadTimeout(quiet) != nil {
			return
		}
		if n, err := r.guard.Read(scratch[:]); n == 0 || err != nil {
			break
		}
	}
	_ = r.port.ResetInputBuffer()
}
