package modbus

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters/modbus/modbustest"
	"github.com/fieldbridge/gateway/mappings"
)

// The real peers these tests run come from Debian packages; a missing one
// fails the test with the package to install.
const pkgHint = "install the test peers: apt-get install python3-pymodbus python3-serial-asyncio socat mbpoll"

func needPeer(t testing.TB, what string, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		t.Fatalf("%s is missing (%v): %s", what, err, pkgHint)
	}
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	var path string
	needPeer(t, name, func() (err error) {
		path, err = exec.LookPath(name)
		return err
	})
	return path
}

// ptyPair links two pseudo-terminals with socat, a null-modem cable for
// RTU tests; only parity N works on ptys.
func ptyPair(t testing.TB) (a, b string) {
	t.Helper()
	socat := needTool(t, "socat")
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, socat, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start socat: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "starting data transfer loop") {
				ready <- true
				break
			}
		}
		ready <- false
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("socat exited before linking the ptys")
		}
	case <-time.After(waitLimit):
		t.Fatal("socat did not link the ptys")
	}
	return a, b
}

var mbpollLine = regexp.MustCompile(`^\[(\d+)\]:\s+(\S+)`)

// mbpoll reads with the reference client and returns address -> value.
func mbpoll(t testing.TB, args ...string) map[int]string {
	t.Helper()
	path := needTool(t, "mbpoll")
	out, err := exec.Command(path, append([]string{"-1", "-0", "-o", "2"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
	}
	vals := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if m := mbpollLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			a, _ := strconv.Atoi(m[1])
			vals[a] = m[2]
		}
	}
	return vals
}

// asInt16 reads mbpoll's 16-bit output, which is unsigned, as an int16.
func asInt16(s string) string {
	u, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return s
	}
	return strconv.Itoa(int(int16(u)))
}

// peerData is what the pymodbus tests serve: a float32 (ABCD) at 0, an
// int16 at 2, a uint32 in CDAB at 3, a bit field at 5; an input register
// at 0; coils and discrete inputs.
func peerData() map[int]modbustest.Tables {
	f := regsOf(21.5)
	return map[int]modbustest.Tables{1: {
		HR: []uint16{f[0], f[1], 0xfb2e, 0x5678, 0x1234, 0b1000, 0, 0},
		IR: []uint16{1234},
		CO: []int{1, 0, 1},
		DI: []int{0, 1},
	}}
}

const peerPoints = `  points:
    - {name: temp, table: holding, address: 0, type: float32}
    - {name: neg, table: holding, address: 2, type: int16}
    - {name: count, table: holding, address: 3, type: uint32, order: CDAB}
    - {name: flag, table: holding, address: 5, type: bool, bit: 3, writable: true}
    - {name: setpoint, table: holding, address: 6, type: int16, scale: 0.5, writable: true}
    - {name: pv, table: input, address: 0, type: int16}
    - {name: c0, table: coil, address: 0, writable: true}
    - {name: c1, table: coil, address: 1}
    - {name: c2, table: coil, address: 2}
    - {name: d1, table: discrete, address: 1}
`

var peerWant = []mappings.Value{
	mappings.Float32Value(21.5), mappings.IntValue(-1234), mappings.UintValue(0x12345678), mappings.BoolValue(true),
	mappings.IntValue(0), mappings.IntValue(1234), mappings.BoolValue(true), mappings.BoolValue(false),
	mappings.BoolValue(true), mappings.BoolValue(true),
}

// checkPeerValues waits for a poll and compares every point with peerWant.
func checkPeerValues(t *testing.T, s *fakeSink, devs []*Device) {
	t.Helper()
	s.wait(t, "the first poll", func() bool { return len(s.polls) >= 1 })
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range peerWant {
		if r, ok := s.last(i); !ok || r.err != nil || !r.v.Equal(w) {
			t.Errorf("%s = %v, %v; want %v", devs[0].points[i].mp.Name, r.v, r.err, w)
		}
	}
}

