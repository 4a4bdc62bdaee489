package adapters

import (
	"fmt"
	"time"

	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Entry is one device entry while its driver configures it. It reports each
// problem through the file's decoder at a key path, so that the message
// carries file:line:col, and remembers whether any was found: Configure
// returns nil when the entry is not OK.
type Entry struct {
	d    *config.Decoder
	path string
	ok   bool
	// points maps the name of each point added so far to its key path.
	points map[string]string
}

// Decode decodes raw into out, a pointer to the driver's device struct,
// strictly, and returns the entry that reports the driver's own checks.
// Unknown keys and values of the wrong type are reported by the decoder and
// make the entry unusable.
func Decode(raw config.Raw, out any) *Entry {
	d := raw.Decoder()
	before := len(d.Errors())
	raw.Decode(out)
	return &Entry{d: d, path: raw.Path(), ok: len(d.Errors()) == before}
}

// PollInterval checks the entry's poll_interval v: def when the key is
// absent, reported when shorter than min. An explicit 0 is shorter than
// min, not a request for the default. It returns def after a problem, so
// that checks which depend on the interval go on sensibly.
func (e *Entry) PollInterval(v, def, min time.Duration) time.Duration {
	if !e.Has("poll_interval") {
		return def
	}
	if v < min {
		e.Fail(e.Key("poll_interval"), "poll_interval must be at least %s", min)
		return def
	}
	return v
}

// PointPath is the key path of the entry's i-th point, such as
// devices[2].points[0].
func (e *Entry) PointPath(i int) string { return fmt.Sprintf("%s.points[%d]", e.path, i) }

// AddPoint appends point p, configured at key path where, to info.Points
// and returns its index there. A name that an earlier point of the entry
// already uses is reported at where.name, even when the name is derived
// (a gpio rate's): that is the key that would rename it. An empty name is
// not checked; Compile has reported it.
func (e *Entry) AddPoint(info *Info, p mappings.Point, where string) int {
	if p.Name != "" {
		if prev, dup := e.points[p.Name]; dup {
			e.Fail(where+".name", "point name %q is already used by %s", p.Name, prev)
		}
		if e.points == nil {
			e.points = map[string]string{}
		}
		e.points[p.Name] = where
	}
	info.Points = append(info.Points, Point{Point: p, Where: where})
	return len(info.Points) - 1
}

// Decoder is the decoder of the file, for adapters.Compile and Has.
func (e *Entry) Decoder() *config.Decoder { return e.d }

// Path is the key path of the entry, such as devices[2].
func (e *Entry) Path() string { return e.path }

// Has reports whether key k of the entry is in the file.
func (e *Entry) Has(k string) bool { return e.d.Has(e.path + "." + k) }

// Key is the path of key k of the entry, or the entry's own path when the
// key is absent, so that a message about a missing key points at its parent.
func (e *Entry) Key(k string) string { return e.At(e.path, k) }

// At is the path of key k below path p, or p when that key is absent.
func (e *Entry) At(p, k string) string {
	if e.d.Has(p + "." + k) {
		return p + "." + k
	}
	return p
}

// Fail reports a problem at key path p and marks the entry unusable.
func (e *Entry) Fail(p, format string, args ...any) {
	e.d.Errorf(p, format, args...)
	e.ok = false
}

// Check marks the entry unusable when ok is false: a helper found a
// problem and has already reported it. It returns ok.
func (e *Entry) Check(ok bool) bool {
	if !ok {
		e.ok = false
	}
	return ok
}

// OK reports whether the entry is usable: no problem was found in it.
func (e *Entry) OK() bool { return e.ok }
