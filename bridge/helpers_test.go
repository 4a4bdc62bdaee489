package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/syncbuf"
)

// wait bounds the wait for one event; bulkWait the wait for a whole
// transfer. Neither is an expected duration.
const (
	wait     = 30 * time.Second
	bulkWait = 4 * time.Minute
)

// need finds a program the tests cannot do without; its absence fails the
// test, so a machine without it cannot pass silently.
func need(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: install the Debian package %s (apt-get install -y %s): %v", name, pkg, pkg, err)
	}
	return path
}

func testLogger(t testing.TB, what string) (*slog.Logger, *syncbuf.Buffer) {
	sb := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			out := sb.String()
			if len(out) > 20000 {
				out = "...\n" + out[len(out)-20000:]
			}
			t.Logf("%s log:\n%s", what, out)
		}
	})
	return slog.New(slog.NewTextHandler(sb, &slog.HandlerOptions{Level: slog.LevelDebug})), sb
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- certificates, made with the openssl command ----

// pki is a throw-away certificate authority in a temporary directory.
type pki struct {
	dir     string
	ca, key string
	serial  int
}

func run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	need(t, "openssl", "openssl")
	p := &pki{dir: filepath.Join(t.TempDir(), name), serial: 1}
	if err := os.MkdirAll(filepath.Join(p.dir, "newcerts"), 0o700); err != nil {
		t.Fatal(err)
	}
	p.ca, p.key = filepath.Join(p.dir, "ca.crt"), filepath.Join(p.dir, "ca.key")
	run(t, p.dir, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p.key)
	run(t, p.dir, "openssl", "req", "-x509", "-new", "-key", p.key, "-out", p.ca, "-days", "2",
		"-subj", "/CN="+name+" test CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return p
}

