package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/broker/brokertest"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/gateway"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gateway-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gateway")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestEveryExampleConfigValidates(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	env := func(string) (string, bool) { return "example", true }
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := gateway.Load(f, registry(), env); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateUnknownKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("gateway:\n  id: gw\n  data_dir: /tmp/x\n  colour: blue\ndevices:\n  - {name: d, driver: nosuch}\n"), 0o644)
	code, _, stderr := runCLI(t, "", "validate", "--config", path)
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	for _, want := range []string{path + ":4:3: gateway.colour: unknown key \"colour\"", `unknown driver "nosuch"`, "2 problem(s) found"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// validate reads the files a configuration names, as the gateway would at
// start: ok means it would start with them, and a missing or unreadable
// file is named at its key.
func TestValidateReadsFiles(t *testing.T) {
	pki := brokertest.NewPKI(t)
	dir := t.TempDir()
	password := filepath.Join(dir, "cloud.password")
	os.WriteFile(password, []byte("secret\n"), 0o600)
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	conf := func(cert, pw, ca string) string {
		path := filepath.Join(t.TempDir(), "files.yaml")
		os.WriteFile(path, []byte(`gateway: {id: gw1, data_dir: `+dir+`}
broker:
  listeners:
    - {name: plant, type: tls, address: "127.0.0.1:0", cert_file: `+cert+`, key_file: `+pki.ServerKeyFile+`, client_ca_file: `+pki.CAFile+`}
bridges:
  - name: cloud
    url: mqtts://cloud.example.com:8883
    password_file: `+pw+`
    tls: {ca_file: `+ca+`, cert_file: `+pki.ClientCertFile+`, key_file: `+pki.ClientKeyFile+`}
    routes: [{direction: out, filter: "gw1/#"}]
`), 0o644)
		return path
	}
	good := conf(pki.ServerCertFile, password, pki.CAFile)
	if code, out, errs := runCLI(t, "", "validate", "--config", good); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	bad := conf(filepath.Join(dir, "server.crt"), filepath.Join(dir, "nosuch.password"), notPEM)
	code, _, errs := runCLI(t, "", "validate", "--config", bad)
	for _, want := range []string{
		bad + ":4:7: broker.listeners[0]: loading cert_file " + filepath.Join(dir, "server.crt"),
		bad + ":8:20: bridges[0].password_file: bridge cloud: password_file: open " + filepath.Join(dir, "nosuch.password"),
		bad + ":9:5: bridges[0].tls: tls.ca_file " + notPEM + " holds no PEM certificate",
		"3 problem(s) found",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if code != exitFailure || strings.Contains(errs, "secret") {
		t.Errorf("exit %d\n%s", code, errs)
	}
}

// A value that cannot be read is one problem, not also the problems of
// the zero value left in its place.
func TestValidateReportsEachKeyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noisy.yaml")
	os.WriteFile(path, []byte(`gateway: {id: "${FIELDBRIDGE_TEST_NEVER_SET}", data_dir: /tmp/x}
devices:
  - name: d
    driver: simulation
    poll_interval: 1sec
    points: [{name: x, waveform: sine, scale: .nan}]
`), 0o644)
	code, _, errs := runCLI(t, "", "validate", "--config", path)
	for _, want := range []string{
		path + ":1:15: gateway.id: environment variable FIELDBRIDGE_TEST_NEVER_SET is not set",
		path + `:5:20: devices[0].poll_interval: invalid duration "1sec"`,
		path + `:6:47: devices[0].points[0].scale: expected a number, got ".nan"`,
		"3 problem(s) found",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if code != exitFailure {
		t.Errorf("exit %d", code)
	}
}

func TestValidateDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "validate", "--config", "../../configs/demo.yaml")
	if code != exitOK || !strings.Contains(stdout, "ok (1 devices") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"validate", "--help"}, {"passwd", "--help"}} {
		if code, out, errs := runCLI(t, "", args...); code != exitOK || !strings.Contains(out+errs, "Usage") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if code, _, _ := runCLI(t, "", "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "run"); code != exitUsage {
		t.Errorf("run without --config: exit %d", code)
	}
	code, out, _ := runCLI(t, "", "version")
	if code != exitOK || !strings.Contains(out, "go1.") || !strings.Contains(out, "commit") {
		t.Errorf("version: %s", out)
	}
}

