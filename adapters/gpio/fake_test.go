package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/syncbuf"
	"github.com/fieldbridge/gateway/mappings"
)

// The host kernel that runs these tests has no GPIO, so they run the
// driver on fakeHW, which behaves like the character device: it applies
// active_low, reports both edges of an input, holds a requested line busy
// and fails reads once its chip is gone. The same driver runs against the
// kernel's gpio-sim in a VM (gpiosim_test.go, vmtest/run.sh).
type fakeHW struct {
	mu       sync.Mutex
	chips    map[string]int // chip name -> number of lines, for chips present
	lines    map[int]*fakeLine
	requests int
	denied   map[int]error // request errors by line
}

type fakeLine struct {
	hw       *fakeHW
	offset   int
	physical bool // the electrical level
	held     bool
	cfg      lineConfig
	onEdge   func(edge)
	gone     bool // its chip was removed while held
}

func newFakeHW(lines int) *fakeHW {
	return &fakeHW{chips: map[string]int{"gpiochip0": lines}, lines: map[int]*fakeLine{}, denied: map[int]error{}}
}

func (f *fakeHW) line(offset int) *fakeLine {
	l := f.lines[offset]
	if l == nil {
		l = &fakeLine{hw: f, offset: offset}
		f.lines[offset] = l
	}
	return l
}

func (f *fakeHW) request(chip string, cfg lineConfig, onEdge func(edge)) (hwLine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	n, ok := f.chips[chip]
	if !ok {
		return nil, fmt.Errorf("chip not found: /dev/%s does not exist: %w", chip, syscall.ENOENT)
	}
	if cfg.offset >= n {
		return nil, fmt.Errorf("no such line: %s has %d lines", chip, n)
	}
	if err := f.denied[cfg.offset]; err != nil {
		return nil, err
	}
	l := f.line(cfg.offset)
	if l.held {
		return nil, fmt.Errorf("line is busy: %w", syscall.EBUSY)
	}
	l.held, l.cfg, l.onEdge = true, cfg, onEdge
	if cfg.output {
		l.physical = cfg.initial != cfg.activeLow
	}
	return &fakeHandle{l: l}, nil
}

// drive sets an input's electrical level, as a contact or a meter would,
// and reports the edge to the driver if the line is watched.
func (f *fakeHW) drive(offset int, physical bool) {
	f.mu.Lock()
	l := f.line(offset)
	changed := l.physical != physical
	l.physical = physical
	cb := l.onEdge
	active := physical != l.cfg.activeLow
	watched := l.held && l.cfg.edges && !l.gone
	f.mu.Unlock()
	if changed && watched && cb != nil {
		cb(edge{active: active, at: time.Now()})
	}
}

// driveSilently changes an input's level without an edge, as when edges
// were dropped.
func (f *fakeHW) driveSilently(offset int, physical bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.line(offset).physical = physical
}

// physical returns a line's electrical level.
func (f *fakeHW) physical(offset int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.line(offset).physical
}

func (f *fakeHW) config(offset int) lineConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.line(offset).cfg
}

func (f *fakeHW) held(offset int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.line(offset).held
}

// unplug removes a chip: held lines fail, new requests find no chip, and
// a chip plugged back has fresh lines.
func (f *fakeHW) unplug(chip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.chips, chip)
	for _, l := range f.lines {
		l.gone = true
	}
	f.lines = map[int]*fakeLine{}
}

func (f *fakeHW) plug(chip string, lines int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chips[chip] = lines
}

func (f *fakeHW) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

type fakeHandle struct {
	l      *fakeLine
	closed bool
}

func (h *fakeHandle) value() (bool, error) {
	f := h.l.hw
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.closed {
		return false, errors.New("already closed")
	}
	if h.l.gone {
		return false, syscall.ENODEV
	}
	return h.l.physical != h.l.cfg.activeLow, nil
}

func (h *fakeHandle) set(active bool) error {
	f := h.l.hw
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case h.closed:
		return errors.New("already closed")
	case h.l.gone:
		return syscall.ENODEV
	case !h.l.cfg.output:
		return errors.New("permission denied: not an output")
	}
	h.l.physical = active != h.l.cfg.activeLow
	return nil
}

func (h *fakeHandle) close() error {
	f := h.l.hw
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.closed {
		return errors.New("already closed")
	}
	h.closed = true
	h.l.held, h.l.onEdge = false, nil
	return nil
}

// report is one Sink.Report call.
type report struct {
	point int
	value mappings.Value
	err   error
}

