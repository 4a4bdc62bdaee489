package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/backoff"
	"github.com/fieldbridge/gateway/mappings"
)

// eventQueue is how many edges may wait for the device's goroutine. The
// hardware's goroutines never block on it: past it edges are dropped and
// counted, and the next poll reads the true levels back.
const eventQueue = 1024

// runner owns the lines of one device.
type runner struct {
	dev *Device
	hw  hardware
	// Tests shorten these.
	minBackoff, maxBackoff, saveEvery time.Duration
}

func newRunner(d *Device, hw hardware) *runner {
	return &runner{dev: d, hw: hw, minBackoff: minBackoff, maxBackoff: maxBackoff, saveEvery: saveEvery}
}

// lineEdge is an edge of line i of the device.
type lineEdge struct {
	line int
	e    edge
}

// lineState is a line's state during one Run.
type lineState struct {
	spec  *lineSpec
	hw    hwLine // nil while the device is not open
	deb   debouncer
	total uint64 // counter
	meter rateMeter
	want  bool // output: the level to hold, `initial` until a command
	read  bool // the level read at the last poll
}

// session is one Run of a runner; only its goroutine touches it, except
// for the edges that the hardware sends on events.
type session struct {
	r       *runner
	dev     *Device
	env     adapters.Env
	log     *slog.Logger
	sink    adapters.Sink
	cmds    <-chan adapters.Command
	lines   []lineState
	events  chan lineEdge
	dropped atomic.Int64
	settle  *time.Timer

	openErr error  // why the lines are not open; nil while they are
	lastLog string // the failure last logged, to log each kind once

	stateDir    string
	saved       map[string]uint64 // totals as last loaded or saved, by point name
	savedAt     time.Time
	dirty       bool // a total changed since it was saved
	saveFailing bool
}

