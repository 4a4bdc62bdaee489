package gpio

import (
	"fmt"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// mode is what a line does.
type mode uint8

const (
	modeInput mode = iota + 1
	modeCounter
	modeOutput
)

func (m mode) String() string {
	switch m {
	case modeInput:
		return "input"
	case modeCounter:
		return "counter"
	case modeOutput:
		return "output"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// countOn says which debounced transitions of a counter line are pulses.
type countOn uint8

const (
	countRising  countOn = iota + 1 // inactive to active: the start of a pulse
	countFalling                    // active to inactive: its end
	countBoth                       // both: two counts per pulse
)

func (c countOn) counts(active bool) bool {
	return c == countBoth || active == (c == countRising)
}

type pointConfig struct {
	mappings.Spec `yaml:",inline"`
	Line          *int           `yaml:"line"`
	Mode          string         `yaml:"mode"`
	Debounce      *time.Duration `yaml:"debounce"`
	ActiveLow     bool           `yaml:"active_low"`
	Bias          string         `yaml:"bias"`
	Initial       *bool          `yaml:"initial"`
	Edge          string         `yaml:"edge"`
	Rate          *mappings.Spec `yaml:"rate"`
}

type deviceConfig struct {
	adapters.Common `yaml:",inline"`
	Chip            string        `yaml:"chip"`
	Points          []pointConfig `yaml:"points"`
}

// lineSpec is one configured line.
type lineSpec struct {
	name      string // the point's name, the key of its saved total
	offset    int
	mode      mode
	debounce  time.Duration
	activeLow bool
	bias      bias
	initial   bool
	count     countOn
	writable  bool
	point     int // index into Info.Points
	rate      int // counter: index of the rate point; -1 otherwise
	rateType  mappings.Type
}

// Configure implements adapters.Driver. It reports every problem of the
// entry at its key and does no I/O: whether the chip and lines exist is
// found out by Run.
func (Driver) Configure(raw config.Raw) adapters.Device {
	var c deviceConfig
	e := adapters.Decode(raw, &c)
	interval := e.PollInterval(c.PollInterval, DefaultPollInterval, MinPollInterval)
	d, path := e.Decoder(), e.Path()
	if c.Chip == "" {
		c.Chip = DefaultChip
	}
	if err := checkChip(c.Chip); err != nil {
		e.Fail(path+".chip", "%v", err)
	}
	if len(c.Points) == 0 {
		e.Fail(path, "a gpio device needs at least one point")
	}

	dev := &Device{chip: c.Chip, interval: interval,
		info: adapters.Info{Name: c.Name, Driver: "gpio"}}
	offsets := map[int]string{} // line -> key path
	for i := range c.Points {
		pc := &c.Points[i]
		pp := e.PointPath(i)
		ls, mp, good := checkPoint(d, pp, pc)
		if !e.Check(good) {
			continue
		}
		if prev, dup := offsets[ls.offset]; dup {
			e.Fail(pp+".line", "line %d is already used by %s", ls.offset, prev)
		}
		offsets[ls.offset] = pp
		ls.point = e.AddPoint(&dev.info, mp, pp)
		ls.rate = -1
		if ls.mode == modeCounter {
			rp, good := checkRate(d, pp, pc)
			if !e.Check(good) {
				continue
			}
			ls.rate = e.AddPoint(&dev.info, rp, pp+".rate")
			ls.rateType = rp.Type
		}
		dev.lines = append(dev.lines, ls)
	}
	if !e.OK() {
		return nil
	}
	return dev
}

// checkChip accepts a chip name (gpiochip0) or its device path.
func checkChip(chip string) error {
	name := strings.TrimPrefix(chip, "/dev/")
	if name == "" || strings.ContainsAny(name, "/ \t") {
		return fmt.Errorf("chip %q: want a chip name such as gpiochip0 (gpiodetect lists them) or its path /dev/gpiochip0", chip)
	}
	return nil
}

// checkPoint checks one point's line keys and its mapping; good is false
// when it reported a problem.
func checkPoint(d *config.Decoder, pp string, pc *pointConfig) (ls lineSpec, mp mappings.Point, good bool) {
	good = true
	fail := func(p, format string, args ...any) {
		d.Errorf(p, format, args...)
		good = false
	}
	ls = lineSpec{name: pc.Name, activeLow: pc.ActiveLow, count: countRising}

	if pc.Mode == "" {
		fail(pp, "a gpio point needs mode: input, counter or output")
	} else {
		ls.mode, _ = oneOf(fail, pp, "mode", pc.Mode, []named[mode]{
			{"input", modeInput}, {"counter", modeCounter}, {"output", modeOutput}})
	}
	switch {
	case pc.Line == nil:
		fail(pp, "a gpio point needs line: its offset on the chip (gpioinfo lists them)")
	case *pc.Line < 0:
		fail(pp+".line", "line must be 0 or more, got %d", *pc.Line)
	default:
		ls.offset = *pc.Line
	}

	if pc.Debounce != nil {
		switch db := *pc.Debounce; {
		case ls.mode == modeOutput:
			fail(pp+".debounce", "debounce applies to input and counter lines, not to an output")
		case db < 0:
			fail(pp+".debounce", "debounce must be 0 or more")
		case db > MaxDebounce:
			fail(pp+".debounce", "debounce %s is longer than %s", db, MaxDebounce)
		default:
			ls.debounce = db
		}
	}
	if pc.Bias != "" {
		ls.bias, _ = oneOf(fail, pp, "bias", pc.Bias, []named[bias]{
			{"pull-up", biasPullUp}, {"pull-down", biasPullDown}, {"disabled", biasDisabled}})
	}
	if ls.bias != biasAsIs && ls.mode == modeOutput {
		// A pull resistor does nothing against a driven line.
		fail(pp+".bias", "bias applies to input and counter lines, not to an output")
	}
	if pc.Initial != nil {
		if ls.mode == modeOutput {
			ls.initial = *pc.Initial
		} else if ls.mode != 0 {
			fail(pp+".initial", "initial applies to an output, not to %s line", article(ls.mode))
		}
	}
	if pc.Edge != "" {
		if c, ok := oneOf(fail, pp, "edge", pc.Edge, []named[countOn]{
			{"rising", countRising}, {"falling", countFalling}, {"both", countBoth}}); ok {
			ls.count = c
		}
	}
	if pc.Edge != "" && ls.mode != modeCounter && ls.mode != 0 {
		fail(pp+".edge", "edge applies to a counter, not to %s line: inputs report both edges", article(ls.mode))
	}
	if pc.Rate != nil && ls.mode != modeCounter && ls.mode != 0 {
		fail(pp+".rate", "rate applies to a counter, not to %s line", article(ls.mode))
	}

	opts := mappings.Options{DefaultType: mappings.Bool, BoolOnly: true, Source: "GPIO lines"}
	switch ls.mode {
	case modeCounter:
		opts = mappings.Options{DefaultType: mappings.Uint64}
	case 0:
		// The mode is already reported: no type rule would be fair.
		opts = mappings.Options{DefaultType: mappings.Bool}
	}
	mp, compiled := adapters.Compile(d, pp, &pc.Spec, opts)
	if !compiled {
		good = false
	}
	if ls.mode == modeCounter && compiled && mp.Type != mappings.Uint64 {
		fail(pp+".type", "a counter total is a uint64, not %s: use scale for other units", mp.Type)
	}
	if mp.Writable && ls.mode == modeInput {
		fail(pp+".writable", "an input line cannot be written: use mode: output")
	}
	ls.writable = mp.Writable
	return ls, mp, good
}

// named is one value an enumerated key accepts.
type named[T any] struct {
	name  string
	value T
}

// oneOf finds s, the value of key k of point pp, among values. It reports
// a value it does not know, listing those it does, and returns ok false.
func oneOf[T any](fail func(p, format string, args ...any), pp, k, s string, values []named[T]) (v T, ok bool) {
	var want strings.Builder
	for i, n := range values {
		if n.name == s {
			return n.value, true
		}
		switch {
		case i == len(values)-1:
			want.WriteString(" or ")
		case i > 0:
			want.WriteString(", ")
		}
		want.WriteString(n.name)
	}
	fail(pp+"."+k, "unknown %s %q (want %s)", k, s, want.String())
	return v, false
}

// checkRate compiles the rate point of a counter: its own mapping keys
// under `rate`, named <name>_rate unless it says otherwise.
func checkRate(d *config.Decoder, pp string, pc *pointConfig) (mappings.Point, bool) {
	var spec mappings.Spec
	if pc.Rate != nil {
		spec = *pc.Rate
	}
	if spec.Name == "" {
		spec.Name = pc.Name + "_rate"
	}
	rp, ok := adapters.Compile(d, pp+".rate", &spec, mappings.Options{DefaultType: mappings.Float64, ReadOnly: true, Source: "counter rates"})
	if ok && !rp.Type.IsFloat() {
		d.Errorf(pp+".rate.type", "a rate is a float64 or float32, not %s", rp.Type)
		ok = false
	}
	return rp, ok
}

func article(m mode) string {
	if m == modeInput || m == modeOutput {
		return "an " + m.String()
	}
	return "a " + m.String()
}
