package buffer

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one stored record as a Reader returns it.
type Record struct {
	// Seq is the record's sequence number: consecutive within the log,
	// starting at 1. Ack takes the Seq after the last delivered record.
	Seq uint64
	// Time is when the record was appended (Options.Now).
	Time time.Time
	// Data is the payload; it belongs to the caller.
	Data []byte
}

// Dropped counts records lost on purpose or to corruption, per reason.
type Dropped struct {
	Full    uint64 // DropOldest deleted them, or DropNewest refused them
	Age     uint64 // older than MaxAge
	Corrupt uint64 // damaged records, and those of a quarantined segment
}

// Total is the sum over all reasons.
func (d Dropped) Total() uint64 { return d.Full + d.Age + d.Corrupt }

// Stats describes a log. Dropped is a lifetime total kept in the cursor
// file (it can lag by about a second after a crash); Appended and Fsyncs
// count since Open.
type Stats struct {
	Messages    uint64        // records retained and not yet acknowledged
	Bytes       int64         // bytes of retained segments, what MaxBytes bounds
	Segments    int           // retained segment files
	OldestAge   time.Duration // age of the oldest unacknowledged record, 0 when none
	Cursor      uint64        // sequence number of the oldest unacknowledged record
	NextSeq     uint64        // sequence number the next append gets
	Dropped     Dropped
	Quarantined int    // segment files in quarantine/
	Appended    uint64 // records appended since Open
	Fsyncs      uint64 // fsync and fdatasync calls since Open
}

// ringSize bounds how many delivered records the log remembers, to find the
// time and position of the record at the cursor after an Ack. It should
// exceed the consumer's in-flight window.
const ringSize = 1024

// dropLogInterval is the shortest time between two drop reports of one
// reason.
const dropLogInterval = 5 * time.Second

type dropReason int

const (
	reasonFull dropReason = iota
	reasonAge
	reasonCorrupt
	numReasons
)

func (r dropReason) String() string {
	return [...]string{"full", "age", "corrupt"}[r]
}

// cursorPos locates the record at the cursor, when known, so that a new
// Reader need not scan its segment from the start.
type cursorPos struct {
	posOK   bool
	segBase uint64
	off     int64
	timeOK  bool
	t       int64
}

type ringEntry struct {
	seq     uint64
	segBase uint64
	off     int64
	n       int64
	t       int64
}

type dropReport struct {
	pending uint64
	last    time.Time
	logged  bool
}

// Log is a durable store-and-forward log of opaque records: many
// goroutines append, one Reader delivers in order, and Ack releases what
// was delivered. All methods are safe for concurrent use.
type Log struct {
	opts    Options
	log     *slog.Logger
	clockOK atomic.Bool // cached ClockSynced, refreshed about once a second
	done    chan struct{}
	wg      sync.WaitGroup
	bufs    sync.Pool

	persistMu sync.Mutex // one cursor file write at a time

	mu          sync.Mutex
	closed      bool
	filesClosed bool
	failErr     error // sticky: an fsync failed, durability is unknown
	failLogged  bool
	segs        []*segment // by base; the last is active
	active      *os.File
	retired     []*os.File // sealed segments awaiting their last fsync
	dirDirty    bool
	nextSeq     uint64
	synced      uint64 // highest sequence number covered by an fsync
	syncing     bool
	syncDone    chan struct{} // closed when the running fsync round ends
	bytes       int64
	cursor      uint64
	cpos        cursorPos
	cursorDirty bool
	ring        []ringEntry
	dropped     Dropped
	reports     [numReasons]dropReport
	quarantined int
	// lost are the records readers found lost and counted, not yet passed
	// by the cursor: disjoint, in order. They count once, even when their
	// segment is later dropped or quarantined.
	lost      []seqRange
	appended  uint64
	fsyncs    uint64
	syncTimer *time.Timer // the deferred fsync; armed while syncArmed
	syncArmed bool
	waitCh    chan struct{} // closed at the next append, for a waiting Reader
	reader    *Reader

	// beforeSync, when a test sets it (under mu), runs at the start of
	// each fsync round, outside the lock.
	beforeSync func()
}

