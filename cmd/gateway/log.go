package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldbridge/gateway/config"
)

// Repeated warnings and errors are rate-limited: a dead PLC polled every
// 100 ms, or a full disk refusing every publish, must not flood the journal
// and wear the SD card.
const (
	logBurst    = 5           // records of one message let through per window
	logInterval = time.Minute // the window
)

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&rateLimited{next: h, state: &rateState{seen: map[string]*rateEntry{}}, now: time.Now})
}

// rateLimited passes at most logBurst warnings or errors with the same
// message per logInterval; the next one let through says how many were
// suppressed. Info and debug records pass untouched.
type rateLimited struct {
	next  slog.Handler
	state *rateState
	now   func() time.Time
}

type rateState struct {
	mu   sync.Mutex
	seen map[string]*rateEntry
}

type rateEntry struct {
	start      time.Time
	count      int
	suppressed int
}

func (h *rateLimited) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	now := h.now()
	h.state.mu.Lock()
	e := h.state.seen[r.Message]
	if e == nil || now.Sub(e.start) >= logInterval {
		if e == nil {
			if len(h.state.seen) > 10000 {
				h.state.seen = map[string]*rateEntry{} // bound memory under pathological messages
			}
			e = &rateEntry{}
			h.state.seen[r.Message] = e
		}
		e.start, e.count = now, 0
	}
	e.count++
	if e.count > logBurst {
		e.suppressed++
		h.state.mu.Unlock()
		return nil
	}
	suppressed := e.suppressed
	e.suppressed = 0
	h.state.mu.Unlock()
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed_before", suppressed))
	}
	return h.next.Handle(ctx, r)
}

func (h *rateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	return &rateLimited{next: h.next.WithAttrs(as), state: h.state, now: h.now}
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	return &rateLimited{next: h.next.WithGroup(name), state: h.state, now: h.now}
}
