package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// localMsg is a message an inline subscriber of the local broker saw.
type localMsg struct{ topic, payload, origin string }

type localSub struct {
	mu   sync.Mutex
	msgs []localMsg
}

func (s *localSub) handle(topic string, payload []byte, _ bool, origin string) {
	s.mu.Lock()
	s.msgs = append(s.msgs, localMsg{topic, string(payload), origin})
	s.mu.Unlock()
}

func (s *localSub) all() []localMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]localMsg(nil), s.msgs...)
}

func (s *localSub) count(topic string) int {
	n := 0
	for _, m := range s.all() {
		if m.topic == topic {
			n++
		}
	}
	return n
}

// TestInRoute: a command from the cloud reaches the local broker once,
// under the bridge's identity, is refused where local_user may not
// publish, and is not echoed back by the out-route that matches it.
func TestInRoute(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "inroute-sub", "sites/#", sub, nil)

	one := 1
	cfg := bridgeConfig(c, p, t)
	cfg.LocalUser = "cloud-commands"
	cfg.StatusTopic = "sites/a/gw1/status"
	cfg.Routes = []config.Route{
		{Direction: "out", Filter: "gw1/#", QoS: &one, RemotePrefix: "sites/a/"},
		{Direction: "in", Filter: "sites/a/gw1/+/+/set", QoS: &one, StripPrefix: "sites/a/"},
	}
	// config.CheckBroker wants a password_hash here: no listener takes client certificates.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, cfg, rigOpts{users: []config.User{{Username: "cloud-commands", PasswordHash: string(hash), Publish: []string{"gw1/boiler/+/set"}}}})
	local := &localSub{}
	if err := r.brk.Subscribe("gw1/#", 1, local.handle); err != nil {
		t.Fatal(err)
	}
	r.waitConnected(t, true)
	sub.waitFor(t, wait, "online status", func(int, int) bool { return sub.has("sites/a/gw1/status", "online") })

	publishCloud(t, c, p, "sites/a/gw1/boiler/setpoint/set", "60", false)
	eventually(t, wait, "the command locally", func() bool { return local.count("gw1/boiler/setpoint/set") > 0 })
	publishCloud(t, c, p, "sites/a/gw1/pump/main/set", "off", false) // not allowed for local_user
	publishCloud(t, c, p, "sites/a/gw1/boiler/pump/set", "on", false)
	// Messages from the cloud are injected in order: once the last one is
	// here, the refused one would have been too.
	eventually(t, wait, "the second command locally", func() bool { return local.count("gw1/boiler/pump/set") > 0 })

	// A local message published after the commands were injected goes
	// through the same out-route and buffer: once it is at the cloud, an
	// echo of the commands would be too.
	publishLocal(t, r.local, []string{"gw1/marker"}, 1)
	sub.waitFor(t, wait, "the marker", func(int, int) bool { return sub.has("sites/a/gw1/marker", "0") })

	for _, m := range local.all() {
		switch m.topic {
		case "gw1/boiler/setpoint/set", "gw1/boiler/pump/set":
			if m.origin != broker.InlineOrigin("cloud") {
				t.Errorf("%s injected as %q", m.topic, m.origin)
			}
		case "gw1/pump/main/set":
			t.Errorf("a command local_user may not publish was injected: %+v", m)
		}
	}
	if n := local.count("gw1/boiler/setpoint/set"); n != 1 {
		t.Errorf("the command reached the local broker %d times", n)
	}
	echoes := 0
	for _, m := range sub.snapshot() {
		if m.topic == "sites/a/gw1/boiler/setpoint/set" {
			echoes++
		}
	}
	if echoes != 1 { // the operator's own publish
		t.Errorf("the cloud saw the command %d times: echoed back", echoes)
	}
	st := r.br.Status()
	if st.In.Received != 3 || st.In.Injected != 2 || st.In.Refused != 1 || st.In.Failed != 0 {
		t.Errorf("inbound counters %+v", st.In)
	}
}

