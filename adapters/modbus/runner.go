package modbus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/backoff"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// backoffAfter is the failed polls in a row after which a device is
	// polled less often: by then the gateway reports it offline, and each
	// poll of a dead device holds the bus for its timeout.
	backoffAfter = 3
	// maxBackoff is the longest wait between two polls of a failing
	// device (or its poll_interval, when longer).
	maxBackoff = 30 * time.Second
)

// Driver is the Modbus driver: Modbus TCP, RTU on a serial port and RTU
// over TCP. Its zero value is ready to use.
type Driver struct{}

var (
	_ adapters.Driver = Driver{}
	_ adapters.Device = (*Device)(nil)
	_ adapters.Runner = (*runner)(nil)
)

// Name implements adapters.Driver.
func (Driver) Name() string { return "modbus" }

// Runners implements adapters.Driver: devices with the same url share one
// connection, polled by one goroutine, in configuration order.
func (Driver) Runners(devices []adapters.Device) []adapters.Runner {
	var out []adapters.Runner
	byKey := map[endpoint]*runner{}
	for _, ad := range devices {
		d, ok := ad.(*Device)
		if !ok {
			continue
		}
		r := byKey[d.ep]
		if r == nil {
			r = &runner{ep: d.ep, mode: d.serial}
			byKey[d.ep] = r
			out = append(out, r)
		}
		r.devs = append(r.devs, d)
	}
	return out
}

// Collectors returns the metrics collectors of the Modbus devices among
// devices, for the gateway to register; see Device.Collector.
func (Driver) Collectors(devices []adapters.Device) []prometheus.Collector {
	var out []prometheus.Collector
	for _, ad := range devices {
		if d, ok := ad.(*Device); ok {
			out = append(out, d.Collector())
		}
	}
	return out
}

// runner owns one connection and polls the devices on it.
type runner struct {
	ep   endpoint
	mode serialline.Mode // of the first device on a serial port
	devs []*Device

	words [MaxRegistersPerRead]uint16 // scratch for decoding
}

// devState is a device's polling state, owned by the runner's goroutine.
type devState struct {
	dev  *Device
	sink adapters.Sink
	cmds <-chan adapters.Command
	pl   *planner
	// Ticks are the device's poll times, start + k*interval. last is the
	// tick of the last poll (-1 before the first) and next when the next
	// poll is due.
	start time.Time
	last  int64
	next  time.Time
	fails int // polls in a row that did not reach the device
	// conflict is a clash with the device that owns the serial port,
	// found when the runner starts; it fails every poll.
	conflict error
	// After exception 1 (illegal function) to FC5 or FC6, the device is
	// written with FC15 or FC16 instead.
	multiCoil, multiReg bool
}

