package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/internal/rawmqtt"
)

// mqttProxy sits between the bridge and the cloud, terminating TLS on
// both sides (the bridge connects with mqtts:// and its client
// certificate, as it would to the cloud; the proxy connects to mosquitto
// with its own), so it can read the MQTT 3.1.1 packets going through in
// both directions. It forwards their bytes unchanged. It records when each
// QoS 1 PUBLISH from the bridge came through, with its packet id and
// size, and how many were awaiting their PUBACK at once; and it can hold
// the cloud's PUBACKs back, in order, for a while or until released, to
// fill the bridge's in-flight window.
type mqttProxy struct {
	ln    net.Listener
	up    string // the cloud's host:port
	upTLS *tls.Config
	hold  atomic.Int64 // how long PUBACKs are held, in nanoseconds
	// cuts is how many more connections are closed, in both directions,
	// when the bridge's first QoS 1 PUBLISH on them arrives (not
	// forwarded): a link that fails whenever data is sent.
	cuts atomic.Int32

	mu     sync.Mutex
	gate   chan struct{} // while paused, closed by releaseAcks; else nil
	pubs   []proxyPub
	maxOut int
	conns  int
	errs   []string
	open   map[net.Conn]bool
	closed bool

	wg   sync.WaitGroup
	done chan struct{}
}

// proxyPub is a QoS 1 PUBLISH from the bridge as the proxy read it.
type proxyPub struct {
	at   time.Time
	id   uint16
	size int // topic and payload bytes: what max_byte_rate counts
}

// newProxy starts a proxy on a free port of 127.0.0.1 in front of c.
func newProxy(t testing.TB, c *cloud, p *pki) *mqttProxy {
	t.Helper()
	cert, clients := p.keyPair(t, "proxy", []string{"127.0.0.1"})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    clients,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	upTLS := p.clientTLS(t, "proxy-client")
	upTLS.ServerName = c.host
	px := &mqttProxy{ln: ln, up: c.addr(), upTLS: upTLS, open: map[net.Conn]bool{}, done: make(chan struct{})}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(px.close)
	return px
}

// url is what the bridge connects to.
func (px *mqttProxy) url() string { return "mqtts://" + px.ln.Addr().String() }

// holdAcks makes the proxy forward each PUBACK from the cloud d after it
// arrived; PUBACKs held already keep their time.
func (px *mqttProxy) holdAcks(d time.Duration) { px.hold.Store(int64(d)) }

// pauseAcks makes the proxy hold every PUBACK from the cloud that arrives
// from now on until releaseAcks.
func (px *mqttProxy) pauseAcks() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.gate == nil {
		px.gate = make(chan struct{})
	}
}

// releaseAcks lets the PUBACKs held since pauseAcks go, in order.
func (px *mqttProxy) releaseAcks() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.gate != nil {
		close(px.gate)
		px.gate = nil
	}
}

// publishes returns the PUBLISHes seen so far, in the order they came.
func (px *mqttProxy) publishes() []proxyPub {
	px.mu.Lock()
	defer px.mu.Unlock()
	return append([]proxyPub(nil), px.pubs...)
}

// published is the number of PUBLISHes seen so far.
func (px *mqttProxy) published() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return len(px.pubs)
}

// maxOutstanding is the most PUBLISHes of one connection that were
// awaiting their PUBACK at the same time.
func (px *mqttProxy) maxOutstanding() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.maxOut
}

// connections is the number of connections the bridge opened.
func (px *mqttProxy) connections() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.conns
}

// protocolErrors lists what broke the MQTT rules the proxy checks (a
// packet id reused while in flight, a PUBACK for no PUBLISH) or what it
// cannot follow.
func (px *mqttProxy) protocolErrors() []string {
	px.mu.Lock()
	defer px.mu.Unlock()
	return append([]string(nil), px.errs...)
}

func (px *mqttProxy) fail(format string, args ...any) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.errs = append(px.errs, fmt.Sprintf(format, args...))
}

func (px *mqttProxy) close() {
	px.mu.Lock()
	if px.closed {
		px.mu.Unlock()
		return
	}
	px.closed = true
	close(px.done)
	px.ln.Close()
	for c := range px.open {
		c.Close()
	}
	px.mu.Unlock()
	px.wg.Wait()
}

// track registers a connection for close; false when the proxy is closed.
func (px *mqttProxy) track(c net.Conn) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		c.Close()
		return false
	}
	px.open[c] = true
	return true
}

