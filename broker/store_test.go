package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/fieldbridge/gateway/config"
)

// stored is one Store call as a test store saw it.
type stored struct {
	m       Message
	durable bool
}

// testStore records every call; fail decides which messages it refuses,
// and block, when set, holds every call until it is closed.
type testStore struct {
	mu      sync.Mutex
	calls   []stored
	fail    func(Message) bool
	entered chan string   // the topic of each call, as it starts
	block   chan struct{} // closed to let blocked calls return
}

func newTestStore() *testStore {
	return &testStore{entered: make(chan string, 1000)}
}

var errDiskFull = errors.New("test: disk full")

func (s *testStore) Store(ctx context.Context, m Message, durable bool) error {
	select {
	case s.entered <- m.Topic:
	default:
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.fail != nil && s.fail(m) {
		return errDiskFull
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Payload = bytes.Clone(m.Payload) // kept after Store returns
	s.calls = append(s.calls, stored{m, durable})
	return nil
}

func (s *testStore) byTopic(topic string) []stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stored
	for _, c := range s.calls {
		if c.m.Topic == topic {
			out = append(out, c)
		}
	}
	return out
}

func waitEntered(t *testing.T, s *testStore, topic string) {
	t.Helper()
	timeout := timeAfterWait()
	for {
		select {
		case got := <-s.entered:
			if got == topic {
				return
			}
		case <-timeout:
			t.Fatalf("the store never saw %q", topic)
		}
	}
}

func startStoreBroker(t *testing.T, stores ...Store) *Broker {
	t.Helper()
	log, _ := newTestLog(t)
	b, err := New(config.Broker{Listeners: []config.Listener{tcpListener("local")}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, s := range stores {
		if err := b.AddStore(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStorePubackWaitsForStore(t *testing.T) {
	s := newTestStore()
	s.block = make(chan struct{})
	b := startStoreBroker(t, s)
	pub := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))

	tok := pub.Publish("plant/boiler/temp", 1, false, "21.5")
	waitEntered(t, s, "plant/boiler/temp")
	// mochi writes the PUBACK in the goroutine that is now inside Store,
	// so it cannot have been sent yet.
	select {
	case <-tok.Done():
		t.Fatal("PUBACK arrived while the store had not returned")
	default:
	}
	close(s.block)
	if !tok.WaitTimeout(wait) {
		t.Fatal("no PUBACK after the store returned")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
	got := s.byTopic("plant/boiler/temp")
	if len(got) != 1 || !got[0].durable || got[0].m.QoS != 1 || got[0].m.Inline || string(got[0].m.Payload) != "21.5" {
		t.Fatalf("store saw %+v", got)
	}
}

func TestStoreFailureDisconnectsWithoutPuback(t *testing.T) {
	s := newTestStore()
	s.fail = func(m Message) bool { return strings.HasPrefix(m.Topic, "fail/") }
	b := startStoreBroker(t, s)
	u := brokerURL(t, b, "tcp", "local")
	var local recorder
	if err := b.Subscribe("#", 1, local.handle); err != nil {
		t.Fatal(err)
	}

	lost := make(chan error, 1)
	pub := mustConnect(t, clientOpts(u).SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
	tok := pub.Publish("fail/x", 1, false, "not stored")
	if !tok.WaitTimeout(wait) {
		t.Fatal("the publish neither completed nor failed")
	}
	if tok.Error() == nil {
		t.Fatal("the publisher got a PUBACK for a message the store refused")
	}
	select {
	case <-lost:
	case <-timeAfterWait():
		t.Fatal("the publisher was not disconnected")
	}

	// The refused message reached no local subscriber: a later message
	// from another client is the first one seen.
	other := mustConnect(t, clientOpts(u))
	mustPublish(t, other, "ok/marker", 1, false, "m")
	eventually(t, "the marker", func() bool { return len(s.byTopic("ok/marker")) == 1 })
	for _, r := range local.take() {
		if r.topic == "fail/x" {
			t.Fatalf("refused message delivered locally: %+v", r)
		}
	}

	// mosquitto_pub sees the same: no PUBACK, an error exit, with MQTT
	// 3.1.1 and with MQTT 5.
	host, port := hostPort(t, b, "local")
	for _, v := range []string{"mqttv311", "mqttv5"} {
		out, err := runTool(t, "mosquitto_pub", "-h", host, "-p", port, "-V", v, "-q", "1", "-t", "fail/y", "-m", "1")
		if err == nil {
			t.Errorf("mosquitto_pub %s succeeded for a refused message: %s", v, out)
		}
	}
	if out, err := runTool(t, "mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", "ok/z", "-m", "1"); err != nil {
		t.Fatalf("mosquitto_pub of a stored message: %v\n%s", err, out)
	}
}

func TestStoreSeesWhatTheBrokerAccepts(t *testing.T) {
	s := newTestStore()
	s.fail = func(m Message) bool { return m.Topic == "inline/fails" }
	b := startStoreBroker(t, s)
	pub := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))
	var local recorder
	if err := b.Subscribe("inline/#", 1, local.handle); err != nil {
		t.Fatal(err)
	}

	mustPublish(t, pub, "net/q0", 0, true, "a")
	mustPublish(t, pub, "net/q1", 1, false, "b")
	if err := b.Publish("inline/plain", []byte("c"), false, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAs("cloud", "inline/bridged", []byte("d"), false, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAs(StatusOrigin, "gw/status", []byte("online"), true, 1); err != nil {
		t.Fatal(err)
	}
	// A failing store does not stop an inline message: it is delivered
	// locally all the same.
	if err := b.PublishAs("x", "inline/fails", []byte("e"), false, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("inline/marker", []byte("m"), false, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the QoS 0 message", func() bool { return len(s.byTopic("net/q0")) == 1 })

	check := func(topic string, durable, inline, retain bool, qos byte, origin string) {
		t.Helper()
		got := s.byTopic(topic)
		if len(got) != 1 {
			t.Fatalf("%s: store called %d times", topic, len(got))
		}
		c := got[0]
		if c.durable != durable || c.m.Inline != inline || c.m.Retain != retain || c.m.QoS != qos || c.m.Time.IsZero() {
			t.Errorf("%s: got durable=%v %+v", topic, c.durable, c.m)
		}
		if origin != "" && c.m.Origin != origin {
			t.Errorf("%s: origin %q, want %q", topic, c.m.Origin, origin)
		}
	}
	check("net/q0", false, false, true, 0, "")
	check("net/q1", true, false, false, 1, "")
	check("inline/plain", false, true, false, 1, "inline")
	check("inline/bridged", false, true, false, 1, InlineOrigin("cloud"))
	if got := s.byTopic("gw/status"); len(got) != 0 {
		t.Errorf("a status message reached the store: %+v", got)
	}
	seen := map[string]bool{}
	for _, r := range local.take() {
		seen[r.topic] = true
	}
	if !seen["inline/fails"] || !seen["inline/marker"] {
		t.Errorf("local subscriber saw %v", seen)
	}
}

func TestAddStoreRefusesNil(t *testing.T) {
	b := startStoreBroker(t)
	if err := b.AddStore(nil); err == nil {
		t.Fatal("AddStore(nil) succeeded")
	}
	b.Close()
	if err := b.AddStore(newTestStore()); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddStore after Close: %v", err)
	}
}

// TestStoreGetsWills: a client that vanishes without DISCONNECT has its
// will published, and the store gets it (mochi publishes wills without
// OnPublish).
func TestStoreGetsWills(t *testing.T) {
	s := newTestStore()
	b := startStoreBroker(t, s)
	conn, err := net.Dial("tcp", b.Addr("local").String())
	if err != nil {
		t.Fatal(err)
	}
	cp := pahopackets.NewControlPacket(pahopackets.Connect).(*pahopackets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.ClientIdentifier, cp.Keepalive, cp.CleanSession = "will-client", 30, true
	cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillQos, cp.WillRetain = true, "plant/pump/status", []byte("offline"), 1, true
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := pahopackets.ReadPacket(conn); err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	conn.Close()
	waitEntered(t, s, "plant/pump/status")
	eventually(t, "the will in the store", func() bool { return len(s.byTopic("plant/pump/status")) == 1 })
	c := s.byTopic("plant/pump/status")[0]
	if c.durable || !c.m.Retain || string(c.m.Payload) != "offline" || c.m.Origin != "will-client" {
		t.Errorf("store got %+v durable=%v", c.m, c.durable)
	}
}
