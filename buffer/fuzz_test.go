package buffer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// fuzzSegment builds a valid segment holding records for seq base on.
func fuzzSegment(base uint64, recs ...string) []byte {
	b := segHeader{base: base, created: 1_700_000_000_000_000_000}.encode()
	for k, r := range recs {
		frame, partial := encodeFrame(nil, 1_700_000_000_000_000_000+int64(k), []byte(r))
		sealFrame(frame, partial, base+uint64(k))
		b = append(b, frame...)
	}
	return b
}

// FuzzRecover writes arbitrary bytes as two segments and a cursor file and
// checks that Open and reading never panic, deliver only records whose
// frame (with a valid checksum for its sequence number) is in the input,
// deliver them in increasing order, and that appending works afterwards.
// Open may rewrite a frame's size field (a broken one in the newest
// segment), so the frame's other bytes must be in the input; the checksum
// covers the size too.
func FuzzRecover(f *testing.F) {
	seg1 := fuzzSegment(1, "alpha", "", "gamma gamma")
	seg2 := fuzzSegment(4, "delta", "epsilon")
	cur := cursorState{cursor: 2, posOK: true, segBase: 1, off: segHeaderSize + 21}.encode()
	f.Add(seg1, seg2, cur)
	f.Add(seg1, []byte{}, []byte{})
	f.Add(seg1[:40], seg2, cur)
	f.Add(append(bytes.Clone(seg1), 0xff, 0xff, 0xff, 0x7f), seg2, cur[:10])
	f.Add(seg1[:segHeaderSize], seg2[:segHeaderSize+3], cur)
	f.Add([]byte("FBSG garbage"), []byte{0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, cursorFileSize))
	flipped := bytes.Clone(seg1)
	flipped[segHeaderSize+20] ^= 1
	f.Add(flipped, seg2, cur)

	f.Fuzz(func(t *testing.T, a, b, cursor []byte) {
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, segName(1)), a)
		if len(b) > 0 {
			mustWrite(t, filepath.Join(dir, segName(4)), b)
		}
		if len(cursor) > 0 {
			mustWrite(t, filepath.Join(dir, cursorName), cursor)
		}
		if _, err := Inspect(dir); err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		l, err := Open(Options{
			Dir:         dir,
			MaxBytes:    1 << 20,
			SegmentSize: 1024,
			Logger:      slog.New(slog.DiscardHandler),
			Now:         func() time.Time { return time.Unix(1_800_000_000, 0) },
			ClockSynced: func() bool { return true },
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		ctx := context.Background()
		r := l.Reader()
		var last uint64
		for k := 0; ; k++ {
			rec, err := r.NextBefore(ctx, past)
			if errors.Is(err, ErrCaughtUp) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if k > 0 && rec.Seq <= last {
				t.Fatalf("sequence %d after %d", rec.Seq, last)
			}
			last = rec.Seq
			frame, partial := encodeFrame(nil, rec.Time.UnixNano(), rec.Data)
			sealFrame(frame, partial, rec.Seq)
			if !bytes.Contains(a, frame[4:]) && !bytes.Contains(b, frame[4:]) {
				t.Fatalf("record %d (%q) is not a valid frame of the input", rec.Seq, rec.Data)
			}
		}
		if err := l.Append(ctx, []byte("after")); err != nil {
			t.Fatalf("Append: %v", err)
		}
		rec, err := r.NextBefore(ctx, past)
		if err != nil || string(rec.Data) != "after" {
			t.Fatalf("read back: %+v %v", rec, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// The repaired directory opens again and still ends with the
		// record appended above.
		l2, err := Open(l.opts)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer l2.Close()
		var tail Record
		r2 := l2.Reader()
		for {
			rec, err := r2.NextBefore(ctx, past)
			if errors.Is(err, ErrCaughtUp) {
				break
			}
			if err != nil {
				t.Fatalf("Next after reopen: %v", err)
			}
			tail = rec
		}
		if string(tail.Data) != "after" {
			t.Fatalf("after reopen the last record is %q", tail.Data)
		}
		if _, err := Inspect(dir); err != nil {
			t.Fatalf("Inspect after reopen: %v", err)
		}
	})
}