func (px *mqttProxy) accept() {
	defer px.wg.Done()
	for {
		down, err := px.ln.Accept()
		if err != nil {
			return
		}
		if !px.track(down) {
			return
		}
		px.mu.Lock()
		px.conns++
		px.mu.Unlock()
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			px.serve(down)
		}()
	}
}

// heldPuback is a PUBACK from the cloud waiting for its time, and for
// its gate to close when it came while paused.
type heldPuback struct {
	pkt     []byte
	id      uint16
	release time.Time
	gate    <-chan struct{}
}

// serve relays one connection of the bridge.
func (px *mqttProxy) serve(down net.Conn) {
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	d := tls.Dialer{Config: px.upTLS}
	up, err := d.DialContext(ctx, "tcp", px.up)
	cancel()
	if err != nil {
		return // the bridge sees its connection closed, as with a cloud that is down
	}
	defer up.Close()
	if !px.track(up) {
		return
	}

	// The packet ids of this connection awaiting their PUBACK.
	inflight := map[uint16]bool{}
	var downMu sync.Mutex // one writer at a time towards the bridge
	writeDown := func(pkt []byte) error {
		downMu.Lock()
		defer downMu.Unlock()
		_, err := down.Write(pkt)
		return err
	}
	acks := make(chan heldPuback, 1<<16) // at most 65535 packet ids in flight
	var relay sync.WaitGroup
	relay.Add(2)

	// The bridge to the cloud: note each PUBLISH, forward it.
	go func() {
		defer relay.Done()
		defer up.Close()
		r := bufio.NewReader(down)
		for {
			pkt, body, err := rawmqtt.ReadPacket(r)
			if err != nil {
				return
			}
			typ, qos := pkt[0]>>4, pkt[0]>>1&3
			if typ == rawmqtt.TypePublish && qos == 2 {
				px.fail("a QoS 2 PUBLISH: the proxy follows QoS 1 only")
			}
			if typ == rawmqtt.TypePublish && qos == 1 && px.cuts.Add(-1) >= 0 {
				down.Close()
				return
			}
			if typ == rawmqtt.TypePublish && qos == 1 {
				at := time.Now()
				id, size, ok := publishInfo(body, qos)
				if !ok {
					px.fail("malformed PUBLISH % x", pkt)
					return
				}
				px.mu.Lock()
				if inflight[id] {
					px.errs = append(px.errs, fmt.Sprintf("packet id %d reused before its PUBACK", id))
				}
				inflight[id] = true
				px.pubs = append(px.pubs, proxyPub{at: at, id: id, size: size})
				px.maxOut = max(px.maxOut, len(inflight))
				px.mu.Unlock()
			}
			if _, err := up.Write(pkt); err != nil {
				return
			}
		}
	}()

	// The cloud to the bridge: PUBACKs wait their turn, the rest goes on.
	go func() {
		defer relay.Done()
		defer close(acks)
		defer down.Close()
		r := bufio.NewReader(up)
		for {
			pkt, body, err := rawmqtt.ReadPacket(r)
			if err != nil {
				return
			}
			if pkt[0]>>4 == rawmqtt.TypePuback && len(body) == 2 {
				px.mu.Lock()
				gate := px.gate
				px.mu.Unlock()
				acks <- heldPuback{pkt: pkt, id: binary.BigEndian.Uint16(body), release: time.Now().Add(time.Duration(px.hold.Load())), gate: gate}
				continue
			}
			if writeDown(pkt) != nil {
				return
			}
		}
	}()

	// The PUBACKs, in order, each at its time. A PUBLISH leaves the count
	// before its PUBACK reaches the bridge: the bridge cannot send another
	// until then, so the count never runs ahead of the bridge's own.
	for a := range acks {
		if a.gate != nil {
			select {
			case <-a.gate:
			case <-px.done:
			}
		}
		if d := time.Until(a.release); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-px.done:
				t.Stop()
			}
		}
		px.mu.Lock()
		if !inflight[a.id] {
			px.errs = append(px.errs, fmt.Sprintf("PUBACK for packet id %d, which is not in flight", a.id))
		}
		delete(inflight, a.id)
		px.mu.Unlock()
		if writeDown(a.pkt) != nil {
			down.Close()
		}
	}
	relay.Wait()
}

// publishInfo reads the packet id of a QoS 1 or 2 PUBLISH and the bytes
// of its topic and payload.
func publishInfo(body []byte, qos byte) (id uint16, size int, ok bool) {
	if len(body) < 2 {
		return 0, 0, false
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl+2 || qos == 0 {
		return 0, 0, false
	}
	id = binary.BigEndian.Uint16(body[2+tl:])
	return id, len(body) - 2 - 2, true
}
