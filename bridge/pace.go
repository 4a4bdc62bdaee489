package bridge

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// backoff spaces connection attempts: the delay is drawn uniformly between
// min and a ceiling that doubles after each failure up to max ("full
// jitter", so that many gateways coming back after a cloud outage do not
// reconnect in step), and the ceiling falls back to min after a
// successful connection.
type backoff struct {
	min, max time.Duration
	ceil     time.Duration
	rnd      *rand.Rand
}

func newBackoff(lo, hi time.Duration) *backoff {
	return &backoff{min: lo, max: hi, ceil: lo, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// next returns the delay before the next attempt and raises the ceiling.
// limit, when positive, caps the delay: a refused or unreachable TCP
// connection costs the cloud nothing, so those are retried at most limit
// apart, and the backlog starts flowing soon after the cloud is back.
func (b *backoff) next(limit time.Duration) time.Duration {
	ceil := b.ceil
	b.ceil = min(2*b.ceil, b.max)
	if limit > 0 {
		ceil = min(ceil, max(limit, b.min))
	}
	if ceil <= b.min {
		return b.min
	}
	return b.min + time.Duration(b.rnd.Int64N(int64(ceil-b.min)+1))
}

// reset starts the delays again from min.
func (b *backoff) reset() { b.ceil = b.min }

// limiter is a token bucket that paces sends to max_rate messages a
// second, with bursts of at most a tenth of a second's worth. A nil
// limiter does not limit.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return nil
	}
	burst := max(1, rate/10)
	return &limiter{rate: rate, burst: burst, tokens: burst}
}

// wait takes one token, waiting until there is one or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		now := time.Now()
		if !l.last.IsZero() {
			l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		}
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		t := time.NewTimer(need)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
