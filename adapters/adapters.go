// Package adapters holds the contract between field-device drivers and the
// rest of the gateway, and the registry that maps a `driver:` name to one.
//
// A driver's life is fixed: Configure decodes and checks a device entry
// without I/O; Runners groups configured devices by the bus they share; each
// Runner's Run connects, polls, retries with backoff and applies commands
// until its context ends. Drivers report through a Sink and never see MQTT.
package adapters

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Driver builds devices of one kind.
type Driver interface {
	// Name is the value of the `driver:` key that selects this driver.
	Name() string
	// Configure decodes and checks one device entry, reporting every problem
	// through raw's decoder (so they carry file:line:col). It does no I/O and
	// returns nil when the entry is unusable.
	Configure(raw config.Raw) Device
	// Runners groups devices that this driver configured into runners, one
	// per bus: devices that share a connection are polled by one goroutine.
	Runners(devices []Device) []Runner
}

// Device is one configured device.
type Device interface {
	// Info names the device and lists what it publishes.
	Info() Info
}

// Info describes a configured device.
type Info struct {
	Name   string
	Driver string
	Points []Point
}

// Point is one published value of a device.
type Point struct {
	mappings.Point
	// Where is the key path of the point's entry, for error messages.
	Where string
}

// Runner polls the devices of one bus until ctx ends.
type Runner interface {
	// Run connects, polls and applies commands; it returns when ctx is done.
	// Failures of devices are reported through their Sinks, not returned.
	Run(ctx context.Context, env Env) error
}

// Env is what a runner gets from the gateway.
type Env struct {
	Log *slog.Logger
	// Now is the clock; readings are stamped with it.
	Now func() time.Time
	// Sink returns the sink of a device by name; it is never nil for a
	// device the runner was given.
	Sink func(device string) Sink
	// Commands returns the queue of write commands for a device, applied in
	// arrival order by the runner that owns its bus. Nil for a device with
	// no writable point.
	Commands func(device string) <-chan Command
	// StateDir is a folder, inside the gateway's locked data_dir, where a
	// driver may keep what must survive a restart (pulse counter totals).
	// It exists when Run starts.
	StateDir func(device string) string
}

// WithDefaults returns env with every nil field filled in, so that a
// runner needs no nil checks: a logger that discards, time.Now, a sink that
// drops what it is given (also for a device whose Sink is nil), no
// commands and no state folder.
func (env Env) WithDefaults() Env {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if sink := env.Sink; sink == nil {
		env.Sink = func(string) Sink { return nopSink{} }
	} else {
		env.Sink = func(device string) Sink {
			if s := sink(device); s != nil {
				return s
			}
			return nopSink{}
		}
	}
	if env.Commands == nil {
		env.Commands = func(string) <-chan Command { return nil }
	}
	if env.StateDir == nil {
		env.StateDir = func(string) string { return "" }
	}
	return env
}

// nopSink drops what it is given.
type nopSink struct{}

func (nopSink) Report(int, mappings.Value, error, time.Time) {}
func (nopSink) Polled(error)                                 {}

// Sink receives what a device reads. Each device's sink is used by one
// goroutine at a time: the runner that owns its bus.
type Sink interface {
	// Report delivers one reading of point i (an index into Info.Points);
	// err marks a failed read of that point.
	Report(i int, v mappings.Value, err error, at time.Time)
	// Polled ends one poll of the device: nil after a read that reached the
	// device, the error when the device could not be reached at all.
	// Repeated errors mark the device offline; the next nil brings it back.
	Polled(err error)
}

// Command is a write request for a writable point, already checked against
// the point's type, range and write_range.
type Command struct {
	Point int            // index into Info.Points
	Raw   mappings.Value // the raw value to write (before scale and offset)
	// Sender and Topic say who asked, for the log.
	Sender, Topic string
	// Done is called once with the outcome; the gateway answers the sender.
	Done func(err error)
}

// Common holds the device keys every driver shares; drivers embed it inline
// in their device struct.
type Common struct {
	Name         string        `yaml:"name"`
	Driver       string        `yaml:"driver"`
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Registry maps driver names to drivers. Build one per gateway; it holds no
// global state.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns a registry of the given drivers.
func NewRegistry(drivers ...Driver) *Registry {
	r := &Registry{drivers: map[string]Driver{}}
	for _, d := range drivers {
		r.drivers[d.Name()] = d
	}
	return r
}

// Names lists the registered drivers, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Configured is the outcome of configuring every device of a file.
type Configured struct {
	Devices []Device
	byDrv   map[string][]Device
	order   []string
}

// Configure asks each device's driver to decode it. Problems, including an
// unknown driver and missing, invalid or duplicate device names, are
// reported through the file's decoder.
func (r *Registry) Configure(f *config.File) *Configured {
	c := &Configured{byDrv: map[string][]Device{}}
	d := f.Decoder()
	seen := map[string]string{}
	for _, raw := range f.Devices {
		drv, found, ok := raw.Lookup("driver")
		if found && !ok {
			continue // a ${NAME} that is not set, reported
		}
		if drv == "" {
			d.Errorf(raw.Path(), "a device needs a driver (one of %s)", strings.Join(r.Names(), ", "))
			continue
		}
		driver, known := r.drivers[drv]
		if !known {
			d.Errorf(raw.Path()+".driver", "unknown driver %q (known: %s)", drv, strings.Join(r.Names(), ", "))
			continue
		}
		// The name as the driver will read it, ${NAME} replaced; a
		// reference that cannot be replaced is reported already.
		name, found, ok := raw.Lookup("name")
		nameOK := false
		switch err := mappings.ValidName(name); {
		case found && !ok:
		case name == "":
			d.Errorf(raw.Path(), "a device needs a name")
		case err != nil:
			d.Errorf(raw.Path()+".name", "%v", err)
		case seen[name] != "":
			d.Errorf(raw.Path()+".name", "device name %q is already used by %s", name, seen[name])
		default:
			seen[name] = raw.Path()
			nameOK = true
		}
		// The entry is decoded even with a bad name, for its other problems.
		dev := driver.Configure(raw)
		if dev == nil || !nameOK {
			continue
		}
		c.Devices = append(c.Devices, dev)
		if _, ok := c.byDrv[drv]; !ok {
			c.order = append(c.order, drv)
		}
		c.byDrv[drv] = append(c.byDrv[drv], dev)
	}
	return c
}

// Runners returns every runner of the configured devices, grouped by bus.
func (r *Registry) Runners(c *Configured) []Runner {
	var out []Runner
	for _, drv := range c.order {
		out = append(out, r.drivers[drv].Runners(c.byDrv[drv])...)
	}
	return out
}

// Compile checks a point's mapping keys and reports each problem at its key
// (path.order, path.scale, ...) through d. ok is false when any was found.
func Compile(d *config.Decoder, path string, s *mappings.Spec, opts mappings.Options) (p mappings.Point, ok bool) {
	p, errs := s.Compile(opts)
	for _, e := range errs {
		key := path
		if e.Key != "" && d.Has(path+"."+e.Key) {
			key = path + "." + e.Key
		}
		d.Errorf(key, "%s", e.Msg)
	}
	return p, len(errs) == 0
}
