package bridge

import (
	"container/heap"
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fieldbridge/gateway/mappings"
)

// A batch is one MQTT message that carries many buffered messages, packed
// when they are sent: a JSON array with one object per message, in buffer
// order,
//
//	[{"topic": "sites/a/gw1/boiler/temperature", "ts": "2026-11-25T19:00:00.120Z", "payload": {"value": 21.5}},
//	 {"topic": "sites/a/gw1/serial/line", "ts": "2026-11-25T19:00:00.130Z", "payload_b64": "AAEC"}]
//
// "topic" is the message's remote topic, "ts" when the local broker
// accepted it, and "payload" the payload itself when it is valid UTF-8
// JSON, otherwise "payload_b64", its standard base64. A batch is never
// retained. Its records leave the buffer when the cloud acknowledged the
// batch (the tracker below), so a lost batch is sent again whole.

// batchRoute is the batch settings of an out-route.
type batchRoute struct {
	topic       string // the batches' topic; "" means each remote topic's own
	maxMessages int
	maxBytes    int
	maxDelay    time.Duration
}

// maxOpenBytes bounds what open batches hold together, so that batching
// by remote topic over many topics cannot hold a large part of the
// backlog in memory: past it, the oldest open batch is sent early.
const maxOpenBytes = 8 << 20

// maxOpenSpan bounds how many records an open batch may hold the buffer's
// cursor back by: a rare topic's batch waiting for max_delay while others
// flow would otherwise keep everything after it from being acknowledged
// (and resent after a crash). Past it, that batch is sent early.
const maxOpenSpan = 100_000

// batchKey names an open batch: there is one per topic and QoS.
type batchKey struct {
	topic string
	qos   byte
}

// openBatch is a batch being filled.
type openBatch struct {
	batchKey
	route    *batchRoute
	buf      []byte // "[" and the elements so far, comma separated
	seqs     []uint64
	deadline time.Time

	prev, next *openBatch // in the order batches were opened
	at         int        // index in the batcher's deadline heap
}

// size is the payload's size once closed with "]".
func (o *openBatch) size() int { return len(o.buf) + 1 }

// batcher holds the open batches of one session. Every record costs the
// same however many batches are open (one per remote topic, batching by
// remote topic over many topics): they are found by key, listed in the
// order they were opened (the first holds the oldest record), and kept
// in a heap by deadline.
type batcher struct {
	open           map[batchKey]*openBatch
	oldest, newest *openBatch
	byDeadline     deadlineHeap
	bytes          int
	elem           []byte
}

// element encodes one buffered message as an element of a batch.
func (bt *batcher) element(r record) []byte {
	e := append(bt.elem[:0], `{"topic":`...)
	e = mappings.AppendJSONString(e, r.topic)
	e = append(e, `,"ts":"`...)
	e = mappings.AppendTimestamp(e, r.time)
	if utf8.Valid(r.payload) && json.Valid(r.payload) {
		e = append(e, `","payload":`...)
		e = append(e, r.payload...)
	} else {
		e = append(e, `","payload_b64":"`...)
		e = base64.StdEncoding.AppendEncode(e, r.payload)
		e = append(e, '"')
	}
	e = append(e, '}')
	bt.elem = e
	return e
}

// add puts an encoded element into the batch for topic, opening one when
// needed. It returns the batches that must be sent before the element
// fits, and after it when they are full: at most three, in sending order.
// The element must fit into an empty batch of the route.
func (bt *batcher) add(route *batchRoute, topic string, qos byte, elem []byte, seq uint64, now time.Time) []*openBatch {
	var ready []*openBatch
	key := batchKey{topic, qos}
	o := bt.open[key]
	if o != nil && o.size()+1+len(elem) > route.maxBytes {
		ready = append(ready, bt.remove(o))
		o = nil
	}
	opening := o == nil
	if opening {
		for bt.bytes+len(elem) > maxOpenBytes && bt.oldest != nil {
			ready = append(ready, bt.remove(bt.oldest))
		}
		o = &openBatch{batchKey: key, route: route, buf: []byte{'['}, deadline: now.Add(route.maxDelay)}
	} else {
		o.buf = append(o.buf, ',')
	}
	o.buf = append(o.buf, elem...)
	o.seqs = append(o.seqs, seq)
	bt.bytes += 1 + len(elem)
	if opening {
		bt.insert(o)
	}
	if len(o.seqs) >= route.maxMessages || o.size() >= route.maxBytes {
		ready = append(ready, bt.remove(o))
	}
	for bt.oldest != nil && seq-bt.oldest.seqs[0] >= maxOpenSpan {
		ready = append(ready, bt.remove(bt.oldest))
	}
	return ready
}

