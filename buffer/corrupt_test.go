package buffer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lastSegment returns the newest segment file and its base.
func lastSegment(t *testing.T, dir string) (string, uint64) {
	t.Helper()
	files := segFiles(t, dir)
	slices.Sort(files)
	p := files[len(files)-1]
	base, _ := parseSegName(filepath.Base(p))
	return p, base
}

func TestTornTail(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the tail file; frames are the offsets of its
		// frames and end the offset after the last one.
		damage func(t *testing.T, path string, frames []int64, end int64)
		keep   int // records of the tail segment kept
	}{
		{"flipped payload byte in the last record", func(t *testing.T, p string, fr []int64, end int64) {
			flipByte(t, p, end-1)
		}, 9},
		{"last record half written", func(t *testing.T, p string, fr []int64, end int64) {
			last := fr[len(fr)-1]
			mid := last + (end-last)/2
			zero := make([]byte, end-mid)
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(zero, mid)
		}, 9},
		{"size field of the last record torn", func(t *testing.T, p string, fr []int64, end int64) {
			flipByte(t, p, fr[len(fr)-1]+1)
		}, 9},
		{"garbage after the last record", func(t *testing.T, p string, fr []int64, end int64) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt([]byte{0x55, 0x12, 0x99, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, end)
		}, 10},
		{"file cut inside the last record", func(t *testing.T, p string, fr []int64, end int64) {
			if err := os.Truncate(p, end-3); err != nil {
				t.Fatal(err)
			}
		}, 9},
		// A broken size field with records after it is repaired, and
		// here the record is whole again (TestBrokenSizeFieldInTail).
		{"size field of a middle record corrupt", func(t *testing.T, p string, fr []int64, end int64) {
			flipByte(t, p, fr[4]+3)
		}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.opts.SegmentSize = 4096
			l := e.open()
			appendN(t, l, 0, 20)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Put ten more records into a fresh tail segment.
			end := appendInNewSegment(t, e, 20, 10)
			path, base := lastSegment(t, e.dir)
			frames := frameOffsets(t, path, base)
			if len(frames) != 10 {
				t.Fatalf("tail has %d frames", len(frames))
			}
			tc.damage(t, path, frames, end)

			l = e.open()
			if tc.keep < 10 {
				line, ok := e.logs.find(slog.LevelWarn, "truncating torn tail", path)
				if !ok || !strings.Contains(line, "offset="+strconv.FormatInt(frames[tc.keep], 10)) {
					t.Errorf("torn tail not reported with file and offset %d: %q", frames[tc.keep], line)
				}
			}
			if err := l.Append(context.Background(), []byte("after")); err != nil {
				t.Fatal(err)
			}
			got := drain(t, l.Reader())
			if len(got) != 20+tc.keep+1 {
				t.Fatalf("read %d records, want %d", len(got), 20+tc.keep+1)
			}
			checkRecords(t, got[:20+tc.keep], 1, 0)
			if last := got[len(got)-1]; string(last.Data) != "after" || last.Seq != uint64(20+tc.keep+1) {
				t.Errorf("appended after recovery: %+v", last)
			}
		})
	}
}

