package broker

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainGuard serializes mochi's writes to its retained-message index with
// its reads. mochi v2.7.9 updates a topic's retained path under the topic's
// own lock but reads it without one when a new subscription collects the
// retained messages it must receive (TopicsIndex.Messages): a retained
// publish racing a SUBSCRIBE is a data race inside mochi, which a gateway
// that republishes retained readings every poll hits constantly.
//
// Subscriptions hold the read lock from OnSubscribe until OnPacketProcessed
// (mochi sends the retained messages in between), retained publishes the
// write lock from OnPublish until OnPacketProcessed; inline calls take the
// locks in Broker's own methods. Inline subscription handlers must
// therefore not publish retained messages themselves.
type retainGuard struct {
	mqtt.HookBase
	mu   sync.RWMutex
	held sync.Map // *mqtt.Client → bool (true: write lock)
}

func (g *retainGuard) ID() string { return "fieldbridge-retain-guard" }

func (g *retainGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSubscribe, mqtt.OnPublish, mqtt.OnPacketProcessed}, []byte{b})
}

func (g *retainGuard) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !cl.Net.Inline {
		g.mu.RLock()
		g.held.Store(cl, false)
	}
	return pk
}

func (g *retainGuard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && !cl.Net.Inline {
		g.mu.Lock()
		g.held.Store(cl, true)
	}
	return pk, nil
}

func (g *retainGuard) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, err error) {
	if write, ok := g.held.LoadAndDelete(cl); ok {
		if write.(bool) {
			g.mu.Unlock()
		} else {
			g.mu.RUnlock()
		}
	}
}