// Open opens or creates the log in opts.Dir, recovering from a crash: the
// newest segment is scanned and a torn tail cut at the last valid record;
// older segments are checked later as they are read.
func Open(opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	l := &Log{
		opts: opts,
		log:  opts.Logger,
		done: make(chan struct{}),
		ring: make([]ringEntry, ringSize),
		// Armed by the first write; stopped, it never fires.
		syncTimer: time.NewTimer(time.Hour),
	}
	l.syncTimer.Stop()
	l.clockOK.Store(opts.ClockSynced())
	if err := l.recover(); err != nil {
		if l.active != nil {
			l.active.Close()
		}
		return nil, err
	}
	l.enforceAge()
	l.wg.Add(1)
	go l.run()
	return l, nil
}

func (l *Log) recover() error {
	dir := l.opts.Dir
	ls, err := readDir(dir)
	if err != nil {
		return err
	}
	for _, name := range ls.unknown {
		l.log.Warn("buffer: ignoring unknown file", "file", filepath.Join(dir, name))
	}
	os.Remove(filepath.Join(dir, cursorTmpName))
	l.quarantined = ls.quarantined

	cs, cursorOK := l.readCursor()
	if cursorOK {
		l.dropped = cs.dropped
	}

	sealedEnds(ls.segs, ls.bad, ls.qRanges)
	// Unusable headers: the records behind them cannot be read, so the
	// files go to quarantine now rather than when a reader reaches them.
	for _, b := range ls.bad {
		end, ranged := nextBoundary(b.base, ls)
		if !ranged && (ls.segs == nil || b.base > ls.segs[len(ls.segs)-1].base) {
			if zero, _ := zeroFile(b.path); zero {
				// The newest segment's creation was cut short: it never
				// held a record.
				if err := os.Remove(b.path); err != nil {
					return fmt.Errorf("buffer: remove incomplete segment: %w", err)
				}
				l.log.Warn("buffer: removed incomplete segment", "file", b.path)
				continue
			}
		}
		var lost uint64
		if ranged && end > max(b.base, cs.cursor) {
			lost = end - max(b.base, cs.cursor)
		}
		dst, err := l.moveToQuarantine(b.path, b.base, end, ranged)
		l.dropped.Corrupt += lost
		l.cursorDirty = true
		l.log.Error("buffer: quarantined segment with unusable header",
			"file", b.path, "offset", 0, "reason", b.reason, "moved_to", dst, "lost", lost, "move_err", err)
	}
	var quarantineEnd uint64
	for _, r := range ls.qRanges {
		quarantineEnd = max(quarantineEnd, r.end)
	}

	segs := ls.segs
	if len(segs) == 0 {
		base := max(1, quarantineEnd)
		if cursorOK {
			base = max(base, cs.cursor)
		}
		seg, f, err := createSegment(dir, segHeader{base: base, created: l.opts.Now().UnixNano(), unsynced: !l.clockOK.Load()}, l.opts.SegmentSize)
		if err != nil {
			return err
		}
		l.segs, l.active = []*segment{seg}, f
		l.nextSeq, l.cursor, l.synced = base, base, base-1
		l.bytes = seg.size
		l.cpos = cursorPos{posOK: true, segBase: base, off: segHeaderSize}
		l.cursorDirty = true
		return l.syncAfterRecovery(f)
	}

	tail := segs[len(segs)-1]
	f, err := os.OpenFile(tail.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	l.active = f
	ts, err := scanTail(f, tail, tail.size, func(off, next int64) error {
		if err := rewriteSize(f, off, next); err != nil {
			return fmt.Errorf("buffer: repair %s at offset %d: %w", tail.path, off, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, rp := range ts.repaired {
		l.log.Warn("buffer: repaired the size field of a record in the newest segment", "file", tail.path, "offset", rp.off, "seq", rp.seq, "err", rp.cause)
	}
	sc, newest := ts.sc, ts.newest
	for _, d := range ts.damaged {
		l.log.Warn("buffer: damaged record in the newest segment; it will be skipped and counted when read", "file", d.Path, "offset", d.Off, "seq", d.Seq)
	}
	if ts.torn != nil {
		l.log.Warn("buffer: truncating torn tail", "file", tail.path, "offset", sc.off, "err", ts.torn)
	}
	// Cut whatever follows the last good record and preallocate again, so
	// no stale bytes can line up behind records appended from here on.
	if err := f.Truncate(sc.off); err != nil {
		return fmt.Errorf("buffer: truncate %s at offset %d: %w", tail.path, sc.off, err)
	}
	if err := preallocate(f, max(l.opts.SegmentSize, sc.off)); err != nil {
		return fmt.Errorf("buffer: preallocate %s: %w", tail.path, err)
	}
	tail.size = sc.off
	tail.end = sc.seq
	if tail.end > tail.base {
		tail.newest, tail.newestOK = newest, true
	}
	l.segs = segs
	l.nextSeq = tail.end
	l.synced = l.nextSeq - 1
	for _, s := range segs {
		l.bytes += s.size
	}

	// A missing or unreadable cursor means the oldest retained record:
	// duplicates, never loss.
	c := segs[0].base
	if cursorOK {
		c = max(c, min(cs.cursor, l.nextSeq))
	}
	l.cursor = c
	if cursorOK && cs.cursor == c {
		if i := l.segIndexByBase(cs.segBase); cs.posOK && i >= 0 && cs.off < segs[i].size {
			l.cpos.posOK, l.cpos.segBase, l.cpos.off = true, cs.segBase, cs.off
		}
		l.cpos.timeOK, l.cpos.t = cs.timeOK, cs.t
	}
	if !l.cpos.posOK {
		l.cpos = l.lookupPosLocked(c)
		if cursorOK && cs.cursor == c {
			l.cpos.timeOK, l.cpos.t = cs.timeOK, cs.t
		}
	}
	if !cursorOK || cs.cursor != c {
		l.cursorDirty = true
	}
	l.deleteAckedLocked()
	if l.bytes > l.opts.MaxBytes && l.opts.WhenFull == DropOldest {
		for len(l.segs) > 1 && l.bytes > l.opts.MaxBytes {
			l.dropSegmentLocked(l.segs[0], reasonFull)
		}
	}
	return l.syncAfterRecovery(f)
}

// syncAfterRecovery makes the repaired tail and directory durable before
// anything is appended behind them.
func (l *Log) syncAfterRecovery(f *os.File) error {
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("buffer: fsync %s: %w", f.Name(), err)
	}
	if err := syncDir(l.opts.Dir); err != nil {
		return fmt.Errorf("buffer: fsync %s: %w", l.opts.Dir, err)
	}
	l.fsyncs += 2
	return nil
}

// nextBoundary returns the first known segment or quarantine base after
// base, where the records of a segment at base must end.
func nextBoundary(base uint64, ls *dirListing) (uint64, bool) {
	var end uint64
	found := false
	consider := func(b uint64) {
		if b > base && (!found || b < end) {
			end, found = b, true
		}
	}
	for _, s := range ls.segs {
		consider(s.base)
	}
	for _, b := range ls.bad {
		consider(b.base)
	}
	for _, r := range ls.qRanges {
		consider(r.base)
	}
	return end, found
}

func (l *Log) readCursor() (cursorState, bool) {
	path := filepath.Join(l.opts.Dir, cursorName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cursorState{}, false
	}
	if err != nil {
		l.log.Warn("buffer: cannot read cursor, starting at the oldest record", "file", path, "err", err)
		return cursorState{}, false
	}
	cs, reason := decodeCursor(b)
	if reason != "" {
		l.log.Warn("buffer: corrupt cursor, starting at the oldest record", "file", path, "offset", 0, "reason", reason)
		return cursorState{}, false
	}
	return cs, true
}

// Append stores rec and returns once it is as durable as the sync mode
// promises: written to the operating system (SyncBatch, SyncOff) or covered
// by an fsync (SyncAlways). A nil error means the record is stored; if ctx
// ends while Append waits for the fsync, the record may still be stored.
func (l *Log) Append(ctx context.Context, rec []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// In SyncAlways the fsync below covers the record: no timer needed.
	seq, err := l.write(rec, l.opts.Sync != SyncAlways)
	if err != nil {
		return err
	}
	if l.opts.Sync == SyncAlways {
		return l.syncTo(ctx, seq)
	}
	return nil
}

// AppendAsync stores rec, written to the operating system, without waiting
// for an fsync in any mode. Unless the mode is SyncOff, the background
// fsync covers it within SyncInterval.
func (l *Log) AppendAsync(rec []byte) error {
	_, err := l.write(rec, true)
	return err
}

func (l *Log) getBuf() *[]byte {
	if b, ok := l.bufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (l *Log) putBuf(bp *[]byte, b []byte) {
	if cap(b) > 64<<10 {
		return // let large one-off buffers go
	}
	*bp = b[:0]
	l.bufs.Put(bp)
}

// write appends rec to the active segment; with arm, it makes sure the
// background fsync covers it within SyncInterval.
func (l *Log) write(rec []byte, arm bool) (uint64, error) {
	if uint64(len(rec)) > maxPayload || segHeaderSize+frameHeaderSize+int64(len(rec)) > l.opts.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, max_bytes is %d", ErrTooLarge, len(rec), l.opts.MaxBytes)
	}
	now := l.opts.Now().UnixNano()
	unsynced := !l.clockOK.Load()
	bp := l.getBuf()
	frame, partial := encodeFrame(*bp, now, rec)
	defer l.putBuf(bp, frame)
	n := int64(len(frame))

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.failErr != nil {
		return 0, l.failErr
	}
	if err := l.makeRoomLocked(n, unsynced); err != nil {
		return 0, err
	}
	act := l.activeSeg()
	seq := l.nextSeq
	sealFrame(frame, partial, seq)
	if _, err := l.active.WriteAt(frame, act.size); err != nil {
		// The offset does not move: the next write overwrites the partial
		// frame, and a crash before that leaves a torn tail.
		return 0, fmt.Errorf("buffer: write %s at offset %d: %w", act.path, act.size, err)
	}
	if seq == l.cursor {
		l.cpos = cursorPos{posOK: true, segBase: act.base, off: act.size, timeOK: true, t: now}
	}
	act.size += n
	act.end++
	if !act.newestOK || now > act.newest {
		act.newest, act.newestOK = now, true
	}
	l.nextSeq++
	l.bytes += n
	l.appended++
	if arm {
		l.armSyncLocked()
	}
	if l.waitCh != nil {
		close(l.waitCh)
		l.waitCh = nil
	}
	return seq, nil
}

func (l *Log) activeSeg() *segment { return l.segs[len(l.segs)-1] }

// makeRoomLocked rolls to a new segment when needed and applies MaxBytes
// before a frame of n bytes is written.
func (l *Log) makeRoomLocked(n int64, unsynced bool) error {
	for {
		act := l.activeSeg()
		// Records of one segment share the clock state, so max_age can
		// trust or distrust a segment as a whole.
		roll := act.end > act.base && (act.size+n > l.opts.SegmentSize || act.unsynced != unsynced)
		need := n
		if roll {
			need += segHeaderSize
		}
		if l.bytes+need <= l.opts.MaxBytes {
			if roll {
				return l.rollLocked(unsynced, n)
			}
			if act.end == act.base && act.unsynced != unsynced {
				return l.rewriteHeaderLocked(act, unsynced)
			}
			return nil
		}
		if l.opts.WhenFull == DropNewest {
			l.dropped.Full++
			l.cursorDirty = true
			l.reportDropLocked(reasonFull, 1)
			return fmt.Errorf("%w: %d of %d bytes retained", ErrFull, l.bytes, l.opts.MaxBytes)
		}
		if len(l.segs) > 1 {
			l.dropSegmentLocked(l.segs[0], reasonFull)
			continue
		}
		if act.end == act.base {
			return fmt.Errorf("%w: %d bytes do not fit in max_bytes %d", ErrTooLarge, n, l.opts.MaxBytes)
		}
		// Only the active segment holds data: seal it so it can be dropped.
		if err := l.rollLocked(unsynced, n); err != nil {
			return err
		}
	}
}

// rollLocked seals the active segment and starts a new one sized for a
// frame of n bytes.
func (l *Log) rollLocked(unsynced bool, n int64) error {
	old := l.activeSeg()
	h := segHeader{base: l.nextSeq, created: l.opts.Now().UnixNano(), unsynced: unsynced}
	seg, f, err := createSegment(l.opts.Dir, h, max(l.opts.SegmentSize, segHeaderSize+n))
	if err != nil {
		return err
	}
	// Give back the unused preallocation; failure only wastes space.
	if err := l.active.Truncate(old.size); err != nil {
		l.log.Warn("buffer: cannot trim sealed segment", "file", old.path, "offset", old.size, "err", err)
	}
	if l.opts.Sync == SyncOff {
		l.active.Close()
	} else {
		l.retired = append(l.retired, l.active)
	}
	l.active = f
	l.segs = append(l.segs, seg)
	l.bytes += seg.size
	l.dirDirty = true
	return nil
}

func (l *Log) rewriteHeaderLocked(act *segment, unsynced bool) error {
	h := segHeader{base: act.base, created: l.opts.Now().UnixNano(), unsynced: unsynced}
	if _, err := l.active.WriteAt(h.encode(), 0); err != nil {
		return fmt.Errorf("buffer: write header of %s: %w", act.path, err)
	}
	act.created, act.unsynced = h.created, unsynced
	return nil
}

// dropSegmentLocked deletes a sealed segment on purpose, counting its
// unacknowledged records and moving the cursor past it.
func (l *Log) dropSegmentLocked(seg *segment, reason dropReason) {
	if lost := l.unackedLocked(seg); lost > 0 {
		switch reason {
		case reasonFull:
			l.dropped.Full += lost
		case reasonAge:
			l.dropped.Age += lost
		}
		l.cursorDirty = true
		l.reportDropLocked(reason, lost)
	}
	l.removeSegmentLocked(seg)
	if l.cursor < seg.end {
		l.setCursorLocked(seg.end)
	}
	if err := os.Remove(seg.path); err != nil {
		l.log.Error("buffer: cannot delete dropped segment", "file", seg.path, "err", err)
	}
}

func unacked(seg *segment, cursor uint64) uint64 {
	if seg.end <= cursor {
		return 0
	}
	return seg.end - max(seg.base, cursor)
}

func (l *Log) removeSegmentLocked(seg *segment) {
	if i := slices.Index(l.segs, seg); i >= 0 {
		l.segs = slices.Delete(l.segs, i, i+1)
		l.bytes -= seg.size
	}
	seg.removed = true
	if l.cpos.segBase == seg.base {
		l.cpos.posOK = false
	}
}

// deleteAckedLocked removes sealed segments the cursor has passed.
func (l *Log) deleteAckedLocked() {
	for len(l.segs) > 1 && l.segs[0].end <= l.cursor {
		seg := l.segs[0]
		l.removeSegmentLocked(seg)
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.log.Error("buffer: cannot delete acknowledged segment", "file", seg.path, "err", err)
		}
	}
}

func (l *Log) reportDropLocked(reason dropReason, n uint64) {
	r := &l.reports[reason]
	r.pending += n
	l.flushReportLocked(reason, l.opts.Now())
}

func (l *Log) flushReportLocked(reason dropReason, now time.Time) {
	r := &l.reports[reason]
	if r.pending == 0 || (r.logged && now.Sub(r.last) < dropLogInterval) {
		return
	}
	total := [...]uint64{l.dropped.Full, l.dropped.Age, l.dropped.Corrupt}[reason]
	l.log.Warn("buffer: dropped records", "dir", l.opts.Dir, "reason", reason.String(), "records", r.pending, "total", total)
	r.pending, r.last, r.logged = 0, now, true
}

// segIndexByBase returns the index of the segment starting at base, or -1.
func (l *Log) segIndexByBase(base uint64) int {
	i, ok := slices.BinarySearchFunc(l.segs, base, func(s *segment, b uint64) int { return cmp.Compare(s.base, b) })
	if !ok {
		return -1
	}
	return i
}

// findSegLocked returns the first segment holding a record at or after
// seq: the one containing seq, the one after a gap, or the active one.
func (l *Log) findSegLocked(seq uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].end > seq })
	if i == len(l.segs) {
		i--
	}
	return l.segs[i]
}