func TestCorruptOlderSegmentIsQuarantined(t *testing.T) {
	const n = 300
	e, files := sealedLog(t, n)
	victim := files[3]
	base, _ := parseSegName(filepath.Base(victim))
	nextBase, _ := parseSegName(filepath.Base(files[4]))
	frames := frameOffsets(t, victim, base)
	bad := len(frames) / 2
	// A broken size field, and the record after it damaged too: nothing
	// after the bad frame can be found again.
	flipByte(t, victim, frames[bad]+3)
	flipByte(t, victim, frames[bad+1]+9)
	badSeq := base + uint64(bad)

	l := e.open()
	if _, ok := e.logs.find(slog.LevelError, victim); ok {
		t.Error("Open read an older segment; it should be checked lazily")
	}
	got := drain(t, l.Reader())
	// The records before the bad one were delivered; the rest of the
	// segment never is.
	if want := n - (nextBase - badSeq); uint64(len(got)) != want {
		t.Fatalf("read %d records, want %d", len(got), want)
	}
	// Nothing was acknowledged: the whole segment is gone from the log.
	lost := nextBase - base
	checkAllBut(t, got, n, func(s uint64) bool { return s >= badSeq && s < nextBase })
	st := l.Stats()
	if st.Dropped.Corrupt != lost || st.Quarantined != 1 {
		t.Errorf("Stats = %+v, want %d corrupt drops and 1 quarantined", st, lost)
	}
	line, ok := e.logs.find(slog.LevelError, "quarantined corrupt segment", victim)
	if !ok || !strings.Contains(line, "offset "+strconv.FormatInt(frames[bad], 10)) {
		t.Errorf("quarantine not logged with file and offset: %q", line)
	}
	q := quarantineFiles(t, e.dir)
	if len(q) != 1 || !strings.HasPrefix(filepath.Base(q[0]), filepath.Base(victim)[:segNameDigits]+"-") {
		t.Errorf("quarantine holds %v", q)
	}
	// The quarantined range stays accounted for after a reopen.
	if st.Messages != n-lost {
		t.Errorf("Messages = %d, want %d", st.Messages, n-lost)
	}
	l = e.reopen(l)
	if st2 := l.Stats(); st2.Messages != n-lost || st2.Dropped != st.Dropped {
		t.Errorf("after reopen %+v", st2)
	}
}

// Bit rot inside the segment being written: the reader quarantines it
// (after sealing it) and appends go on in a new segment.
func TestCorruptActiveSegment(t *testing.T) {
	e := newEnv(t)
	l := e.open()
	appendN(t, l, 0, 10)
	path, base := lastSegment(t, e.dir)
	frames := frameOffsets(t, path, base)
	flipByte(t, path, frames[4]+3)
	flipByte(t, path, frames[5]+9)
	r := l.Reader()
	got := drain(t, r)
	if len(got) != 4 {
		t.Fatalf("read %d records before the corrupt one, want 4", len(got))
	}
	appendN(t, l, 10, 5)
	got = drain(t, r)
	checkRecords(t, got, 11, 10)
	if st := l.Stats(); st.Dropped.Corrupt != 10 || st.Quarantined != 1 || st.Cursor != 11 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestCursorFallback(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"corrupt": func(t *testing.T, p string) { flipByte(t, p, 10) },
		"missing": func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		},
		"empty": func(t *testing.T, p string) { mustWrite(t, p, nil) },
		"junk":  func(t *testing.T, p string) { mustWrite(t, p, bytes.Repeat([]byte("cursor"), 20)) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.opts.SegmentSize = 1024
			l := e.open()
			appendN(t, l, 0, 100)
			drain(t, l.Reader())
			if err := l.Ack(61); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			damage(t, filepath.Join(e.dir, cursorName))
			files := segFiles(t, e.dir)
			slices.Sort(files)
			oldest, _ := parseSegName(filepath.Base(files[0]))
			if oldest > 61 || oldest == 1 {
				t.Fatalf("oldest retained segment starts at %d", oldest)
			}

			l = e.open()
			got := drain(t, l.Reader())
			if len(got) == 0 || got[0].Seq != oldest {
				t.Fatalf("first record after %s cursor: %v, want %d", name, got[0].Seq, oldest)
			}
			checkRecords(t, got, oldest, int(oldest-1))
			if got[len(got)-1].Seq != 100 {
				t.Errorf("last record %d", got[len(got)-1].Seq)
			}
			if name != "missing" {
				if _, ok := e.logs.find(slog.LevelWarn, "cursor"); !ok {
					t.Error("bad cursor not reported")
				}
			}
		})
	}
}

