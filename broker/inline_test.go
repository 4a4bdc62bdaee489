package broker

import (
	"errors"
	"sync"
	"testing"

	"github.com/fieldbridge/gateway/config"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestInlinePublishReachesTCPSubscriber(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		Users:     []config.User{{Username: "scada", PasswordHash: fastHash(t, "pw"), Subscribe: []string{"plant/#"}}},
		Listeners: []config.Listener{tcpListener("local")},
	})
	c := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")).SetUsername("scada").SetPassword("pw"))
	msgs := mustSubscribe(t, c, "plant/+/temp")
	if err := b.Publish("other/boiler/temp", []byte("not for scada"), false, 0); err != nil {
		t.Fatal(err)
	}
	payload := []byte("21.5")
	if err := b.Publish("plant/boiler/temp", payload, false, 1); err != nil {
		t.Fatal(err)
	}
	copy(payload, "XXXX") // Publish copies what it queues
	expect(t, msgs, "plant/boiler/temp", "21.5")
}

func TestRetained(t *testing.T) {
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{tcpListener("local")}})
	u := brokerURL(t, b, "tcp", "local")
	if err := b.Publish("plant/boiler/status", []byte("online"), true, 1); err != nil {
		t.Fatal(err)
	}
	pub := mustConnect(t, clientOpts(u))
	mustPublish(t, pub, "plant/boiler/temp", 1, true, "21.5")

	later := mustConnect(t, clientOpts(u))
	msgs := mustSubscribe(t, later, "plant/boiler/+")
	got := map[string]message{}
	for range 2 {
		m := next(t, msgs)
		got[m.topic] = m
	}
	if m := got["plant/boiler/status"]; m.payload != "online" || !m.retained {
		t.Errorf("retained inline message: %+v", m)
	}
	if m := got["plant/boiler/temp"]; m.payload != "21.5" || !m.retained {
		t.Errorf("retained client message: %+v", m)
	}

	// Inline subscribers get the retained messages before Subscribe returns.
	var inline []string
	if err := b.Subscribe("plant/boiler/status", 7, func(topic string, payload []byte, retained bool, _ string) {
		if retained {
			inline = append(inline, string(payload))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(inline) != 1 || inline[0] != "online" {
		t.Errorf("inline subscriber got retained %q", inline)
	}

	// An empty retained payload clears it.
	if err := b.Publish("plant/boiler/status", nil, true, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("plant/boiler/marker", []byte("m"), true, 0); err != nil {
		t.Fatal(err)
	}
	third := mustConnect(t, clientOpts(u))
	msgs = mustSubscribe(t, third, "plant/boiler/+")
	for range 2 {
		if m := next(t, msgs); m.topic == "plant/boiler/status" {
			t.Errorf("a cleared retained message was served: %+v", m)
		}
	}
}

// record is one message an inline handler saw.
type record struct {
	topic, payload, client string
	retained               bool
}

type recorder struct {
	mu   sync.Mutex
	msgs []record
}

func (r *recorder) handle(topic string, payload []byte, retained bool, client string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, record{topic, string(payload), client, retained})
}

func (r *recorder) take() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

func TestInlineSubscribe(t *testing.T) {
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{tcpListener("local")}})
	var one, two recorder
	for id, r := range map[int]*recorder{1: &one, 2: &two} {
		if err := b.Subscribe("plant/#", id, r.handle); err != nil {
			t.Fatal(err)
		}
	}
	// Inline publishes reach inline handlers before Publish returns.
	if err := b.Publish("plant/a", []byte("1"), false, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAs("cloud", "plant/b", []byte("2"), true, 1); err != nil {
		t.Fatal(err)
	}
	want := []record{
		{"plant/a", "1", mqtt.InlineClientId, false},
		{"plant/b", "2", InlineOrigin("cloud"), true},
	}
	for _, r := range []*recorder{&one, &two} {
		got := r.take()
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("handler saw %+v, want %+v", got, want)
		}
	}

	if err := b.Unsubscribe("plant/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("plant/c", []byte("3"), false, 0); err != nil {
		t.Fatal(err)
	}
	if got := one.take(); len(got) != 0 {
		t.Errorf("unsubscribed handler saw %+v", got)
	}
	if got := two.take(); len(got) != 1 {
		t.Errorf("remaining handler saw %+v", got)
	}

	// A network client's id reaches the handler.
	opts := clientOpts(brokerURL(t, b, "tcp", "local"))
	c := mustConnect(t, opts)
	mustPublish(t, c, "plant/d", 1, false, "4")
	// mochi sends the PUBACK before the fan-out, so wait for the handler.
	var got []record
	eventually(t, "the handler to see the client's message", func() bool {
		got = append(got, two.take()...)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].client != opts.ClientID {
		t.Errorf("handler saw %+v, want client %q", got, opts.ClientID)
	}

	if err := b.Subscribe("a/#/b", 3, two.handle); err == nil {
		t.Error("Subscribe accepted an invalid filter")
	}
	if err := b.Subscribe("a", 3, nil); err == nil {
		t.Error("Subscribe accepted a nil handler")
	}
}

func TestPublishChecks(t *testing.T) {
	b, _ := startBroker(t, config.Broker{})
	for _, topic := range []string{"", "a/+", "a/#", "a\x00"} {
		if err := b.Publish(topic, nil, false, 0); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	if err := b.Publish("a", nil, false, 3); err == nil {
		t.Error("Publish accepted QoS 3")
	}
	if err := b.PublishAs("", "a", nil, false, 0); err == nil {
		t.Error("PublishAs accepted an empty origin")
	}
}

// aclHook would widen access if mochi were given it.
type aclHook struct{ mqtt.HookBase }

func (h *aclHook) ID() string { return "allow-everything" }
func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnACLCheck || b == mqtt.OnConnectAuthenticate
}

// publishHook counts what passes OnPublish.
type publishHook struct {
	mqtt.HookBase
	mu     sync.Mutex
	topics []string
}

func (h *publishHook) ID() string           { return "count-publishes" }
func (h *publishHook) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *publishHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.topics = append(h.topics, pk.TopicName)
	return pk, nil
}

func TestAddHook(t *testing.T) {
	log, _ := newTestLog(t)
	b, err := New(config.Broker{Listeners: []config.Listener{tcpListener("local")}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.AddHook(&aclHook{}, nil); !errors.Is(err, ErrHookNotAllowed) {
		t.Fatalf("AddHook(auth hook) = %v, want ErrHookNotAllowed", err)
	}
	h := &publishHook{}
	if err := b.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))
	mustPublish(t, c, "from/client", 1, false, "x")
	if err := b.Publish("from/inline", nil, false, 0); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.topics) != 2 || h.topics[0] != "from/client" || h.topics[1] != "from/inline" {
		t.Errorf("hook saw %q", h.topics)
	}
}