// setCursorLocked moves the cursor and finds what is known about the
// record now at it.
func (l *Log) setCursorLocked(c uint64) {
	l.cursor = c
	l.cursorDirty = true
	l.cpos = l.lookupPosLocked(c)
	for len(l.lost) > 0 && l.lost[0].to <= c {
		l.lost = l.lost[1:]
	}
}

func (l *Log) lookupPosLocked(c uint64) cursorPos {
	act := l.activeSeg()
	if c >= l.nextSeq {
		return cursorPos{posOK: true, segBase: act.base, off: act.size}
	}
	if e := l.ring[c%ringSize]; e.seq == c && l.segIndexByBase(e.segBase) >= 0 {
		return cursorPos{posOK: true, segBase: e.segBase, off: e.off, timeOK: true, t: e.t}
	}
	seg := l.findSegLocked(c)
	if seg.base >= c {
		return cursorPos{posOK: true, segBase: seg.base, off: segHeaderSize}
	}
	if e := l.ring[(c-1)%ringSize]; e.seq == c-1 && e.segBase == seg.base {
		return cursorPos{posOK: true, segBase: seg.base, off: e.off + e.n}
	}
	return cursorPos{}
}

// noteDelivered remembers where and when a delivered record was, so that
// an Ack can move the cursor onto it without reading it again.
func (l *Log) noteDelivered(seg *segment, seq uint64, off, n, t int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[seq%ringSize] = ringEntry{seq: seq, segBase: seg.base, off: off, n: n, t: t}
	if seq == l.cursor && !seg.removed {
		l.cpos = cursorPos{posOK: true, segBase: seg.base, off: off, timeOK: true, t: t}
	}
}

