package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/mappings"
)

// Store implements broker.Store: a message that matches an out-route (the
// first that matches, in configuration order) is encoded with its remote
// topic and the route's QoS and appended to the buffer, waiting for the
// buffer's sync mode when durable. Messages the bridge itself injected
// (in-routes) are skipped, so nothing is echoed back to the cloud.
//
// A QoS 0 message with buffer_qos0 false is not buffered: it is queued
// for the connected session and dropped (and counted) when there is none.
// Messages that can never be sent (a payload over max_payload, a remote
// topic over 65535 bytes, a record over max_bytes) and those refused by a
// full drop_newest buffer are counted and accepted, since refusing them
// would make the publisher send them again forever. Any other buffer
// failure is returned, and the broker then disconnects the publisher
// without its PUBACK.
func (b *Bridge) Store(ctx context.Context, m broker.Message, durable bool) error {
	if m.Origin == b.origin {
		return nil
	}
	r := b.outRoute(m.Topic)
	if r == nil {
		return nil
	}
	remote := r.prefix + m.Topic
	if b.comesBack(remote) {
		// An in-route subscribes to this remote topic: the cloud would send
		// the message straight back and it would be injected locally a
		// second time (a local /set command applied twice). The in-route
		// makes that namespace cloud-to-local, so it is not sent up.
		b.st.looped.Add(1)
		return nil
	}
	if len(m.Payload) > b.maxPayload {
		// The cloud would refuse it at every attempt. The sender checks
		// again, for records buffered under a larger max_payload.
		b.oversize(m.Topic, len(m.Payload), b.maxPayload)
		return nil
	}
	if m.QoS == 0 && !b.bufferQoS0 {
		b.queueLive(remote, m)
		return nil
	}
	t := m.Time
	if t.IsZero() {
		t = b.now()
	}
	bp := b.recordBuf()
	rec, err := appendRecord((*bp)[:0], remote, r.qos, m.Retain, t, m.Payload)
	if err == nil {
		if durable {
			err = b.buf.Append(ctx, rec)
		} else {
			err = b.buf.AppendAsync(rec)
		}
	} else {
		err = fmt.Errorf("%w: remote topic %v", errUnsendable, err)
	}
	b.putRecordBuf(bp, rec)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, buffer.ErrFull):
		return nil // drop_newest: the buffer counts and reports it
	case errors.Is(err, buffer.ErrTooLarge) || errors.Is(err, errUnsendable):
		b.st.unsendable.Add(1)
		if n, ok := b.logs.unsendable.allow("", time.Now()); ok {
			b.log.Warn("bridge: dropping a message that cannot be sent", "topic", m.Topic, "bytes", len(m.Payload), "err", err, "suppressed", n)
		}
		return nil
	}
	b.st.storeErrors.Add(1)
	return fmt.Errorf("bridge %s: %w", b.name, err)
}

// comesBack reports whether one of the bridge's in-routes subscribes to
// the remote topic.
func (b *Bridge) comesBack(remote string) bool {
	for i := range b.in {
		if mappings.MatchFilter(b.in[i].filter, remote) {
			return true
		}
	}
	return false
}

// errUnsendable marks a message the record format cannot hold.
var errUnsendable = errors.New("cannot be sent")

func (b *Bridge) outRoute(topic string) *outRoute {
	for i := range b.out {
		if mappings.MatchFilter(b.out[i].filter, topic) {
			return &b.out[i]
		}
	}
	return nil
}

// queueLive hands an unbuffered QoS 0 message to the session without
// waiting: Store runs in the publishing client's read loop.
func (b *Bridge) queueLive(topic string, m broker.Message) {
	if mappings.ValidTopicName(topic) != nil || !b.status.isConnected() {
		b.st.liveDropped.Add(1)
		return
	}
	select {
	case b.live <- liveMsg{topic: topic, payload: bytes.Clone(m.Payload), retain: m.Retain}:
	default:
		b.st.liveDropped.Add(1)
	}
}

func (b *Bridge) recordBuf() *[]byte {
	if p, ok := b.recs.Get().(*[]byte); ok {
		return p
	}
	return new([]byte)
}

func (b *Bridge) putRecordBuf(p *[]byte, rec []byte) {
	if cap(rec) > 64<<10 {
		return // let large one-off buffers go
	}
	*p = rec[:0]
	b.recs.Put(p)
}

// receive handles a message from the cloud, in paho's receive goroutine,
// in arrival order. It injects into the local broker, which never waits,
// so it does not hold up paho (whose PUBACKs to the bridge's own
// publishes are read by the same connection).
//
// The first in-route whose filter matches picks strip_prefix. With
// local_user set, the local topic must be one that user may publish to;
// without it, the in-route filters are the only limit, as for a client of
// a loopback listener. Topics starting with '$' are never injected.
func (b *Bridge) receive(_ paho.Client, m paho.Message) {
	b.st.inReceived.Add(1)
	topic := m.Topic()
	var route *inRoute
	for i := range b.in {
		if mappings.MatchFilter(b.in[i].filter, topic) {
			route = &b.in[i]
			break
		}
	}
	local, reason := "", ""
	switch {
	case route == nil:
		reason = "matches no in-route"
	case !strings.HasPrefix(topic, route.strip):
		reason = "does not start with strip_prefix " + route.strip
	default:
		local = topic[len(route.strip):]
		switch {
		case mappings.ValidTopicName(local) != nil:
			reason = "is not a valid topic after strip_prefix"
		case strings.HasPrefix(local, "$"):
			reason = "would inject into a $ topic"
		case b.cfg.LocalUser != "" && !b.local.Allowed(b.cfg.LocalUser, local):
			reason = "local_user may not publish to the local topic"
		}
	}
	if reason != "" {
		b.st.inRefused.Add(1)
		// One limiter for every refusal: the reasons alternate when
		// several in-routes misbehave, and the topic is an attribute.
		if n, ok := b.logs.inRefused.allow("", time.Now()); ok {
			b.log.Warn("bridge: refused a message from the cloud", "topic", topic, "local_topic", local, "reason", reason, "suppressed", n)
		}
		return
	}
	if err := b.local.PublishAs(b.name, local, m.Payload(), m.Retained(), m.Qos()); err != nil {
		b.st.inFailed.Add(1)
		if n, ok := b.logs.inFailed.allow("", time.Now()); ok {
			b.log.Warn("bridge: cannot inject a message from the cloud", "topic", local, "err", err, "suppressed", n)
		}
		return
	}
	b.st.inInjected.Add(1)
}