// leaf issues a certificate. With sans it is a server certificate for
// those names (IP addresses or DNS names); without, a client certificate
// for cn. expired makes one that ran out in 2020.
func (p *pki) leaf(t testing.TB, cn string, sans []string, expired bool) (certFile, keyFile string) {
	t.Helper()
	p.serial++
	base := filepath.Join(p.dir, fmt.Sprintf("%s-%d", cn, p.serial))
	certFile, keyFile = base+".crt", base+".key"
	run(t, p.dir, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile)
	run(t, p.dir, "openssl", "req", "-new", "-key", keyFile, "-out", base+".csr", "-subj", "/CN="+cn)
	ext := "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
	if len(sans) > 0 {
		var alt []string
		for _, s := range sans {
			if net.ParseIP(s) != nil {
				alt = append(alt, "IP:"+s)
			} else {
				alt = append(alt, "DNS:"+s)
			}
		}
		ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=" + strings.Join(alt, ",") + "\n"
	}
	if err := os.WriteFile(base+".ext", []byte(ext), 0o600); err != nil {
		t.Fatal(err)
	}
	if !expired {
		run(t, p.dir, "openssl", "x509", "-req", "-in", base+".csr", "-CA", p.ca, "-CAkey", p.key,
			"-set_serial", strconv.Itoa(p.serial), "-days", "2", "-out", certFile, "-extfile", base+".ext")
		return certFile, keyFile
	}
	// openssl x509 cannot backdate; openssl ca can, with a minimal CA setup.
	conf := filepath.Join(p.dir, "ca.cnf")
	os.WriteFile(filepath.Join(p.dir, "index.txt"), nil, 0o600)
	os.WriteFile(filepath.Join(p.dir, "serial"), []byte(fmt.Sprintf("%04X\n", 0x1000+p.serial)), 0o600)
	cnf := fmt.Sprintf("[ca]\ndefault_ca = testca\n[testca]\ndatabase = %[1]s/index.txt\nnew_certs_dir = %[1]s/newcerts\n"+
		"serial = %[1]s/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n", p.dir)
	if err := os.WriteFile(conf, []byte(cnf), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, p.dir, "openssl", "ca", "-batch", "-config", conf, "-cert", p.ca, "-keyfile", p.key, "-in", base+".csr",
		"-out", certFile, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extfile", base+".ext", "-notext")
	return certFile, keyFile
}

// clientTLS is a TLS configuration for a test client of the cloud.
func (p *pki) clientTLS(t testing.TB, cn string) *tls.Config {
	t.Helper()
	cert, pool := p.keyPair(t, cn, nil)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// keyPair issues a certificate for cn (and sans) and returns it with a
// pool holding the CA.
func (p *pki) keyPair(t testing.TB, cn string, sans []string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certFile, keyFile := p.leaf(t, cn, sans, false)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return cert, pool
}

// ---- the cloud: a real mosquitto ----

// cloud is a mosquitto broker with a TLS listener that requires client
// certificates, persistence on, and no limit on queued messages.
type cloud struct {
	t       testing.TB
	dir     string
	conf    string
	host    string
	port    int
	netns   string // run inside this network namespace when set
	extra   string // more configuration lines
	ca      string
	cmd     *exec.Cmd
	exited  chan struct{}
	logs    *syncbuf.Buffer
	running bool
}

type cloudOpts struct {
	host       string // 127.0.0.1 unless set
	netns      string
	serverCert string // default: a certificate from p for host
	serverKey  string
	extra      string
}

// freePort picks a port that is free now on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newCloud(t testing.TB, p *pki, o cloudOpts) *cloud {
	t.Helper()
	need(t, "mosquitto", "mosquitto")
	c := &cloud{t: t, dir: filepath.Join(t.TempDir(), "cloud"), host: o.host, netns: o.netns, extra: o.extra, ca: p.ca}
	if c.host == "" {
		c.host = "127.0.0.1"
		c.port = freePort(t)
	} else {
		c.port = 20000 + int(time.Now().UnixNano()%20000)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key := o.serverCert, o.serverKey
	if cert == "" {
		cert, key = p.leaf(t, "cloud", []string{c.host}, false)
	}
	c.conf = filepath.Join(c.dir, "mosquitto.conf")
	conf := fmt.Sprintf(`user root
listener %d %s
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
persistence true
persistence_location %s/
autosave_interval 0
max_queued_messages 0
max_inflight_messages 100
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
%s
`, c.port, c.host, p.ca, cert, key, c.dir, o.extra)
	if err := os.WriteFile(c.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	return c
}

func (c *cloud) url() string { return fmt.Sprintf("mqtts://%s:%d", c.host, c.port) }

func (c *cloud) addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// start runs mosquitto and returns once it says it is running.
func (c *cloud) start() {
	c.t.Helper()
	args := []string{"-c", c.conf}
	name := "mosquitto"
	if c.netns != "" {
		args = append([]string{"netns", "exec", c.netns, "mosquitto"}, args...)
		name = "ip"
	}
	cmd := exec.Command(name, args...)
	// mosquitto's stdout is block-buffered in a pipe; stderr is not.
	out, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if c.logs == nil {
		c.logs = &syncbuf.Buffer{}
		c.t.Cleanup(func() {
			if c.t.Failed() {
				c.t.Logf("mosquitto log:\n%s", c.logs)
			}
		})
	}
	cmd.Stdout = c.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting mosquitto: %v", err)
	}
	ready := make(chan struct{})
	c.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			c.logs.Write([]byte(line + "\n"))
			if strings.Contains(line, " running") {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
		close(c.exited)
	}()
	select {
	case <-ready:
	case <-c.exited:
		c.t.Fatalf("mosquitto exited at start")
	case <-time.After(wait):
		cmd.Process.Kill()
		<-c.exited
		c.t.Fatalf("mosquitto did not start")
	}
	c.cmd, c.running = cmd, true
}

// stop ends mosquitto with SIGTERM, letting it save its persistence file.
func (c *cloud) stop() {
	c.t.Helper()
	if !c.running {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(wait):
		c.t.Fatalf("mosquitto did not stop")
	}
	c.running = false
}

func (c *cloud) kill() {
	if c.running {
		c.cmd.Process.Kill()
		<-c.exited
		c.running = false
	}
}

// ---- a subscriber on the cloud ----

type cloudMsg struct {
	topic, payload string
	retained       bool
}

// cloudSub records what a cloud client receives.
type cloudSub struct {
	mu       sync.Mutex
	msgs     []cloudMsg
	distinct map[string]bool
	signal   chan struct{}
	client   paho.Client
}

func newCloudSub() *cloudSub {
	return &cloudSub{distinct: map[string]bool{}, signal: make(chan struct{}, 1)}
}

func (s *cloudSub) handle(_ paho.Client, m paho.Message) {
	s.mu.Lock()
	msg := cloudMsg{m.Topic(), string(m.Payload()), m.Retained()}
	s.msgs = append(s.msgs, msg)
	s.distinct[msg.topic+"\x00"+msg.payload] = true
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *cloudSub) counts() (total, distinct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs), len(s.distinct)
}

func (s *cloudSub) snapshot() []cloudMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudMsg(nil), s.msgs...)
}