// Ack records that every record with a sequence number below seq was
// delivered: the cursor moves there and segments it passed are deleted.
// Acks must not skip undelivered records; an Ack at or below the cursor is
// ignored. The cursor reaches disk about once a second and at Close.
func (l *Log) Ack(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if seq > l.nextSeq {
		return fmt.Errorf("buffer: ack %d is past the next sequence number %d", seq, l.nextSeq)
	}
	if seq <= l.cursor {
		return nil
	}
	l.setCursorLocked(seq)
	l.deleteAckedLocked()
	return nil
}

// quarantine moves a segment in which a reader found corrupt data (first
// at badSeq) to quarantine/ and counts its unacknowledged records as lost.
func (l *Log) quarantine(seg *segment, badSeq uint64, cause error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if seg.removed {
		return nil
	}
	if seg == l.activeSeg() {
		if err := l.rollLocked(!l.clockOK.Load(), 0); err != nil {
			return err
		}
	}
	// Records before badSeq may have been delivered, but a new Reader
	// could not deliver them again: every unacknowledged record of the
	// segment counts as lost.
	lost := l.unackedLocked(seg)
	l.removeSegmentLocked(seg)
	if l.cursor >= seg.base && l.cursor < seg.end {
		l.setCursorLocked(seg.end)
	}
	dst, err := l.moveToQuarantine(seg.path, seg.base, seg.end, true)
	l.dropped.Corrupt += lost
	l.cursorDirty = true
	l.log.Error("buffer: quarantined corrupt segment", "file", seg.path, "moved_to", dst,
		"first_bad_seq", badSeq, "lost", lost, "err", cause, "move_err", err)
	return nil
}