// Run implements adapters.Runner: it opens the device's lines, reports
// edges as they settle and every point at each poll, applies commands in
// arrival order, and reopens the lines with backoff when they fail. When
// ctx ends it releases the lines, saves the counter totals and returns nil.
func (r *runner) Run(ctx context.Context, env adapters.Env) error {
	s := r.newSession(env)
	defer s.stop()
	s.loadTotals()
	fails := 0 // failures since the lines last opened
	for {
		err := s.openLines()
		if err == nil {
			if s.openErr != nil {
				s.log.Info("gpio lines open again")
			}
			s.openErr, s.lastLog = nil, ""
			fails = 0
			err = s.serve(ctx)
			s.closeLines()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		fails++
		wait := backoff.Delay(r.minBackoff, r.maxBackoff, fails)
		s.fail(err, wait)
		if !s.wait(ctx, wait) {
			return nil
		}
	}
}

func (r *runner) newSession(env adapters.Env) *session {
	d := r.dev
	env = env.WithDefaults()
	s := &session{r: r, dev: d, env: env, events: make(chan lineEdge, eventQueue),
		log:  env.Log.With("driver", "gpio", "device", d.info.Name, "chip", d.chip),
		sink: env.Sink(d.info.Name), cmds: env.Commands(d.info.Name), stateDir: env.StateDir(d.info.Name)}
	s.settle = time.NewTimer(time.Hour)
	s.settle.Stop()
	s.lines = make([]lineState, len(d.lines))
	for i := range d.lines {
		ls := &s.lines[i]
		ls.spec = &d.lines[i]
		ls.deb.period = ls.spec.debounce
		ls.want = ls.spec.initial
	}
	return s
}

func (s *session) hasCounters() bool {
	for _, ls := range s.lines {
		if ls.spec.mode == modeCounter {
			return true
		}
	}
	return false
}

// loadTotals restores the counter totals. Whatever goes wrong, counting
// starts (from 0): a lost total is bad, a meter that stops counting is
// worse.
func (s *session) loadTotals() {
	if !s.hasCounters() {
		return
	}
	if s.stateDir == "" {
		s.log.Warn("no state folder: counter totals start from 0 and will not survive a restart")
		return
	}
	totals, err := loadTotals(s.stateDir)
	switch {
	case errors.Is(err, errNoState):
		s.log.Warn("counter totals start from 0", "err", err)
		totals = map[string]uint64{}
	case err != nil:
		s.log.Error("counter totals start from 0", "err", err)
		totals = map[string]uint64{}
	}
	// Totals of points no longer configured are kept, so that renaming a
	// point back finds its total.
	s.saved = totals
	for i := range s.lines {
		ls := &s.lines[i]
		if ls.spec.mode == modeCounter {
			ls.total = totals[ls.spec.name]
		}
	}
}

// save writes the totals when they changed and the last save is at least
// saveEvery old, or at once with force.
func (s *session) save(now time.Time, force bool) error {
	if s.stateDir == "" || s.saved == nil || !s.dirty {
		return nil
	}
	if !force && now.Sub(s.savedAt) < s.r.saveEvery {
		return nil
	}
	totals := make(map[string]uint64, len(s.saved))
	for k, v := range s.saved {
		totals[k] = v
	}
	for _, ls := range s.lines {
		if ls.spec.mode == modeCounter {
			totals[ls.spec.name] = ls.total
		}
	}
	s.savedAt = now
	if err := saveTotals(s.stateDir, totals); err != nil {
		return err
	}
	s.saved, s.dirty = totals, false
	return nil
}

// saveLogged saves, and logs a failure once per run of failures.
func (s *session) saveLogged(now time.Time, force bool) {
	if err := s.save(now, force); err != nil {
		if !s.saveFailing {
			s.log.Error("counter totals not saved; counting goes on", "err", err)
		}
		s.saveFailing = true
		return
	}
	if s.saveFailing && !s.dirty {
		s.log.Info("counter totals saved again")
		s.saveFailing = false
	}
}

// stop releases the lines and saves the totals, once Run ends.
func (s *session) stop() {
	s.closeLines()
	s.settle.Stop()
	s.saveLogged(time.Now(), true)
}

// lineErr names the chip, line and point of a line's failure.
func (s *session) lineErr(ls *lineState, err error) error {
	return fmt.Errorf("%s line %d (%s): %w", s.dev.chip, ls.spec.offset, ls.spec.name, err)
}

// openLines requests every line; on the first failure it releases the
// ones it got. A device is all or nothing, so that a half-working device
// never looks healthy.
func (s *session) openLines() error {
	for i := range s.lines {
		ls := &s.lines[i]
		cfg := lineConfig{offset: ls.spec.offset, activeLow: ls.spec.activeLow, bias: ls.spec.bias}
		var onEdge func(edge)
		if ls.spec.mode == modeOutput {
			cfg.output, cfg.initial = true, ls.want
		} else {
			cfg.edges = true
			onEdge = func(e edge) {
				select {
				case s.events <- lineEdge{line: i, e: e}:
				default:
					s.dropped.Add(1)
				}
			}
		}
		h, err := s.r.hw.request(s.dev.chip, cfg, onEdge)
		if err != nil {
			s.closeLines()
			return s.lineErr(ls, err)
		}
		ls.hw = h
	}
	for i := range s.lines {
		ls := &s.lines[i]
		v, err := ls.hw.value()
		if err != nil {
			s.closeLines()
			return s.lineErr(ls, fmt.Errorf("read: %w", err))
		}
		ls.read = v
		ls.deb.reset(v)
	}
	return nil
}

// closeLines releases the lines that are open and forgets their queued
// edges, which a reopen must not replay.
func (s *session) closeLines() {
	for i := range s.lines {
		ls := &s.lines[i]
		if ls.hw != nil {
			if err := ls.hw.close(); err != nil {
				s.log.Debug("release line", "line", ls.spec.offset, "err", err)
			}
			ls.hw = nil
		}
	}
	for {
		select {
		case <-s.events:
		default:
			return
		}
	}
}

// fail reports a device that could not be opened or read.
func (s *session) fail(err error, retry time.Duration) {
	s.openErr = err
	at := s.env.Now()
	for i := range s.dev.info.Points {
		s.sink.Report(i, mappings.Value{}, err, at)
	}
	s.sink.Polled(err)
	if msg := err.Error(); msg != s.lastLog {
		s.lastLog = msg
		s.log.Warn("gpio device not available", "err", err, "retry_in", retry)
	}
}

// wait sleeps d before the next attempt to open, still answering
// commands; it returns false when ctx ended.
func (s *session) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case cmd, ok := <-s.cmds:
			if !ok {
				s.cmds = nil
				continue
			}
			s.apply(cmd)
		}
	}
}

