package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logSink captures log records so tests can assert what was reported.
type logSink struct {
	mu      sync.Mutex
	records []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	s.records = append(s.records, b.String())
	s.mu.Unlock()
	return nil
}

// find returns the first captured line with the level and containing all
// the given substrings.
func (s *logSink) find(level slog.Level, subs ...string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
next:
	for _, r := range s.records {
		if !strings.HasPrefix(r, level.String()+" ") {
			continue
		}
		for _, sub := range subs {
			if !strings.Contains(r, sub) {
				continue next
			}
		}
		return r, true
	}
	return "", false
}

func (s *logSink) count(level slog.Level, sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.records {
		if strings.HasPrefix(r, level.String()+" ") && strings.Contains(r, sub) {
			n++
		}
	}
	return n
}

// env is one test's log directory and the options used to open it.
type env struct {
	t      *testing.T
	dir    string
	opts   Options
	clock  *fakeClock
	synced *atomic.Bool
	logs   *logSink
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		t:      t,
		dir:    filepath.Join(t.TempDir(), "log"),
		clock:  newFakeClock(),
		synced: new(atomic.Bool),
		logs:   &logSink{},
	}
	e.synced.Store(true)
	e.opts = Options{
		Dir:          e.dir,
		MaxBytes:     64 << 20,
		SegmentSize:  4096,
		SyncInterval: 10 * time.Millisecond,
		Logger:       slog.New(e.logs),
		Now:          e.clock.Now,
		ClockSynced:  e.synced.Load,
	}
	t.Cleanup(func() {
		if !t.Failed() {
			checkInvariants(t, e.dir)
		}
	})
	return e
}

// open opens the log; at cleanup it is closed and its last Stats are
// compared with a read-only Inspect of the closed directory.
func (e *env) open() *Log {
	e.t.Helper()
	l, err := Open(e.opts)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { closeAndCompare(e.t, l) })
	return l
}

func closeAndCompare(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	wasClosed := l.closed
	l.mu.Unlock()
	before := l.Stats()
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if wasClosed || t.Failed() {
		return
	}
	got, err := Inspect(l.opts.Dir)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got.Messages != before.Messages || got.Bytes != before.Bytes || got.Segments != before.Segments ||
		got.Cursor != before.Cursor || got.NextSeq != before.NextSeq || got.Dropped != before.Dropped ||
		got.Quarantined != before.Quarantined {
		t.Errorf("Inspect after Close = %+v, Stats before Close = %+v", got, before)
	}
}

func (e *env) reopen(l *Log) *Log {
	e.t.Helper()
	if err := l.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	return e.open()
}

// payload returns deterministic content for record i, of varying length
// (including empty).
func payload(i int) []byte {
	n := (i * 37) % 300
	if i%50 == 0 {
		n = 0
	}
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	return b
}

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), payload(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// drain reads every record available now without waiting.
func drain(t *testing.T, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		rec, err := r.NextBefore(context.Background(), past)
		if errors.Is(err, ErrCaughtUp) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, rec)
	}
}

// sealedLog appends records 0..n-1 (payload) to a new log of 1 KiB
// segments, closes it and returns it with its segment files, oldest first.
func sealedLog(t *testing.T, n int) (*env, []string) {
	t.Helper()
	e := newEnv(t)
	e.opts.SegmentSize = 1024
	l := e.open()
	appendN(t, l, 0, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, e.dir)
	slices.Sort(files)
	return e, files
}

// appendInNewSegment opens e's log with 4 KiB segments, appends records
// from..from+n-1 to a segment of their own, and closes it. It returns where
// that segment's data ends.
func appendInNewSegment(t *testing.T, e *env, from, n int) (end int64) {
	t.Helper()
	e.opts.SegmentSize = 4096
	l := e.open()
	l.mu.Lock()
	if err := l.rollLocked(false, 0); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	appendN(t, l, from, n)
	l.mu.Lock()
	end = l.segs[len(l.segs)-1].size
	l.mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return end
}

// checkAllBut checks that got is records 1..n in order, each with its
// payload, except those lost says are gone.
func checkAllBut(t *testing.T, got []Record, n uint64, lost func(seq uint64) bool) {
	t.Helper()
	want := uint64(1)
	for _, r := range got {
		for want <= n && lost(want) {
			want++
		}
		if r.Seq != want || !bytes.Equal(r.Data, payload(int(r.Seq-1))) {
			t.Fatalf("got record %d (%d bytes), want record %d", r.Seq, len(r.Data), want)
		}
		want++
	}
	for want <= n && lost(want) {
		want++
	}
	if want != n+1 {
		t.Fatalf("read up to record %d, want up to %d", want-1, n)
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quarantineFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "*"))
	return m
}