// rewriteSize makes the frame at off end at next, durably.
func rewriteSize(f *os.File, off, next int64) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(next-off-8))
	if _, err := f.WriteAt(b[:], off); err != nil {
		return err
	}
	return f.Sync()
}

// seqRange is the sequence numbers from..to-1.
type seqRange struct{ from, to uint64 }

// lose counts and reports records from..to-1 that a reader found lost (a
// damaged record, records missing from the files), once: a Reader that
// starts again below them (after a reconnect) passes them again. Records
// already acknowledged are not lost.
func (l *Log) lose(from, to uint64, msg string, attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from = max(from, l.cursor)
	if from >= to {
		return
	}
	n := (to - from) - l.countedLocked(from, to)
	if n == 0 {
		return
	}
	l.lost = addRange(l.lost, seqRange{from, to})
	l.dropped.Corrupt += n
	l.cursorDirty = true
	l.log.Error(msg, append(attrs, "lost", n)...)
}

// countedLocked is how many of the records from..to-1 readers counted lost.
func (l *Log) countedLocked(from, to uint64) uint64 {
	var n uint64
	for _, r := range l.lost {
		if lo, hi := max(r.from, from), min(r.to, to); lo < hi {
			n += hi - lo
		}
	}
	return n
}

// unackedLocked is how many of seg's records a drop or quarantine loses:
// those not acknowledged and not counted lost already.
func (l *Log) unackedLocked(seg *segment) uint64 {
	n := unacked(seg, l.cursor)
	if n == 0 {
		return 0
	}
	return n - l.countedLocked(max(seg.base, l.cursor), seg.end)
}

