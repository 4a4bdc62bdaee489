package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/broker/brokertest"
)

// cloud is a real mosquitto with mutual TLS standing in for a cloud broker.
type cloud struct {
	addr string
	conf string
	cmd  *exec.Cmd
	pki  *brokertest.PKI
	out  bytes.Buffer
}

func newCloud(t *testing.T, pki *brokertest.PKI) *cloud {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Fatal("mosquitto is not installed: apt-get install mosquitto (scripts/test.sh does it)")
	}
	c := &cloud{addr: freePort(t), pki: pki}
	_, port, _ := splitHostPort(c.addr)
	c.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	// max_queued_messages 0: mosquitto's default of 1000 would drop what a
	// slow consumer has not taken yet, which the test would blame on us.
	conf := fmt.Sprintf("listener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\nallow_anonymous true\nmax_queued_messages 0\n",
		port, pki.CAFile, pki.ServerCertFile, pki.ServerKeyFile)
	if os.Getuid() == 0 {
		// As root, mosquitto switches to user "mosquitto", which cannot read
		// the test's private temporary folder.
		conf += "user root\n"
	}
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("no port in %q", addr)
}

func (c *cloud) start(t *testing.T) {
	t.Helper()
	c.cmd = exec.Command("mosquitto", "-c", c.conf)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (c *cloud) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		c.cmd = nil
	}
}

// subscribe connects to the cloud with a client certificate and collects
// the payloads of filter in arrival order.
func (c *cloud) subscribe(t *testing.T, filter string) <-chan string {
	t.Helper()
	cert, key := c.pki.ClientCert(t, "consumer")
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + c.addr).SetClientID("consumer").
		SetTLSConfig(c.pki.ClientTLS(t, cert, key)).SetAutoReconnect(false).SetOrderMatters(true).
		SetConnectRetry(true).SetConnectRetryInterval(20 * time.Millisecond)
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("cloud subscriber: %v\nmosquitto: %s", tok.Error(), c.out.String())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	ch := make(chan string, 100000)
	if tok := cl.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { ch <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cloud subscribe: %v", tok.Error())
	}
	return ch
}

// bridgeRig is a gateway binary's configuration with one bridge to a
// mosquitto cloud, not started: the bridge's routes and limits are given,
// the rest is the same for every test.
type bridgeRig struct {
	cloud *cloud
	path  string
	local string
	head  string // the configuration up to the bridge's own settings
}

func newBridgeRig(t *testing.T, bridgeExtra string) *bridgeRig {
	t.Helper()
	pki := brokertest.NewPKI(t)
	cl := newCloud(t, pki)
	gwCert, gwKey := pki.ClientCert(t, "gw-test")
	r := &bridgeRig{cloud: cl, path: filepath.Join(t.TempDir(), "gw.yaml"), local: freePort(t)}
	r.head = fmt.Sprintf(`gateway: {id: gw-test, data_dir: %s}
broker: {listeners: [{name: local, type: tcp, address: %s}]}
bridges:
  - name: cloud
    url: mqtts://%s
    tls: {ca_file: %s, cert_file: %s, key_file: %s}
    reconnect: {min: 50ms, max: 200ms}
`, t.TempDir(), r.local, cl.addr, pki.CAFile, gwCert, gwKey)
	r.write(t, bridgeExtra)
	return r
}

