package simulation

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/mappings"
)

func TestSampleConfigures(t *testing.T) {
	devs := configtest.Sample(t, Driver{}, Sample, 1, 1)
	if n := len(devs[0].Info().Points); n != 5 {
		t.Fatalf("%d points, want 5", n)
	}
}

func TestConfigErrors(t *testing.T) {
	_, errs := configtest.Configure(t, Driver{}, `  - name: d
    driver: simulation
    poll_interval: 100us
    points:
      - {name: a, waveform: zigzag}
      - {name: b, waveform: sine, min: 5, max: 1}
      - {name: c, waveform: counter, type: float32}
      - {name: d, waveform: sine, writable: true}
      - {name: a, waveform: ramp, colour: red}
`, configtest.Name("sim.yaml"))
	want := []string{
		"sim.yaml:5:20: devices[0].poll_interval: poll_interval must be at least 1ms",
		`devices[0].points[0].waveform: unknown waveform "zigzag"`,
		"devices[0].points[1].max: max (1) must be above min (5)",
		"devices[0].points[2].type: a counter produces whole numbers",
		"devices[0].points[3].writable: only setpoint points are writable",
		`devices[0].points[4].colour: unknown key "colour"`,
	}
	text := errs.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in\n%s", w, text)
		}
	}
}

type reading struct {
	point int
	value mappings.Value
}

// fakeSink records what a runner reports.
type fakeSink struct {
	mu       sync.Mutex
	readings []reading
	polls    int
	polled   chan struct{}
}

func (s *fakeSink) Report(i int, v mappings.Value, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings = append(s.readings, reading{i, v})
}

func (s *fakeSink) Polled(err error) {
	s.mu.Lock()
	s.polls++
	s.mu.Unlock()
	select {
	case s.polled <- struct{}{}:
	default:
	}
}

func run(t *testing.T, devices string, cmds chan adapters.Command) (*fakeSink, func()) {
	t.Helper()
	devs, errs := configtest.Configure(t, Driver{}, devices)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	sink := &fakeSink{polled: make(chan struct{}, 1)}
	runners := Driver{}.Runners(devs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := adapters.Env{Now: time.Now, Sink: func(string) adapters.Sink { return sink },
		Commands: func(string) <-chan adapters.Command { return cmds }}
	go func() { done <- runners[0].Run(ctx, env) }()
	return sink, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func waitPolls(t *testing.T, s *fakeSink, n int) {
	t.Helper()
	for {
		s.mu.Lock()
		polls := s.polls
		s.mu.Unlock()
		if polls >= n {
			return
		}
		select {
		case <-s.polled:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d polls", polls)
		}
	}
}

func TestWaveformsStayInRange(t *testing.T) {
	sink, stop := run(t, `  - name: d
    driver: simulation
    poll_interval: 1ms
    seed: 42
    points:
      - {name: sine, waveform: sine, period: 50ms, min: -5, max: 5}
      - {name: ramp, waveform: ramp, period: 30ms, min: 0, max: 1}
      - {name: square, waveform: square, period: 20ms, min: 2, max: 3, type: int16}
      - {name: walk, waveform: random_walk, min: 10, max: 11, step: 0.5}
      - {name: count, waveform: counter, min: 1, max: 3}
`, nil)
	waitPolls(t, sink, 50)
	stop()
	bounds := [][2]float64{{-5, 5}, {0, 1}, {2, 3}, {10, 11}, {1, 3}}
	var counts []uint64
	for _, r := range sink.readings {
		f := r.value.Float64()
		if b := bounds[r.point]; f < b[0] || f > b[1] {
			t.Errorf("point %d: %v outside %v", r.point, f, b)
		}
		if r.point == 2 && f != 2 && f != 3 {
			t.Errorf("square gave %v", f)
		}
		if r.point == 4 {
			u, _ := r.value.Uint64()
			counts = append(counts, u)
		}
	}
	for i, want := range []uint64{1, 2, 3, 1, 2, 3} {
		if counts[i] != want {
			t.Fatalf("counter sequence %v", counts[:6])
		}
	}
}

func TestSetpointCommand(t *testing.T) {
	cmds := make(chan adapters.Command, 1)
	sink, stop := run(t, `  - name: d
    driver: simulation
    poll_interval: 1h
    points:
      - {name: sp, waveform: setpoint, writable: true, min: 20}
`, cmds)
	defer stop()
	waitPolls(t, sink, 1)
	done := make(chan error, 1)
	cmds <- adapters.Command{Point: 0, Raw: mappings.Float64Value(42.5), Done: func(err error) { done <- err }}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	last := sink.readings[len(sink.readings)-1]
	sink.mu.Unlock()
	if last.value.Float64() != 42.5 || sink.readings[0].value.Float64() != 20 {
		t.Errorf("readings %+v", sink.readings)
	}
	cmds <- adapters.Command{Point: 3, Raw: mappings.Float64Value(1), Done: func(err error) { done <- err }}
	if err := <-done; err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("bad point accepted: %v", err)
	}
}
