package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		first, limit time.Duration
		n            int
		want         time.Duration
	}{
		{s, 30 * s, 0, s},
		{s, 30 * s, 1, s},
		{s, 30 * s, 2, 2 * s},
		{s, 30 * s, 5, 16 * s},
		{s, 30 * s, 6, 30 * s},
		{s, 30 * s, 1 << 30, 30 * s},
		{100 * time.Millisecond, 10 * s, 8, 10 * s},
		// Doubling never overflows, however long the limit.
		{24 * time.Hour, 1<<63 - 1, 100, 1<<63 - 1},
		{2 * s, s, 1, s},
	} {
		if got := Delay(c.first, c.limit, c.n); got != c.want {
			t.Errorf("Delay(%s, %s, %d) = %s, want %s", c.first, c.limit, c.n, got, c.want)
		}
	}
}