// Run implements adapters.Runner. It polls each device at its ticks,
// applies commands between polls in arrival order, and returns nil when
// ctx ends, closing the connection.
func (r *runner) Run(ctx context.Context, env adapters.Env) error {
	env = env.WithDefaults()
	log := env.Log.With("driver", "modbus", "url", r.ep.String())
	env.Log = log
	l := newLink(r.ep, r.mode)
	defer l.close()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// One select over ctx, the timer and every device's command queue; the
	// number of queues is known only here, hence reflect.Select.
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
	}
	caseDev := []*devState{nil, nil}
	start := time.Now()
	states := make([]*devState, len(r.devs))
	for i, d := range r.devs {
		st := &devState{dev: d, pl: newPlanner(d.points, d.maxRegs, d.maxBits, d.maxGap),
			sink: env.Sink(d.info.Name), cmds: env.Commands(d.info.Name),
			start: start, last: -1, next: start}
		if st.cmds != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(st.cmds)})
			caseDev = append(caseDev, st)
		}
		if d.ep.scheme == schemeRTU && d.serial != r.mode {
			st.conflict = fmt.Errorf("serial settings %s differ from %s of device %s on the same port", d.serial, r.mode, r.devs[0].info.Name)
			log.Error("device cannot share the serial port", "device", d.info.Name, "err", st.conflict)
		}
		states[i] = st
	}

	for {
		next := time.Time{}
		for _, st := range states {
			if ctx.Err() != nil {
				return nil
			}
			if !time.Now().Before(st.next) {
				r.poll(ctx, env, l, st)
			}
			if next.IsZero() || st.next.Before(next) {
				next = st.next
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		timer.Reset(time.Until(next))
		chosen, v, ok := reflect.Select(cases)
		switch {
		case chosen == 0:
			return nil
		case chosen == 1:
		case !ok:
			// The gateway closed the queue: stop selecting on it.
			cases[chosen].Chan = reflect.ValueOf((<-chan adapters.Command)(nil))
		default:
			r.apply(ctx, env, l, caseDev[chosen], v.Interface().(adapters.Command))
		}
	}
}

// poll reads the device's due points and schedules its next poll.
func (r *runner) poll(ctx context.Context, env adapters.Env, l *link, st *devState) {
	d := st.dev
	now := time.Now()
	n := int64(now.Sub(st.start) / d.interval)
	due := st.pl.due(st.last, n)
	st.last = n
	st.next = st.start.Add(time.Duration(n+1) * d.interval)
	if len(st.pl.plan(due)) == 0 {
		return // no point is due at this tick; the failure streak goes on
	}

	var err error
	if st.conflict != nil {
		err = st.conflict
		at := env.Now()
		for _, b := range st.pl.plan(due) {
			for _, i := range b.points {
				st.sink.Report(i, mappings.Value{}, err, at)
			}
		}
		st.sink.Polled(err)
	} else {
		err = r.pollDevice(ctx, env, l, st, due)
	}
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		st.fails = 0
		return
	}
	st.fails++
	if st.fails >= backoffAfter {
		wait := backoff.Delay(2*d.interval, max(maxBackoff, d.interval), st.fails-backoffAfter+1)
		ticks := (time.Now().Add(wait).Sub(st.start) + d.interval - 1) / d.interval
		st.next = st.start.Add(ticks * d.interval)
		env.Log.Debug("device backs off", "device", d.info.Name, "failures", st.fails, "next", st.next)
	}
}

// pollDevice reads the due points' blocks, reports every point, and ends
// the poll with Sink.Polled. It returns the poll's error: nil when any
// request reached the device, even one answered with an exception.
func (r *runner) pollDevice(ctx context.Context, env adapters.Env, l *link, st *devState, due uint64) error {
	d := st.dev
	queue := append([]block(nil), st.pl.plan(due)...)
	reached := false
	var failure error
	misses := 0
	for len(queue) > 0 {
		b := queue[0]
		queue = queue[1:]
		begin := time.Now()
		data, err := l.read(ctx, d.unit, d.timeout, &b)
		if ctx.Err() != nil {
			return nil // shutting down: nothing failed
		}
		d.metrics.observe(begin, err)
		at := env.Now()
		if err == nil {
			reached = true
			for _, i := range b.points {
				v, derr := decodePoint(&d.points[i], &b, data, r.words[:])
				st.sink.Report(i, v, derr, at)
			}
			continue
		}
		var ex *Exception
		if errors.As(err, &ex) {
			reached = true
			if ex.Code == ExceptionIllegalDataAddress {
				// Isolate the point the device refuses; the plan
				// remembers the split for later polls.
				if left, right, ok := st.pl.split(b); ok {
					queue = append([]block{left, right}, queue...)
					continue
				}
			}
		} else {
			misses++
		}
		err = fmt.Errorf("read %s: %w", b.describe(), err)
		if ex == nil && failure == nil {
			failure = err
		}
		for _, i := range b.points {
			st.sink.Report(i, mappings.Value{}, err, at)
		}
		if ex == nil && (errors.Is(err, ErrConnection) || !reached || misses >= 2) {
			// The rest would most likely fail the same way, each holding
			// the bus for a timeout that other devices wait for.
			for _, q := range queue {
				for _, i := range q.points {
					st.sink.Report(i, mappings.Value{}, err, at)
				}
			}
			break
		}
	}
	if reached {
		st.sink.Polled(nil)
		return nil
	}
	st.sink.Polled(failure)
	return failure
}
