package main

import (
	"bytes"
	"fmt"
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

// A warning from one device or bridge must not use up another's share: six
// meters going offline together all say so, while one device's flood is
// still one flood whatever its other attributes.
func TestRateLimitPerSource(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	h := &rateLimited{next: slog.NewTextHandler(&out, nil), state: &rateState{seen: map[string]*rateEntry{}}, now: func() time.Time { return now }}
	root := slog.New(h)
	for i := range 6 {
		root.Warn("device offline", "device", fmt.Sprintf("meter%d", i), "err", "timeout")
	}
	for i := range 6 {
		root.With("bridge", fmt.Sprintf("cloud%d", i)).Warn("bridge: cannot connect", "err", "refused")
	}
	for _, g := range []string{"a", "b"} {
		root.WithGroup(g).With("bridge", "x").Warn("grouped")
	}
	for i := range 20 {
		root.Warn("command rejected", "device", "meter0", "topic", fmt.Sprintf("gw/meter0/p%d/set", i))
	}
	text := out.String()
	for i := range 6 {
		if !strings.Contains(text, fmt.Sprintf("msg=\"device offline\" device=meter%d", i)) {
			t.Errorf("offline of meter%d suppressed by the others:\n%s", i, text)
		}
		if !strings.Contains(text, fmt.Sprintf("bridge=cloud%d", i)) {
			t.Errorf("bridge cloud%d suppressed by the others:\n%s", i, text)
		}
	}
	if got := strings.Count(text, "msg=grouped"); got != 2 {
		t.Errorf("%d grouped records, want 2: groups are part of the source", got)
	}
	if got := strings.Count(text, "command rejected"); got != logBurst {
		t.Errorf("%d rejections of one device on distinct topics logged, want %d", got, logBurst)
	}
}
