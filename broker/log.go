package broker

import (
	"context"
	"log/slog"
)

// mochiHandler hands mochi's records to the gateway's handler with Info
// lowered to Debug: mochi narrates every hook, listener and start/stop step
// at Info, which would bury the gateway's own start-up lines. Warnings and
// errors pass unchanged.
type mochiHandler struct{ h slog.Handler }

func quiet(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

func (m mochiHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, quiet(l))
}

func (m mochiHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = quiet(r.Level)
	return m.h.Handle(ctx, r)
}

func (m mochiHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return mochiHandler{m.h.WithAttrs(attrs)}
}

func (m mochiHandler) WithGroup(name string) slog.Handler {
	return mochiHandler{m.h.WithGroup(name)}
}