// due removes and returns the batches whose max_delay has passed, the
// earliest deadline first.
func (bt *batcher) due(now time.Time) []*openBatch {
	var ready []*openBatch
	for len(bt.byDeadline) > 0 && !now.Before(bt.byDeadline[0].deadline) {
		ready = append(ready, bt.remove(bt.byDeadline[0]))
	}
	return ready
}

// deadline is when the next open batch is due.
func (bt *batcher) deadline() (time.Time, bool) {
	if len(bt.byDeadline) == 0 {
		return time.Time{}, false
	}
	return bt.byDeadline[0].deadline, true
}

// insert adds o, just opened with its first record, as the newest batch.
func (bt *batcher) insert(o *openBatch) {
	if bt.open == nil {
		bt.open = map[batchKey]*openBatch{}
	}
	bt.open[o.batchKey] = o
	o.prev = bt.newest
	if bt.newest != nil {
		bt.newest.next = o
	} else {
		bt.oldest = o
	}
	bt.newest = o
	heap.Push(&bt.byDeadline, o)
}

// remove closes o with "]" and returns it.
func (bt *batcher) remove(o *openBatch) *openBatch {
	delete(bt.open, o.batchKey)
	if o.prev != nil {
		o.prev.next = o.next
	} else {
		bt.oldest = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else {
		bt.newest = o.prev
	}
	o.prev, o.next = nil, nil
	heap.Remove(&bt.byDeadline, o.at)
	bt.bytes -= len(o.buf)
	o.buf = append(o.buf, ']')
	return o
}

// deadlineHeap orders open batches by deadline, then by their oldest
// record (the order they were opened), for container/heap.
type deadlineHeap []*openBatch

func (h deadlineHeap) Len() int { return len(h) }

func (h deadlineHeap) Less(i, j int) bool {
	if c := h[i].deadline.Compare(h[j].deadline); c != 0 {
		return c < 0
	}
	return h[i].seqs[0] < h[j].seqs[0]
}

func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}

func (h *deadlineHeap) Push(x any) {
	o := x.(*openBatch)
	o.at = len(*h)
	*h = append(*h, o)
}

func (h *deadlineHeap) Pop() any {
	old := *h
	o := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return o
}

// tracker knows which records read in a session the cloud has
// acknowledged, so the buffer's cursor moves past a record only when it
// and every record before it were acknowledged, even though batches for
// different topics are acknowledged out of buffer order. The sender adds
// records as it reads them; the collector finishes them.
type tracker struct {
	mu   sync.Mutex
	base uint64 // sequence number of done[head]
	done []bool
	head int
}

// add notes a record just read. Sequence numbers skipped since the last
// one were dropped from the buffer and count as done.
func (t *tracker) add(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head == len(t.done) {
		t.base, t.done, t.head = seq, t.done[:0], 0
	}
	for next := t.base + uint64(len(t.done)-t.head); next < seq; next++ {
		t.done = append(t.done, true)
	}
	t.done = append(t.done, false)
}

// finish marks records acknowledged and returns the new cursor, the first
// record not yet acknowledged, and whether it moved.
func (t *tracker) finish(seqs ...uint64) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range seqs {
		if i := t.head + int(s-t.base); s >= t.base && i < len(t.done) {
			t.done[i] = true
		}
	}
	moved := false
	for t.head < len(t.done) && t.done[t.head] {
		t.head++
		t.base++
		moved = true
	}
	if t.head > 4096 && t.head*2 > len(t.done) {
		n := copy(t.done, t.done[t.head:])
		t.done, t.head = t.done[:n], 0
	}
	return t.base, moved
}