// addRange adds r to the disjoint, ordered ranges rs, merging overlaps.
func addRange(rs []seqRange, r seqRange) []seqRange {
	out := make([]seqRange, 0, len(rs)+1)
	for _, x := range rs {
		switch {
		case x.to < r.from:
			out = append(out, x)
		case r.to < x.from:
			out = append(out, r)
			r = x
		default:
			r = seqRange{min(x.from, r.from), max(x.to, r.to)}
		}
	}
	return append(out, r)
}

// moveToQuarantine renames a segment file into quarantine/. The range, when
// known, goes into the name for later Opens.
func (l *Log) moveToQuarantine(path string, base, end uint64, ranged bool) (string, error) {
	qdir := filepath.Join(l.opts.Dir, quarantineDir)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return "", err
	}
	dst := uniquePath(filepath.Join(qdir, quarantineName(base, end, ranged)))
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	l.quarantined++
	l.dirDirty = true
	return dst, nil
}

// syncTo returns once an fsync has covered every record up to seq. One
// caller at a time runs the fsync; callers arriving meanwhile wait and
// share the next round (group commit).
func (l *Log) syncTo(ctx context.Context, seq uint64) error {
	l.mu.Lock()
	for {
		if l.failErr != nil {
			err := l.failErr
			l.mu.Unlock()
			return err
		}
		if l.synced >= seq {
			l.mu.Unlock()
			return nil
		}
		if l.filesClosed {
			l.mu.Unlock()
			return ErrClosed
		}
		if l.syncing {
			ch := l.syncDone
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ch:
			}
			l.mu.Lock()
			continue
		}
		l.syncing = true
		done := make(chan struct{})
		l.syncDone = done
		target := l.nextSeq - 1
		files := append(l.retired, l.active)
		nRetired := len(l.retired)
		l.retired = nil
		dirDirty := l.dirDirty
		l.dirDirty = false
		hook := l.beforeSync
		l.mu.Unlock()

		if hook != nil {
			hook()
		}
		var err error
		var calls uint64
		for _, f := range files {
			calls++
			if e := fdatasync(f); e != nil && err == nil {
				err = fmt.Errorf("buffer: fsync %s: %w", f.Name(), e)
			}
		}
		if dirDirty {
			calls++
			if e := syncDir(l.opts.Dir); e != nil && err == nil {
				err = fmt.Errorf("buffer: fsync %s: %w", l.opts.Dir, e)
			}
		}
		for _, f := range files[:nRetired] {
			f.Close()
		}

		l.mu.Lock()
		l.fsyncs += calls
		l.syncing = false
		close(done)
		if err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages; retrying could report success for lost data.
			l.failErr = err
		} else {
			l.synced = max(l.synced, target)
		}
	}
}