// recSink records what a runner reports.
type recSink struct {
	mu      sync.Mutex
	reports []report
	polls   []error
}

func (s *recSink) Report(i int, v mappings.Value, err error, _ time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, report{i, v, err})
}

func (s *recSink) Polled(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls = append(s.polls, err)
}

// of returns the reports of point i.
func (s *recSink) of(i int) []report {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []report
	for _, r := range s.reports {
		if r.point == i {
			out = append(out, r)
		}
	}
	return out
}

// last returns the last report of point i.
func (s *recSink) last(i int) (report, bool) {
	rs := s.of(i)
	if len(rs) == 0 {
		return report{}, false
	}
	return rs[len(rs)-1], true
}

func (s *recSink) lastPoll() (err error, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.polls) == 0 {
		return nil, 0
	}
	return s.polls[len(s.polls)-1], len(s.polls)
}

// changes returns the distinct successive good values of point i.
func (s *recSink) changes(i int) []mappings.Value {
	var out []mappings.Value
	for _, r := range s.of(i) {
		if r.err != nil {
			continue
		}
		if len(out) == 0 || !out[len(out)-1].Equal(r.value) {
			out = append(out, r.value)
		}
	}
	return out
}

// configure builds the devices of a devices: list, failing on errors.
func configure(t testing.TB, devices string) []*Device {
	t.Helper()
	devs, errs := tryConfigure(t, devices)
	if len(errs) > 0 {
		t.Fatalf("config errors:\n%v", errs)
	}
	return devs
}

// tryConfigure builds the devices of a devices: list and returns the
// problems reported.
func tryConfigure(t testing.TB, devices string) ([]*Device, config.Errors) {
	t.Helper()
	devs, errs := configtest.Configure(t, Driver{}, devices, configtest.Name("gpio.yaml"))
	out := make([]*Device, len(devs))
	for i, d := range devs {
		out[i] = d.(*Device)
	}
	return out, errs
}

// harness runs one device on fake hardware.
type harness struct {
	t      testing.TB
	dev    *Device
	hw     *fakeHW
	r      *runner
	sink   *recSink
	cmds   chan adapters.Command
	dir    string
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

// newHarness runs dev on fake hardware; dir is its state folder ("" for
// none).
func newHarness(t testing.TB, dev *Device, hw *fakeHW, dir string) *harness {
	h := newHarnessOn(t, dev, hw, dir)
	h.hw = hw
	return h
}

// newHarnessOn runs dev on any hardware, with short backoff and save
// intervals.
func newHarnessOn(t testing.TB, dev *Device, hw hardware, dir string) *harness {
	r := newRunner(dev, hw)
	r.minBackoff, r.maxBackoff, r.saveEvery = 20*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond
	return &harness{t: t, dev: dev, r: r, sink: &recSink{}, cmds: make(chan adapters.Command, 8), dir: dir, logs: &syncbuf.Buffer{}}
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	env := adapters.Env{
		Log:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      time.Now,
		Sink:     func(string) adapters.Sink { return h.sink },
		Commands: func(string) <-chan adapters.Command { return h.cmds },
	}
	if h.dir != "" {
		env.StateDir = func(string) string { return h.dir }
	}
	go func() {
		defer close(h.done)
		if err := h.r.Run(ctx, env); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
	h.cancel = nil
}

// command sends a command and waits for its outcome.
func (h *harness) command(point int, raw mappings.Value) error {
	h.t.Helper()
	res := make(chan error, 1)
	h.cmds <- adapters.Command{Point: point, Raw: raw, Sender: "test", Topic: "t/set", Done: func(err error) { res <- err }}
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("command not answered")
		return nil
	}
}

// eventually polls cond until it holds or 10 s passed: long enough for a
// loaded machine or a VM under emulation, and only a failing test waits.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// glitch produces a pulse shorter than max on a line that the debouncer
// must ignore: up, then down at once. A loaded machine may stretch it, so
// it retries until the pulse was short, waits settle and reports how many
// changes of point the sink saw before it.
func glitch(t testing.TB, s *recSink, point int, max, settle time.Duration, up, down func()) int {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		before := len(s.changes(point))
		start := time.Now()
		up()
		down()
		took := time.Since(start)
		time.Sleep(settle)
		if took < max {
			return before
		}
		t.Logf("glitch took %s, not under %s: again", took, max)
	}
	t.Fatalf("could not make a glitch shorter than %s", max)
	return 0
}
