package buffer

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// segment summarises one segment file. It never holds records, so memory
// stays flat however long the backlog grows.
type segment struct {
	base     uint64 // sequence number of the first record
	end      uint64 // sequence number after the last record (active: the next to append)
	size     int64  // data bytes (header and frames); for sealed segments found at Open, the file size
	created  int64  // unix nanoseconds, from the header
	unsynced bool   // records were appended while the clock was not synchronized
	newest   int64  // append time of the newest record, when newestOK
	newestOK bool
	path     string
	removed  bool // deleted or quarantined: a reader holding it must move on
}

// badSegment is a file named like a segment whose header cannot be used.
type badSegment struct {
	base   uint64
	path   string
	reason string
}

// qRange is the sequence range of a quarantined segment, when it was known.
type qRange struct{ base, end uint64 }

// dirListing is what a directory holds, read without changing anything.
type dirListing struct {
	segs        []*segment // valid headers, by base
	bad         []badSegment
	qRanges     []qRange // quarantined segments with a known range, by base
	quarantined int      // files in quarantine/
	unknown     []string // names that are not ours
}

// readDir lists dir and reads every segment header (one small read each).
func readDir(dir string) (*dirListing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	ls := &dirListing{}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		base, ok := parseSegName(name)
		if !ok {
			switch name {
			case cursorName, cursorTmpName, quarantineDir:
			default:
				ls.unknown = append(ls.unknown, name)
			}
			continue
		}
		if !e.Type().IsRegular() {
			ls.unknown = append(ls.unknown, name)
			continue
		}
		seg, reason, err := readSegHeader(path, base)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the listing (Inspect of a live log)
		}
		if err != nil {
			return nil, err
		}
		if reason != "" {
			ls.bad = append(ls.bad, badSegment{base: base, path: path, reason: reason})
			continue
		}
		ls.segs = append(ls.segs, seg)
	}
	slices.SortFunc(ls.segs, func(a, b *segment) int { return cmp.Compare(a.base, b.base) })
	slices.SortFunc(ls.bad, func(a, b badSegment) int { return cmp.Compare(a.base, b.base) })

	// An unreadable quarantine/ only loses boundaries and a count; moving
	// a segment there later reports its own error.
	qentries, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	for _, e := range qentries {
		ls.quarantined++
		if r, ok := parseQuarantineName(e.Name()); ok {
			ls.qRanges = append(ls.qRanges, r)
		}
	}
	slices.SortFunc(ls.qRanges, func(a, b qRange) int { return cmp.Compare(a.base, b.base) })
	return ls, nil
}

// readSegHeader returns the segment described by the file's header, or a
// reason why the header is unusable.
func readSegHeader(path string, base uint64) (*segment, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("buffer: %w", err)
	}
	b := make([]byte, segHeaderSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil, "", fmt.Errorf("buffer: read header of %s: %w", path, err)
	}
	h, reason := decodeSegHeader(b[:n])
	if reason == "" && h.base != base {
		reason = fmt.Sprintf("header base %d does not match file name", h.base)
	}
	if reason != "" {
		return nil, reason, nil
	}
	return &segment{
		base:     base,
		end:      base,
		size:     st.Size(),
		created:  h.created,
		unsynced: h.unsynced,
		path:     path,
	}, "", nil
}

// quarantineName names a quarantined segment. A known range is part of
// the name so that a later Open can still tell where the segment before it
// ended.
func quarantineName(base, end uint64, ranged bool) string {
	if ranged && end > base {
		return fmt.Sprintf("%0*d-%0*d%s", segNameDigits, base, segNameDigits, end, segSuffix)
	}
	return segName(base)
}

func parseQuarantineName(name string) (qRange, bool) {
	const n = segNameDigits
	if len(name) < 2*n+1 || name[n] != '-' {
		return qRange{}, false
	}
	base, ok1 := parseBaseDigits(name[:n])
	end, ok2 := parseBaseDigits(name[n+1 : 2*n+1])
	if !ok1 || !ok2 || end <= base {
		return qRange{}, false
	}
	return qRange{base: base, end: end}, true
}

