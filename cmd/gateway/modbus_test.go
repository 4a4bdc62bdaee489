package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fieldbridge/gateway/adapters/modbus/modbustest"
)

// cuttableLink forwards TCP connections from its own address to a target
// until cut closes the listener and every connection; restore listens on
// the same address again.
type cuttableLink struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener // nil while cut
	conns  []net.Conn
}

func newCuttableLink(t *testing.T, target string) *cuttableLink {
	l := &cuttableLink{t: t, target: target}
	l.listen("127.0.0.1:0") // a port picked now, kept for restore
	t.Cleanup(l.cut)
	return l
}

func (l *cuttableLink) restore() { l.listen(l.addr) }

func (l *cuttableLink) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.ln, l.addr = ln, ln.Addr().String()
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			if l.ln != ln {
				// Accepted just before a cut: it goes with the cut.
				l.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (l *cuttableLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// A Modbus TCP link cut and restored under the built binary: the device's
// status topic goes offline and online again, and the journal says both,
// once each, while the readings resume.
func TestModbusLinkCut(t *testing.T) {
	port := modbustest.StartPymodbus(t, modbustest.TCP, map[int]modbustest.Tables{1: {HR: []uint16{7}}})
	link := newCuttableLink(t, fmt.Sprintf("127.0.0.1:%d", port))
	mqttAddr := freePort(t)
	path := filepath.Join(t.TempDir(), "gw.yaml")
	cfg := fmt.Sprintf(`gateway: {id: gw-test, data_dir: %s}
broker: {listeners: [{name: local, type: tcp, address: %s}]}
devices:
  - name: plc
    driver: modbus
    url: tcp://%s
    unit_id: 1
    timeout: 200ms
    poll_interval: 100ms
    points:
      - {name: r0, table: holding, address: 0}
`, t.TempDir(), mqttAddr, link.addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr := startGateway(t, path)
	ch := subscribe(t, connect(t, mqttAddr), "gw-test/plc/#")
	status := func(want string) func(msg) bool {
		return func(m msg) bool { return m.topic == "gw-test/plc/status" && m.payload == want }
	}
	waitFor(t, ch, "the device online", status("online"))
	waitFor(t, ch, "a reading of 7", func(m msg) bool { return m.topic == "gw-test/plc/r0" && strings.Contains(m.payload, `"value":7,`) })

	link.cut()
	waitFor(t, ch, "the device offline", status("offline"))
	stderr.waitFor(t, `level=WARN msg="device offline" device=plc failed_polls=3 err=`)

	link.restore()
	waitFor(t, ch, "the device online again", status("online"))
	stderr.waitFor(t, `level=INFO msg="device online again" device=plc offline_for=`)
	waitFor(t, ch, "a good reading after the cut", func(m msg) bool {
		return m.topic == "gw-test/plc/r0" && strings.Contains(m.payload, `"quality":"good"`)
	})
	if n := strings.Count(stderr.String(), `msg="device offline"`); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, stderr)
	}
}
