package broker

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/rawmqtt"
)

// benchWindow bounds the messages published but not yet received. mochi
// drops messages for a client whose outbound queue (8192) is full, so an
// unbounded publisher would measure drops, not deliveries.
const benchWindow = 4096

// benchPoll is how long a benchmark waits before it looks at the
// subscriber's count again.
const benchPoll = 50 * time.Microsecond

func benchBroker(b *testing.B) *Broker {
	b.Helper()
	br, err := New(config.Broker{Listeners: []config.Listener{tcpListener("local")}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	if err := br.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return br
}

// BenchmarkInlinePublishToSubscriber measures messages per second from
// inline Publish to one TCP subscriber, QoS 0, 100-byte payloads, counted
// as they arrive at the subscriber. The subscriber is rawmqtt's, so that
// the benchmark measures the broker rather than a client library.
func BenchmarkInlinePublishToSubscriber(b *testing.B) {
	br := benchBroker(b)
	conn, err := net.Dial("tcp", br.Addr("local").String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := rawmqtt.Subscribe(conn, "bench-raw", "plant/#"); err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	readErr := make(chan error, 1)
	go func() { readErr <- rawmqtt.CountPublishes(conn, &received) }()
	payload := make([]byte, 100)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		if int64(sent)-received.Load() >= benchWindow {
			// The window is thousands of messages: the broker stays busy
			// while the publisher sleeps.
			time.Sleep(benchPoll)
			continue
		}
		if err := br.Publish("plant/boiler/temperature", payload, false, 0); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	deadline := time.Now().Add(time.Minute)
	for received.Load() < int64(b.N) {
		select {
		case err := <-readErr:
			b.Fatalf("received %d of %d: subscriber: %v", received.Load(), b.N, err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d (dropped by mochi: %d)",
				received.Load(), b.N, atomic.LoadInt64(&br.server.Info.MessagesDropped))
		}
		time.Sleep(benchPoll)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkInlinePublishToPahoSubscriber is the same with paho as the
// subscriber, to show what a Go client library costs on top.
func BenchmarkInlinePublishToPahoSubscriber(b *testing.B) {
	br := benchBroker(b)
	var received atomic.Int64
	progress := make(chan struct{}, 1)
	done := make(chan struct{})
	want := int64(b.N)
	c := paho.NewClient(clientOpts("tcp://" + br.Addr("local").String()).SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("plant/#", 0, func(paho.Client, paho.Message) {
		got := received.Add(1)
		if got%256 == 0 {
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		if got == want {
			close(done)
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	payload := make([]byte, 100)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		if int64(sent)-received.Load() >= benchWindow {
			<-progress
			continue
		}
		if err := br.Publish("plant/boiler/temperature", payload, false, 0); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal(fmt.Sprintf("received %d of %d", received.Load(), b.N))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