// TestBadTLS: a wrong CA, an expired certificate and a wrong server name
// fail with a clear error in the status, and the bridge keeps retrying.
func TestBadTLS(t *testing.T) {
	p := newPKI(t, "cloud")
	good := newCloud(t, p, cloudOpts{})
	good.start()
	expiredCert, expiredKey := p.leaf(t, "cloud-expired", []string{"127.0.0.1"}, true)
	expired := newCloud(t, p, cloudOpts{serverCert: expiredCert, serverKey: expiredKey})
	expired.start()
	other := newPKI(t, "other")

	cases := []struct {
		name   string
		cloud  *cloud
		modify func(*config.Bridge)
		want   string
	}{
		{"wrong CA", good, func(b *config.Bridge) { b.TLS.CAFile = other.ca }, "certificate signed by unknown authority"},
		{"expired certificate", expired, nil, "certificate has expired"},
		{"wrong server name", good, func(b *config.Bridge) { b.TLS.ServerName = "cloud.example.com" }, "match cloud.example.com"},
		{"password file missing", good, func(b *config.Bridge) {
			b.Username = "gw1"
			b.PasswordFile = filepath.Join(t.TempDir(), "missing.password")
		}, "password_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bridgeConfig(tc.cloud, p, t)
			if tc.modify != nil {
				tc.modify(&cfg)
			}
			r := newRig(t, cfg, rigOpts{})
			eventually(t, wait, "two failed attempts", func() bool { return r.br.Status().ConnectFailures >= 2 })
			st := r.br.Status()
			if !strings.Contains(st.LastError, tc.want) {
				t.Fatalf("last_error %q does not say %q", st.LastError, tc.want)
			}
			if st.Connected || st.Connects != 0 {
				t.Fatalf("connected despite the bad setup: %+v", st)
			}
			t.Logf("last_error: %s", st.LastError)
		})
	}
	for _, c := range []*cloud{good, expired} {
		if strings.Contains(c.logs.String(), "New client connected") {
			t.Errorf("the cloud accepted a client:\n%s", c.logs)
		}
	}
}

// TestNeverPlaintext: whatever the server answers, an mqtts:// or wss://
// bridge only ever opens with a TLS ClientHello, and mqtt:// to a
// non-loopback address is refused unless insecure_plaintext says so.
func TestNeverPlaintext(t *testing.T) {
	for _, scheme := range []string{"mqtts", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			first := make(chan byte, 100)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					b := make([]byte, 1)
					conn.SetReadDeadline(time.Now().Add(wait))
					if _, err := conn.Read(b); err == nil {
						first <- b[0]
					}
					// Answer as a plaintext MQTT server would: a CONNACK.
					conn.Write([]byte{0x20, 0x02, 0x00, 0x00})
					conn.Close()
				}
			}()
			p := newPKI(t, "cloud")
			cfg := bridgeConfig(&cloud{host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port}, p, t)
			cfg.URL = fmt.Sprintf("%s://%s/mqtt", scheme, ln.Addr())
			r := newRig(t, cfg, rigOpts{})
			for i := range 3 {
				select {
				case b := <-first:
					if b != 0x16 {
						t.Fatalf("connection %d opened with byte %#x, not a TLS handshake", i, b)
					}
				case <-time.After(wait):
					t.Fatal("the bridge stopped trying")
				}
			}
			if st := r.br.Status(); st.Connects != 0 || !strings.Contains(st.LastError, "TLS handshake") {
				t.Fatalf("status %+v", st)
			}
		})
	}

	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	one := 1
	cfg := config.Bridge{Name: "plain", URL: "mqtt://192.0.2.1:1883", ClientID: "x",
		Routes: []config.Route{{Direction: "out", Filter: "#", QoS: &one}}}
	if _, err := New(cfg, Options{Buffer: buf}); err == nil {
		t.Error("New accepted mqtt:// to a remote address without insecure_plaintext")
	}
	cfg.InsecurePlaintext = true
	if _, err := New(cfg, Options{Buffer: buf}); err != nil {
		t.Errorf("New with insecure_plaintext: %v", err)
	}
	cfg.URL = "mqtt://127.0.0.1:1883"
	cfg.InsecurePlaintext = false
	if _, err := New(cfg, Options{Buffer: buf}); err != nil {
		t.Errorf("New with mqtt:// on loopback: %v", err)
	}
}

