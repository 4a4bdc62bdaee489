package modbus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// waitLimit bounds every wait for a condition in these tests. It is a
// guard against a hang, never part of what is asserted.
const waitLimit = 30 * time.Second

// report is one Sink.Report call.
type report struct {
	i   int
	v   mappings.Value
	err error
	at  time.Time
}

// fakeSink records what a runner reports for one device.
type fakeSink struct {
	mu      sync.Mutex
	reports []report
	polls   []error
	changed chan struct{}
}

func newFakeSink() *fakeSink { return &fakeSink{changed: make(chan struct{}, 1)} }

func (s *fakeSink) Report(i int, v mappings.Value, err error, at time.Time) {
	s.mu.Lock()
	s.reports = append(s.reports, report{i, v, err, at})
	s.mu.Unlock()
	s.signal()
}

func (s *fakeSink) Polled(err error) {
	s.mu.Lock()
	s.polls = append(s.polls, err)
	s.mu.Unlock()
	s.signal()
}

func (s *fakeSink) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// wait blocks until cond, evaluated with the sink locked, holds.
func (s *fakeSink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-limit.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("gave up waiting for %s; polls %v; last reports %v", what, s.polls, tail(s.reports, 8))
		}
	}
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// last returns the last report of point i; the sink must be locked.
func (s *fakeSink) last(i int) (report, bool) {
	for k := len(s.reports) - 1; k >= 0; k-- {
		if s.reports[k].i == i {
			return s.reports[k], true
		}
	}
	return report{}, false
}

// goodPolls counts Polled(nil) calls; the sink must be locked.
func (s *fakeSink) goodPolls() int {
	n := 0
	for _, e := range s.polls {
		if e == nil {
			n++
		}
	}
	return n
}

// failedPolls counts Polled(err) calls; the sink must be locked.
func (s *fakeSink) failedPolls() int { return len(s.polls) - s.goodPolls() }

// lastGood waits until point i's latest report is a good one and returns it.
func (s *fakeSink) lastGood(t *testing.T, i int) mappings.Value {
	t.Helper()
	var v mappings.Value
	s.wait(t, fmt.Sprintf("a good reading of point %d", i), func() bool {
		r, ok := s.last(i)
		v = r.v
		return ok && r.err == nil
	})
	return v
}

// configure decodes device entries (a YAML list, one "- name: ..." per
// device, unindented) with the real registry and decoder.
func configure(t testing.TB, devices string) ([]adapters.Device, config.Errors) {
	t.Helper()
	return configtest.Configure(t, Driver{}, devices, configtest.Indent("  "))
}

// mustConfigure is configure for entries that must be valid.
func mustConfigure(t testing.TB, devices string) []*Device {
	t.Helper()
	ds, errs := configure(t, devices)
	if len(errs) > 0 {
		t.Fatalf("configuration errors:\n%v", errs)
	}
	out := make([]*Device, len(ds))
	for i, d := range ds {
		out[i] = d.(*Device)
	}
	return out
}

// testLog returns a logger writing into the test's log at debug level.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// running is a set of runners started by a test.
type running struct {
	sinks  map[string]*fakeSink
	cmds   map[string]chan adapters.Command
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs the runners of devs until the test ends, each device with a
// fake sink, and a command queue for devices with writable points.
func start(t *testing.T, devs []*Device) *running {
	t.Helper()
	rs := &running{sinks: map[string]*fakeSink{}, cmds: map[string]chan adapters.Command{}, done: make(chan struct{})}
	var ads []adapters.Device
	for _, d := range devs {
		rs.sinks[d.info.Name] = newFakeSink()
		for _, p := range d.points {
			if p.mp.Writable {
				rs.cmds[d.info.Name] = make(chan adapters.Command)
			}
		}
		ads = append(ads, d)
	}
	env := adapters.Env{
		Log:  testLog(t),
		Now:  time.Now,
		Sink: func(name string) adapters.Sink { return rs.sinks[name] },
		Commands: func(name string) <-chan adapters.Command {
			if c, ok := rs.cmds[name]; ok {
				return c
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs.cancel = cancel
	runners := Driver{}.Runners(ads)
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, env); err != nil {
				t.Errorf("Run returned %v", err)
			}
		}()
	}
	go func() { wg.Wait(); close(rs.done) }()
	t.Cleanup(rs.stop)
	return rs
}

// stop cancels the runners and waits until every Run has returned.
func (rs *running) stop() {
	rs.cancel()
	select {
	case <-rs.done:
	case <-time.After(waitLimit):
		panic("runners did not return after cancel")
	}
}

// command sends a command to device and returns its outcome.
func (rs *running) command(t *testing.T, device string, point int, raw mappings.Value) error {
	t.Helper()
	done := make(chan error, 1)
	calls := 0
	var mu sync.Mutex
	cmd := adapters.Command{Point: point, Raw: raw, Sender: "test-client", Topic: "gw/" + device + "/set",
		Done: func(err error) {
			mu.Lock()
			calls++
			mu.Unlock()
			done <- err
		}}
	select {
	case rs.cmds[device] <- cmd:
	case <-time.After(waitLimit):
		t.Fatalf("runner did not take the command")
	}
	select {
	case err := <-done:
		mu.Lock()
		defer mu.Unlock()
		if calls != 1 {
			t.Fatalf("Done called %d times", calls)
		}
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Done was not called")
	}
	return nil
}

// noLeak fails the test if goroutines of this package's code (or of the
// Modbus and serial libraries) outlive it. It waits for them to end, since
// a closed connection's reader returns a little after Close.
func noLeak(t *testing.T) {
	t.Helper()
	before := ownGoroutines()
	t.Cleanup(func() {
		limit := time.Now().Add(waitLimit)
		for {
			now := ownGoroutines()
			if len(now) <= len(before) {
				return
			}
			if time.Now().After(limit) {
				t.Errorf("%d goroutines leaked:\n%s", len(now)-len(before), strings.Join(now, "\n\n"))
				return
			}
			runtime.Gosched()
			time.Sleep(time.Millisecond) // polling a condition, not standing in for one
		}
	})
}

// ownGoroutines returns the stacks of goroutines running the driver's
// non-test code or its libraries.
func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			own := strings.Contains(line, "/adapters/modbus/") && !strings.Contains(line, "_test.go")
			lib := strings.Contains(line, "grid-x/modbus") || strings.Contains(line, "go.bug.st/serial")
			if strings.HasPrefix(line, "/") && (own || lib) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}
