// Package simulation is a driver that needs no hardware: it generates
// waveforms, for demos, for trying mappings and bridges, and for driving
// load through the gateway in benchmarks.
package simulation

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Sample is an example device entry for this driver.
//
//go:embed sample.yaml
var Sample []byte

// MinPollInterval is the fastest poll the driver accepts.
const MinPollInterval = time.Millisecond

// Waveforms the driver generates.
const (
	Sine       = "sine"
	Ramp       = "ramp"
	Square     = "square"
	RandomWalk = "random_walk"
	Counter    = "counter"
	// Setpoint holds its value (min at start) until a command writes it:
	// the command path, end to end, without hardware.
	Setpoint = "setpoint"
)

type pointConfig struct {
	mappings.Spec `yaml:",inline"`
	Waveform      string        `yaml:"waveform"`
	Period        time.Duration `yaml:"period"`
	Min           *float64      `yaml:"min"`
	Max           *float64      `yaml:"max"`
	Step          float64       `yaml:"step"`
}

type deviceConfig struct {
	adapters.Common `yaml:",inline"`
	Seed            uint64        `yaml:"seed"`
	Points          []pointConfig `yaml:"points"`
}

type point struct {
	wave     string
	period   time.Duration
	min, max float64
	step     float64
	typ      mappings.Type
}

// Device is a configured simulated device.
type Device struct {
	info     adapters.Info
	interval time.Duration
	seed     uint64
	points   []point
}

// Info implements adapters.Device.
func (d *Device) Info() adapters.Info { return d.info }

// Driver generates simulated readings.
type Driver struct{}

var (
	_ adapters.Driver = Driver{}
	_ adapters.Device = (*Device)(nil)
	_ adapters.Runner = (*runner)(nil)
)

// Name implements adapters.Driver.
func (Driver) Name() string { return "simulation" }

// Configure implements adapters.Driver.
func (Driver) Configure(raw config.Raw) adapters.Device {
	var c deviceConfig
	e := adapters.Decode(raw, &c)
	interval := e.PollInterval(c.PollInterval, time.Second, MinPollInterval)
	path := e.Path()
	if len(c.Points) == 0 {
		e.Fail(path, "a simulation device needs at least one point")
	}
	dev := &Device{interval: interval, seed: c.Seed,
		info: adapters.Info{Name: c.Name, Driver: "simulation"}}
	for i, pc := range c.Points {
		pp := e.PointPath(i)
		def := mappings.Float64
		if pc.Waveform == Counter {
			def = mappings.Uint64
		}
		mp, ok := adapters.Compile(e.Decoder(), pp, &pc.Spec, mappings.Options{DefaultType: def})
		if !e.Check(ok) {
			continue
		}
		p := point{wave: pc.Waveform, period: pc.Period, min: 0, max: 100, step: pc.Step, typ: mp.Type}
		if pc.Min != nil {
			p.min = *pc.Min
		}
		if pc.Max != nil {
			p.max = *pc.Max
		}
		switch pc.Waveform {
		case Sine, Ramp, Square, RandomWalk:
			if p.typ == mappings.String || p.typ == mappings.Bool {
				e.Fail(pp+".type", "waveform %s produces numbers, not %s", pc.Waveform, p.typ)
			}
		case Counter:
			if !p.typ.IsInteger() {
				e.Fail(pp+".type", "a counter produces whole numbers: use an integer type, not %s", p.typ)
			}
			if p.step == 0 {
				p.step = 1
			}
			if pc.Max == nil {
				p.max = 0 // no wrap
			}
		case Setpoint:
			if p.typ == mappings.String {
				e.Fail(pp+".type", "a setpoint holds a number or a bool, not a string")
			}
		case "":
			e.Fail(pp+".waveform", "waveform is required (sine, ramp, square, random_walk, counter or setpoint)")
		default:
			e.Fail(pp+".waveform", "unknown waveform %q (want sine, ramp, square, random_walk, counter or setpoint)", pc.Waveform)
		}
		if mp.Writable && pc.Waveform != Setpoint {
			e.Fail(pp+".writable", "only setpoint points are writable")
		}
		if p.period == 0 {
			p.period = time.Minute
		}
		if p.period < 0 {
			e.Fail(pp+".period", "period must be positive")
		}
		if pc.Waveform != Counter && pc.Waveform != Setpoint && p.max <= p.min {
			e.Fail(pp+".max", "max (%g) must be above min (%g)", p.max, p.min)
		}
		if pc.Waveform == RandomWalk && p.step == 0 {
			p.step = (p.max - p.min) / 100
		}
		dev.points = append(dev.points, p)
		e.AddPoint(&dev.info, mp, pp)
	}
	if !e.OK() {
		return nil
	}
	return dev
}

