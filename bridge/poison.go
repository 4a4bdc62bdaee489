package bridge

import (
	"sync/atomic"
	"time"
)

// healthySession is how long a session that delivered nothing must last
// for the reconnect backoff to start again from reconnect.min.
const healthySession = time.Minute

// stuckAfter is how many sessions in a row must end without any
// acknowledgement, each having sent the same record first, before the
// bridge reports delivery as stuck behind that record.
const stuckAfter = 3

// headOfLine notices a record that ends every connection it is sent on. A
// cloud that refuses a message by disconnecting (a packet over its size
// limit, a topic its policy denies) gets it first at every reconnect, and
// nothing behind it is delivered. The bridge cannot tell that from a link
// that fails whenever anything is sent, so it never drops the record: it
// reports it (log, /api/status, metric) with its topic and size, so that
// the operator can raise the cloud's limit, allow the topic, or set
// max_payload below the record's size, which makes the sender drop it.
//
// Run's goroutine owns seq and count; the sender sets first.
type headOfLine struct {
	first atomic.Pointer[Stuck] // the first record the session handed to paho
	seq   uint64                // the record sent first in the sessions counted
	count int                   // those sessions, in a row
}

// Stuck is the record delivery waits behind, for /api/status.
type Stuck struct {
	Seq   uint64 `json:"seq"`
	Topic string `json:"topic"`
	Bytes int    `json:"bytes"`
	// Connections is how many connections in a row ended without any
	// acknowledgement after it was sent first.
	Connections int       `json:"connections"`
	Since       time.Time `json:"since"`
}

// start readies a session.
func (h *headOfLine) start() { h.first.Store(nil) }

// sent notes a message handed to paho: its first record, remote topic and
// payload size.
func (h *headOfLine) sent(seq uint64, topic string, bytes int) {
	if h.first.Load() == nil {
		h.first.CompareAndSwap(nil, &Stuck{Seq: seq, Topic: topic, Bytes: bytes})
	}
}

// ended judges a session: connected says the cloud accepted it, acked
// that it acknowledged anything, cursor is the buffer's cursor after it.
// It returns the record delivery is stuck behind, or nil.
func (h *headOfLine) ended(connected, acked bool, cursor uint64, now time.Time) *Stuck {
	if !connected {
		return nil // nothing was sent: no evidence either way
	}
	first := h.first.Load()
	switch {
	case acked || first == nil || first.Seq != cursor:
		h.seq, h.count = 0, 0
		return nil
	case first.Seq == h.seq:
		h.count++
	default:
		h.seq, h.count = first.Seq, 1
	}
	if h.count < stuckAfter {
		return nil
	}
	s := *first
	s.Connections, s.Since = h.count, now
	return &s
}
