package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/backoff"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
	gridx "github.com/grid-x/modbus"
)

const (
	// linkRetryMin and linkRetryMax bound the wait before reopening a
	// connection that could not be opened; devices due meanwhile fail at
	// once instead of each waiting for a dial or open to fail again.
	linkRetryMin = 100 * time.Millisecond
	linkRetryMax = 30 * time.Second
)

// link is one connection (a TCP endpoint or a serial port) with grid-x's
// client on top. It is owned by one goroutine.
type link struct {
	tr        transport
	pk        gridx.Packager
	client    gridx.Client
	downUntil time.Time // no reopen attempt before this
	downErr   error
	openFails int
}

func newLink(ep endpoint, mode serialline.Mode) *link {
	l := &link{}
	switch ep.scheme {
	case schemeTCP:
		l.tr = &tcpTransport{addr: ep.addr}
		l.pk = gridx.NewTCPClientHandler(ep.addr)
	case schemeRTUOverTCP:
		l.tr = &tcpTransport{addr: ep.addr, rtu: true}
		l.pk = gridx.NewRTUClientHandler(ep.addr)
	default:
		l.tr = &serialTransport{path: ep.addr, mode: mode}
		l.pk = gridx.NewRTUClientHandler(ep.addr)
	}
	// grid-x builds and checks the PDUs; the transport does the framing.
	l.client = gridx.NewClient2(l.pk, l.tr)
	return l
}

func (l *link) close() { l.tr.close() }

// call runs one request to unit with the device's timeout, opening the
// connection first when needed. Errors are an *Exception, ctx's error, or
// wrap ErrTimeout, ErrFrame or ErrConnection.
func (l *link) call(ctx context.Context, unit byte, timeout time.Duration, fn func(gridx.Client) ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.tr.setTimeout(timeout)
	if !l.tr.connected() {
		if time.Now().Before(l.downUntil) {
			return nil, l.downErr
		}
		if err := l.tr.connect(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			l.openFails++
			l.downUntil, l.downErr = time.Now().Add(backoff.Delay(linkRetryMin, linkRetryMax, l.openFails)), err
			return nil, err
		}
		l.openFails = 0
	}
	l.pk.SetSlave(unit)
	res, err := fn(l.client)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	err = asException(err)
	var ex *Exception
	switch {
	case errors.As(err, &ex), errors.Is(err, ErrConnection), errors.Is(err, ErrFrame):
		return nil, err
	case errors.Is(err, ErrTimeout):
		return nil, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
	}
	// grid-x's own checks of the PDU: byte counts, echoed addresses, ids.
	return nil, fmt.Errorf("%w: %v", ErrFrame, err)
}

// read reads one block and returns its data: 2 bytes per register, or the
// bits packed low bit first.
func (l *link) read(ctx context.Context, unit byte, timeout time.Duration, b *block) ([]byte, error) {
	return l.call(ctx, unit, timeout, func(c gridx.Client) ([]byte, error) {
		var res []byte
		var err error
		switch b.table {
		case holding:
			res, err = c.ReadHoldingRegisters(ctx, b.start, b.count)
		case input:
			res, err = c.ReadInputRegisters(ctx, b.start, b.count)
		case coil:
			res, err = c.ReadCoils(ctx, b.start, b.count)
		case discrete:
			res, err = c.ReadDiscreteInputs(ctx, b.start, b.count)
		default:
			return nil, fmt.Errorf("read of unknown %v", b.table)
		}
		if err != nil {
			return nil, err
		}
		want := 2 * int(b.count)
		if b.table.bits() {
			want = (int(b.count) + 7) / 8
		}
		if len(res) != want {
			return nil, fmt.Errorf("reply holds %d data bytes, %d expected", len(res), want)
		}
		return res, nil
	})
}

// decodePoint returns the raw value of point p from the data of block b.
// words is scratch space of at least p.n registers.
func decodePoint(p *point, b *block, data []byte, words []uint16) (mappings.Value, error) {
	off := int(p.addr) - int(b.start)
	if p.table.bits() {
		if off < 0 || off >= int(b.count) || off/8 >= len(data) {
			return mappings.Value{}, fmt.Errorf("%w: bit %d outside the reply", ErrFrame, off)
		}
		return mappings.BoolValue(data[off/8]>>(off%8)&1 == 1), nil
	}
	if off < 0 || 2*(off+p.n) > len(data) || p.n > len(words) {
		return mappings.Value{}, fmt.Errorf("%w: register %d outside the reply", ErrFrame, p.addr)
	}
	if p.mp.Type == mappings.Bool {
		return mappings.DecodeBool(binary.BigEndian.Uint16(data[2*off:]), p.mp.Bit)
	}
	w := words[:p.n]
	for k := range w {
		w[k] = binary.BigEndian.Uint16(data[2*(off+k):])
	}
	return mappings.Decode(p.mp.Type, p.mp.Order, w)
}

// describe names a block for error messages: "holding registers 0-17".
func (b *block) describe() string {
	if b.count == 1 {
		return fmt.Sprintf("%s %d", b.table.singular(), b.start)
	}
	return fmt.Sprintf("%s %d-%d", b.table.plural(), b.start, int(b.start)+int(b.count)-1)
}
