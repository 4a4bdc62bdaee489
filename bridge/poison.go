package bridge

import (
	"sync/atomic"
	"time"
)

// healthySession is how long a session that delivered nothing must last
// for the reconnect backoff to start again from reconnect.min.
const healthySession = time.Minute

// suspectAfter is how many sessions in a row must end without any
// acknowledgement, each after sending the same first record, before that
// record is held back to test it.
const suspectAfter = 3

// headOfLine finds a record that ends every connection it is sent on: a
// cloud that refuses a message by disconnecting (over its packet size, a
// topic its policy denies) would otherwise get it first at every
// reconnect, and nothing behind it would ever be delivered.
//
// A session that ends without any acknowledgement after sending the record
// at the buffer's cursor first counts against that record. After
// suspectAfter such sessions in a row, the next session holds the record
// back (the suspect) and sends the records after it. If the cloud
// acknowledges one of them, the suspect is dropped: logged with its topic
// and size and counted as unsendable. If that session too ends without any
// acknowledgement, the link is at fault, not the record, and the suspicion
// ends; nothing was dropped.
//
// Run's goroutine updates it between sessions; during a session the sender
// and the collector only read suspect.
type headOfLine struct {
	cursor  uint64 // the record sent first in the last sessions without an acknowledgement
	count   int    // those sessions in a row
	suspect uint64 // held back in the coming session; 0 for none

	// first is the first record the session handed to paho.
	first atomic.Uint64
	// held is the suspect as the sender read it, for the drop's log line.
	held atomic.Pointer[heldRecord]
	// dropped says the collector dropped the suspect in this session.
	dropped atomic.Bool
}

type heldRecord struct {
	seq   uint64
	topic string
	bytes int
}

// start readies a session.
func (h *headOfLine) start() {
	h.first.Store(0)
	h.held.Store(nil)
	h.dropped.Store(false)
}

// sent notes the records of a message handed to paho.
func (h *headOfLine) sent(seq uint64) { h.first.CompareAndSwap(0, seq) }

// ended judges a session: connected says the cloud accepted it, acked
// that it acknowledged anything, cursor is the buffer's cursor after it.
// It reports whether the next session holds a suspect back.
func (h *headOfLine) ended(connected, acked bool, cursor uint64) bool {
	first := h.first.Load()
	switch {
	case !connected:
		return h.suspect != 0 // nothing was sent: no evidence either way
	case acked || h.suspect != 0:
		// Delivery works, or the suspect was dropped, or it was held
		// back and still nothing came through: not the record's fault.
		h.cursor, h.count, h.suspect = 0, 0, 0
		return false
	case first == 0 || first != cursor:
		h.cursor, h.count = 0, 0 // the record at the cursor was not sent
		return false
	case first == h.cursor:
		h.count++
	default:
		h.cursor, h.count = first, 1
	}
	if h.count >= suspectAfter {
		h.suspect, h.count = h.cursor, 0
	}
	return h.suspect != 0
}

// dropRefused adds the held-back suspect, once, to the records of a message
// the cloud acknowledged: the cloud takes what follows the suspect, so the
// suspect itself is what ended every connection.
func (b *Bridge) dropRefused(seqs []uint64) []uint64 {
	held := b.hol.held.Load()
	if held == nil || !b.hol.dropped.CompareAndSwap(false, true) {
		return seqs
	}
	b.st.unsendable.Add(1)
	b.log.Error("bridge: dropping a message the cloud refuses: every connection ended once it was sent, and the cloud takes the messages after it",
		"seq", held.seq, "topic", held.topic, "bytes", held.bytes, "connections", suspectAfter)
	return append(seqs[:len(seqs):len(seqs)], held.seq)
}
