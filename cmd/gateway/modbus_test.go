package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// startPymodbus runs the driver tests' pymodbus server (python3-pymodbus)
// with holding register 0 of unit 1 at 7, and returns its address.
func startPymodbus(t *testing.T) string {
	t.Helper()
	// Debian's python3, where python3-pymodbus installs, whatever python3
	// comes first on PATH.
	const python3 = "/usr/bin/python3"
	cfg := filepath.Join(t.TempDir(), "pymodbus.json")
	if err := os.WriteFile(cfg, []byte(`{"units": {"1": {"hr": [7]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python3, "../../adapters/modbus/testdata/pyserver.py", "tcp", cfg)
	stdin, err := cmd.StdinPipe() // the server runs until its stdin closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	stderr.written = make(chan struct{}, 1)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var port int
	if _, serr := fmt.Sscanf(line, "ready %d", &port); err != nil || serr != nil {
		t.Fatalf("pymodbus did not start (apt-get install python3-pymodbus; scripts/test.sh does it): %q %v\n%s", line, err, &stderr)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// cuttableLink forwards TCP connections from its own address to a target
// until cut closes the listener and every connection; restore listens on
// the same address again.
type cuttableLink struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newCuttableLink(t *testing.T, target string) *cuttableLink {
	l := &cuttableLink{t: t, addr: freePort(t), target: target}
	l.restore()
	t.Cleanup(l.cut)
	return l
}

func (l *cuttableLink) restore() {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.ln = ln
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
	link := newCuttableLink(t, startPymodbus(t))
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
