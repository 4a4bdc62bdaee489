package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/backoff"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
	goserial "go.bug.st/serial"
)

const (
	// reopenMin and reopenMax bound the wait before reopening a port that
	// failed: a replugged USB adapter is back within a second or two, and a
	// missing one costs one open() per reopenMax.
	reopenMin = 100 * time.Millisecond
	reopenMax = 10 * time.Second
	readChunk = 512
)

// runner owns one device's port.
type runner struct {
	dev *Device
	// conflict names the device that already reads this port.
	conflict string
}

// Run implements adapters.Runner. It reads the port until ctx ends,
// reopening it with backoff whenever it fails; each failure is reported
// through Sink.Polled, so the gateway marks the device offline after a few.
func (r *runner) Run(ctx context.Context, env adapters.Env) error {
	d := r.dev
	env = env.WithDefaults()
	log := env.Log.With("driver", "serial", "device", d.info.Name, "port", d.port)
	sink := env.Sink(d.info.Name)
	if r.conflict != "" {
		err := fmt.Errorf("%w: %s is already read by device %s; a port carries one sensor's lines", ErrPort, d.port, r.conflict)
		log.Error("device cannot share the port", "err", err)
		for fails := 1; ; fails++ {
			sink.Polled(err)
			if !wait(ctx, backoff.Delay(reopenMin, reopenMax, fails)) {
				return nil
			}
		}
	}
	s := &session{dev: d, sink: sink, now: env.Now, log: log, parser: d.parser(),
		split: splitter{max: d.maxLine}, buf: make([]byte, readChunk)}
	s.emit = func(i int, v mappings.Value, err error) { s.sink.Report(i, v, err, s.at) }
	fails := 0
	for {
		if fails > 0 {
			s.reopened = func() { log.Info("serial port reopened", "after_failures", fails) }
		}
		err := s.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if s.good {
			fails, s.good = 0, false
		}
		fails++
		d.metrics.portErrors.Inc()
		if fails == 1 {
			log.Warn("serial port failed", "err", err)
		} else {
			log.Debug("serial port still failing", "err", err, "failures", fails)
		}
		sink.Polled(err)
		if !wait(ctx, backoff.Delay(reopenMin, reopenMax, fails)) {
			return nil
		}
	}
}

// wait sleeps for d, or until ctx ends; it reports whether ctx is still live.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session reads one device; its state outlives a reopen of the port.
type session struct {
	dev    *Device
	sink   adapters.Sink
	now    func() time.Time
	log    *slog.Logger
	parser parser
	split  splitter
	buf    []byte
	emit   emitFunc
	at     time.Time // the time stamp of the line being parsed

	good     bool   // a valid line arrived since the last port failure
	reopened func() // called once the port opens after a failure

	// Deadlines on the monotonic clock; zero when unset.
	nextRequest time.Time
	responseDue time.Time
	idleDue     time.Time
}

// run opens the port and reads it until it fails or ctx ends; it returns
// the failure, wrapping ErrPort.
func (s *session) run(ctx context.Context) (err error) {
	d := s.dev
	p, err := goserial.Open(d.port, d.mode.Port())
	if err != nil {
		return fmt.Errorf("%w: open %s: %v", ErrPort, d.port, err)
	}
	if s.reopened != nil {
		s.reopened()
		s.reopened = nil
	}
	g := serialline.NewGuard(p)
	stop := context.AfterFunc(ctx, g.Cancel)
	defer func() {
		// go.bug.st/serial panics inside select() on a descriptor >= 1024
		// (a port reopened late in a long run): fail the port, not the
		// gateway.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrPort, d.port, r)
		}
		stop()
		_ = p.Close()
	}()

	s.split.reset()
	start := time.Now()
	s.responseDue, s.idleDue, s.nextRequest = time.Time{}, time.Time{}, time.Time{}
	if d.request != nil {
		s.nextRequest = start
	}
	if d.idleTO > 0 {
		s.idleDue = start.Add(d.idleTO)
	}
	for {
		now := time.Now()
		if !s.responseDue.IsZero() && !now.Before(s.responseDue) {
			s.responseDue = time.Time{}
			d.metrics.timeouts.Inc()
			s.sink.Polled(fmt.Errorf("%w within %s to request %s", ErrNoResponse, d.respTO, quoteShort(string(d.request))))
		}
		if !s.nextRequest.IsZero() && !now.Before(s.nextRequest) {
			if err := s.send(p); err != nil {
				return err
			}
			s.responseDue = now.Add(d.respTO)
			// Requests missed while the loop was held up are skipped, not
			// sent in a burst; and a late request keeps its full
			// response_timeout before the next one goes out, so that each
			// request ends in exactly one answer or one failed poll.
			next := s.nextRequest.Add((now.Sub(s.nextRequest)/d.every + 1) * d.every)
			s.nextRequest = later(next, s.responseDue)
		}
		if !s.idleDue.IsZero() && !now.Before(s.idleDue) {
			s.sink.Polled(fmt.Errorf("%w: no valid line for %s", ErrIdle, d.idleTO))
			s.idleDue = now.Add(d.idleTO)
		}
		timeout := goserial.NoTimeout
		for _, t := range [...]time.Time{s.nextRequest, s.responseDue, s.idleDue} {
			if w := t.Sub(now); !t.IsZero() && (timeout == goserial.NoTimeout || w < timeout) {
				timeout = max(w, time.Millisecond)
			}
		}
		if err := p.SetReadTimeout(timeout); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrPort, d.port, err)
		}
		// A read timeout returns (0, nil): the deadlines above run again.
		n, err := g.Read(s.buf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("%w: read %s: %v", ErrPort, d.port, err)
		}
		s.split.feed(s.buf[:n], s.line, s.overlong)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// send writes the request, after dropping what arrived since the last
// response: stale input is not the answer to this request.
func (s *session) send(p goserial.Port) error {
	if err := p.ResetInputBuffer(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrPort, s.dev.port, err)
	}
	s.split.reset()
	if _, err := p.Write(s.dev.request); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrPort, s.dev.port, err)
	}
	return nil
}

func (s *session) overlong() {
	s.dev.metrics.lines.Inc()
	s.dev.metrics.overlong.Inc()
	s.log.Debug("line dropped", "reason", reasonOverlong, "max_line", s.dev.maxLine)
}

// line handles one line: drops and counts what is not a valid line of the
// device's format, reports the values of the rest, and ends each valid line
// with Polled(nil).
func (s *session) line(b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	m := s.dev.metrics
	m.lines.Inc()
	if garbage(b) {
		m.garbage.Inc()
		s.logDropped(b, reasonGarbage, nil)
		return
	}
	s.at = s.now()
	if err := s.parser.parse(b, s.emit); err != nil {
		reason := reasonUnparsable
		if errors.Is(err, errBadChecksum) {
			reason = reasonBadChecksum
			m.badChecksum.Inc()
		} else {
			m.unparsable.Inc()
		}
		s.logDropped(b, reason, err)
		return
	}
	s.good = true
	s.responseDue = time.Time{}
	if !s.idleDue.IsZero() {
		s.idleDue = time.Now().Add(s.dev.idleTO)
	}
	s.sink.Polled(nil)
}

// logDropped logs a dropped line at debug level; the line is copied only
// when that level is on (a line at the wrong baud rate drops every line).
func (s *session) logDropped(b []byte, reason string, err error) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	args := []any{"reason", reason, "line", logLine(b)}
	if err != nil {
		args = append(args, "err", err)
	}
	s.log.Debug("line dropped", args...)
}

// logLine shortens a dropped line for the debug log.
func logLine(b []byte) string {
	const limit = 120
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
