package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Sentinel errors. Callers tell cases apart with errors.Is; the returned
// errors wrap these with the file, offset or size involved.
var (
	// ErrClosed is returned by the methods of a Log or Reader that report
	// errors, once it is closed.
	ErrClosed = errors.New("buffer: closed")
	// ErrFull is returned by Append when the log holds MaxBytes and the
	// policy is DropNewest: the record was not stored.
	ErrFull = errors.New("buffer: full")
	// ErrTooLarge is returned by Append for a record that cannot fit in
	// MaxBytes even in an otherwise empty log: the record was not stored.
	ErrTooLarge = errors.New("buffer: record too large")
	// ErrCorrupt marks bytes on disk that are not a valid segment, record or
	// cursor; the wrapping error names the file and offset.
	ErrCorrupt = errors.New("buffer: corrupt data")
)

// SyncMode says what Append waits for before it returns.
type SyncMode int

const (
	// SyncBatch returns once the record is written to the operating system
	// (it survives a crash of the process); a background fsync runs at least
	// every SyncInterval while there is unsynced data, so a power cut loses
	// at most that window.
	SyncBatch SyncMode = iota
	// SyncAlways returns once an fsync covers the record. Appends that
	// arrive while an fsync runs share the next one (group commit), so a
	// single sequential appender gets one record per fsync.
	SyncAlways
	// SyncOff returns once the record is written to the operating system and
	// never fsyncs, except at Close.
	SyncOff
)

// String returns the configuration spelling of m.
func (m SyncMode) String() string {
	switch m {
	case SyncBatch:
		return "batch"
	case SyncAlways:
		return "always"
	case SyncOff:
		return "off"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// ParseSyncMode parses the configuration spelling: "batch", "always" or "off".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "batch":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "off":
		return SyncOff, nil
	}
	return 0, fmt.Errorf("buffer: sync mode must be batch, always or off, got %q", s)
}

// FullPolicy says what happens to an append that would take the log past
// MaxBytes.
type FullPolicy int

const (
	// DropOldest deletes the oldest segments, acknowledged or not, to make
	// room; the records lost are counted in Stats.Dropped.Full.
	DropOldest FullPolicy = iota
	// DropNewest refuses the append with ErrFull and counts it.
	DropNewest
)

// String returns the configuration spelling of p.
func (p FullPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop_oldest"
	case DropNewest:
		return "drop_newest"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// ParseFullPolicy parses the configuration spelling: "drop_oldest" or
// "drop_newest".
func ParseFullPolicy(s string) (FullPolicy, error) {
	switch s {
	case "drop_oldest":
		return DropOldest, nil
	case "drop_newest":
		return DropNewest, nil
	}
	return 0, fmt.Errorf("buffer: when_full must be drop_oldest or drop_newest, got %q", s)
}

// Defaults applied by Open to zero fields of Options.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
)

// minSegmentSize keeps a segment able to hold its header and a few frames.
const minSegmentSize = 256

// Options configures a Log. The zero value of every field but Dir selects
// the default.
type Options struct {
	// Dir is the log's own directory, created if missing. The caller
	// ensures a single process uses it (the gateway locks data_dir).
	Dir string
	// MaxBytes bounds the bytes of retained segments (default 1 GiB). The
	// segment being written is preallocated to SegmentSize on disk, so the
	// space used can exceed MaxBytes by up to one segment.
	MaxBytes int64
	// MaxAge deletes segments whose newest record is older than this, while
	// the clock is synchronized; 0 keeps records regardless of age.
	MaxAge time.Duration
	// WhenFull chooses between dropping old records and refusing new ones.
	WhenFull FullPolicy
	// Sync chooses what Append waits for.
	Sync SyncMode
	// SyncInterval is the longest time unsynced data waits for an fsync in
	// SyncBatch mode, and for AppendAsync records in SyncAlways mode
	// (default 100ms).
	SyncInterval time.Duration
	// SegmentSize is the preallocated size of one segment file (default
	// 64 MiB), capped at a quarter of MaxBytes so that dropping the oldest
	// segment never frees most of the budget at once.
	SegmentSize int64
	// Logger receives recovery reports, drops and quarantines; nil discards.
	Logger *slog.Logger
	// Now is the clock used for record times and ages; nil means time.Now.
	Now func() time.Time
	// ClockSynced reports whether the system clock is synchronized (with
	// NTP, say). MaxAge deletes only while it returns true, and records
	// appended while it returns false never count as aged, because a
	// device without a real-time clock boots in the past and jumps forward
	// later. Nil asks the kernel (adjtimex: synchronized when STA_UNSYNC is
	// clear).
	ClockSynced func() bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("buffer: Options.Dir is empty")
	}
	if o.MaxBytes < 0 || o.MaxAge < 0 || o.SyncInterval < 0 || o.SegmentSize < 0 {
		return o, errors.New("buffer: negative MaxBytes, MaxAge, SyncInterval or SegmentSize")
	}
	if o.Sync < SyncBatch || o.Sync > SyncOff {
		return o, fmt.Errorf("buffer: invalid sync mode %d", int(o.Sync))
	}
	if o.WhenFull < DropOldest || o.WhenFull > DropNewest {
		return o, fmt.Errorf("buffer: invalid full policy %d", int(o.WhenFull))
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBytes < 2*minSegmentSize {
		return o, fmt.Errorf("buffer: MaxBytes %d is below the minimum %d", o.MaxBytes, 2*minSegmentSize)
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	o.SegmentSize = max(min(o.SegmentSize, o.MaxBytes/4), minSegmentSize)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSynced == nil {
		o.ClockSynced = kernelClockSynced
	}
	return o, nil
}
