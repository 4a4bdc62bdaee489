package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMochiHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newMochiHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("library", "mochi")
	log.Info("attached listener")
	for range 1000 {
		log.Warn("client store quota reached", "client", "c1")
	}
	log.Warn("another warning")
	log.Error("an error")
	out := buf.String()
	if strings.Contains(out, "attached listener") {
		t.Error("mochi's Info reached an Info logger")
	}
	if n := strings.Count(out, "client store quota reached"); n != 1 {
		t.Errorf("a repeated warning was logged %d times in a burst, want once", n)
	}
	for _, want := range []string{"another warning", "an error", "library=mochi"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