// waitFor waits until cond holds for the messages received so far.
func (s *cloudSub) waitFor(t testing.TB, limit time.Duration, what string, cond func(total, distinct int) bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if cond(s.counts()) {
			return
		}
		select {
		case <-s.signal:
		case <-deadline.C:
			total, distinct := s.counts()
			t.Fatalf("timed out after %s waiting for %s (received %d, %d distinct)", limit, what, total, distinct)
		}
	}
}

// has reports whether a message on topic with payload arrived.
func (s *cloudSub) has(topic, payload string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.distinct[topic+"\x00"+payload]
}

// subscribeCloud connects a client to the cloud and subscribes. A
// persistent session (clean false) keeps what arrives while the client or
// the cloud is down. dial, when set, opens the TCP connection.
func subscribeCloud(t testing.TB, c *cloud, p *pki, id string, filter string, s *cloudSub, dial dialFunc) {
	t.Helper()
	tlsCfg := p.clientTLS(t, "subscriber")
	tlsCfg.ServerName = c.host
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + c.addr()).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetConnectTimeout(wait).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(s.handle).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			if dial == nil {
				dial = (&net.Dialer{}).DialContext
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			conn, err := dial(ctx, "tcp", c.addr())
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, tlsCfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		})
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud subscriber: connect: %v", tok.Error())
	}
	if tok := cl.Subscribe(filter, 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud subscriber: subscribe: %v", tok.Error())
	}
	s.client = cl
	t.Cleanup(func() { cl.Disconnect(0) })
}

// publishCloud publishes one message to the cloud from a test client.
func publishCloud(t testing.TB, c *cloud, p *pki, topic, payload string, retain bool) {
	t.Helper()
	tlsCfg := p.clientTLS(t, "operator")
	tlsCfg.ServerName = c.host
	opts := paho.NewClientOptions().AddBroker("ssl://" + c.addr()).SetClientID(fmt.Sprintf("operator-%d", time.Now().UnixNano())).
		SetProtocolVersion(4).SetAutoReconnect(false).SetTLSConfig(tlsCfg).SetConnectTimeout(wait)
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud publisher: connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish(topic, 1, retain, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud publisher: publish: %v", tok.Error())
	}
}

// ---- the gateway side: broker + buffer + bridge ----

