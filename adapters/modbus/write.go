package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
	gridx "github.com/grid-x/modbus"
)

// apply writes one command, reads the point back and reports it, and calls
// cmd.Done exactly once. The gateway logs the outcome at info level in Done;
// the details only the driver knows (function code, raw value, read-back)
// are logged here at debug level.
func (r *runner) apply(ctx context.Context, env adapters.Env, l *link, st *devState, cmd adapters.Command) {
	d := st.dev
	finish := func(err error) {
		if cmd.Done != nil {
			cmd.Done(err)
		}
	}
	if cmd.Point < 0 || cmd.Point >= len(d.points) || !d.points[cmd.Point].mp.Writable {
		finish(fmt.Errorf("point %d of device %s is not writable", cmd.Point, d.info.Name))
		return
	}
	p := &d.points[cmd.Point]
	fc, err := r.write(ctx, l, st, p, cmd.Raw)
	attrs := []any{"device", d.info.Name, "point", p.mp.Name, "sender", cmd.Sender, "topic", cmd.Topic,
		"value", p.mp.Apply(cmd.Raw).String(), "raw", cmd.Raw.String(), "function", fc}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("write not confirmed: the gateway is stopping: %w", ctx.Err())
		}
		env.Log.Debug("modbus write", append(attrs, "result", err.Error())...)
		finish(err)
		return
	}

	// Read back what the device now holds: it may clamp or ignore a value.
	b := block{table: p.table, start: p.addr, count: uint16(p.n), points: []int{cmd.Point}}
	begin := time.Now()
	data, rerr := l.read(ctx, d.unit, d.timeout, &b)
	if ctx.Err() == nil {
		d.metrics.observe(begin, rerr)
		var v mappings.Value
		if rerr == nil {
			v, rerr = decodePoint(p, &b, data, r.words[:])
		} else {
			rerr = fmt.Errorf("read back %s: %w", b.describe(), rerr)
		}
		st.sink.Report(cmd.Point, v, rerr, env.Now())
		if rerr == nil {
			attrs = append(attrs, "read_back", p.mp.Apply(v).String())
		} else {
			attrs = append(attrs, "read_back_error", rerr.Error())
		}
	}
	env.Log.Debug("modbus write", append(attrs, "result", "ok")...)
	finish(nil)
}

// write sends the request that sets point p to raw and returns the
// function code used. A bit of a holding register is written with FC22
// (mask write), so that the device changes that bit alone, atomically.
func (r *runner) write(ctx context.Context, l *link, st *devState, p *point, raw mappings.Value) (fc int, err error) {
	d := st.dev
	addr := p.addr
	var fn func(gridx.Client) ([]byte, error)
	switch {
	case p.table == coil:
		if raw.Kind() != mappings.KindBool {
			return 0, fmt.Errorf("cannot write %s %q to a coil", raw.Kind(), raw.String())
		}
		on := raw.Bool()
		if st.multiCoil {
			fc = 15
			fn = func(c gridx.Client) ([]byte, error) {
				return c.WriteMultipleCoils(ctx, addr, 1, []byte{boolByte(on)})
			}
		} else {
			fc = 5
			fn = func(c gridx.Client) ([]byte, error) {
				return c.WriteSingleCoil(ctx, addr, uint16(boolByte(on))*0xff00)
			}
		}
	case p.table == holding && p.mp.Type == mappings.Bool:
		if raw.Kind() != mappings.KindBool {
			return 0, fmt.Errorf("cannot write %s %q to a bit", raw.Kind(), raw.String())
		}
		mask := uint16(1) << p.mp.Bit
		or := uint16(0)
		if raw.Bool() {
			or = mask
		}
		fc = 22
		fn = func(c gridx.Client) ([]byte, error) { return c.MaskWriteRegister(ctx, addr, ^mask, or) }
	case p.table == holding:
		words, err := mappings.Encode(p.mp.Type, p.mp.Order, raw)
		if err != nil {
			return 0, err
		}
		if len(words) == 1 && !st.multiReg {
			fc = 6
			fn = func(c gridx.Client) ([]byte, error) { return c.WriteSingleRegister(ctx, addr, words[0]) }
		} else {
			fc = 16
			data := make([]byte, 2*len(words))
			for i, w := range words {
				binary.BigEndian.PutUint16(data[2*i:], w)
			}
			fn = func(c gridx.Client) ([]byte, error) {
				return c.WriteMultipleRegisters(ctx, addr, uint16(len(words)), data)
			}
		}
	default:
		return 0, fmt.Errorf("%s are read-only", p.table.plural())
	}

	begin := time.Now()
	_, err = l.call(ctx, d.unit, d.timeout, fn)
	d.metrics.observe(begin, err)
	if isException(err, ExceptionIllegalFunction) && (fc == 5 && !st.multiCoil || fc == 6 && !st.multiReg) {
		// Some devices implement only the multiple-write functions.
		if fc == 5 {
			st.multiCoil = true
		} else {
			st.multiReg = true
		}
		return r.write(ctx, l, st, p, raw)
	}
	if err != nil {
		var ex *Exception
		if !errors.As(err, &ex) && ctx.Err() == nil {
			err = fmt.Errorf("%w (the device may or may not have applied it)", err)
		}
		return fc, fmt.Errorf("FC%d to %s %d: %w", fc, p.table.singular(), addr, err)
	}
	return fc, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