// Runners implements adapters.Driver: every simulated device runs alone.
func (Driver) Runners(devices []adapters.Device) []adapters.Runner {
	out := make([]adapters.Runner, 0, len(devices))
	for _, d := range devices {
		out = append(out, &runner{dev: d.(*Device)})
	}
	return out
}

type runner struct {
	dev *Device
}

func (r *runner) Run(ctx context.Context, env adapters.Env) error {
	d := r.dev
	env = env.WithDefaults()
	sink := env.Sink(d.info.Name)
	seed := d.seed
	if seed == 0 {
		seed = uint64(env.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	state := make([]float64, len(d.points))
	for i, p := range d.points {
		state[i] = p.min
		if p.wave == RandomWalk {
			state[i] = (p.min + p.max) / 2
		}
	}
	cmds := env.Commands(d.info.Name)
	start := env.Now()
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	for {
		now := env.Now()
		elapsed := now.Sub(start)
		for i := range d.points {
			p := &d.points[i]
			var f float64
			switch p.wave {
			case Sine:
				f = p.min + (p.max-p.min)*(0.5+0.5*math.Sin(2*math.Pi*phase(elapsed, p.period)))
			case Ramp:
				f = p.min + (p.max-p.min)*phase(elapsed, p.period)
			case Square:
				f = p.min
				if phase(elapsed, p.period) >= 0.5 {
					f = p.max
				}
			case RandomWalk:
				f = math.Min(p.max, math.Max(p.min, state[i]+p.step*(2*rng.Float64()-1)))
				state[i] = f
			case Setpoint:
				f = state[i]
			case Counter:
				f = state[i]
				state[i] += p.step
				if p.max > p.min && state[i] > p.max {
					state[i] = p.min
				}
			}
			sink.Report(i, valueOf(p.typ, f), nil, now)
		}
		sink.Polled(nil)
		// Commands are applied between polls, as soon as they arrive.
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case cmd := <-cmds:
				r.apply(cmd, state, sink, env.Now())
			case <-tick.C:
				waiting = false
			}
		}
	}
}

// apply writes a command to a setpoint and reports the value read back.
func (r *runner) apply(cmd adapters.Command, state []float64, sink adapters.Sink, now time.Time) {
	if cmd.Point < 0 || cmd.Point >= len(r.dev.points) || r.dev.points[cmd.Point].wave != Setpoint {
		cmd.Done(fmt.Errorf("point %d is not a setpoint", cmd.Point))
		return
	}
	f := cmd.Raw.Float64()
	if cmd.Raw.Kind() == mappings.KindBool {
		f = 0
		if cmd.Raw.Bool() {
			f = 1
		}
	}
	state[cmd.Point] = f
	sink.Report(cmd.Point, valueOf(r.dev.points[cmd.Point].typ, f), nil, now)
	cmd.Done(nil)
}

func phase(elapsed, period time.Duration) float64 {
	return float64(elapsed%period) / float64(period)
}

// valueOf turns a computed sample into a value of the point's type. Floats
// are rounded to 3 decimals, as a real sensor's resolution would be, so that
// the demo reads 65.524 and not 65.52449590119838.
func valueOf(t mappings.Type, f float64) mappings.Value {
	if t.IsFloat() {
		f = math.Round(f*1000) / 1000
	}
	switch {
	case t == mappings.Bool:
		return mappings.BoolValue(f != 0)
	case t == mappings.Float32:
		return mappings.Float32Value(float32(f))
	case t.IsInteger() && f < 0:
		return mappings.IntValue(int64(math.Round(f)))
	case t.IsInteger():
		return mappings.UintValue(uint64(math.Round(f)))
	}
	return mappings.Float64Value(f)
}