// rig is a gateway's store-and-forward path wired as the gateway wires
// it: a started broker with the bridge as its store, and the bridge
// running.
type rig struct {
	t      testing.TB
	brk    *broker.Broker
	buf    *buffer.Log
	br     *Bridge
	local  string // tcp://address of the broker's listener
	log    *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

type rigOpts struct {
	buffer  buffer.Options // Dir defaults to a temporary directory
	users   []config.User
	dial    dialFunc
	noStart bool // wire everything but do not call Run
}

// bridgeConfig is a bridge to c with a client certificate, routing
// plant/# to sites/a/plant/#.
func bridgeConfig(c *cloud, p *pki, t testing.TB) config.Bridge {
	certFile, keyFile := p.leaf(t, "gw1", nil, false)
	one := 1
	return config.Bridge{
		Name:      "cloud",
		URL:       c.url(),
		ClientID:  "{gateway}",
		TLS:       config.TLS{CAFile: p.ca, CertFile: certFile, KeyFile: keyFile},
		Keepalive: 5 * time.Second,
		Reconnect: config.Reconnect{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		Inflight:  100,
		Routes:    []config.Route{{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "sites/a/"}},
	}
}

func newRig(t testing.TB, cfg config.Bridge, o rigOpts) *rig {
	t.Helper()
	log, sb := testLogger(t, "gateway")
	bo := o.buffer
	if bo.Dir == "" {
		bo.Dir = filepath.Join(t.TempDir(), "buffers", cfg.Name)
	}
	if bo.ClockSynced == nil {
		bo.ClockSynced = func() bool { return true }
	}
	bo.Logger = log.With("component", "buffer")
	buf, err := buffer.Open(bo)
	if err != nil {
		t.Fatalf("buffer.Open: %v", err)
	}
	brk, err := broker.New(config.Broker{
		Listeners: []config.Listener{{Name: "local", Type: "tcp", Address: "127.0.0.1:0"}},
		Users:     o.users,
	}, log.With("component", "broker"))
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	br, err := New(cfg, Options{GatewayID: "gw1", Buffer: buf, Local: brk, Log: log.With("component", "bridge")})
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	if o.dial != nil {
		br.dial = o.dial
	}
	if err := brk.AddStore(br); err != nil {
		t.Fatal(err)
	}
	if err := brk.Start(context.Background()); err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	r := &rig{t: t, brk: brk, buf: buf, br: br, local: "tcp://" + brk.Addr("local").String(), log: sb}
	t.Cleanup(r.stop)
	if !o.noStart {
		r.start()
	}
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.br.Run(ctx) }()
}

// stop shuts down in the gateway's order: bridge, broker, buffer.
func (r *rig) stop() {
	if r.cancel != nil {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			r.t.Errorf("Run did not return after its context ended")
		}
		r.cancel = nil
	}
	r.brk.Close()
	r.buf.Close()
}

// waitConnected waits until the bridge's status says connected (or not).
func (r *rig) waitConnected(t testing.TB, up bool) {
	t.Helper()
	eventually(t, wait, fmt.Sprintf("bridge connected=%v", up), func() bool { return r.br.Status().Connected == up })
}

// publishLocal publishes perTopic messages to each of topics through the
// local broker with a paho client and QoS 1, keeping up to 100
// unacknowledged, and returns once every PUBACK arrived. Payloads are the
// message's index on its topic.
func publishLocal(t testing.TB, brokerURL string, topics []string, perTopic int) {
	t.Helper()
	cl := connectLocal(t, brokerURL)
	defer cl.Disconnect(100)
	window := make(chan paho.Token, 100)
	var failed atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tok := range window {
			if !tok.WaitTimeout(wait) {
				failed.Store("no PUBACK")
			} else if err := tok.Error(); err != nil {
				failed.Store(err.Error())
			}
		}
	}()
	for i := range perTopic {
		for _, topic := range topics {
			window <- cl.Publish(topic, 1, false, strconv.Itoa(i))
		}
	}
	close(window)
	<-done
	if f := failed.Load(); f != nil {
		t.Fatalf("local publisher: %v", f)
	}
}

// connectLocal connects a publisher to the local broker.
func connectLocal(t testing.TB, brokerURL string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("local-pub-%d", time.Now().UnixNano())).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(wait).SetWriteTimeout(wait)
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("local publisher: connect: %v", tok.Error())
	}
	return cl
}

func topicNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// checkDelivery checks that each remote topic received 0..perTopic-1, in
// order of first arrival, and returns how many duplicates arrived.
func checkDelivery(t testing.TB, msgs []cloudMsg, topics []string, perTopic int) int {
	t.Helper()
	next := map[string]int{}
	want := map[string]bool{}
	for _, tp := range topics {
		want[tp] = true
	}
	dups := 0
	for _, m := range msgs {
		if !want[m.topic] {
			continue
		}
		i, err := strconv.Atoi(m.payload)
		if err != nil {
			t.Fatalf("payload %q on %s", m.payload, m.topic)
		}
		switch {
		case i < next[m.topic]:
			dups++
		case i == next[m.topic]:
			next[m.topic]++
		default:
			t.Fatalf("%s: got %d while %d had not arrived: lost or out of order", m.topic, i, next[m.topic])
		}
	}
	for _, tp := range topics {
		if next[tp] != perTopic {
			t.Fatalf("%s: %d of %d messages arrived", tp, next[tp], perTopic)
		}
	}
	return dups
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