// A cursor past the end (say the tail lost records in a power cut after
// they were acknowledged) is clamped to the end.
func TestCursorPastEnd(t *testing.T) {
	e := newEnv(t)
	l := e.open()
	appendN(t, l, 0, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cs := cursorState{cursor: 500}
	mustWrite(t, filepath.Join(e.dir, cursorName), cs.encode())
	l = e.open()
	if st := l.Stats(); st.Messages != 0 || st.Cursor != 11 {
		t.Errorf("Stats = %+v", st)
	}
	appendN(t, l, 10, 1)
	checkRecords(t, drain(t, l.Reader()), 11, 10)
}

func TestBadSegmentHeaders(t *testing.T) {
	setup := func(t *testing.T) (*env, []string) {
		e, files := sealedLog(t, 100)
		return e, files
	}
	t.Run("truncated header in the middle", func(t *testing.T) {
		e, files := setup(t)
		victim := files[2]
		base, _ := parseSegName(filepath.Base(victim))
		next, _ := parseSegName(filepath.Base(files[3]))
		if err := os.Truncate(victim, 10); err != nil {
			t.Fatal(err)
		}
		l := e.open()
		got := drain(t, l.Reader())
		if uint64(len(got)) != 100-(next-base) {
			t.Fatalf("read %d records", len(got))
		}
		if st := l.Stats(); st.Dropped.Corrupt != next-base || st.Quarantined != 1 {
			t.Errorf("Stats = %+v", st)
		}
		if _, ok := e.logs.find(slog.LevelError, "unusable header", victim, "truncated"); !ok {
			t.Error("bad header not logged")
		}
	})
	t.Run("zero-length newest segment", func(t *testing.T) {
		// A crash right after creating a segment file.
		e, _ := setup(t)
		mustWrite(t, filepath.Join(e.dir, segName(101)), nil)
		l := e.open()
		appendN(t, l, 100, 5)
		checkRecords(t, drain(t, l.Reader()), 1, 0)
		if st := l.Stats(); st.Quarantined != 0 || st.Dropped.Corrupt != 0 || st.NextSeq != 106 {
			t.Errorf("Stats = %+v", st)
		}
		if _, ok := e.logs.find(slog.LevelWarn, "incomplete segment", segName(101)); !ok {
			t.Error("removal of the empty segment not reported")
		}
	})
	t.Run("zeroed newest segment", func(t *testing.T) {
		// A power cut after the file was created, before its header
		// reached the disk.
		e, _ := setup(t)
		mustWrite(t, filepath.Join(e.dir, segName(101)), make([]byte, 1024))
		l := e.open()
		checkRecords(t, drain(t, l.Reader()), 1, 0)
		if st := l.Stats(); st.Quarantined != 0 || st.NextSeq != 101 {
			t.Errorf("Stats = %+v", st)
		}
	})
	t.Run("header of another base", func(t *testing.T) {
		e, files := setup(t)
		victim := files[1]
		h := segHeader{base: 77777, created: 1}
		f, err := os.OpenFile(victim, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(h.encode(), 0)
		f.Close()
		l := e.open()
		got := drain(t, l.Reader())
		if got[len(got)-1].Seq != 100 || l.Stats().Quarantined != 1 {
			t.Errorf("read %d records, stats %+v", len(got), l.Stats())
		}
	})
	t.Run("corrupt header of the newest segment", func(t *testing.T) {
		e, files := setup(t)
		victim := files[len(files)-1]
		base, _ := parseSegName(filepath.Base(victim))
		flipByte(t, victim, 0)
		l := e.open()
		got := drain(t, l.Reader())
		checkRecords(t, got, 1, 0)
		if uint64(len(got)) != base-1 {
			t.Errorf("read %d records, want %d", len(got), base-1)
		}
		appendN(t, l, int(base-1), 3)
		checkRecords(t, drain(t, l.Reader()), 1, 0)
	})
}

func TestJunkInDirectory(t *testing.T) {
	e := newEnv(t)
	e.opts.SegmentSize = 1024
	l := e.open()
	appendN(t, l, 0, 50)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	mustWrite(t, filepath.Join(e.dir, "notes.txt"), junk(100))
	mustWrite(t, filepath.Join(e.dir, "123.seg"), junk(100))
	mustWrite(t, filepath.Join(e.dir, "abcdefghijabcdefghij.seg"), junk(100))
	mustWrite(t, filepath.Join(e.dir, cursorTmpName), junk(68))
	mustWrite(t, filepath.Join(e.dir, "00000000000000000000.seg"), junk(4000))
	mustWrite(t, filepath.Join(e.dir, segName(1_000_000)), junk(4000))
	mustWrite(t, filepath.Join(e.dir, segName(10)+".bak"), junk(10))
	if err := os.Mkdir(filepath.Join(e.dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(e.dir, segName(99_999_999)), 0o755); err != nil {
		t.Fatal(err)
	}

	l = e.open()
	appendN(t, l, 50, 5)
	checkRecords(t, drain(t, l.Reader()), 1, 0)
	if _, ok := e.logs.find(slog.LevelWarn, "unknown file", "notes.txt"); !ok {
		t.Error("unknown file not reported")
	}
	if _, err := os.Stat(filepath.Join(e.dir, cursorTmpName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale cursor.tmp left in place")
	}
	if st := l.Stats(); st.Quarantined != 1 {
		t.Errorf("Stats = %+v: the junk segment-named file should be quarantined", st)
	}
	for _, name := range []string{"notes.txt", "123.seg", "subdir", segName(99_999_999)} {
		os.RemoveAll(filepath.Join(e.dir, name))
	}
	for _, name := range []string{"abcdefghijabcdefghij.seg", "00000000000000000000.seg", segName(10) + ".bak"} {
		os.Remove(filepath.Join(e.dir, name))
	}
}

// A file named "quarantine" instead of a directory: quarantining fails,
// is reported, and reading still goes on.
func TestQuarantineUnavailable(t *testing.T) {
	e, files := sealedLog(t, 100)
	victim := files[1]
	base, _ := parseSegName(filepath.Base(victim))
	frames := frameOffsets(t, victim, base)
	flipByte(t, victim, frames[0]+3)
	flipByte(t, victim, frames[1]+9)
	mustWrite(t, filepath.Join(e.dir, quarantineDir), []byte("not a directory"))

	l := e.open()
	got := drain(t, l.Reader())
	if got[0].Seq != 1 || got[len(got)-1].Seq != 100 {
		t.Fatalf("read %d..%d", got[0].Seq, got[len(got)-1].Seq)
	}
	if _, ok := e.logs.find(slog.LevelError, "quarantined corrupt segment", "move_err"); !ok {
		t.Error("failed quarantine not reported")
	}
	// Tidy up so the directory passes the invariant check: the corrupt
	// segment is still there.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(e.dir, quarantineDir))
	os.MkdirAll(filepath.Join(e.dir, quarantineDir), 0o755)
	next := base + 1
	for _, f := range files {
		if b, _ := parseSegName(filepath.Base(f)); b > base {
			next = b
			break
		}
	}
	os.Rename(victim, filepath.Join(e.dir, quarantineDir, quarantineName(base, next, true)))
}

// One damaged record (a flipped bit on an SD card) costs that record only,
// wherever it is: between records of a sealed segment, as a sealed
// segment's last record, in the newest segment at start-up, or in the
// segment being written. Each is counted and reported once, nothing is
// quarantined, and the records after it are delivered.
func TestDamagedRecordsSkipped(t *testing.T) {
	const n = 300
	e, files := sealedLog(t, n)
	damaged := map[uint64]bool{}
	damage := func(path string, k int) { // k: the frame's index; -1 the last
		t.Helper()
		base, _ := parseSegName(filepath.Base(path))
		frames := frameOffsets(t, path, base)
		if k < 0 {
			k = len(frames) - 1
		}
		flipByte(t, path, frames[k]+9) // the append time, which the checksum covers
		damaged[base+uint64(k)] = true
	}
	damage(files[2], 3)
	damage(files[3], -1)

	// Ten records in a fresh newest segment, one of them damaged before
	// the next start.
	appendInNewSegment(t, e, n, 10)
	tail, _ := lastSegment(t, e.dir)
	damage(tail, 4)

	l := e.open()
	if _, ok := e.logs.find(slog.LevelWarn, "damaged record in the newest segment", tail, "seq="+strconv.Itoa(n+5)); !ok {
		t.Error("the damaged record of the newest segment is not reported at start-up")
	}
	// Five more in the segment being written, one damaged in place.
	appendN(t, l, n+10, 5)
	damage(tail, 12)

	lost := func(seq uint64) bool { return damaged[seq] }
	checkAllBut(t, drain(t, l.Reader()), n+15, lost)
	st := l.Stats()
	if st.Dropped.Corrupt != uint64(len(damaged)) || st.Quarantined != 0 {
		t.Errorf("Stats = %+v, want %d corrupt drops and nothing quarantined", st, len(damaged))
	}
	for seq := range damaged {
		if _, ok := e.logs.find(slog.LevelError, "skipped a damaged record", "seq="+strconv.FormatUint(seq, 10)); !ok {
			t.Errorf("damaged record %d not reported", seq)
		}
	}
	// A new Reader from the same cursor (a reconnect) steps over them
	// again without counting them again.
	checkAllBut(t, drain(t, l.Reader()), n+15, lost)
	if st2 := l.Stats(); st2.Dropped != st.Dropped {
		t.Errorf("counted again: %+v", st2.Dropped)
	}
}

// A broken size field in the newest segment hid every record after it,
// which recovery then cut off as a torn tail. Recovery now finds the next
// record, rewrites the size field to reach it and keeps the rest: the
// record itself is whole again if only its size was hit, or is stepped
// over as damaged.
func TestBrokenSizeFieldInTail(t *testing.T) {
	for _, c := range []struct {
		name    string
		payload bool // the payload is hit too
	}{
		{"only the size field", false},
		{"the size field and the payload", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open()
			appendN(t, l, 0, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path, base := lastSegment(t, e.dir)
			frames := frameOffsets(t, path, base)
			flipByte(t, path, frames[4]+2)
			if c.payload {
				flipByte(t, path, frames[4]+9)
			}
			l = e.open()
			line, ok := e.logs.find(slog.LevelWarn, "repaired the size field", path)
			if !ok || !strings.Contains(line, "offset="+strconv.FormatInt(frames[4], 10)) || !strings.Contains(line, "seq=5") {
				t.Errorf("repair not reported with file, offset and seq: %q", line)
			}
			if _, ok := e.logs.find(slog.LevelWarn, "truncating torn tail"); ok {
				t.Error("the tail was cut")
			}
			appendN(t, l, 10, 1)
			// Record 5 is lost, and only record 5, when its payload is hit.
			checkAllBut(t, drain(t, l.Reader()), 11, func(s uint64) bool { return c.payload && s == 5 })
			var want uint64
			if c.payload {
				want = 1
			}
			if st := l.Stats(); st.Dropped.Corrupt != want {
				t.Errorf("corrupt drops %d, want %d", st.Dropped.Corrupt, want)
			}
		})
	}
}

// In an older segment too, a broken size field costs its record only: the
// reader finds the next record by its checksum instead of quarantining the
// rest of the segment.
func TestBrokenSizeFieldInSealedSegment(t *testing.T) {
	const n = 100
	e, files := sealedLog(t, n)
	victim := files[2]
	base, _ := parseSegName(filepath.Base(victim))
	frames := frameOffsets(t, victim, base)
	flipByte(t, victim, frames[1]+2)
	flipByte(t, victim, frames[1]+9) // and the record itself
	lostSeq := base + 1

	l := e.open()
	checkAllBut(t, drain(t, l.Reader()), n, func(s uint64) bool { return s == lostSeq })
	if st := l.Stats(); st.Dropped.Corrupt != 1 || st.Quarantined != 0 {
		t.Errorf("Stats = %+v, want one corrupt drop and nothing quarantined", st)
	}
	if _, ok := e.logs.find(slog.LevelError, "skipped a damaged record", victim, "seq="+strconv.FormatUint(lostSeq, 10)); !ok {
		t.Error("the lost record is not reported")
	}
	// Delivered, the damaged segment goes like any other.
	if err := l.Ack(n + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Errorf("the damaged segment is still there once acknowledged: %v", err)
	}
}

// A segment file deleted by hand: its records are counted as lost, and the
// intact segment before it is neither quarantined nor counted.
func TestMissingSegmentFile(t *testing.T) {
	const n = 100
	e, files := sealedLog(t, n)
	base, _ := parseSegName(filepath.Base(files[2]))
	next, _ := parseSegName(filepath.Base(files[3]))
	if err := os.Remove(files[2]); err != nil {
		t.Fatal(err)
	}

	l := e.open()
	checkAllBut(t, drain(t, l.Reader()), n, func(s uint64) bool { return s >= base && s < next })
	if st := l.Stats(); st.Dropped.Corrupt != next-base || st.Quarantined != 0 {
		t.Errorf("Stats = %+v, want %d corrupt drops and nothing quarantined", st, next-base)
	}
	line, ok := e.logs.find(slog.LevelError, "records missing between segments", files[1])
	if !ok || !strings.Contains(line, "lost="+strconv.FormatUint(next-base, 10)) {
		t.Errorf("the missing records are not reported: %q", line)
	}
	if err := l.Ack(n + 1); err != nil {
		t.Fatal(err)
	}
}

// A zeroed size field reads like the end of the data. Where records must
// follow (an older segment that should reach the next one, or bytes after
// it in the newest segment), at most that record is lost, not the rest: in
// the newest segment Open rewrites the field, and a record whose other
// bytes are intact is whole again.
func TestZeroedSizeField(t *testing.T) {
	const n = 100
	for _, where := range []string{"older segment", "newest segment"} {
		t.Run(where, func(t *testing.T) {
			e, files := sealedLog(t, n)
			victim := files[2]
			if where == "newest segment" {
				victim = files[len(files)-1]
			}
			base, _ := parseSegName(filepath.Base(victim))
			frames := frameOffsets(t, victim, base)
			if len(frames) < 3 {
				t.Fatalf("%s holds %d records", victim, len(frames))
			}
			zeroBytes(t, victim, frames[1], 4)
			lostSeq, lost := base+1, uint64(1)
			if where == "newest segment" {
				lostSeq, lost = 0, 0
			}

			l := e.open()
			checkAllBut(t, drain(t, l.Reader()), n, func(s uint64) bool { return s == lostSeq })
			if st := l.Stats(); st.Dropped.Corrupt != lost || st.Quarantined != 0 {
				t.Errorf("Stats = %+v, want %d corrupt drops and nothing quarantined", st, lost)
			}
			if err := l.Ack(n + 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Records a reader counted lost are not counted again when their segment
// is dropped (or quarantined) before the cursor passed them.
func TestLostCountedOnce(t *testing.T) {
	const n = 100
	e, files := sealedLog(t, n)
	gone, _ := parseSegName(filepath.Base(files[2]))
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	l := e.open()
	drain(t, l.Reader()) // past the missing records, acknowledging nothing
	// Dropped for room as drop_oldest would, with the cursor still at 1:
	// records 1 up to the third segment's base are gone, once.
	l.mu.Lock()
	l.dropSegmentLocked(l.segs[0], reasonFull)
	l.mu.Unlock()
	if st := l.Stats(); st.Dropped.Total() != gone-1 {
		t.Errorf("Dropped = %+v: %d counted, %d gone", st.Dropped, st.Dropped.Total(), gone-1)
	}
	if err := l.Ack(n + 1); err != nil {
		t.Fatal(err)
	}
}

// An older segment whose last pages never reached the disk (a power cut
// before their fsync) reads as zeros from some point, maybe through a torn
// record: the records from there to the next segment are lost and counted,
// the ones before stay, and nothing is quarantined.
func TestOlderSegmentEndLost(t *testing.T) {
	for _, c := range []struct {
		name  string
		from  func(frames []int64) int64 // where the zeros start
		extra int64                      // zeros past the file's old end
	}{
		{"zeros from a record", func(fr []int64) int64 { return fr[1] }, 0},
		{"a torn record", func(fr []int64) int64 { return fr[1] + 20 }, 0},
		{"zeros past the end too", func(fr []int64) int64 { return fr[1] }, 4096},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 100
			e, files := sealedLog(t, n)
			victim := files[2]
			base, _ := parseSegName(filepath.Base(victim))
			next, _ := parseSegName(filepath.Base(files[3]))
			frames := frameOffsets(t, victim, base)
			st, err := os.Stat(victim)
			if err != nil {
				t.Fatal(err)
			}
			from := c.from(frames)
			zeroBytes(t, victim, from, st.Size()-from+c.extra)

			l := e.open()
			lost := next - (base + 1)
			checkAllBut(t, drain(t, l.Reader()), n, func(s uint64) bool { return s > base && s < next })
			if st := l.Stats(); st.Dropped.Corrupt != lost || st.Quarantined != 0 {
				t.Errorf("Stats = %+v, want %d corrupt drops and nothing quarantined", st, lost)
			}
			if err := l.Ack(n + 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}
