package mappings

import (
	"fmt"
	"math"
	"time"
)

// maxStringRegisters is the most registers one Modbus write (FC16) carries,
// which bounds a string that can be read and written in one request.
const maxStringRegisters = 123

// Spec is the mapping part of a point as the configuration file gives it.
// Drivers embed it inline next to their own keys (table, address, line,
// waveform...) and call Compile.
type Spec struct {
	Name   string `yaml:"name"`
	Type   string `yaml:"type"`
	Order  string `yaml:"order"`
	Length int    `yaml:"length"` // registers of a string, two characters each
	Bit    *int   `yaml:"bit"`    // bit 0..15 of a register holding a bool
	// Scale and Offset map raw to value: value = raw*scale + offset.
	Scale  *float64 `yaml:"scale"`
	Offset *float64 `yaml:"offset"`
	Unit   string   `yaml:"unit"`
	// Deadband: nil publishes every poll, 0 only on a change, a positive
	// one only on a change larger than it.
	Deadband  *float64      `yaml:"deadband"`
	Heartbeat time.Duration `yaml:"heartbeat"` // republish an unchanged value this often
	Topic     string        `yaml:"topic"`     // overrides the default topic template
	Writable  bool          `yaml:"writable"`
	// WriteRange is [min, max] of the values a command may write.
	WriteRange []float64 `yaml:"write_range"`
}

// Options tells Compile what the point's source allows. Rules that only a
// driver knows (a coil cannot be float32, an input register is read-only)
// come in here, so that every rule reports through the same FieldErrors.
type Options struct {
	// DefaultType is the type of a point without `type`; the zero Type
	// makes `type` required.
	DefaultType Type
	// RegisterTable says the point is read from 16-bit registers: only then
	// are order and length accepted, and a bool must name its bit.
	RegisterTable bool
	// BoolOnly says the source holds single bits (coils, discrete inputs,
	// GPIO lines): any type but bool is refused.
	BoolOnly bool
	// ReadOnly refuses writable.
	ReadOnly bool
	// Source names what the point is read from, in the plural, for the
	// messages of BoolOnly and ReadOnly: "discrete inputs", "GPIO lines".
	Source string
}

// source is o.Source, or words that fit any source.
func (o Options) source() string {
	if o.Source == "" {
		return "points of this source"
	}
	return o.Source
}

// FieldError is one problem with a Spec. Key is the YAML key at fault, such
// as "order"; when the problem is that the key is missing (a string without
// length), the caller should point at the point's own entry instead.
type FieldError struct {
	Key string
	Msg string
}

// Error returns "key: msg".
func (e FieldError) Error() string { return e.Key + ": " + e.Msg }

// Point is a compiled, valid point: what a driver needs to read, scale,
// report, publish and write it.
type Point struct {
	Name   string
	Type   Type
	Order  Order // resolved: never zero except for Bool
	Length int   // registers of a String; 0 for other types
	Bit    int   // bit 0..15 of a Bool read from a register; 0 otherwise
	Scaling
	Unit      string
	Deadband  *float64 // nil: publish every poll
	Heartbeat time.Duration
	Topic     Template // the point's own topic; zero: the default template
	Writable  bool
	// WriteRange bounds command values, in the user's units; nil: the
	// type's range only.
	WriteRange *[2]float64
}

// Registers is the number of registers the point spans.
func (p Point) Registers() int { return p.Type.Registers(p.Length) }