// run is the background goroutine: the deferred fsync (SyncBatch, and
// AppendAsync records in SyncAlways), cursor persistence, max_age and drop
// reports.
//
// The fsync timer is armed by the first write after an fsync, for
// SyncInterval, rather than ticking: an idle log wakes only for
// maintenance, and a device polled at the sync interval gets its fsync in
// the same wake-up as its next poll instead of in one of its own.
func (l *Log) run() {
	defer l.wg.Done()
	maint := time.NewTicker(time.Second)
	defer maint.Stop()
	defer l.syncTimer.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-l.syncTimer.C:
			l.mu.Lock()
			// Writes from here on arm the timer again, so what this round
			// does not cover is covered within SyncInterval too.
			l.syncArmed = false
			l.mu.Unlock()
			l.syncPending()
		case <-maint.C:
			l.maintain()
		}
	}
}

// armSyncLocked makes sure an fsync runs within SyncInterval: called for
// every record written, it costs a timer reset only for the first one
// after an fsync round started.
func (l *Log) armSyncLocked() {
	if l.syncArmed || l.opts.Sync == SyncOff {
		return
	}
	l.syncArmed = true
	l.syncTimer.Reset(l.opts.SyncInterval)
}

func (l *Log) syncPending() {
	l.mu.Lock()
	target := l.nextSeq - 1
	pending := target > l.synced && l.failErr == nil
	l.mu.Unlock()
	if !pending {
		return
	}
	if err := l.syncTo(context.Background(), target); err != nil && !errors.Is(err, ErrClosed) {
		l.mu.Lock()
		first := !l.failLogged
		l.failLogged = true
		l.mu.Unlock()
		if first {
			l.log.Error("buffer: fsync failed, refusing further appends", "dir", l.opts.Dir, "err", err)
		}
	}
}

func (l *Log) maintain() {
	if l.opts.MaxAge <= 0 {
		l.clockOK.Store(l.opts.ClockSynced())
	}
	l.enforceAge() // asks the clock itself when it has an age to enforce
	now := l.opts.Now()
	l.mu.Lock()
	for r := range numReasons {
		l.flushReportLocked(r, now)
	}
	l.mu.Unlock()
	if err := l.persistCursor(false); err != nil {
		l.log.Error("buffer: cannot persist cursor", "dir", l.opts.Dir, "err", err)
	}
}

