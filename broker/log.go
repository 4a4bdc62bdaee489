package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// mochiHandler hands mochi's records to the gateway's handler with Info
// lowered to Debug, because mochi narrates every hook, listener and
// start/stop step at Info, and with each warning limited to one a second:
// mochi warns once per message dropped for a full client queue, which
// under load is thousands of lines a second.
type mochiHandler struct {
	h  slog.Handler
	rl *rateLimit // shared by the handlers WithAttrs and WithGroup derive
}

func newMochiHandler(h slog.Handler) mochiHandler {
	return mochiHandler{h: h, rl: &rateLimit{last: map[string]time.Time{}, suppressed: map[string]int{}}}
}

func quiet(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// Enabled asks the gateway handler about the lowered level.
func (m mochiHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, quiet(l))
}

// Handle lowers Info, rate-limits warnings and passes the record on.
func (m mochiHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = quiet(r.Level)
	if r.Level >= slog.LevelWarn {
		suppressed, ok := m.rl.allow(r.Message, r.Time)
		if !ok {
			return nil
		}
		if suppressed > 0 {
			r.AddAttrs(slog.Int("suppressed", suppressed))
		}
	}
	return m.h.Handle(ctx, r)
}

// WithAttrs keeps the level mapping and the shared rate limit.
func (m mochiHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return mochiHandler{m.h.WithAttrs(attrs), m.rl}
}

// WithGroup keeps the level mapping and the shared rate limit.
func (m mochiHandler) WithGroup(name string) slog.Handler {
	return mochiHandler{m.h.WithGroup(name), m.rl}
}

// rateLimit lets one record per message text through each second and
// counts the rest. mochi's messages are constant strings, so the maps stay
// small.
type rateLimit struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a record with this message may be logged at t, and
// how many were suppressed since the last one logged.
func (rl *rateLimit) allow(msg string, t time.Time) (suppressed int, ok bool) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if last, seen := rl.last[msg]; seen && t.Sub(last) < time.Second && t.Sub(last) >= 0 {
		rl.suppressed[msg]++
		return 0, false
	}
	rl.last[msg] = t
	suppressed = rl.suppressed[msg]
	delete(rl.suppressed, msg)
	return suppressed, true
}