// TopicName returns the topic the point publishes on: its own template when
// it has one, def otherwise, expanded.
func (p Point) TopicName(def Template, gateway, device string) string {
	if !p.Topic.IsZero() {
		return p.Topic.Expand(gateway, device, p.Name)
	}
	return def.Expand(gateway, device, p.Name)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Compile checks s and returns the compiled point. It reports every problem
// it finds, not just the first; the Point is usable only when there are
// none.
func (s *Spec) Compile(opt Options) (Point, []FieldError) {
	var errs []FieldError
	add := func(key, format string, args ...any) {
		errs = append(errs, FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	p := Point{Name: s.Name, Unit: s.Unit, Heartbeat: s.Heartbeat, Writable: s.Writable}

	if s.Name == "" {
		add("name", "a point needs a name")
	} else if err := ValidName(s.Name); err != nil {
		add("name", "%v", err)
	}

	switch {
	case s.Type != "":
		t, err := ParseType(s.Type)
		if err != nil {
			add("type", "%v", err)
		}
		p.Type = t
	case opt.DefaultType.valid():
		p.Type = opt.DefaultType
	default:
		add("type", "a point needs a type (%s)", typeList)
	}
	t := p.Type
	known := t.valid()
	if known && opt.BoolOnly && t != Bool {
		add("type", "%s is not possible here: %s hold only bool values", t, opt.source())
	}
	isText := t == Bool || t == String

	switch {
	case s.Order != "" && !opt.RegisterTable:
		add("order", "order applies only to points read from registers")
	case known:
		o, err := ParseOrder(s.Order, t)
		if err != nil {
			add("order", "%v", err)
		}
		p.Order = o
	}

	switch {
	case !known:
	case t != String:
		if s.Length != 0 {
			add("length", "length applies only to a string")
		}
	case !opt.RegisterTable:
		if s.Length != 0 {
			add("length", "length applies only to a string read from registers")
		}
	case s.Length < 1 || s.Length > maxStringRegisters:
		if s.Length == 0 {
			add("length", "a string needs length: the number of registers, 1..%d (2 characters each)", maxStringRegisters)
		} else {
			add("length", "length %d outside 1..%d registers", s.Length, maxStringRegisters)
		}
	default:
		p.Length = s.Length
	}

	switch {
	case s.Bit != nil && (!opt.RegisterTable || known && t != Bool):
		add("bit", "bit applies only to a bool read from a register")
	case s.Bit != nil && (*s.Bit < 0 || *s.Bit > 15):
		add("bit", "bit %d outside 0..15", *s.Bit)
	case s.Bit != nil:
		p.Bit = *s.Bit
	case opt.RegisterTable && t == Bool:
		add("bit", "a bool read from a register needs bit: 0..15")
	}

	p.Scaling = Scaling{Scale: 1}
	if s.Scale != nil {
		switch {
		case known && isText:
			add("scale", "scale on a %s", t)
		case !finite(*s.Scale):
			add("scale", "scale must be a finite number")
		case *s.Scale == 0:
			add("scale", "scale must not be 0")
		default:
			p.Scale = *s.Scale
		}
	}
	if s.Offset != nil {
		switch {
		case known && isText:
			add("offset", "offset on a %s", t)
		case !finite(*s.Offset):
			add("offset", "offset must be a finite number")
		default:
			p.Offset = *s.Offset
		}
	}

	if d := s.Deadband; d != nil {
		switch {
		case !finite(*d) || *d < 0:
			add("deadband", "deadband must be a number >= 0")
		case known && isText && *d != 0:
			add("deadband", "deadband on a %s can only be 0 (publish on change)", t)
		default:
			v := *d
			p.Deadband = &v
		}
	}
	switch {
	case s.Heartbeat < 0:
		add("heartbeat", "heartbeat must be >= 0")
	case s.Heartbeat > 0 && s.Deadband == nil:
		add("heartbeat", "heartbeat has no effect without deadband: every poll publishes")
	}

	if s.Topic != "" {
		tmpl, err := ParseTemplate(s.Topic)
		if err != nil {
			add("topic", "%v", err)
		}
		p.Topic = tmpl
	}

	if s.Writable {
		switch {
		case opt.ReadOnly:
			add("writable", "%s are read-only", opt.source())
		case t == String:
			add("writable", "a string point cannot be writable")
		}
	}
	if r := s.WriteRange; r != nil {
		switch {
		case !s.Writable:
			add("write_range", "write_range needs writable: true")
		case t == Bool:
			add("write_range", "write_range on a bool")
		case len(r) != 2:
			add("write_range", "write_range must be [min, max], got %d numbers", len(r))
		case !finite(r[0]) || !finite(r[1]):
			add("write_range", "write_range must hold finite numbers")
		case r[0] > r[1]:
			add("write_range", "write_range min %s is above max %s", formatFloat(r[0]), formatFloat(r[1]))
		default:
			if known && (t.IsInteger() || t.IsFloat()) {
				lo, hi := p.Scaling.userRange(t)
				if r[0] < lo || r[1] > hi {
					add("write_range", "write_range [%s, %s] exceeds what %s can hold: %s",
						formatFloat(r[0]), formatFloat(r[1]), p.Scaling.describe(t), p.Scaling.rangeText(t))
				}
			}
			p.WriteRange = &[2]float64{r[0], r[1]}
		}
	}
	return p, errs
}
