package bridge

import (
	"sync/atomic"
	"time"
)

// healthySession is how long a session that delivered nothing must last
// for the reconnect backoff to start again from reconnect.min.
const healthySession = time.Minute

// stuckAfter is how many sessions in a row must end, with the buffer's
// cursor where it was, while waiting for the same message's
// acknowledgement, before the bridge reports delivery as stuck behind it.
const stuckAfter = 3

// headOfLine notices a message that ends every connection it is sent on. A
// cloud that refuses a message by disconnecting (a packet over its size
// limit, a topic its policy denies) gets it again at every reconnect, and
// the buffer's cursor never passes it. The bridge cannot tell that from a
// link that fails whenever anything is sent, so it never drops the
// message: it reports it (log, /api/status, metric) with its topic and
// size, so that the operator can raise the cloud's limit, allow the topic,
// or set max_payload below the message's size, which makes the sender drop
// it.
//
// The message is the one the collector waited on when the connection
// ended: the first sent and not acknowledged. Run's goroutine owns seq and
// count.
type headOfLine struct {
	blocked atomic.Pointer[Stuck] // set by the collector when the session ends
	seq     uint64                // the message of the sessions counted (its first record)
	count   int                   // those sessions, in a row
}

// Stuck is the message delivery waits behind, for /api/status.
type Stuck struct {
	Seq   uint64 `json:"seq"` // its first record's sequence number
	Topic string `json:"topic"`
	Bytes int    `json:"bytes"`
	// Connections is how many connections in a row ended waiting for its
	// acknowledgement, with the backlog not moving.
	Connections int       `json:"connections"`
	Since       time.Time `json:"since"`
}

// start readies a session.
func (h *headOfLine) start() { h.blocked.Store(nil) }

// waitedOn notes the message the collector waited on when the session
// ended.
func (h *headOfLine) waitedOn(p pending) {
	h.blocked.Store(&Stuck{Seq: p.first(), Topic: p.topic, Bytes: p.bytes})
}

// ended judges a session: connected says the cloud accepted it, moved
// that the buffer's cursor moved during it. It returns the message delivery
// is stuck behind, or nil.
func (h *headOfLine) ended(connected, moved bool, now time.Time) *Stuck {
	if !connected {
		return nil // nothing was sent: no evidence either way
	}
	b := h.blocked.Load()
	switch {
	case moved || b == nil:
		h.seq, h.count = 0, 0
		return nil
	case b.Seq == h.seq:
		h.count++
	default:
		h.seq, h.count = b.Seq, 1
	}
	if h.count < stuckAfter {
		return nil
	}
	s := *b
	s.Connections, s.Since = h.count, now
	return &s
}
