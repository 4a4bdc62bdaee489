package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/syncbuf"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"
)

// wait bounds every wait for an event in these tests.
const wait = 10 * time.Second

func newTestLog(t testing.TB) (*slog.Logger, *syncbuf.Buffer) {
	tl := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", tl)
		}
	})
	return slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelDebug})), tl
}

// fastHash hashes at bcrypt's minimum cost: the broker accepts any cost,
// and cost 10 under the race detector would dominate the test time.
func fastHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func tcpListener(name string) config.Listener {
	return config.Listener{Name: name, Type: TypeTCP, Address: "127.0.0.1:0"}
}

func boolPtr(b bool) *bool { return &b }

// startBroker builds and starts a broker that the test closes at its end.
func startBroker(t testing.TB, cfg config.Broker) (*Broker, *syncbuf.Buffer) {
	t.Helper()
	log, tl := newTestLog(t)
	b, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return b, tl
}

// brokerURL returns scheme://address of a started listener.
func brokerURL(t testing.TB, b *Broker, scheme, listener string) string {
	t.Helper()
	a := b.Addr(listener)
	if a == nil {
		t.Fatalf("no address for listener %q", listener)
	}
	return scheme + "://" + a.String()
}

var clientSeq atomic.Int64

// clientOpts are paho options for one test client: MQTT 3.1.1 only (paho
// otherwise retries refused connections with 3.1), no reconnecting.
func clientOpts(brokerURL string) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("test-%d", clientSeq.Add(1))).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(wait).
		SetKeepAlive(30 * time.Second)
}

// connect connects a paho client and returns the CONNECT error.
func connect(t testing.TB, opts *paho.ClientOptions) (paho.Client, error) {
	t.Helper()
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// mustConnect connects or fails the test.
func mustConnect(t testing.TB, opts *paho.ClientOptions) paho.Client {
	t.Helper()
	c, err := connect(t, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

type message struct {
	topic    string
	payload  string
	retained bool
}

// subscribe subscribes at QoS 1 and returns the SUBACK code and the
// messages received.
func subscribe(t testing.TB, c paho.Client, filter string) (byte, <-chan message) {
	t.Helper()
	ch := make(chan message, 1000)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		ch <- message{m.Topic(), string(m.Payload()), m.Retained()}
	})
	if !tok.WaitTimeout(wait) {
		t.Fatalf("subscribe %q: timed out", filter)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("subscribe %q: %v", filter, err)
	}
	// paho keys the result by the filter without a $share/group/ prefix.
	res := tok.(*paho.SubscribeToken).Result()
	if len(res) != 1 {
		t.Fatalf("subscribe %q: results %v", filter, res)
	}
	for _, code := range res {
		return code, ch
	}
	panic("unreachable")
}

// mustSubscribe subscribes or fails the test.
func mustSubscribe(t testing.TB, c paho.Client, filter string) <-chan message {
	t.Helper()
	code, ch := subscribe(t, c, filter)
	if code > 2 {
		t.Fatalf("subscribe %q: SUBACK code %#x", filter, code)
	}
	return ch
}

// publish publishes and waits for the publish to be written (QoS 0) or
// acknowledged (QoS 1).
func publish(t testing.TB, c paho.Client, topic string, qos byte, retain bool, payload string) error {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(wait) {
		return fmt.Errorf("publish %q: timed out", topic)
	}
	return tok.Error()
}

func mustPublish(t testing.TB, c paho.Client, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	if err := publish(t, c, topic, qos, retain, payload); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message or fails the test.
func next(t testing.TB, ch <-chan message) message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message arrived")
		return message{}
	}
}

// expect receives the next message and checks its topic and payload.
func expect(t testing.TB, ch <-chan message, topic, payload string) message {
	t.Helper()
	m := next(t, ch)
	if m.topic != topic || m.payload != payload {
		t.Fatalf("got %q on %q, want %q on %q", m.payload, m.topic, payload, topic)
	}
	return m
}

// eventually polls cond until it holds or the wait runs out.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribedHook signals each filter that a network client subscribed
// to, so tests know when an external subscriber is ready.
type subscribedHook struct {
	mqtt.HookBase
	ch chan string
}

func (h *subscribedHook) ID() string { return "test-subscribed" }

func (h *subscribedHook) Provides(b byte) bool { return b == mqtt.OnSubscribed }

func (h *subscribedHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if cl.Net.Inline {
		return
	}
	for _, f := range pk.Filters {
		select {
		case h.ch <- f.Filter:
		default: // never block the client's goroutine; waiters look for one filter
		}
	}
}

func addSubscribedHook(t testing.TB, b *Broker) <-chan string {
	t.Helper()
	h := &subscribedHook{ch: make(chan string, 100)}
	if err := b.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	return h.ch
}

func waitSubscribed(t testing.TB, ch <-chan string, filter string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case f := <-ch:
			if f == filter {
				return
			}
		case <-timeout:
			t.Fatalf("nobody subscribed to %q", filter)
		}
	}
}

func contains(s string, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("%q does not contain %q", s, sub)
		}
	}
	return nil
}

func timeAfterWait() <-chan time.Time { return time.After(wait) }