// TestBufferFull: with the cloud away, a small buffer drops its oldest
// records, counts them, keeps running in flat memory, and delivers the
// newest when the cloud comes.
func TestBufferFull(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	subscribeCloud(t, c, p, "full-sub", "sites/#", newCloudSub(), nil)
	c.stop()
	r := newRig(t, bridgeConfig(c, p, t), rigOpts{buffer: buffer.Options{MaxBytes: 64 << 10, SegmentSize: 8 << 10}})

	total := 40000
	if raceEnabled {
		total = 8000
	}
	topics := []string{"plant/t0"}
	publishLocal(t, r.local, topics, total/10)
	before := heapInUse()
	for range 9 {
		publishLocal(t, r.local, topics, total/10) // payloads repeat; delivery checks use the tail
	}
	after := heapInUse()
	st := r.br.Status()
	if st.Drops.Full == 0 || st.Backlog.Bytes > 64<<10 {
		t.Fatalf("buffer bounds not applied: %+v", st)
	}
	if after > before+8<<20 {
		t.Errorf("heap grew from %d to %d bytes while %d more messages were buffered", before, after, total*9/10)
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run stopped: %v", err)
	default:
	}
	kept := st.Backlog.Messages
	if kept+st.Drops.Full != uint64(total) {
		t.Fatalf("%d kept + %d dropped != %d published", kept, st.Drops.Full, total)
	}
	t.Logf("%d published, %d dropped, %d kept; heap %d → %d bytes", total, st.Drops.Full, kept, before, after)

	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "full-sub", "sites/#", sub, nil)
	sub.waitFor(t, wait, "the kept messages", func(n, _ int) bool { return uint64(n) >= kept })
	// What was kept is the newest messages, in order, up to the last one
	// published: message g of the run has payload g mod total/10.
	msgs := sub.snapshot()
	if uint64(len(msgs)) != kept {
		t.Fatalf("the cloud received %d messages, %d were kept", len(msgs), kept)
	}
	for i, m := range msgs {
		g := total - len(msgs) + i
		if m.payload != strconv.Itoa(g%(total/10)) {
			t.Fatalf("message %d of %d is %q, want %d", i, len(msgs), m.payload, g%(total/10))
		}
	}
}

