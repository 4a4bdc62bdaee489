package adapters

import (
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

// CheckName checks the device's name key. A missing name is the registry's
// to report.
func (e *Entry) CheckName(name string) {
	if err := mappings.ValidName(name); err != nil && name != "" {
		e.Fail(e.Key("name"), "%v", err)
	}
}

// PollInterval checks the entry's poll_interval v: def when it is 0 or
// absent, reported when shorter than min.
func (e *Entry) PollInterval(v, def, min time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	if v < min {
		e.Fail(e.Key("poll_interval"), "poll_interval must be at least %s", min)
	}
	return v
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
