package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The binary speaks systemd's notify protocol: READY=1 once the broker
// listens (so a client can connect at once), WATCHDOG=1 pings at half of
// WATCHDOG_USEC, STOPPING=1 on SIGTERM. The socket stands in for systemd.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mqttAddr := freePort(t)
	cmd := exec.Command(binary, "run", "--config", writeConfig(t, t.TempDir(), mqttAddr, freePort(t)))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means serving: the local broker accepts a client right away.
	c, err := net.Dial("tcp", mqttAddr)
	if err != nil {
		t.Fatalf("READY=1 before the broker listens: %v", err)
	}
	c.Close()
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if !strings.HasPrefix(got, "WATCHDOG=") {
			t.Fatalf("unexpected notification %q", got)
		}
	}
}