// TestStatusAndMetrics: status carries no credentials, the collectors
// report per-bridge series, and a clean stop publishes "offline".
func TestStatusAndMetrics(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "status-sub", "sites/a/gw1/status", sub, nil)
	cfg := bridgeConfig(c, p, t)
	cfg.StatusTopic = "sites/a/gw1/status"
	cfg.URL = strings.Replace(cfg.URL, "mqtts://", "mqtts://gw1:s3cret@", 1)
	pw := filepath.Join(t.TempDir(), "password")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	cfg.Username, cfg.PasswordFile = "gw1", pw
	r := newRig(t, cfg, rigOpts{})
	r.waitConnected(t, true)
	sub.waitFor(t, wait, "online", func(int, int) bool { return sub.has("sites/a/gw1/status", "online") })
	publishLocal(t, r.local, []string{"plant/x"}, 10)
	eventually(t, wait, "ten acknowledged", func() bool { return r.br.Status().Sent >= 10 })

	js, err := json.Marshal(r.br.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret", "hunter2"} {
		if strings.Contains(string(js), secret) || strings.Contains(r.log.String(), secret) {
			t.Errorf("a secret leaked: %s", js)
		}
	}
	if !strings.Contains(string(js), `"connected":true`) || !strings.Contains(string(js), `"last_ack":`) {
		t.Errorf("status JSON %s", js)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(r.br.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "bridge" && l.GetValue() != "cloud" {
					t.Errorf("%s has bridge=%q", name, l.GetValue())
				}
				if l.GetName() == "reason" {
					name += "/" + l.GetValue()
				}
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["fieldbridge_bridge_connected"] != 1 || got["fieldbridge_bridge_sent_total"] < 10 || got["fieldbridge_bridge_dropped_total/full"] != 0 {
		t.Errorf("metrics %v", got)
	}

	r.stop()
	sub.waitFor(t, wait, "offline", func(int, int) bool { return sub.has("sites/a/gw1/status", "offline") })
}

// TestRunOnce: Run refuses a second call, and returns when ctx ends even
// while it cannot connect.
func TestRunOnce(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	r := newRig(t, bridgeConfig(c, p, t), rigOpts{})
	eventually(t, wait, "a failed attempt", func() bool { return r.br.Status().ConnectFailures > 0 })
	if err := r.br.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	if !strings.Contains(r.br.Status().LastError, "cannot reach") {
		t.Errorf("last_error %q", r.br.Status().LastError)
	}
}

// TestStoreRouting: what Store buffers, and what it leaves out.
func TestStoreRouting(t *testing.T) {
	buf := openTestBuffer(t)
	zero, one, two := 0, 1, 2
	no := false
	cfg := config.Bridge{
		Name: "cloud", URL: "mqtts://127.0.0.1:8883", ClientID: "{gateway}-up", BufferQoS0: &no,
		Routes: []config.Route{
			{Direction: "out", Filter: "plant/alarms/#", QoS: &two, RemotePrefix: "a/"},
			{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "p/"},
			{Direction: "out", Filter: "raw/#", QoS: &zero},
		},
	}
	b, err := New(cfg, Options{GatewayID: "gw1", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	if b.clientID != "gw1-up" {
		t.Errorf("client id %q", b.clientID)
	}
	ctx := context.Background()
	now := time.Unix(1700000000, 0)
	msgs := []broker.Message{
		{Topic: "plant/alarms/high", Payload: []byte("1"), QoS: 1, Time: now},
		{Topic: "plant/boiler/temp", Payload: []byte("2"), QoS: 1, Retain: true, Time: now},
		{Topic: "plant/boiler/temp", Payload: []byte("3"), QoS: 1, Origin: broker.InlineOrigin("cloud"), Inline: true},
		{Topic: "other/x", Payload: []byte("4"), QoS: 1},
		{Topic: "plant/q0", Payload: []byte("5"), QoS: 0}, // buffer_qos0 false, not connected: dropped
		{Topic: "raw/x", Payload: []byte("6"), QoS: 2, Origin: broker.InlineOrigin("other-bridge"), Inline: true},
		{Topic: "plant/" + strings.Repeat("x", 65535), Payload: []byte("7"), QoS: 1},
	}
	for _, m := range msgs {
		if err := b.Store(ctx, m, m.QoS > 0 && !m.Inline); err != nil {
			t.Fatalf("Store(%s): %v", m.Topic, err)
		}
	}
	rd := buf.Reader()
	defer rd.Close()
	var got []string
	for range 3 {
		rec, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s q%d r%v %s", r.topic, r.qos, r.retain, r.payload))
	}
	want := []string{"a/plant/alarms/high q2 rfalse 1", "p/plant/boiler/temp q1 rtrue 2", "raw/x q0 rfalse 6"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buffered %q, want %q", got, want)
	}
	st := b.Status()
	if st.Backlog.Messages != 3 || st.Drops.Live != 1 || st.Drops.Unsendable != 1 {
		t.Errorf("status %+v", st)
	}

	// A closed buffer is a store failure: the broker disconnects the
	// publisher.
	buf.Close()
	if err := b.Store(ctx, msgs[0], true); !errors.Is(err, buffer.ErrClosed) {
		t.Errorf("Store into a closed buffer: %v", err)
	}
	if b.Status().StoreErrors != 1 {
		t.Errorf("store errors %d", b.Status().StoreErrors)
	}
}

// TestBackoff: delays stay between min and the ceiling, which doubles up
// to max, falls back after a success, and stays under the limit for
// unreachable addresses.
func TestBackoff(t *testing.T) {
	bo := newBackoff(100*time.Millisecond, 2*time.Second)
	ceil := 100 * time.Millisecond
	for range 50 {
		d := bo.next(0)
		if d < 100*time.Millisecond || d > ceil {
			t.Fatalf("delay %s outside [100ms, %s]", d, ceil)
		}
		ceil = min(2*ceil, 2*time.Second)
	}
	for range 50 {
		if d := bo.next(time.Second); d > time.Second {
			t.Fatalf("delay %s over the unreachable limit", d)
		}
	}
	bo.reset()
	if d := bo.next(0); d != 100*time.Millisecond {
		t.Fatalf("after reset: %s", d)
	}
}

// TestLimiter: within any window of one second, no more than max_rate
// messages and max_byte_rate bytes are let through, and no more than a
// tenth of them within a tenth of a second, as the limiter itself timed
// them; a message larger than the byte rate goes alone.
func TestLimiter(t *testing.T) {
	if newLimiter(0, 0) != nil {
		t.Fatal("max_rate 0 limits")
	}
	l := newLimiter(100, 20000)
	start := time.Now()
	for i := range 130 {
		size := 100
		if i == 60 {
			size = 25000
		}
		if err := l.wait(context.Background(), size); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		msgs, bytes, n := l.msgs[0].sum, l.bytes.sum, len(l.bytes.sends)-l.bytes.head
		first, last := l.msgs[0].sends[l.msgs[0].head].at, l.msgs[0].sends[len(l.msgs[0].sends)-1].at
		tenth := l.msgs[1].sum
		l.mu.Unlock()
		if msgs > 100 || last.Sub(first) >= time.Second {
			t.Fatalf("send %d: %g messages within %s", i, msgs, last.Sub(first))
		}
		if tenth > 10 {
			t.Fatalf("send %d: %g messages within a tenth of a second", i, tenth)
		}
		if bytes > 20000 && n > 1 {
			t.Fatalf("send %d: %g bytes in the window with %d messages", i, bytes, n)
		}
	}
	// 130 messages at 100/s cannot leave within a second.
	if d := time.Since(start); d < time.Second {
		t.Errorf("130 sends at max_rate 100 took %s", d)
	}
}

// A local message whose remote topic an in-route subscribes to is not sent
// up: the cloud would echo it back and it would be injected a second time.
// DESIGN's example has this overlap (out plant-a-gw1/# under sites/a/, in
// sites/a/plant-a-gw1/+/+/set).
func TestStoreSkipsWhatComesBack(t *testing.T) {
	buf := openTestBuffer(t)
	one := 1
	cfg := config.Bridge{
		Name: "cloud", URL: "mqtts://127.0.0.1:8883", ClientID: "gw",
		Routes: []config.Route{
			{Direction: "out", Filter: "plant-a-gw1/#", QoS: &one, RemotePrefix: "sites/a/"},
			{Direction: "in", Filter: "sites/a/plant-a-gw1/+/+/set", QoS: &one, StripPrefix: "sites/a/"},
		},
	}
	yes := true
	cfg.BufferQoS0 = &yes
	b, err := New(cfg, Options{GatewayID: "gw", Buffer: buf, Local: noLocal{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, topic := range []string{"plant-a-gw1/boiler/setpoint/set", "plant-a-gw1/boiler/setpoint"} {
		if err := b.Store(ctx, broker.Message{Topic: topic, Payload: []byte("21"), QoS: 1}, true); err != nil {
			t.Fatal(err)
		}
	}
	r := buf.Reader()
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec, err := r.Next(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := buf.Stats(); st.Messages != 1 {
		t.Fatalf("%d messages buffered, want only the reading", st.Messages)
	}
	if !strings.Contains(string(rec.Data), "sites/a/plant-a-gw1/boiler/setpoint") || strings.Contains(string(rec.Data), "setpoint/set") {
		t.Errorf("buffered %q, want the reading only", rec.Data)
	}
	if got := b.Status().Drops.Looped; got != 1 {
		t.Errorf("looped = %d, want 1", got)
	}
}

// noLocal is a Local for tests that never run the uplink.
type noLocal struct{}

func (noLocal) PublishAs(origin, topic string, payload []byte, retain bool, qos byte) error {
	return nil
}

func (noLocal) Allowed(user, topic string) bool { return false }

// TestDrainWatch: a backlog that does not shrink over a minute of sending
// is reported, once per ten minutes; one that shrinks, an idle or a
// disconnected bridge is not.
func TestDrainWatch(t *testing.T) {
	var w drainWatch
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if w.observe(at(0), true, 1000, 0) || w.observe(at(30), true, 900, 100) {
		t.Fatal("warned within the first minute")
	}
	if w.observe(at(60), true, 800, 200) || w.notShrinking() {
		t.Fatal("a shrinking backlog is reported")
	}
	if !w.observe(at(120), true, 800, 300) || !w.notShrinking() {
		t.Fatal("a backlog that stayed while 100 messages were delivered is not reported")
	}
	if w.observe(at(180), true, 900, 400) || !w.notShrinking() {
		t.Fatal("warned again within ten minutes")
	}
	if w.observe(at(240), true, 900, 400) || w.notShrinking() {
		t.Fatal("a bridge that delivered nothing (a stalled link) is reported as not shrinking")
	}
	if w.observe(at(250), false, 900, 400) || w.notShrinking() {
		t.Fatal("a disconnected bridge is reported")
	}
	w.observe(at(800), true, 900, 500)
	if !w.observe(at(860), true, 950, 600) {
		t.Fatal("not reported again after ten minutes")
	}
}

// TestProfileLimits: a bridge built with a profile and no limits of its
// own keeps the profile's, and its status says which apply.
func TestProfileLimits(t *testing.T) {
	buf := openTestBuffer(t)
	one := 1
	cfg := config.Bridge{
		Name: "aws", URL: "mqtts://example-ats.iot.eu-west-1.amazonaws.com:8883", ClientID: "gw", Profile: "aws-iot",
		Routes: []config.Route{{Direction: "out", Filter: "gw/#", QoS: &one}},
	}
	b, err := New(cfg, Options{GatewayID: "gw", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{Profile: "aws-iot", MaxRate: 90, MaxByteRate: 460 << 10, Inflight: 100, MaxPayload: 128000}
	if got := b.Status().Limits; got != want {
		t.Errorf("limits %+v, want %+v", got, want)
	}
	if b.subscribeChunk != 8 {
		t.Errorf("in-routes subscribed %d per SUBSCRIBE, want 8", b.subscribeChunk)
	}
	cfg.Profile = "azure"
	if _, err := New(cfg, Options{GatewayID: "gw", Buffer: buf}); err == nil || !strings.Contains(err.Error(), `unknown profile "azure"`) {
		t.Errorf("unknown profile: %v", err)
	}
}

// openTestBuffer opens a buffer in a temporary folder, closed at the end
// of the test.
func openTestBuffer(t *testing.T) *buffer.Log {
	t.Helper()
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), ClockSynced: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	return buf
}

// TestNewFillsDefaults: a hand-built configuration that leaves settings
// unset gets config.Load's defaults, from config.Bridge.WithDefaults, and
// the caller's configuration is left as it was.
func TestNewFillsDefaults(t *testing.T) {
	buf := openTestBuffer(t)
	cfg := config.Bridge{
		Name: "cloud", URL: "mqtts://cloud.example.com:8883",
		Routes: []config.Route{{Direction: "out", Filter: "gw/#", Batch: &config.Batch{}}},
	}
	b, err := New(cfg, Options{GatewayID: "gw", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[0].QoS != nil || *cfg.Routes[0].Batch != (config.Batch{}) {
		t.Errorf("New changed the caller's configuration: %+v", cfg.Routes[0])
	}
	if b.clientID != "gw" || b.keepalive != config.DefaultKeepalive || !b.bufferQoS0 ||
		b.cfg.Reconnect != (config.Reconnect{Min: config.DefaultReconnectMin, Max: config.DefaultReconnectMax}) {
		t.Errorf("client id %q, keepalive %s, buffer_qos0 %v, reconnect %+v", b.clientID, b.keepalive, b.bufferQoS0, b.cfg.Reconnect)
	}
	if len(b.out) != 1 || b.out[0].qos != 1 {
		t.Fatalf("out-routes %+v, want one at QoS 1", b.out)
	}
	if bt := b.out[0].batch; bt == nil || bt.maxMessages != config.DefaultBatchCount ||
		bt.maxBytes != int(config.DefaultBatchBytes) || bt.maxDelay != config.DefaultBatchDelay {
		t.Errorf("batch %+v, want the defaults", bt)
	}
	want := Limits{Profile: "generic", Inflight: config.DefaultInflight, MaxPayload: int(config.MaxPayloadLimit)}
	if got := b.Status().Limits; got != want {
		t.Errorf("limits %+v, want %+v", got, want)
	}

	// What config.Load refuses and the bridge cannot run with.
	for _, bad := range []func(*config.Bridge){
		func(c *config.Bridge) { c.Inflight = -1 },
		func(c *config.Bridge) { c.MaxPayload = -1 },
		func(c *config.Bridge) { c.Keepalive = -time.Second },
		func(c *config.Bridge) { c.Reconnect.Min = -time.Second },
	} {
		c := cfg
		bad(&c)
		if _, err := New(c, Options{GatewayID: "gw", Buffer: buf}); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

// TestDropLogsLimited: drops of one kind are logged once per interval
// whatever their topics, and one kind does not reset another's count.
func TestDropLogsLimited(t *testing.T) {
	log, sb := testLogger(t, "bridge")
	buf := openTestBuffer(t)
	cfg := config.Bridge{
		Name: "cloud", URL: "mqtts://cloud.example.com:8883", MaxPayload: 10,
		Routes: []config.Route{{Direction: "out", Filter: "gw/#"}},
	}
	b, err := New(cfg, Options{GatewayID: "gw", Buffer: buf, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	long := "gw/" + strings.Repeat("x", 1<<16) // a remote topic the record format cannot hold
	for i := range 10 {
		for _, m := range []broker.Message{
			{Topic: fmt.Sprintf("gw/%d", i), Payload: make([]byte, 11), QoS: 1},
			{Topic: long, Payload: []byte("1"), QoS: 1},
		} {
			if err := b.Store(context.Background(), m, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := b.Status()
	oversize := strings.Count(sb.String(), "larger than the cloud accepts")
	unsendable := strings.Count(sb.String(), "a message that cannot be sent")
	if st.Drops.Oversize != 10 || st.Drops.Unsendable != 10 || oversize != 1 || unsendable != 1 {
		t.Errorf("drops %+v, logged %d oversize and %d unsendable, want 10 each counted and logged once", st.Drops, oversize, unsendable)
	}
}
