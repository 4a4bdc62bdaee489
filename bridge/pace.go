package bridge

import (
	"context"
	"math"
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

// limiter keeps a connection within max_rate messages a second and
// max_byte_rate bytes a second over any sliding window, not on average:
// a cloud that counts per second never sees more from the bridge. Within
// the second, messages are spread out: no tenth of a second carries more
// than a tenth of max_rate (rounded up), so a backlog does not leave as
// one burst a second that jitter on the way could push into the cloud's
// previous second. Bytes are not spread, which would hold back batches
// larger than a tenth of max_byte_rate; a message larger than
// max_byte_rate goes alone once the window is empty. A nil limiter does
// not limit.
type limiter struct {
	mu    sync.Mutex
	msgs  [2]window // one second, and a tenth of it
	bytes window    // one second
	// heldMsgs and heldBytes count the sends that waited for max_rate and
	// for max_byte_rate: the tests' proof that a case reached the limits.
	heldMsgs, heldBytes uint64
}

// window is a sliding-window budget: at most limit units in any span.
type window struct {
	limit float64 // 0: no limit
	span  time.Duration
	sends []spent // oldest first, from head
	head  int
	sum   float64
}

type spent struct {
	at time.Time
	n  float64
}

// maxWindowSends caps the sends a message window remembers: above it,
// the window shrinks below a second with the same rate.
const maxWindowSends = 10000

// spread is the share of a second in which a tenth of the rate may go.
const spread = 10

func newLimiter(rate, byteRate float64) *limiter {
	if rate <= 0 && byteRate <= 0 {
		return nil
	}
	l := &limiter{}
	if rate > 0 {
		n := min(math.Ceil(rate), maxWindowSends)
		l.msgs[0] = window{limit: n, span: time.Duration(n / rate * float64(time.Second))}
		l.msgs[1] = window{limit: math.Ceil(rate / spread), span: time.Second / spread}
	}
	if byteRate > 0 {
		l.bytes = window{limit: byteRate, span: time.Second}
	}
	return l
}

// expire forgets sends that left the window.
func (w *window) expire(now time.Time) {
	for w.head < len(w.sends) && now.Sub(w.sends[w.head].at) >= w.span {
		w.sum -= w.sends[w.head].n
		w.head++
	}
	if w.head == len(w.sends) {
		w.sends, w.head, w.sum = w.sends[:0], 0, 0
	} else if w.head > 1024 && 2*w.head > len(w.sends) {
		k := copy(w.sends, w.sends[w.head:])
		w.sends, w.head = w.sends[:k], 0
	}
}

// room reports when n more units fit: the zero time when they fit now.
func (w *window) room(n float64) time.Time {
	if w.limit == 0 || w.sum+n <= w.limit || w.sum == 0 {
		return time.Time{}
	}
	sum := w.sum
	for i := w.head; i < len(w.sends); i++ {
		sum -= w.sends[i].n
		if sum+n <= w.limit || sum == 0 {
			return w.sends[i].at.Add(w.span)
		}
	}
	return time.Time{}
}

func (w *window) spend(now time.Time, n float64) {
	if w.limit == 0 {
		return
	}
	w.sends = append(w.sends, spent{at: now, n: n})
	w.sum += n
}

// wait takes one message of size bytes from the budget, waiting until it
// fits or ctx ends.
func (l *limiter) wait(ctx context.Context, size int) error {
	if l == nil {
		return ctx.Err()
	}
	waited := false
	for {
		l.mu.Lock()
		now := time.Now()
		var at time.Time
		var msgs, bytes bool
		for i := range l.msgs {
			l.msgs[i].expire(now)
			if t := l.msgs[i].room(1); !t.IsZero() {
				msgs = true
				at = later(at, t)
			}
		}
		l.bytes.expire(now)
		if t := l.bytes.room(float64(size)); !t.IsZero() {
			bytes = true
			at = later(at, t)
		}
		if msgs && !waited {
			l.heldMsgs++
		}
		if bytes && !waited {
			l.heldBytes++
		}
		waited = waited || msgs || bytes
		if at.IsZero() {
			for i := range l.msgs {
				l.msgs[i].spend(now, 1)
			}
			l.bytes.spend(now, float64(size))
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		t := time.NewTimer(at.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// held returns how many sends waited for max_rate and for max_byte_rate.
func (l *limiter) held() (msgs, bytes uint64) {
	if l == nil {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldMsgs, l.heldBytes
}
