package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Reader delivers records in sequence order, starting at the oldest
// unacknowledged record when it was made. It reads ahead of the cursor:
// the consumer acknowledges with Log.Ack. A log has one Reader at a time.
type Reader struct {
	l        *Log
	stop     chan struct{}
	stopOnce sync.Once

	mu     sync.Mutex // held by Next while it reads, not while it waits
	closed bool
	seq    uint64   // next sequence number to deliver
	seg    *segment // segment being read, nil when it must be located
	f      *os.File
	sc     frameScanner
	hinted bool // sc was positioned from the cursor hint, not by scanning
}

// errRetry asks Next to locate its segment again.
var errRetry = errors.New("buffer: retry")

// ErrCaughtUp is what NextBefore returns when no record was appended
// before its deadline.
var ErrCaughtUp = errors.New("buffer: no record available")

// skipCheckEvery bounds how many frames a Reader skips between checks for
// cancellation, when it scans a segment to reach the cursor.
const skipCheckEvery = 4096

// Reader returns a Reader starting at the oldest unacknowledged record. It
// replaces the previous Reader, whose Next then returns ErrClosed: after a
// reconnect the consumer resends from the cursor with a new Reader.
func (l *Log) Reader() *Reader {
	r := &Reader{l: l, stop: make(chan struct{})}
	l.mu.Lock()
	old := l.reader
	r.seq = l.cursor
	if l.closed {
		r.closed = true
	} else {
		l.reader = r
	}
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return r
}

// Close releases the Reader's file; a blocked Next returns ErrClosed.
// Closing a Reader does not move the cursor.
func (r *Reader) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.closeFile()
	r.l.mu.Lock()
	if r.l.reader == r {
		r.l.reader = nil
	}
	r.l.mu.Unlock()
	return nil
}

func (r *Reader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.seg = nil
}

// Next returns the next record, waiting until one is appended, ctx ends,
// or the Log or Reader is closed (ErrClosed). A segment found corrupt on
// the way is quarantined and counted, and reading goes on after it.
func (r *Reader) Next(ctx context.Context) (Record, error) {
	return r.NextBefore(ctx, time.Time{})
}

