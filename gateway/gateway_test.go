package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/simulation"
	"github.com/fieldbridge/gateway/broker"
)

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := broker.HashPassword([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// start runs a gateway on cfg (YAML after the gateway section) and returns
// it once its broker listens.
func start(t testing.TB, cfg string) *Gateway {
	t.Helper()
	return startWith(t, cfg, Options{})
}

// startWith is start with opts (Ready is set here).
func startWith(t testing.TB, cfg string, opts Options) *Gateway {
	t.Helper()
	plan, err := load(t, fmt.Sprintf("gateway: {id: gw, data_dir: %s}\n%s", t.TempDir(), cfg))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	g := New(plan, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return g
}

// load writes body as gw.yaml and loads it with the simulation driver.
func load(t testing.TB, body string) (*Plan, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path, adapters.NewRegistry(simulation.Driver{}), nil)
}

func client(t *testing.T, g *Gateway, user, pw string) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + g.Broker().Addr("local").String()).
		SetClientID(fmt.Sprintf("%s-%d", user, time.Now().UnixNano())).SetAutoReconnect(false).SetOrderMatters(true)
	if user != "" {
		opts.SetUsername(user).SetPassword(pw)
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %q: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

type message struct {
	topic, payload string
	retained       bool
}

func sub(t *testing.T, c mqtt.Client, filter string) <-chan message {
	t.Helper()
	ch := make(chan message, 256)
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		ch <- message{m.Topic(), string(m.Payload()), m.Retained()}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

func next(t *testing.T, ch <-chan message, what string, match func(message) bool) message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			if match(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retain bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

const setpointDevice = `devices:
  - name: hvac
    driver: simulation
    poll_interval: 1h
    points:
      - {name: setpoint, waveform: setpoint, min: 20, writable: true, write_range: [5, 30], unit: "°C", deadband: 0}
`

// Commands: only a user whose ACL allows publishing on /set can write; a
// bad or retained command is answered on /set/error and changes nothing.
func TestCommandsThroughACL(t *testing.T) {
	cfg := fmt.Sprintf(`broker:
  allow_anonymous: false
  listeners: [{name: local, type: tcp, address: "127.0.0.1:0"}]
  users:
    - {username: operator, password_hash: %q, publish: ["gw/+/+/set"], subscribe: ["gw/#"]}
    - {username: viewer, password_hash: %q, publish: [], subscribe: ["gw/#"]}
`, hash(t, "op-pw"), hash(t, "view-pw")) + setpointDevice
	g := start(t, cfg)
	viewer := client(t, g, "viewer", "view-pw")
	ch := sub(t, viewer, "gw/hvac/#")
	next(t, ch, "the initial setpoint", func(m message) bool {
		return m.topic == "gw/hvac/setpoint" && strings.Contains(m.payload, `"value":20,`)
	})

	// The viewer may not write: the broker drops the publish before the
	// gateway sees it (and disconnects an MQTT 3.1.1 client for it).
	intruder := client(t, g, "viewer", "view-pw")
	intruder.Publish("gw/hvac/setpoint/set", 1, false, "25").WaitTimeout(5 * time.Second)
	operator := client(t, g, "operator", "op-pw")
	publish(t, operator, "gw/hvac/setpoint/set", `{"value": 22.5}`, false)
	m := next(t, ch, "the operator's write read back", func(m message) bool { return m.topic == "gw/hvac/setpoint" })
	var r struct{ Value float64 }
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil || r.Value != 22.5 {
		t.Fatalf("after the operator's write: %s (the viewer's 25 must never apply)", m.payload)
	}

	for _, tc := range []struct{ payload, want string }{
		{"99", "outside write_range"},
		{"warm", "not a number"},
	} {
		publish(t, operator, "gw/hvac/setpoint/set", tc.payload, false)
		e := next(t, ch, "error for "+tc.payload, func(m message) bool { return m.topic == "gw/hvac/setpoint/set/error" })
		var body struct{ Error, Payload, TS string }
		if err := json.Unmarshal([]byte(e.payload), &body); err != nil || !strings.Contains(body.Error, tc.want) || body.Payload != tc.payload || body.TS == "" {
			t.Errorf("error answer %s, want %q", e.payload, tc.want)
		}
	}
	publish(t, operator, "gw/hvac/setpoint/set", "10", true)
	e := next(t, ch, "error for a retained command", func(m message) bool { return m.topic == "gw/hvac/setpoint/set/error" })
	if !strings.Contains(e.payload, "retained") {
		t.Errorf("retained command answer: %s", e.payload)
	}
	// Nothing of the refused commands applied: a last good write reads back 7.
	publish(t, operator, "gw/hvac/setpoint/set", "7", false)
	m = next(t, ch, "a read-back", func(m message) bool { return m.topic == "gw/hvac/setpoint" })
	if !strings.Contains(m.payload, `"value":7,`) {
		t.Errorf("read back %s, want 7 (a refused command changed the setpoint)", m.payload)
	}
}

// A command for a read-only point is answered, not met with silence.
func TestCommandToReadOnlyPointAnswered(t *testing.T) {
	g := start(t, `broker: {listeners: [{name: local, type: tcp, address: "127.0.0.1:0"}]}
`+setpointDevice+`      - {name: supply, waveform: sine}
`)
	c := client(t, g, "", "")
	ch := sub(t, c, "gw/hvac/supply/set/error")
	publish(t, c, "gw/hvac/supply/set", "21", false)
	e := next(t, ch, "the answer", func(message) bool { return true })
	if !strings.Contains(e.payload, "not writable") || !strings.Contains(e.payload, `"payload":"21"`) {
		t.Errorf("answer %s", e.payload)
	}
}

// A read-only point's /set is taken for answers only where no point
// publishes: there a message is a reading, not a command.
func TestReadOnlySetTopicsLeftToPoints(t *testing.T) {
	plan, err := load(t, `gateway: {id: gw}
devices:
  - name: hvac
    driver: simulation
    points:
      - {name: supply, waveform: sine}
      - {name: other, waveform: sine}
      - {name: echo, waveform: sine, topic: gw/hvac/other/set}
`)
	if err != nil {
		t.Fatal(err)
	}
	c := newCommander(plan, nil, slog.New(slog.DiscardHandler), time.Now)
	if _, ok := c.points["gw/hvac/supply/set"]; !ok {
		t.Error("no answer for commands to a read-only point")
	}
	if _, ok := c.points["gw/hvac/other/set"]; ok {
		t.Error("gw/hvac/other/set, where a point publishes, is taken for commands")
	}
}

func TestAnonymousRefusedWhenUsersConfigured(t *testing.T) {
	g := start(t, fmt.Sprintf(`broker:
  allow_anonymous: false
  listeners: [{name: local, type: tcp, address: "127.0.0.1:0"}]
  users: [{username: u, password_hash: %q, publish: ["#"], subscribe: ["#"]}]
`, hash(t, "pw"))+setpointDevice)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + g.Broker().Addr("local").String()).SetClientID("anon").SetAutoReconnect(false))
	tok := c.Connect()
	if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("anonymous client accepted")
	}
	client(t, g, "u", "pw")
}

func TestStatusAndDeviceAvailability(t *testing.T) {
	g := start(t, `broker: {listeners: [{name: local, type: tcp, address: "127.0.0.1:0"}]}
`+setpointDevice)
	// A first subscriber sees both go online, live or retained depending
	// on when it subscribed; a second one, subscribing after that, must
	// get both as retained messages.
	first := sub(t, client(t, g, "", ""), "gw/#")
	for seen := map[string]bool{}; len(seen) < 2; {
		m := next(t, first, "status messages", func(m message) bool { return strings.HasSuffix(m.topic, "/status") })
		seen[m.topic] = true
	}
	ch := sub(t, client(t, g, "", ""), "gw/#")
	got := map[string]message{}
	for len(got) < 2 {
		m := next(t, ch, "retained status messages", func(m message) bool { return strings.HasSuffix(m.topic, "/status") })
		got[m.topic] = m
	}
	if m := got["gw/status"]; m.payload != "online" || !m.retained {
		t.Errorf("gateway status %+v", m)
	}
	if m := got["gw/hvac/status"]; m.payload != "online" || !m.retained {
		t.Errorf("device status %+v", m)
	}
	st := g.Status()
	if len(st.Devices) != 1 || st.Devices[0].Online == nil || !*st.Devices[0].Online || st.Broker.Clients != 2 {
		t.Errorf("status %+v", st)
	}
}

// A reload that stops retaining readings (publish.retain: true to false)
// clears the retained values the old configuration left, as a restart
// would: a new subscriber gets no stale reading.
func TestReloadStopsRetaining(t *testing.T) {
	const broker = "broker: {listeners: [{name: local, type: tcp, address: \"127.0.0.1:0\"}]}\n"
	reload := make(chan struct{}, 1)
	g := startWith(t, broker+"publish: {retain: true}\n"+setpointDevice, Options{Reload: reload})
	first := sub(t, client(t, g, "", ""), "gw/hvac/setpoint")
	// Live or from the retained store, depending on when the subscription
	// came: either way it was published retained.
	next(t, first, "the setpoint", func(m message) bool { return m.payload != "" })

	path := g.plan.File.Path
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(body), "publish: {retain: true}", "publish: {retain: false}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	next(t, first, "the retained setpoint cleared", func(m message) bool { return m.payload == "" })

	// The new generation publishes the setpoint again, not retained. A new
	// subscriber gets retained messages first: none may be the setpoint.
	late := sub(t, client(t, g, "", ""), "gw/hvac/#")
	m := next(t, late, "the device status", func(m message) bool { return m.topic == "gw/hvac/status" })
	if !m.retained {
		t.Errorf("device status %+v is not retained", m)
	}
	publish(t, client(t, g, "", ""), "gw/hvac/marker", "after", false)
	next(t, late, "the marker", func(m message) bool {
		if m.topic == "gw/hvac/setpoint" && m.retained {
			t.Fatalf("a stale retained setpoint after the reload: %+v", m)
		}
		return m.topic == "gw/hvac/marker"
	})
}
