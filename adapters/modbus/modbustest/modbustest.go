// Package modbustest runs a real Modbus server, Debian's python3-pymodbus,
// for the tests of code that polls one: the modbus driver's and the
// gateway's. The server script, pyserver.py, is embedded; benchmark
// scripts run the file itself.
package modbustest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/internal/syncbuf"
)

const (
	// python3 is Debian's, where python3-pymodbus installs, whatever
	// python3 comes first on PATH.
	python3 = "/usr/bin/python3"
	// readyLimit bounds the server's start-up.
	readyLimit = 30 * time.Second
	// stopLimit is how long the server may take to end once its stdin
	// closed before it is killed.
	stopLimit = 5 * time.Second
)

//go:embed pyserver.py
var pyserver string

// Mode is what a server started by StartPymodbus speaks on its TCP port.
type Mode string

// The modes of StartPymodbus; a URL with the mode as its scheme reaches
// the server.
const (
	TCP        Mode = "tcp"     // Modbus TCP (MBAP framing)
	RTUOverTCP Mode = "rtu+tcp" // RTU frames over TCP
)

// Tables is the data of one unit: each table is a list of values from
// address 0. Reading past a table's end answers exception 2 (illegal data
// address); an empty table holds a single 0.
type Tables struct {
	HR []uint16 `json:"hr,omitempty"` // holding registers
	IR []uint16 `json:"ir,omitempty"` // input registers
	CO []int    `json:"co,omitempty"` // coils, 0 or 1
	DI []int    `json:"di,omitempty"` // discrete inputs, 0 or 1
}

// StartPymodbus serves units, by unit id, in mode on a free port of
// 127.0.0.1 until the test ends, and returns the port. It fails the test
// when python3-pymodbus is missing or the server does not start.
func StartPymodbus(t testing.TB, mode Mode, units map[int]Tables) (port int) {
	t.Helper()
	if mode != TCP && mode != RTUOverTCP {
		t.Fatalf("modbustest: unknown mode %q (StartPymodbusRTU serves a serial port)", mode)
	}
	return start(t, units, string(mode))
}

// StartPymodbusRTU serves units, by unit id, over Modbus RTU at 9600 8N1 on
// the serial port at path (one end of a pty pair, say) until the test ends.
// It fails the test when python3-pymodbus or python3-serial-asyncio is
// missing or the server does not start.
func StartPymodbusRTU(t testing.TB, path string, units map[int]Tables) {
	t.Helper()
	start(t, units, "rtu", path)
}

// start runs pyserver.py with units and args (its mode, then any more) and
// returns the port it prints once it serves.
func start(t testing.TB, units map[int]Tables, args ...string) int {
	t.Helper()
	need(t, args[0] == "rtu")
	dir := t.TempDir()
	script, cfg := filepath.Join(dir, "pyserver.py"), filepath.Join(dir, "pyserver.json")
	data, err := json.Marshal(map[string]any{"units": units})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(pyserver), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python3, append([]string{script, args[0], cfg}, args[1:]...)...)
	stdin, err := cmd.StdinPipe() // the server runs until its stdin closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pymodbus: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = stdin.Close()
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-time.After(stopLimit):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	fail := func(why string) {
		t.Helper()
		_ = cmd.Process.Kill()
		stop() // so that stderr is complete
		t.Fatalf("pymodbus (%s) did not start: %s\n%s", args[0], why, stderr.String())
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		var port int
		if _, err := fmt.Sscanf(s, "ready %d", &port); err != nil {
			if s == "" {
				fail("it ended")
			}
			fail(fmt.Sprintf("it printed %q", s))
		}
		return port
	case <-time.After(readyLimit):
		fail("not ready after " + readyLimit.String())
	}
	return 0
}

// need fails the test when the Python modules the server imports are
// missing, saying which package to install.
func need(t testing.TB, serial bool) {
	t.Helper()
	imports := "import pymodbus.server.async_io, pymodbus.datastore"
	if serial {
		imports += ", serial_asyncio"
	}
	out, err := exec.Command(python3, "-c", imports).CombinedOutput()
	if err != nil {
		t.Fatalf("the Modbus test server's Python modules are missing (%v: %s): apt-get install python3-pymodbus python3-serial-asyncio", err, bytes.TrimSpace(out))
	}
}