func TestPasswd(t *testing.T) {
	code, out, errs := runCLI(t, "s3cret\n", "passwd")
	if code != exitOK || !strings.HasPrefix(out, "$2") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if code, _, _ := runCLI(t, "", "passwd"); code != exitFailure {
		t.Errorf("empty password accepted")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeConfig(t *testing.T, dataDir, mqttAddr, httpAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`gateway: {id: gw-test, data_dir: %s}
http: {address: %s}
broker:
  listeners: [{name: local, type: tcp, address: %s}]
devices:
  - name: sim
    driver: simulation
    poll_interval: 20ms
    points:
      - {name: sine, waveform: sine, period: 1s, min: 0, max: 10, unit: "°C"}
      - {name: count, waveform: counter}
`, dataDir, httpAddr, mqttAddr)
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs the built binary and waits until its broker accepts a
// subscription that sees the gateway online.
func startGateway(t *testing.T, config string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--config", config)
	stderr := &syncBuffer{written: make(chan struct{}, 1)}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stderr
}

// syncBuffer is a bytes.Buffer that a child's output copier and the test
// can use at once.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // signalled after each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// waitFor waits until the output contains want.
func (s *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.String(), want) {
		select {
		case <-s.written:
		case <-deadline:
			t.Fatalf("no %q in the gateway's log:\n%s", want, s)
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func connect(t *testing.T, addr string) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())).
		SetConnectRetry(true).SetConnectRetryInterval(20 * time.Millisecond).SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

type msg struct{ topic, payload string }

func subscribe(t *testing.T, c mqtt.Client, filter string) <-chan msg {
	t.Helper()
	ch := make(chan msg, 1000)
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- msg{m.Topic(), string(m.Payload())}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return ch
}

func waitFor(t *testing.T, ch <-chan msg, what string, ok func(msg) bool) msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message: %s", what)
		}
	}
}