// sealedEnds sets the end of every segment but the last: the next segment's
// base, or the start of a quarantined range in between.
func sealedEnds(segs []*segment, bad []badSegment, q []qRange) {
	for i := 0; i+1 < len(segs); i++ {
		s := segs[i]
		s.end = segs[i+1].base
		for _, b := range bad {
			if b.base > s.base && b.base < s.end {
				s.end = b.base
			}
		}
		for _, r := range q {
			if r.base > s.base && r.base < s.end {
				s.end = r.base
			}
		}
	}
}

// tailScan is what scanTail found in the newest segment.
type tailScan struct {
	sc       frameScanner // positioned after the last good frame
	newest   int64        // append time of the last good frame
	torn     error        // the invalid frame that ends the data, if any
	damaged  []*DamagedError
	repaired []repairedFrame
}

// repairedFrame is a frame whose size field scanTail had rewritten.
type repairedFrame struct {
	off   int64
	seq   uint64
	cause error // why it did not parse; nil for a zero size field
}

// maxTailRepairs bounds the size fields Open rewrites in the newest
// segment; a segment broken in more places is cut at the next one.
const maxTailRepairs = 16

// scanTail walks every frame of the segment and stops at the end of data or
// at the first invalid frame (torn is then its error). A damaged record
// between intact ones does not end the data: it is listed, and a reader
// steps over it. With repair (Open, not Inspect), a broken or zeroed size
// field with a record found after it is rewritten through repair to reach
// that record, and the scan goes on from the rewritten frame: it is whole
// again (only its size was hit) or a damaged record.
func scanTail(r io.ReaderAt, seg *segment, limit int64, repair func(off, next int64) error) (ts tailScan, err error) {
	ts.sc = frameScanner{r: r, path: seg.path, off: segHeaderSize, limit: limit, seq: seg.base}
	var damaged *DamagedError
	for {
		_, t, _, err := ts.sc.next()
		switch {
		case err == nil:
			ts.newest = t
		case errors.As(err, &damaged):
			ts.damaged = append(ts.damaged, damaged)
		case err == io.EOF || errors.Is(err, ErrCorrupt):
			if err != io.EOF {
				ts.torn = err
			}
			if repair == nil || ts.sc.off >= limit || len(ts.repaired) == maxTailRepairs {
				return ts, nil
			}
			next, ok := ts.sc.resync()
			if !ok {
				return ts, nil
			}
			if err := repair(ts.sc.off, next); err != nil {
				return ts, err
			}
			ts.repaired = append(ts.repaired, repairedFrame{off: ts.sc.off, seq: ts.sc.seq, cause: ts.torn})
			ts.torn = nil
			ts.sc.reset(ts.sc.off, ts.sc.seq) // read the frame again, as rewritten
		default:
			return ts, err
		}
	}
}

// createSegment makes a new segment file holding only its header,
// preallocated to size bytes.
func createSegment(dir string, h segHeader, size int64) (*segment, *os.File, error) {
	path := filepath.Join(dir, segName(h.base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("buffer: create segment: %w", err)
	}
	fail := func(err error) (*segment, *os.File, error) {
		f.Close()
		os.Remove(path)
		return nil, nil, err
	}
	// Header first: a crash in between leaves an empty file, never a
	// preallocated one without a header.
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		return fail(fmt.Errorf("buffer: write header of %s: %w", path, err))
	}
	if err := preallocate(f, size); err != nil {
		return fail(fmt.Errorf("buffer: preallocate %s to %d bytes: %w", path, size, err))
	}
	return &segment{
		base:     h.base,
		end:      h.base,
		size:     segHeaderSize,
		created:  h.created,
		unsynced: h.unsynced,
		path:     path,
	}, f, nil
}

// syncDir makes renames, creations and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces dir/name with data through a temporary file, so
// that a crash leaves either the old or the new content.
func writeFileAtomic(dir, tmpName, name string, data []byte, durable bool) error {
	tmp := filepath.Join(dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

// uniquePath returns path, or path with a numeric suffix if it exists.
func uniquePath(path string) string {
	p := path
	for i := 1; ; i++ {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p
		}
		p = path + "." + strconv.Itoa(i)
	}
}

// zeroFile reports whether a file holds only zero bytes (or nothing): a
// segment whose creation a crash interrupted before its header reached the
// disk.
func zeroFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, scanChunk)
	for {
		n, err := f.Read(buf)
		if !allZero(buf[:n]) {
			return false, nil
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}
