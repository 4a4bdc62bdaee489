package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/config"
)

// benchWindow bounds the messages published but not yet received. mochi
// drops messages for a client whose outbound queue (8192) is full, so an
// unbounded publisher would measure drops, not deliveries.
const benchWindow = 4096

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

// rawSubscriber is a minimal MQTT 3.1.1 client that counts PUBLISH packets,
// so that the benchmark measures the broker rather than a client library.
type rawSubscriber struct {
	received atomic.Int64
	progress chan struct{}
	done     chan struct{}
	err      atomic.Value
}

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func dialRawSubscriber(b *testing.B, addr, filter string, want int64) *rawSubscriber {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	connect := append(mqttString("MQTT"), 4, 0x02, 0, 60)
	connect = append(connect, mqttString("bench-raw")...)
	subscribe := append([]byte{0, 1}, mqttString(filter)...)
	subscribe = append(subscribe, 0)
	out := append([]byte{0x10, byte(len(connect))}, connect...)
	out = append(out, 0x82, byte(len(subscribe)))
	out = append(out, subscribe...)
	if _, err := conn.Write(out); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	ack := make([]byte, 4+5) // CONNACK, SUBACK
	if _, err := io.ReadFull(r, ack); err != nil {
		b.Fatal(err)
	}
	if ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] != 0 {
		b.Fatalf("CONNACK/SUBACK % x", ack)
	}
	s := &rawSubscriber{progress: make(chan struct{}, 1), done: make(chan struct{})}
	go s.read(r, want)
	return s
}

func (s *rawSubscriber) read(r *bufio.Reader, want int64) {
	for {
		h, err := r.ReadByte()
		if err != nil {
			s.err.Store(err)
			return
		}
		var n, shift int
		for {
			c, err := r.ReadByte()
			if err != nil {
				s.err.Store(err)
				return
			}
			n |= int(c&0x7f) << shift
			if c&0x80 == 0 {
				break
			}
			shift += 7
		}
		if _, err := r.Discard(n); err != nil {
			s.err.Store(err)
			return
		}
		if h>>4 != 3 {
			continue
		}
		got := s.received.Add(1)
		if got%256 == 0 {
			select {
			case s.progress <- struct{}{}:
			default:
			}
		}
		if got == want {
			close(s.done)
		}
	}
}

// BenchmarkInlinePublishToSubscriber measures messages per second from
// inline Publish to one TCP subscriber, QoS 0, 100-byte payloads, counted
// as they arrive at the subscriber.
func BenchmarkInlinePublishToSubscriber(b *testing.B) {
	br := benchBroker(b)
	sub := dialRawSubscriber(b, br.Addr("local").String(), "plant/#", int64(b.N))
	payload := make([]byte, 100)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		if int64(sent)-sub.received.Load() >= benchWindow {
			<-sub.progress
			continue
		}
		if err := br.Publish("plant/boiler/temperature", payload, false, 0); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	select {
	case <-sub.done:
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d (dropped by mochi: %d, subscriber error: %v)",
			sub.received.Load(), b.N, atomic.LoadInt64(&br.server.Info.MessagesDropped), sub.err.Load())
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