// The README's promise: run the gateway and JSON readings with value and
// ts appear on the broker; SIGTERM stops it cleanly and publishes offline.
func TestRunPublishesReadingsAndStopsOnSignal(t *testing.T) {
	mqttAddr, httpAddr := freePort(t), freePort(t)
	cmd, stderr := startGateway(t, writeConfig(t, t.TempDir(), mqttAddr, httpAddr))
	c := connect(t, mqttAddr)
	ch := subscribe(t, c, "gw-test/#")
	// Retained messages come in any order on subscribe: wait for all three.
	seen := map[string]msg{}
	for len(seen) < 3 {
		m := waitFor(t, ch, "gateway and device online and a reading", func(m msg) bool {
			return m.topic == "gw-test/status" && m.payload == "online" ||
				m.topic == "gw-test/sim/status" && m.payload == "online" || m.topic == "gw-test/sim/sine"
		})
		seen[m.topic] = m
	}
	m := seen["gw-test/sim/sine"]
	var r struct {
		Value   *float64 `json:"value"`
		Unit    string   `json:"unit"`
		TS      string   `json:"ts"`
		Quality string   `json:"quality"`
	}
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil || r.Value == nil || r.Unit != "°C" || r.Quality != "good" {
		t.Fatalf("payload %s: %v", m.payload, err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.TS); err != nil {
		t.Errorf("ts %q: %v", r.TS, err)
	}

	resp := httpGet(t, "http://"+httpAddr+"/api/status")
	var st gateway.Status
	if err := json.Unmarshal(resp, &st); err != nil || len(st.Devices) != 1 || st.Devices[0].LastRead == nil || st.Broker.Clients < 1 || !st.Ready {
		t.Errorf("status %s: %v", resp, err)
	}
	if metrics := string(httpGet(t, "http://"+httpAddr+"/metrics")); !strings.Contains(metrics, `fieldbridge_readings_total{device="sim"}`) || !strings.Contains(metrics, "go_goroutines") {
		t.Errorf("metrics lack readings or Go runtime")
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, ch, "gateway offline", func(m msg) bool { return m.topic == "gw-test/status" && m.payload == "offline" })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM\n%s", stderr)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return out
}

func TestDataDirLocked(t *testing.T) {
	dataDir := t.TempDir()
	mqttAddr := freePort(t)
	startGateway(t, writeConfig(t, dataDir, mqttAddr, freePort(t)))
	c := connect(t, mqttAddr)
	waitFor(t, subscribe(t, c, "gw-test/status"), "first gateway online", func(m msg) bool { return m.payload == "online" })

	second := exec.Command(binary, "run", "--config", writeConfig(t, dataDir, freePort(t), freePort(t)))
	out, err := second.CombinedOutput()
	if err == nil {
		t.Fatal("second gateway on the same data_dir started")
	}
	if !strings.Contains(string(out), "in use by another gateway") {
		t.Errorf("unclear message: %s", out)
	}
}

func TestBufferStats(t *testing.T) {
	dataDir := t.TempDir()
	log, err := buffer.Open(buffer.Options{Dir: gateway.BufferDir(dataDir, "cloud"), SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := log.Append(context.Background(), []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	// The log stays open, as in a running gateway.
	defer log.Close()
	code, out, errs := runCLI(t, "", "buffer", "stats", "--data-dir", dataDir)
	if code != exitOK || !strings.Contains(out, "cloud") || !strings.Contains(out, "BRIDGE") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "buffer", "stats", "--data-dir", dataDir, "--json")
	var st []bufferStats
	if err := json.Unmarshal([]byte(out), &st); code != exitOK || err != nil || len(st) != 1 || st[0].Messages != 10 || st[0].Bytes == 0 {
		t.Fatalf("json %s: %v", out, err)
	}
	if code, _, _ := runCLI(t, "", "buffer", "stats"); code != exitUsage {
		t.Errorf("missing --data-dir: exit %d", code)
	}
	// A data_dir without bridges is an empty backlog; a mistyped one is an
	// error, not an empty backlog.
	code, out, errs = runCLI(t, "", "buffer", "stats", "--data-dir", t.TempDir())
	if code != exitOK || !strings.Contains(out, "no bridge buffers") {
		t.Errorf("data_dir without buffers: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "buffer", "stats", "--data-dir", filepath.Join(dataDir, "mistyped"))
	if code != exitFailure || !strings.Contains(errs, "mistyped: no such file or directory") {
		t.Errorf("missing data_dir: exit %d\n%s%s", code, out, errs)
	}
}

// SIGHUP applies device and point changes without dropping the broker's
// clients; an invalid file is refused and the running configuration stays.
func TestReloadOnSIGHUP(t *testing.T) {
	mqttAddr := freePort(t)
	path := writeConfig(t, t.TempDir(), mqttAddr, freePort(t))
	cmd, stderr := startGateway(t, path)
	c := connect(t, mqttAddr)
	ch := subscribe(t, c, "gw-test/#")
	waitFor(t, ch, "a reading before the reload", func(m msg) bool { return m.topic == "gw-test/sim/count" })

	cfg, _ := os.ReadFile(path)
	added := strings.Replace(string(cfg), "      - {name: count, waveform: counter}\n",
		"      - {name: count, waveform: counter}\n      - {name: added, waveform: ramp, period: 1s}\n", 1)
	if err := os.WriteFile(path, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, ch, "the added point after the reload", func(m msg) bool { return m.topic == "gw-test/sim/added" })

	if err := os.WriteFile(path, []byte(added+"  - {name: broken, driver: nosuch}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	// The old configuration keeps running: readings of the added point go on.
	stderr.waitFor(t, "reload refused")
	if !strings.Contains(stderr.String(), `unknown driver \"nosuch\"`) {
		t.Errorf("the refused reload does not say why:\n%s", stderr)
	}
	waitFor(t, ch, "readings after the refused reload", func(m msg) bool { return m.topic == "gw-test/sim/added" })
	if !c.IsConnectionOpen() {
		t.Error("the local client was dropped by a reload")
	}

	// Removing the point again clears its retained value, as a restart
	// would: an empty retained message.
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, ch, "the removed point's retained value cleared", func(m msg) bool {
		return m.topic == "gw-test/sim/added" && m.payload == ""
	})
	waitFor(t, ch, "readings after removing the point", func(m msg) bool { return m.topic == "gw-test/sim/count" })
}