// serve runs the open device until ctx ends (nil) or a line fails.
func (s *session) serve(ctx context.Context) error {
	tick := time.NewTicker(s.dev.interval)
	defer tick.Stop()
	if err := s.poll(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case le := <-s.events:
			s.onEdge(le)
			// Every edge that came before now is applied before the
			// levels are settled at now.
			s.drainEdges()
			s.settleDue(time.Now())
		case <-s.settle.C:
			s.settleDue(time.Now())
		case <-tick.C:
			if err := s.poll(); err != nil {
				return err
			}
		case cmd, ok := <-s.cmds:
			if !ok {
				s.cmds = nil
				continue
			}
			s.apply(cmd)
		}
	}
}

func (s *session) onEdge(le lineEdge) {
	if le.line >= 0 && le.line < len(s.lines) {
		ls := &s.lines[le.line]
		if ls.deb.edge(le.e) {
			s.changed(ls)
		}
	}
}

// drainEdges applies the edges already queued.
func (s *session) drainEdges() {
	for {
		select {
		case le := <-s.events:
			s.onEdge(le)
		default:
			return
		}
	}
}

// settleDue applies the edges that have settled by now and arms the timer
// for the next one.
func (s *session) settleDue(now time.Time) {
	var next time.Time
	for i := range s.lines {
		ls := &s.lines[i]
		if ls.spec.mode == modeOutput {
			continue
		}
		if ls.deb.settle(now) {
			s.changed(ls)
		}
		if t, ok := ls.deb.due(); ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		s.settle.Stop()
		return
	}
	s.settle.Reset(max(next.Sub(now), 0))
}

// changed acts on a debounced change of level: an input reports it at
// once, a counter counts a pulse.
func (s *session) changed(ls *lineState) {
	switch ls.spec.mode {
	case modeInput:
		s.sink.Report(ls.spec.point, mappings.BoolValue(ls.deb.stable), nil, s.env.Now())
	case modeCounter:
		if ls.spec.count.counts(ls.deb.stable) {
			ls.total++
			ls.meter.pulse(ls.deb.last)
			s.dirty = true
		}
	}
}

// poll reads every line, reports every point and ends the poll. A read
// error means the chip is gone: the caller closes and reopens.
func (s *session) poll() error {
	// Edges already queued are applied first, so that a level read below
	// is not mistaken for an edge that was lost.
	s.drainEdges()
	now := time.Now()
	missed := false
	for i := range s.lines {
		ls := &s.lines[i]
		v, err := ls.hw.value()
		if err != nil {
			return s.lineErr(ls, fmt.Errorf("read: %w", err))
		}
		ls.read = v
		if ls.spec.mode != modeOutput && !ls.deb.pending && v != ls.deb.stable {
			// The level moved without an edge reaching us (edges were
			// dropped): take it as an edge now, debounced like any other.
			if ls.deb.edge(edge{active: v, at: now}) {
				s.changed(ls)
			}
			missed = true
		}
	}
	s.settleDue(now)
	if n := s.dropped.Swap(0); n > 0 {
		s.log.Warn("gpio edges dropped: levels read back; a counter may have missed pulses", "dropped", n)
	} else if missed {
		// Also seen when an edge is still on its way from the kernel.
		s.log.Debug("gpio level changed without an edge: read back")
	}
	at := s.env.Now()
	for i := range s.lines {
		ls := &s.lines[i]
		switch ls.spec.mode {
		case modeInput:
			s.sink.Report(ls.spec.point, mappings.BoolValue(ls.deb.stable), nil, at)
		case modeCounter:
			s.sink.Report(ls.spec.point, mappings.UintValue(ls.total), nil, at)
			s.sink.Report(ls.spec.rate, rateValue(ls.spec.rateType, ls.meter.at(now)), nil, at)
		case modeOutput:
			s.sink.Report(ls.spec.point, mappings.BoolValue(ls.read), nil, at)
		}
	}
	s.sink.Polled(nil)
	s.saveLogged(now, false)
	return nil
}