// checkInvariants verifies a closed log directory from scratch: every
// segment parses to its end, sequence numbers continue across segments
// except across quarantined ranges, the cursor is in range, acknowledged
// segments are gone, and Inspect agrees with a full scan.
func checkInvariants(t *testing.T, dir string) {
	t.Helper()
	ls, err := readDir(dir)
	if err != nil {
		t.Errorf("invariants: %v", err)
		return
	}
	for _, b := range ls.bad {
		t.Errorf("invariants: %s has an unusable header: %s", b.path, b.reason)
	}
	if _, err := os.Stat(filepath.Join(dir, cursorTmpName)); err == nil {
		t.Errorf("invariants: %s left behind", cursorTmpName)
	}
	if len(ls.segs) == 0 {
		t.Errorf("invariants: no segment in %s", dir)
		return
	}
	var bytesTotal int64
	for i, s := range ls.segs {
		var next uint64 // where a sealed segment's records end, as a reader knows it
		if i+1 < len(ls.segs) {
			next = ls.segs[i+1].base
		}
		end, dataEnd := scanWhole(t, s, next)
		if i > 0 {
			prev := ls.segs[i-1]
			pos := prev.end
			for pos < s.base {
				found := false
				for _, r := range ls.qRanges {
					if r.base == pos {
						pos, found = r.end, true
						break
					}
				}
				if !found {
					break
				}
			}
			if pos != s.base {
				t.Errorf("invariants: %s ends at sequence %d but %s starts at %d", prev.path, prev.end, s.path, s.base)
			}
		}
		s.end = end
		if i == len(ls.segs)-1 {
			s.size = dataEnd
		}
		bytesTotal += s.size
	}
	b, err := os.ReadFile(filepath.Join(dir, cursorName))
	if err != nil {
		t.Errorf("invariants: %v", err)
		return
	}
	cs, reason := decodeCursor(b)
	if reason != "" {
		t.Errorf("invariants: cursor: %s", reason)
		return
	}
	first, last := ls.segs[0], ls.segs[len(ls.segs)-1]
	if cs.cursor < first.base || cs.cursor > last.end {
		t.Errorf("invariants: cursor %d outside [%d, %d]", cs.cursor, first.base, last.end)
	}
	if len(ls.segs) > 1 && first.end <= cs.cursor {
		t.Errorf("invariants: %s is acknowledged (cursor %d) but still present", first.path, cs.cursor)
	}
	var messages uint64
	for _, s := range ls.segs {
		messages += unacked(s, cs.cursor)
	}
	st, err := Inspect(dir)
	if err != nil {
		t.Errorf("invariants: Inspect: %v", err)
		return
	}
	if st.Messages != messages || st.Bytes != bytesTotal || st.Segments != len(ls.segs) ||
		st.Cursor != cs.cursor || st.NextSeq != last.end || st.Quarantined != ls.quarantined || st.Dropped != cs.dropped {
		t.Errorf("invariants: Inspect = %+v; full scan: messages %d, bytes %d, segments %d, cursor %d, next %d, quarantined %d, dropped %+v",
			st, messages, bytesTotal, len(ls.segs), cs.cursor, last.end, ls.quarantined, cs.dropped)
	}
}

// scanWhole reads every frame of a segment, stepping over damaged records
// as a reader does (next, when not 0, is where the segment's records end),
// and checks that nothing but zeros follows the last one.
func scanWhole(t *testing.T, s *segment, next uint64) (end uint64, dataEnd int64) {
	t.Helper()
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Errorf("invariants: %v", err)
		return s.base, 0
	}
	sc := frameScanner{r: bytes.NewReader(data), path: s.path, off: segHeaderSize, limit: int64(len(data)), seq: s.base, end: next}
	var damaged *DamagedError
	for {
		_, _, _, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.As(err, &damaged) {
			t.Errorf("invariants: segment does not parse: %v", err)
			return sc.seq, sc.off
		}
	}
	if !allZero(data[sc.off:]) {
		t.Errorf("invariants: %s: non-zero bytes after the last record at offset %d", s.path, sc.off)
	}
	return sc.seq, sc.off
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// zeroBytes overwrites n bytes of a file at off with zeros, past its end
// too.
func zeroBytes(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts one byte of a file.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// frameOffsets returns the offset of every frame of a segment file,
// damaged ones included.
func frameOffsets(t *testing.T, path string, base uint64) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := frameScanner{r: bytes.NewReader(data), path: path, off: segHeaderSize, limit: int64(len(data)), seq: base}
	var offs []int64
	var damaged *DamagedError
	for {
		off := sc.off
		if _, _, _, err := sc.next(); err != nil && !errors.As(err, &damaged) {
			return offs
		}
		offs = append(offs, off)
	}
}

func checkRecords(t *testing.T, got []Record, firstSeq uint64, firstPayload int) {
	t.Helper()
	for k, rec := range got {
		if want := firstSeq + uint64(k); rec.Seq != want {
			t.Fatalf("record %d: seq %d, want %d", k, rec.Seq, want)
		}
		if want := payload(firstPayload + k); !bytes.Equal(rec.Data, want) {
			t.Fatalf("record seq %d: payload %x, want %x", rec.Seq, rec.Data, want)
		}
	}
}

func (l *Log) setBeforeSync(fn func()) {
	l.mu.Lock()
	l.beforeSync = fn
	l.mu.Unlock()
}

// past is a deadline already gone: NextBefore returns ErrCaughtUp at once
// instead of waiting for an append.
var past = time.Unix(0, 0)
