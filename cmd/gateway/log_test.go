package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedErrorsRateLimited(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	h := &rateLimited{next: slog.NewTextHandler(&out, nil), state: &rateState{seen: map[string]*rateEntry{}}, now: func() time.Time { return now }}
	log := slog.New(h).With("device", "boiler")
	for range 100 {
		log.Error("read failed", "err", "timeout")
		log.Info("poll")
	}
	if got := strings.Count(out.String(), "read failed"); got != logBurst {
		t.Errorf("%d errors logged in one window, want %d", got, logBurst)
	}
	if got := strings.Count(out.String(), "msg=poll"); got != 100 {
		t.Errorf("info records were limited: %d", got)
	}
	now = now.Add(logInterval)
	out.Reset()
	log.Error("read failed", "err", "timeout")
	if !strings.Contains(out.String(), "suppressed_before=95") {
		t.Errorf("next window does not report the suppressed count: %s", out.String())
	}
}