// NextBefore is Next waiting at most until deadline (none when zero),
// after which it returns ErrCaughtUp. A deadline already past makes it
// return at once.
func (r *Reader) NextBefore(ctx context.Context, deadline time.Time) (Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var expired <-chan time.Time
	for {
		if r.closed {
			return Record{}, ErrClosed
		}
		select {
		case <-r.stop:
			return Record{}, ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		rec, wait, err := r.step(ctx)
		if err == errRetry {
			continue
		}
		if err != nil || wait == nil {
			return rec, err
		}
		if !deadline.IsZero() && expired == nil {
			d := time.Until(deadline)
			if d <= 0 {
				return Record{}, ErrCaughtUp
			}
			t := time.NewTimer(d)
			defer t.Stop()
			expired = t.C
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-wait:
		case <-r.stop:
		case <-r.l.done:
		case <-expired:
			r.mu.Lock()
			return Record{}, ErrCaughtUp
		}
		r.mu.Lock()
	}
}

// step delivers one record, or returns a channel to wait on when the
// Reader has caught up with the appenders.
func (r *Reader) step(ctx context.Context) (Record, <-chan struct{}, error) {
	l := r.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Record{}, nil, ErrClosed
	}
	if r.seq < l.cursor {
		// Records were dropped (or acknowledged) under the Reader.
		r.seq = l.cursor
	}
	if r.seg == nil || r.seg.removed || (r.seq >= r.seg.end && r.seg != l.activeSeg()) {
		r.closeFile()
		seg := l.findSegLocked(r.seq)
		r.seq = max(r.seq, seg.base)
		r.seg = seg
		r.sc = frameScanner{path: seg.path, off: segHeaderSize, seq: seg.base, buf: r.sc.buf[:0]}
		r.hinted = false
	}
	if r.sc.seq < r.seq && l.cpos.posOK && l.cursor == r.seq && l.cpos.segBase == r.seg.base && l.cpos.off > r.sc.off {
		r.sc.reset(l.cpos.off, r.seq)
		r.hinted = true
	}
	if r.seq >= l.nextSeq {
		if l.waitCh == nil {
			l.waitCh = make(chan struct{})
		}
		ch := l.waitCh
		l.mu.Unlock()
		return Record{}, ch, nil
	}
	seg := r.seg
	r.sc.limit = seg.size
	end := seg.end
	active := seg == l.activeSeg()
	if active {
		end = l.nextSeq
	}
	r.sc.end = end
	l.mu.Unlock()

	if r.f == nil {
		f, err := os.Open(seg.path)
		if errors.Is(err, fs.ErrNotExist) {
			r.seg = nil // deleted meanwhile; the next step finds what follows
			return Record{}, nil, errRetry
		}
		if err != nil {
			return Record{}, nil, fmt.Errorf("buffer: %w", err)
		}
		r.f = f
		r.sc.r = f
	}
	for skipped := 0; ; skipped++ {
		if skipped%skipCheckEvery == skipCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return Record{}, nil, err
			}
			select {
			case <-l.done:
				return Record{}, nil, ErrClosed
			default:
			}
		}
		off := r.sc.off
		data, t, n, err := r.sc.next()
		var damaged *DamagedError
		brokenSize := errors.Is(err, ErrCorrupt) && !errors.As(err, &damaged)
		// A zero size field ends the data, unless the record that should
		// be there is missing and bytes follow: zeroed by damage.
		zeroed := err == io.EOF && r.sc.seq < end && r.sc.off < r.sc.limit
		cutShort := false
		if (brokenSize || zeroed) && !r.hinted {
			// The record is lost, but the records after it are found by
			// their checksums.
			if p, ok := r.sc.resync(); ok {
				damaged = &DamagedError{Path: seg.path, Off: r.sc.off, Seq: r.sc.seq}
				r.sc.reset(p, r.sc.seq+1)
			} else if !active && r.sc.seq < end && r.sc.lostEnd(zeroed) {
				// The end of the file never reached the disk (a power
				// cut before its fsync): as a file cut short.
				cutShort = true
			} else if zeroed {
				err = corruptError(seg.path, r.sc.off, "zero size field for sequence %d, segment should reach %d", r.sc.seq, end)
			}
		}
		if damaged != nil {
			// The record is lost, the segment is not: step over it.
			r.hinted = false
			switch seq := damaged.Seq; {
			case seq < r.seq:
			case seq >= end:
				r.seq = end
				return Record{}, nil, errRetry
			default:
				l.lose(seq, seq+1, "buffer: skipped a damaged record", "file", damaged.Path, "offset", damaged.Off, "seq", seq)
				r.seq = seq + 1
			}
			continue
		}
		if cutShort || err == io.EOF && !r.hinted && !active && r.sc.seq < end && r.sc.off >= r.sc.limit {
			// The file's intact records end before the next segment
			// starts: the file was cut short (or its end never reached
			// the disk), or a segment file between them is gone. The
			// records in between are lost; this segment's own are not.
			l.lose(max(r.sc.seq, r.seq), end, "buffer: records missing between segments", "file", seg.path, "ends_at", r.sc.seq, "next_starts_at", end)
			r.seq = end
			return Record{}, nil, errRetry
		}
		if err != nil {
			if r.hinted {
				// A stale hint: the checksum covers the sequence number,
				// so it cannot match by accident. Scan from the start.
				r.hinted = false
				r.sc.reset(segHeaderSize, seg.base)
				continue
			}
			if err == io.EOF {
				if r.sc.seq >= end {
					return Record{}, nil, errRetry
				}
				err = corruptError(seg.path, r.sc.off, "data ends at sequence %d, segment should reach %d", r.sc.seq, end)
			}
			if !errors.Is(err, ErrCorrupt) {
				return Record{}, nil, err
			}
			if qerr := l.quarantine(seg, r.sc.seq, err); qerr != nil {
				return Record{}, nil, qerr
			}
			r.closeFile()
			return Record{}, nil, errRetry
		}
		r.hinted = false
		seq := r.sc.seq - 1
		if seq < r.seq {
			continue
		}
		if seq >= end {
			// Frames past the segment's range overlap the next segment
			// and are never delivered.
			r.seq = end
			return Record{}, nil, errRetry
		}
		rec := Record{Seq: seq, Time: unixNano(t), Data: bytes.Clone(data)}
		if rec.Data == nil {
			rec.Data = []byte{}
		}
		r.seq = seq + 1
		l.noteDelivered(seg, seq, off, n, t)
		return rec, nil, nil
	}
}