// writeOnPeer writes through the runner, as the gateway's command path
// does, and checks the reading back.
func writeOnPeer(t *testing.T, rs *running) {
	t.Helper()
	s := rs.sinks["dev"]
	for _, c := range []struct {
		point int
		raw   mappings.Value
	}{{4, mappings.IntValue(-300)}, {3, mappings.BoolValue(false)}, {6, mappings.BoolValue(false)}} {
		if err := rs.command(t, "dev", c.point, c.raw); err != nil {
			t.Fatalf("write point %d: %v", c.point, err)
		}
		s.mu.Lock()
		r, _ := s.last(c.point)
		s.mu.Unlock()
		if r.err != nil || !r.v.Equal(c.raw) {
			t.Errorf("point %d read back %v, %v; want %v", c.point, r.v, r.err, c.raw)
		}
	}
}

// TestPymodbusTCP polls and writes Debian's pymodbus over Modbus TCP and
// cross-checks the values with mbpoll and with `gateway modbus read`.
func TestPymodbusTCP(t *testing.T) {
	noLeak(t)
	port := modbustest.StartPymodbus(t, modbustest.TCP, peerData())
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	devs := mustConfigure(t, "- name: dev\n  driver: modbus\n  url: "+url+"\n  poll_interval: 1h\n"+peerPoints)
	rs := start(t, devs)
	checkPeerValues(t, rs.sinks["dev"], devs)
	writeOnPeer(t, rs)
	rs.stop()

	p := strconv.Itoa(port)
	ref := mbpoll(t, "-m", "tcp", "-p", p, "-a", "1", "-t", "4:float", "-B", "-r", "0", "-c", "1", "127.0.0.1")
	ref2 := mbpoll(t, "-m", "tcp", "-p", p, "-a", "1", "-t", "4", "-r", "2", "-c", "1", "127.0.0.1")
	ref3 := mbpoll(t, "-m", "tcp", "-p", p, "-a", "1", "-t", "4:int", "-r", "3", "-c", "1", "127.0.0.1") // little-endian words: CDAB
	ref4 := mbpoll(t, "-m", "tcp", "-p", p, "-a", "1", "-t", "4", "-r", "5", "-c", "2", "127.0.0.1")
	ref5 := mbpoll(t, "-m", "tcp", "-p", p, "-a", "1", "-t", "0", "-r", "0", "-c", "3", "127.0.0.1")
	for what, pair := range map[string][2]string{
		"float32":          {ref[0], "21.5"},
		"int16":            {asInt16(ref2[2]), "-1234"},
		"uint32 CDAB":      {ref3[3], strconv.Itoa(0x12345678)},
		"written int16":    {asInt16(ref4[6]), "-300"},
		"bit 3 cleared":    {ref4[5], "0"},
		"coil 0 cleared":   {ref5[0], "0"},
		"coil 2 unchanged": {ref5[2], "1"},
	} {
		if pair[0] != pair[1] {
			t.Errorf("mbpoll %s: %q, want %q", what, pair[0], pair[1])
		}
	}

	// `gateway modbus read` prints the same values.
	var out, errOut bytes.Buffer
	code := ReadCommand(context.Background(), []string{"--url", url, "--address", "0", "--type", "float32"}, &out, &errOut)
	if code != 0 || out.String() != "0: 21.5\n" {
		t.Errorf("read float32: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	code = ReadCommand(context.Background(), []string{"--url", url, "--address", "2", "--count", "5", "--type", "int16"}, &out, &errOut)
	if want := "2: -1234\n3: 22136\n4: 4660\n5: 0\n6: -300\n"; code != 0 || out.String() != want {
		t.Errorf("read int16: %d %q, want %q; %s", code, out.String(), want, errOut.String())
	}
}

// TestPymodbusRTUOverTCP polls pymodbus answering RTU frames over TCP.
func TestPymodbusRTUOverTCP(t *testing.T) {
	noLeak(t)
	port := modbustest.StartPymodbus(t, modbustest.RTUOverTCP, peerData())
	devs := mustConfigure(t, fmt.Sprintf("- name: dev\n  driver: modbus\n  url: rtu+tcp://127.0.0.1:%d\n  poll_interval: 1h\n", port)+peerPoints)
	rs := start(t, devs)
	checkPeerValues(t, rs.sinks["dev"], devs)
	writeOnPeer(t, rs)
}

// TestPymodbusRTUSerial polls pymodbus over RTU on a socat pty pair
// through go.bug.st/serial, writes, and cross-checks with mbpoll on the
// same port once the runner released it.
func TestPymodbusRTUSerial(t *testing.T) {
	noLeak(t)
	a, b := ptyPair(t)
	modbustest.StartPymodbusRTU(t, a, peerData())
	devs := mustConfigure(t, "- name: dev\n  driver: modbus\n  url: rtu://"+b+"\n  serial: {baud: 9600, parity: N}\n  poll_interval: 1h\n"+peerPoints)
	rs := start(t, devs)
	checkPeerValues(t, rs.sinks["dev"], devs)
	writeOnPeer(t, rs)
	rs.stop()

	rtu := []string{"-m", "rtu", "-b", "9600", "-P", "none", "-a", "1"}
	ref := mbpoll(t, append(rtu, "-t", "4:float", "-B", "-r", "0", "-c", "1", b)...)
	ref2 := mbpoll(t, append(rtu, "-t", "4", "-r", "5", "-c", "2", b)...)
	if ref[0] != "21.5" || ref2[5] != "0" || asInt16(ref2[6]) != "-300" {
		t.Errorf("mbpoll over RTU: %v %v; want 21.5, bit 3 cleared (0) and the written -300", ref, ref2)
	}

	var out, errOut bytes.Buffer
	code := ReadCommand(context.Background(), []string{"--url", "rtu://" + b, "--table", "coil", "--count", "3"}, &out, &errOut)
	if code != 0 || out.String() != "0: false\n1: false\n2: true\n" {
		t.Errorf("read coils over RTU: %d %q %q", code, out.String(), errOut.String())
	}
}

// On a serial line a garbled reply (noise, bad CRC) is reported and the
// line resynchronised; a duplicate reply left on the line is not taken for
// the next one; cancelling stops a read that would wait an hour.
func TestSerialNoiseAndCancel(t *testing.T) {
	noLeak(t)
	a, b := ptyPair(t)
	f, err := os.OpenFile(a, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	devs := mustConfigure(t, "- {name: dev, driver: modbus, url: \"rtu://"+b+"\", timeout: 1h, poll_interval: 10ms, points: [{name: x, table: holding, address: 0}]}")
	rs := start(t, devs)
	s := rs.sinks["dev"]
	readReq := func() {
		req := make([]byte, 8)
		if _, err := io.ReadFull(f, req); err != nil {
			t.Fatalf("read request: %v", err)
		}
	}
	reply := func(v byte) []byte { return crcOf([]byte{1, 3, 2, 0, v}) }
	// 1: noise, then a reply with a bad CRC.
	readReq()
	garbled := append([]byte{0xff, 0x00}, reply(42)...)
	garbled[len(garbled)-1] ^= 1
	_, _ = f.Write(garbled)
	s.wait(t, "the bad reply reported", func() bool { return len(s.polls) == 1 })
	// 2: a good reply followed by a duplicate with another value.
	readReq()
	_, _ = f.Write(append(reply(42), reply(99)...))
	s.wait(t, "a good reading", func() bool { return len(s.polls) == 2 })
	// 3: the next request gets its own reply, not the duplicate.
	readReq()
	_, _ = f.Write(reply(43))
	s.wait(t, "a second good reading", func() bool { return len(s.polls) == 3 })
	// 4: no reply at all; cancelling must end the read.
	readReq()
	rs.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.polls) != 3 || s.polls[0] == nil || s.polls[1] != nil || s.polls[2] != nil {
		t.Errorf("polls %v, want a failure then two successes", s.polls)
	}
	var got []string
	for _, r := range s.reports {
		if r.err != nil {
			got = append(got, "bad")
		} else {
			got = append(got, r.v.String())
		}
	}
	if fmt.Sprint(got) != "[bad 42 43]" {
		t.Errorf("readings %v, want [bad 42 43]", got)
	}
}