// write rewrites the configuration with other bridge settings.
func (r *bridgeRig) write(t *testing.T, bridgeExtra string) {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(r.head+bridgeExtra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// publishCounts publishes 0..n-1 to plant/line1/count and returns once the
// gateway acknowledged every one.
func (k *bridgeRig) publishCounts(t *testing.T, n int, stderr fmt.Stringer) {
	t.Helper()
	pub := connect(t, k.local)
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = pub.Publish("plant/line1/count", 1, false, strconv.Itoa(i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d not acknowledged: %v\n%s", i, tok.Error(), stderr)
		}
	}
}

// The built binary is killed with SIGKILL after its local publisher got
// every PUBACK while the cloud was down; restarted with the cloud up, it
// delivers every message, in order.
func TestKill9WhileCloudDownLosesNothing(t *testing.T) {
	const n = 10000
	k := newBridgeRig(t, `    routes: [{direction: out, filter: "plant/#", qos: 1, remote_prefix: "site/"}]
`)
	gw, stderr := startGateway(t, k.path)
	k.publishCounts(t, n, stderr)
	// Every message was acknowledged by the gateway: now it dies.
	gw.Process.Kill()
	gw.Wait()

	k.cloud.start(t)
	got := k.cloud.subscribe(t, "site/plant/#")
	startGateway(t, k.path)
	next := 0
	deadline := time.After(60 * time.Second)
	for next < n {
		select {
		case p := <-got:
			v, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("payload %q", p)
			}
			switch {
			case v == next:
				next++
			case v < next:
				// a duplicate after the crash: allowed (at-least-once)
			default:
				t.Fatalf("message %d arrived before %d: order or loss", v, next)
			}
		case <-deadline:
			t.Fatalf("only %d of %d messages arrived", next, n)
		}
	}
}

// A reload changes a bridge's routes in place: the local client stays
// connected and what the new route matches reaches the cloud.
func TestReloadChangesRoutes(t *testing.T) {
	routes := func(filter string) string {
		return fmt.Sprintf("    routes: [{direction: out, filter: %q, qos: 1, remote_prefix: \"site/\"}]\n", filter)
	}
	rig := newBridgeRig(t, routes("a/#"))
	rig.cloud.start(t)
	got := rig.cloud.subscribe(t, "site/#")
	gw, stderr := startGateway(t, rig.path)
	pub := connect(t, rig.local)
	send := func(topic, payload string) {
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	expect := func(want string) {
		t.Helper()
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("cloud got %q, want %q\n%s", p, want, stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("cloud did not get %q\n%s", want, stderr)
		}
	}
	send("a/1", "a-before")
	expect("a-before")

	rig.write(t, routes("b/#"))
	gw.Process.Signal(syscall.SIGHUP)
	// b/ messages are forwarded once the reload is applied; a/ ones no more.
	stderr.waitFor(t, "configuration reloaded")
	send("a/2", "a-after")
	send("b/1", "b-after")
	expect("b-after")
	if !pub.IsConnectionOpen() {
		t.Error("the local publisher was dropped by the reload")
	}
}

// The built binary is killed with SIGKILL in the middle of a batched
// replay (max_rate keeps it in the middle): restarted, it delivers every
// reading, in order, each batch whole; a batch in flight at the kill comes
// again.
func TestKill9MidBatchedReplay(t *testing.T) {
	const n = 10000
	k := newBridgeRig(t, `    max_rate: 20
    routes:
      - {direction: out, filter: "plant/#", qos: 1, remote_prefix: "site/", batch: {topic: site/batch, max_messages: 100, max_delay: 100ms}}
`)
	gw, stderr := startGateway(t, k.path)
	k.publishCounts(t, n, stderr)
	// Stopped and started again once the cloud's subscriber is in place, so
	// that no batch reaches the cloud before someone listens.
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	k.cloud.start(t)
	got := k.cloud.subscribe(t, "site/#")
	gw, _ = startGateway(t, k.path)
	next, batches := 0, 0
	take := func(limit time.Duration, until func() bool) {
		t.Helper()
		deadline := time.After(limit)
		for !until() {
			select {
			case p := <-got:
				var elems []struct {
					Topic   string          `json:"topic"`
					Payload json.RawMessage `json:"payload"`
				}
				if err := json.Unmarshal([]byte(p), &elems); err != nil {
					t.Fatalf("not a batch: %v: %.200s", err, p)
				}
				batches++
				for i, e := range elems {
					v, err := strconv.Atoi(string(e.Payload))
					if err != nil || e.Topic != "site/plant/line1/count" {
						t.Fatalf("element %s %s", e.Topic, e.Payload)
					}
					if first, _ := strconv.Atoi(string(elems[0].Payload)); v != first+i {
						t.Fatalf("batch %d is not one run of readings: element %d is %d after %d", batches, i, v, first)
					}
					switch {
					case v == next:
						next++
					case v < next:
						// a batch sent again after the kill: allowed (at-least-once)
					default:
						t.Fatalf("reading %d arrived before %d: lost or out of order", v, next)
					}
				}
			case <-deadline:
				t.Fatalf("only %d of %d readings arrived in %d batches", next, n, batches)
			}
		}
	}
	// Some batches arrived; max_rate keeps most of the backlog waiting.
	take(30*time.Second, func() bool { return batches >= 3 })
	killedAt := next
	if killedAt >= n {
		t.Fatal("the replay ended before the kill")
	}
	gw.Process.Kill()
	gw.Wait()
	startGateway(t, k.path)
	take(90*time.Second, func() bool { return next >= n })
	t.Logf("%d readings in %d batches (%d would do), killed after %d", n, batches, n/100, killedAt)
}