func rateValue(t mappings.Type, f float64) mappings.Value {
	if t == mappings.Float32 {
		return mappings.Float32Value(float32(f))
	}
	return mappings.Float64Value(f)
}

// apply carries out one command and calls cmd.Done once. An output is set,
// read back and reported; a counter's total is replaced and saved at once.
func (s *session) apply(cmd adapters.Command) {
	finish := func(err error) {
		if cmd.Done != nil {
			cmd.Done(err)
		}
	}
	var ls *lineState
	for i := range s.lines {
		if s.lines[i].spec.point == cmd.Point {
			ls = &s.lines[i]
		}
	}
	if ls == nil || !ls.spec.writable || ls.spec.mode == modeInput {
		finish(fmt.Errorf("point %d of device %s is not writable", cmd.Point, s.dev.info.Name))
		return
	}
	attrs := []any{"point", ls.spec.name, "line", ls.spec.offset, "sender", cmd.Sender, "topic", cmd.Topic, "raw", cmd.Raw.String()}
	switch ls.spec.mode {
	case modeOutput:
		err := s.setOutput(ls, cmd.Raw)
		s.log.Debug("gpio write", append(attrs, "result", errText(err))...)
		finish(err)
	case modeCounter:
		n, ok := cmd.Raw.Uint64()
		if !ok {
			finish(fmt.Errorf("a counter total is a whole number >= 0, got %s", cmd.Raw.String()))
			return
		}
		ls.total = n
		s.dirty = true
		err := s.save(time.Now(), true)
		if err != nil {
			err = fmt.Errorf("total set to %d but not saved: %w", n, err)
		}
		s.sink.Report(ls.spec.point, mappings.UintValue(n), nil, s.env.Now())
		s.log.Debug("gpio counter set", append(attrs, "result", errText(err))...)
		finish(err)
	}
}

// setOutput drives an output line and reports the level read back.
func (s *session) setOutput(ls *lineState, raw mappings.Value) error {
	if raw.Kind() != mappings.KindBool {
		return fmt.Errorf("an output takes a bool, got %s %q", raw.Kind(), raw.String())
	}
	if ls.hw == nil {
		if s.openErr == nil {
			return errors.New("not written: the device is not open")
		}
		return fmt.Errorf("not written: %w", s.openErr)
	}
	want := raw.Bool()
	if err := ls.hw.set(want); err != nil {
		return s.lineErr(ls, fmt.Errorf("set: %w", err))
	}
	ls.want = want
	v, err := ls.hw.value()
	at := s.env.Now()
	if err != nil {
		err = s.lineErr(ls, fmt.Errorf("read back: %w", err))
		s.sink.Report(ls.spec.point, mappings.Value{}, err, at)
		return err
	}
	ls.read = v
	s.sink.Report(ls.spec.point, mappings.BoolValue(v), nil, at)
	if v != want {
		return s.lineErr(ls, fmt.Errorf("read back %t after writing %t", v, want))
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
