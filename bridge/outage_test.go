package bridge

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/config"
)

// outageMessages is the figure; the race detector gets fewer.
func outageMessages() int {
	if raceEnabled {
		return 5000
	}
	return 50000
}

// TestOutage: the cloud is down while the plant publishes; when it comes
// back, everything arrives, in order per topic.
func TestOutage(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "outage-sub", "sites/#", sub, nil)

	r := newRig(t, bridgeConfig(c, p, t), rigOpts{})
	r.waitConnected(t, true)

	c.stop()
	r.waitConnected(t, false)
	topics := topicNames("plant/t", 10)
	perTopic := outageMessages() / len(topics)
	publishLocal(t, r.local, topics, perTopic)
	if got := r.br.Status().Backlog.Messages; got != uint64(len(topics)*perTopic) {
		t.Fatalf("backlog %d messages, want %d", got, len(topics)*perTopic)
	}

	c.start()
	sub = newCloudSub()
	subscribeCloud(t, c, p, "outage-sub", "sites/#", sub, nil)
	n := len(topics) * perTopic
	sub.waitFor(t, bulkWait, "every message at the cloud", func(_, distinct int) bool { return distinct >= n })

	remote := topicNames("sites/a/plant/t", 10)
	dups := checkDelivery(t, sub.snapshot(), remote, perTopic)
	t.Logf("%d messages delivered after the outage, %d duplicates", n, dups)
	eventually(t, wait, "an empty backlog", func() bool { return r.br.Status().Backlog.Messages == 0 })
	// The log says what waited at the reconnection, and when all of it
	// was delivered.
	connected := fmt.Sprintf(`msg="bridge: connected" component=bridge bridge=%s url=%s client_id=gw1 backlog=%d oldest_age=`, r.br.name, r.br.publicURL, n)
	delivered := fmt.Sprintf(`msg="bridge: backlog delivered" component=bridge bridge=%s url=%s records=%d took=`, r.br.name, r.br.publicURL, n)
	eventually(t, wait, "the delivery of the backlog in the log", func() bool { return strings.Contains(r.log.String(), delivered) })
	if !strings.Contains(r.log.String(), connected) {
		t.Errorf("no %q in the log", connected)
	}
	st := r.br.Status()
	if st.Sent < uint64(n) || st.LastAck.IsZero() || st.Drops != (Drops{}) {
		t.Errorf("status after the outage: %+v", st)
	}
}

// TestWebsocket: the same path over wss:// with a client certificate.
func TestWebsocket(t *testing.T) {
	c, p, cfg, _ := newWebsocketCloud(t)
	sendAndCheck(t, c, p, cfg)
}

// newWebsocketCloud starts a cloud with a mosquitto websockets listener
// with TLS and client certificates, and returns a bridge configuration
// for it and the listener's port.
func newWebsocketCloud(t *testing.T) (*cloud, *pki, config.Bridge, int) {
	t.Helper()
	p := newPKI(t, "cloud")
	certFile, keyFile := p.leaf(t, "cloud-ws", []string{"127.0.0.1"}, false)
	wsPort := freePort(t)
	c := newCloud(t, p, cloudOpts{extra: fmt.Sprintf(`listener %d 127.0.0.1
protocol websockets
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, wsPort, p.ca, certFile, keyFile)})
	c.start()
	cfg := bridgeConfig(c, p, t)
	cfg.URL = fmt.Sprintf("wss://127.0.0.1:%d/mqtt", wsPort)
	return c, p, cfg, wsPort
}

// sendAndCheck runs a bridge with cfg, publishes locally and checks that
// every message reaches the cloud, in order per topic.
func sendAndCheck(t *testing.T, c *cloud, p *pki, cfg config.Bridge) *rig {
	t.Helper()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "send-sub", "sites/#", sub, nil)
	r := newRig(t, cfg, rigOpts{})
	r.waitConnected(t, true)
	const perTopic = 500
	topics := topicNames("plant/t", 2)
	publishLocal(t, r.local, topics, perTopic)
	sub.waitFor(t, wait, "every message", func(_, distinct int) bool { return distinct >= len(topics)*perTopic })
	checkDelivery(t, sub.snapshot(), topicNames("sites/a/plant/t", len(topics)), perTopic)
	return r
}

// TestUnbufferedQoS0: with buffer_qos0 false, QoS 0 messages skip the
// buffer and go out while connected; QoS 1 ones are still buffered.
func TestUnbufferedQoS0(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "q0-sub", "sites/#", sub, nil)
	cfg := bridgeConfig(c, p, t)
	no := false
	cfg.BufferQoS0 = &no
	r := newRig(t, cfg, rigOpts{})
	r.waitConnected(t, true)
	if err := r.brk.Publish("plant/live", []byte("q0"), false, 0); err != nil {
		t.Fatal(err)
	}
	publishLocal(t, r.local, []string{"plant/durable"}, 1)
	sub.waitFor(t, wait, "both messages", func(_, d int) bool {
		return sub.has("sites/a/plant/live", "q0") && sub.has("sites/a/plant/durable", "0")
	})
	// The cloud's PUBACK may reach the bridge after the subscriber got the
	// message: wait for the backlog to clear before counting.
	eventually(t, wait, "the backlog to clear", func() bool { return r.br.Status().Backlog.Messages == 0 })
	if n := r.buf.Stats().Appended; n != 1 {
		t.Errorf("appended %d records, want only the QoS 1 one; status %+v", n, r.br.Status())
	}
}
