package serial

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
	"github.com/prometheus/client_golang/prometheus"
)

// waitLimit bounds every wait for a condition in these tests. It is a
// guard against a hang, never part of what is asserted.
const waitLimit = 20 * time.Second

// event is one Sink call: a Report (polled false) or a Polled.
type event struct {
	polled bool
	i      int
	v      mappings.Value
	err    error
}

// fakeSink records what a runner reports for one device, in order.
type fakeSink struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newFakeSink() *fakeSink { return &fakeSink{changed: make(chan struct{}, 1)} }

func (s *fakeSink) Report(i int, v mappings.Value, err error, at time.Time) {
	s.add(event{i: i, v: v, err: err})
}

func (s *fakeSink) Polled(err error) { s.add(event{polled: true, err: err}) }

func (s *fakeSink) add(e event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *fakeSink) snapshot() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.events...)
}

// waitFor waits until cond holds for the events recorded so far.
func (s *fakeSink) waitFor(t *testing.T, what string, cond func([]event) bool) []event {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		ev := s.snapshot()
		if cond(ev) {
			return ev
		}
		select {
		case <-s.changed:
		case <-limit.C:
			t.Fatalf("timed out waiting for %s; events:\n%s", what, traceOf(nil, ev))
		}
	}
}

// traceOf prints events one per line, as the golden expected.txt files
// hold them: `report <point> <kind> <value>`, `report <point> error: <msg>`,
// `polled ok` or `polled error: <msg>`.
func traceOf(dev *Device, ev []event) string {
	var b strings.Builder
	for _, e := range ev {
		switch {
		case e.polled && e.err == nil:
			b.WriteString("polled ok\n")
		case e.polled:
			fmt.Fprintf(&b, "polled error: %v\n", e.err)
		default:
			name := fmt.Sprint(e.i)
			if dev != nil && e.i >= 0 && e.i < len(dev.info.Points) {
				name = dev.info.Points[e.i].Name
			}
			if e.err != nil {
				fmt.Fprintf(&b, "report %s error: %v\n", name, e.err)
			} else {
				fmt.Fprintf(&b, "report %s %s %s\n", name, e.v.Kind(), e.v)
			}
		}
	}
	return b.String()
}

// configure decodes a devices: list (YAML, indented as under `devices:`)
// with ${PORT} replaced by port.
func configure(t testing.TB, devices, port string) ([]adapters.Device, config.Errors) {
	t.Helper()
	return configtest.Configure(t, Driver{}, devices, configtest.Env("PORT", port))
}

// mustDevice configures exactly one device.
func mustDevice(t testing.TB, devices, port string) *Device {
	t.Helper()
	devs, errs := configure(t, devices, port)
	if len(errs) > 0 {
		t.Fatalf("config:\n%v", errs)
	}
	if len(devs) != 1 {
		t.Fatalf("want 1 device, got %d", len(devs))
	}
	return devs[0].(*Device)
}

// start runs the runners of devs, each device with its own sink, until the
// returned stop is called (or the test ends). stop reports how long Run
// took to return once cancelled.
func start(t *testing.T, devs ...*Device) (sinks []*fakeSink, stop func() time.Duration) {
	t.Helper()
	byName := map[string]*fakeSink{}
	ads := make([]adapters.Device, len(devs))
	for i, d := range devs {
		s := newFakeSink()
		byName[d.info.Name] = s
		sinks = append(sinks, s)
		ads[i] = d
	}
	env := adapters.Env{
		Log:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:  time.Now,
		Sink: func(name string) adapters.Sink { return byName[name] },
	}
	ctx, cancel := context.WithCancel(context.Background())
	runners := Driver{}.Runners(ads)
	done := make(chan error, len(runners))
	for _, r := range runners {
		go func() { done <- r.Run(ctx, env) }()
	}
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			begin := time.Now()
			cancel()
			limit := time.NewTimer(waitLimit)
			defer limit.Stop()
			for range runners {
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Run: %v", err)
					}
				case <-limit.C:
					t.Fatalf("Run did not return %s after its context ended", waitLimit)
				}
			}
			took = time.Since(begin)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return sinks, stop
}

// testWriter sends the driver's log to the test log, shown on failure.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// counters reads a device's metrics: "lines", "port_errors",
// "response_timeouts" and "dropped <reason>".
func counters(t *testing.T, d *Device) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(d.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		name := strings.TrimSuffix(strings.TrimPrefix(mf.GetName(), "fieldbridge_serial_"), "_total")
		for _, m := range mf.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					key = "dropped " + l.GetValue()
				}
			}
			out[key] = m.GetCounter().GetValue()
		}
	}
	return out
}

// ptyPair is a socat process joining two pseudo-terminals, reachable by
// the links A (the sensor's end, written by the test) and B (the port the
// driver reads).
type ptyPair struct {
	A, B   string
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
}

// startSocat starts socat with its links in dir and waits until it moves
// data. A missing socat fails the test: these tests exist to run against
// real ptys.
func startSocat(t *testing.T, dir string) *ptyPair {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		t.Fatalf("socat is required for the pty tests and was not found (%v): install the Debian package socat", err)
	}
	p := &ptyPair{A: filepath.Join(dir, "A"), B: filepath.Join(dir, "B"), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "-d", "-d", "pty,raw,echo=0,link="+p.A, "pty,raw,echo=0,link="+p.B)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			// Logged once both ptys and their links exist.
			if !signalled && strings.Contains(sc.Text(), "starting data transfer loop") {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = p.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("socat exited before it was ready:\n%s", p.stderr())
	case <-time.After(waitLimit):
		t.Fatalf("socat not ready after %s:\n%s", waitLimit, p.stderr())
	}
	t.Cleanup(p.stop)
	return p
}

func (p *ptyPair) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop ends socat with SIGTERM, on which it removes its links, and waits
// until it has exited: the ptys are gone then.
func (p *ptyPair) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
}

// sensor opens the sensor's end of the pair for writing and reading; it is
// closed when the test ends.
func (p *ptyPair) sensor(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(p.A, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", p.A, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// write sends data in small pieces, so that lines also arrive split
// across reads.
func write(t *testing.T, f *os.File, data []byte) {
	t.Helper()
	for len(data) > 0 {
		n := min(len(data), 61)
		if _, err := f.Write(data[:n]); err != nil {
			t.Fatalf("write %s: %v", f.Name(), err)
		}
		data = data[n:]
	}
}

func countPolled(ev []event, match func(error) bool) int {
	n := 0
	for _, e := range ev {
		if e.polled && match(e.err) {
			n++
		}
	}
	return n
}

// trailingErrors counts the Polled errors that end ev, in a row.
func trailingErrors(ev []event, target error) int {
	n := 0
	for i := len(ev) - 1; i >= 0; i-- {
		if !ev[i].polled {
			continue
		}
		if ev[i].err == nil || !errors.Is(ev[i].err, target) {
			break
		}
		n++
	}
	return n
}