// enforceAge deletes segments whose newest record is older than MaxAge,
// only while the clock is synchronized.
func (l *Log) enforceAge() {
	if l.opts.MaxAge <= 0 {
		return
	}
	synced := l.opts.ClockSynced()
	l.clockOK.Store(synced)
	if !synced {
		return
	}
	now := l.opts.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for {
		seg := l.segs[0]
		t, ok := l.newestTimeLocked(0)
		if !ok || now-t <= int64(l.opts.MaxAge) {
			return
		}
		if len(l.segs) == 1 {
			if seg.end == seg.base {
				return
			}
			if err := l.rollLocked(false, 0); err != nil {
				l.log.Error("buffer: cannot seal expired segment", "file", seg.path, "err", err)
				return
			}
		}
		l.dropSegmentLocked(seg, reasonAge)
	}
}

// newestTimeLocked returns a time no earlier than the newest record of
// segment i that a synchronized clock vouches for: its own newest record
// when it was written with a synchronized clock, otherwise the creation
// time of the next segment that was.
func (l *Log) newestTimeLocked(i int) (int64, bool) {
	s := l.segs[i]
	if !s.unsynced && s.newestOK {
		return s.newest, true
	}
	if !s.unsynced && s.end == s.base {
		return 0, false
	}
	for _, n := range l.segs[i+1:] {
		if !n.unsynced {
			return n.created, true
		}
	}
	return 0, false
}

// persistCursor writes the cursor file if it changed, or always when final.
func (l *Log) persistCursor(final bool) error {
	l.persistMu.Lock()
	defer l.persistMu.Unlock()
	l.mu.Lock()
	if !l.cursorDirty && !final {
		l.mu.Unlock()
		return nil
	}
	cs := cursorState{
		cursor:  l.cursor,
		posOK:   l.cpos.posOK,
		segBase: l.cpos.segBase,
		off:     l.cpos.off,
		timeOK:  l.cpos.timeOK,
		t:       l.cpos.t,
		dropped: l.dropped,
	}
	l.cursorDirty = false
	durable := final || l.opts.Sync != SyncOff
	l.mu.Unlock()

	err := writeFileAtomic(l.opts.Dir, cursorTmpName, cursorName, cs.encode(), durable)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.cursorDirty = true
		return fmt.Errorf("buffer: write %s: %w", filepath.Join(l.opts.Dir, cursorName), err)
	}
	if durable {
		l.fsyncs += 2
	}
	return nil
}

// Stats returns the current counters and sizes.
func (l *Log) Stats() Stats {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := computeStats(l.segs, l.nextSeq, l.cursor, l.cpos, now)
	st.Dropped = l.dropped
	st.Quarantined = l.quarantined
	st.Appended = l.appended
	st.Fsyncs = l.fsyncs
	return st
}

func computeStats(segs []*segment, nextSeq, cursor uint64, cpos cursorPos, now time.Time) Stats {
	st := Stats{Segments: len(segs), Cursor: cursor, NextSeq: nextSeq}
	var oldest *segment
	for _, s := range segs {
		st.Bytes += s.size
		if n := unacked(s, cursor); n > 0 {
			st.Messages += n
			if oldest == nil {
				oldest = s
			}
		}
	}
	if oldest != nil {
		// Without the record's own time, its segment's creation time is a
		// bound that errs towards older.
		t := oldest.created
		if cpos.timeOK && cursor >= oldest.base {
			t = cpos.t
		}
		st.OldestAge = max(0, now.Sub(unixNano(t)))
	}
	return st
}

// Close makes everything appended durable, persists the cursor and
// releases the files. The current Reader's Next returns ErrClosed. Calling
// Close again returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	rd := l.reader
	l.reader = nil
	target := l.nextSeq - 1
	l.mu.Unlock()

	l.wg.Wait()
	if rd != nil {
		rd.Close()
	}
	var errs []error
	if err := l.syncTo(context.Background(), target); err != nil {
		errs = append(errs, err)
	}
	l.mu.Lock()
	for l.syncing {
		ch := l.syncDone
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
	}
	l.filesClosed = true
	files := append(l.retired, l.active)
	l.retired, l.active = nil, nil
	l.mu.Unlock()
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("buffer: close %s: %w", f.Name(), err))
		}
	}
	if err := l.persistCursor(true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
