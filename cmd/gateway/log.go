package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
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
// message from the same source per logInterval; the next one let through
// says how many were suppressed. Info and debug records pass untouched.
//
// The source is the logger's own attributes (With: component, bridge,
// driver, device) and the record's device, bridge and listener: when a cut
// RS-485 cable takes six meters offline at once, all six say so. Other
// attributes (topics, client ids, errors) stay out of the key, so that a
// flood of distinct topics is still one flood.
type rateLimited struct {
	next  slog.Handler
	state *rateState
	now   func() time.Time
	scope string // the attributes and groups added by With and WithGroup
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
	key := h.key(r)
	now := h.now()
	h.state.mu.Lock()
	e := h.state.seen[key]
	if e == nil || now.Sub(e.start) >= logInterval {
		if e == nil {
			if len(h.state.seen) > 10000 {
				h.state.seen = map[string]*rateEntry{} // bound memory under pathological messages
			}
			e = &rateEntry{}
			h.state.seen[key] = e
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

// key names a record's kind: its source and message.
func (h *rateLimited) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(h.scope)
	b.WriteByte(0)
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		// The attributes that name where a record comes from. Their values
		// come from the configuration, so the keys they make are bounded.
		switch a.Key {
		case "device", "bridge", "listener":
			b.WriteByte(0)
			b.WriteString(a.Key)
			b.WriteByte('=')
			b.WriteString(a.Value.String())
		}
		return true
	})
	return b.String()
}

func (h *rateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	scope := h.scope
	for _, a := range as {
		scope += " " + a.String()
	}
	return &rateLimited{next: h.next.WithAttrs(as), state: h.state, now: h.now, scope: scope}
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	return &rateLimited{next: h.next.WithGroup(name), state: h.state, now: h.now, scope: h.scope + " " + name + "."}
}
