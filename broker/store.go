package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// StatusOrigin is the PublishAs origin of the gateway's own status
// messages ("online"/"offline"): they are never handed to stores, so a
// bridge does not queue a stale "offline" for the cloud.
const StatusOrigin = "status"

// Message is what a Store receives: one publish as the broker accepted it.
type Message struct {
	Topic string
	// Payload is the broker's own: valid during Store, never to be
	// changed, and copied by a store that keeps it afterwards.
	Payload []byte
	QoS     byte
	Retain  bool
	// Origin is the publisher's client id: InlineOrigin(name) for
	// PublishAs(name, ...), "inline" for Publish.
	Origin string
	// Inline is true for messages published by the gateway itself
	// (Publish, PublishAs) rather than by a network client.
	Inline bool
	// Time is when the broker accepted the message.
	Time time.Time
}

// Store receives the messages published to the broker before they are
// acknowledged: a bridge's buffer is one.
type Store interface {
	// Store appends m if it matches one of the store's routes and did not
	// come from the store's own origin. With durable, it returns only once
	// m is stored as its sync mode promises: the broker then answers a
	// network QoS 1/2 publish with its PUBACK (or PUBREC). Without durable
	// (inline publishes and QoS 0) it appends without waiting for a sync.
	// An error refuses the message: the publishing client is disconnected
	// without its PUBACK, so it publishes the message again later.
	Store(ctx context.Context, m Message, durable bool) error
}

// storeHook hands every publish to one store inside mochi's OnPublish,
// which runs in the publishing client's read loop before the PUBACK is
// written: when OnPublish returns, the message is stored. AddStore adds one
// hook per store, so the broker keeps no list of its own.
type storeHook struct {
	mqtt.HookBase
	server *mqtt.Server
	log    *slog.Logger
	store  Store

	ctx    context.Context // ends when the broker closes: unblocks a waiting Store
	cancel context.CancelFunc

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// storeErrLogInterval bounds how often store failures are logged: a full
// disk fails every publish of every client.
const storeErrLogInterval = 5 * time.Second

// ID names the hook in mochi's logs.
func (h *storeHook) ID() string { return "fieldbridge-store" }

// Provides tells mochi which callbacks the hook implements.
func (h *storeHook) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnWillSent }

// Stop is called by mochi when the broker closes.
func (h *storeHook) Stop() error {
	h.cancel()
	return nil
}

// OnPublish hands pk to the store. A failed durable store disconnects the
// client and rejects the packet: mochi answers any other OnPublish error
// from an MQTT 3.1.1 client with a PUBACK as if it had succeeded.
func (h *storeHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.Origin == InlineOrigin(StatusOrigin) {
		return pk, nil
	}
	inline := cl.Net.Inline
	if !inline && cl.Closed() {
		// An earlier packet of this client failed to store. Storing what
		// the client sent after it would reorder its messages when it
		// publishes the failed one again.
		return pk, packets.ErrRejectPacket
	}
	durable := !inline && pk.FixedHeader.Qos > 0
	err := h.store.Store(h.ctx, Message{
		Topic:   pk.TopicName,
		Payload: pk.Payload,
		QoS:     pk.FixedHeader.Qos,
		Retain:  pk.FixedHeader.Retain,
		Origin:  pk.Origin,
		Inline:  inline,
		Time:    time.Now(),
	}, durable)
	if err == nil {
		return pk, nil
	}
	if !durable {
		// Delivered to local subscribers anyway: an inline publisher has no
		// acknowledgement to withhold, and a QoS 0 publisher expects none.
		// The store counts its own failures.
		h.logFailure("broker: a store refused a message; delivered locally only",
			"client", cl.ID, "topic", pk.TopicName, "qos", pk.FixedHeader.Qos, "err", err)
		return pk, nil
	}
	h.logFailure("broker: a store refused a message; disconnecting the publisher without PUBACK",
		"client", cl.ID, "topic", pk.TopicName, "qos", pk.FixedHeader.Qos, "err", err)
	if cl.Properties.ProtocolVersion == 5 {
		// MQTT 5 lets the server say why before closing.
		_ = h.server.DisconnectClient(cl, packets.ErrUnspecifiedError)
	} else {
		cl.Stop(err)
	}
	return pk, packets.ErrRejectPacket
}

// OnWillSent hands a client's will message to the store: mochi publishes
// wills without OnPublish. Nobody waits for a will, so it is stored like a
// QoS 0 publish, without waiting for a sync.
func (h *storeHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	err := h.store.Store(h.ctx, Message{
		Topic:   pk.TopicName,
		Payload: pk.Payload,
		QoS:     pk.FixedHeader.Qos,
		Retain:  pk.FixedHeader.Retain,
		Origin:  cl.ID,
		Time:    time.Now(),
	}, false)
	if err != nil {
		h.logFailure("broker: a store refused a will message; delivered locally only",
			"client", cl.ID, "topic", pk.TopicName, "err", err)
	}
}

func (h *storeHook) logFailure(msg string, args ...any) {
	h.logMu.Lock()
	now := time.Now()
	if !h.lastLog.IsZero() && now.Sub(h.lastLog) < storeErrLogInterval {
		h.suppressed++
		h.logMu.Unlock()
		return
	}
	suppressed := h.suppressed
	h.lastLog, h.suppressed = now, 0
	h.logMu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	h.log.Error(msg, args...)
}

// AddStore makes s receive every message published to the broker, except
// the gateway's status messages (PublishAs(StatusOrigin, ...)), before the
// publisher gets its PUBACK; clients' will messages too, when mochi
// publishes them. Stores are called one after another in the
// order added, each with a copy of the payload; the first that fails a
// durable store ends the chain for that message. Add stores before Start:
// a store added later misses what was published meanwhile.
func (b *Broker) AddStore(s Store) error {
	if s == nil {
		return errors.New("broker: AddStore needs a store")
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &storeHook{server: b.server, log: b.log, store: s, ctx: ctx, cancel: cancel}
	if err := b.AddHook(h, nil); err != nil {
		cancel()
		return err
	}
	return nil
}
