package buffer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// On-disk layout; doc.go describes it for humans.
const (
	segMagic      = "FBSG"
	segVersion    = 1
	segHeaderSize = 32
	segSuffix     = ".seg"
	segNameDigits = 20

	// flagUnsynced marks a segment whose records were appended while the
	// system clock was not synchronized, so their times cannot be trusted
	// for max_age.
	flagUnsynced = 1 << 0

	frameHeaderSize = 16
	// sizeFieldMin is the smallest valid value of a frame's size field:
	// the 8-byte timestamp of an empty payload. Zero means end of data.
	sizeFieldMin = 8
	// maxPayload is the largest payload a frame's size field can describe.
	maxPayload = math.MaxUint32 - sizeFieldMin

	cursorMagic    = "FBCU"
	cursorVersion  = 1
	cursorFileSize = 68
	cursorName     = "cursor"
	cursorTmpName  = "cursor.tmp"
	cursorPosOK    = 1 << 0
	cursorTimeOK   = 1 << 1

	quarantineDir = "quarantine"
)

// crcTable is read-only after initialisation.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// segHeader is the fixed header at offset 0 of every segment file.
type segHeader struct {
	base     uint64
	created  int64 // unix nanoseconds
	unsynced bool
}

func (h segHeader) encode() []byte {
	b := make([]byte, segHeaderSize)
	copy(b[0:4], segMagic)
	binary.LittleEndian.PutUint16(b[4:6], segVersion)
	var flags uint16
	if h.unsynced {
		flags |= flagUnsynced
	}
	binary.LittleEndian.PutUint16(b[6:8], flags)
	binary.LittleEndian.PutUint64(b[8:16], h.base)
	binary.LittleEndian.PutUint64(b[16:24], uint64(h.created))
	binary.LittleEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], crcTable))
	return b
}

// decodeSegHeader validates b (at least segHeaderSize bytes). The returned
// string explains a rejection.
func decodeSegHeader(b []byte) (segHeader, string) {
	if len(b) < segHeaderSize {
		return segHeader{}, fmt.Sprintf("header truncated to %d bytes", len(b))
	}
	if string(b[0:4]) != segMagic {
		return segHeader{}, fmt.Sprintf("bad magic %q", b[0:4])
	}
	if crc32.Checksum(b[:28], crcTable) != binary.LittleEndian.Uint32(b[28:32]) {
		return segHeader{}, "header checksum mismatch"
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != segVersion {
		return segHeader{}, fmt.Sprintf("unsupported version %d", v)
	}
	flags := binary.LittleEndian.Uint16(b[6:8])
	return segHeader{
		base:     binary.LittleEndian.Uint64(b[8:16]),
		created:  int64(binary.LittleEndian.Uint64(b[16:24])),
		unsynced: flags&flagUnsynced != 0,
	}, ""
}

func segName(base uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, base, segSuffix)
}

// parseSegName accepts exactly the names segName produces.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok {
		return 0, false
	}
	return parseBaseDigits(digits)
}

func parseBaseDigits(digits string) (uint64, bool) {
	if len(digits) != segNameDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || base == 0 {
		return 0, false
	}
	return base, true
}

// encodeFrame lays out a frame for payload and returns it with the partial
// checksum. The sequence number is folded in last by sealFrame, so that the
// costly part runs before the caller takes the log's lock.
func encodeFrame(dst []byte, t int64, payload []byte) ([]byte, uint32) {
	n := frameHeaderSize + len(payload)
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	b := dst[:n]
	binary.LittleEndian.PutUint32(b[0:4], uint32(sizeFieldMin+len(payload)))
	binary.LittleEndian.PutUint64(b[8:16], uint64(t))
	copy(b[16:], payload)
	crc := crc32.Update(0, crcTable, b[0:4])
	crc = crc32.Update(crc, crcTable, b[8:])
	return b, crc
}

// sealFrame stores the checksum of frame b for sequence number seq. The
// sequence number is covered but not stored: a frame copied to another
// position fails its check.
func sealFrame(b []byte, partial uint32, seq uint64) {
	binary.LittleEndian.PutUint32(b[4:8], finishCRC(partial, seq))
}

func finishCRC(partial uint32, seq uint64) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return crc32.Update(partial, crcTable, s[:])
}

// frameChecksum computes the stored checksum of a complete frame b.
func frameChecksum(b []byte, seq uint64) uint32 {
	crc := crc32.Update(0, crcTable, b[0:4])
	crc = crc32.Update(crc, crcTable, b[8:])
	return finishCRC(crc, seq)
}

// corruptError reports invalid bytes at a file offset; it matches ErrCorrupt.
func corruptError(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s: offset %d: %s", ErrCorrupt, path, off, fmt.Sprintf(format, args...))
}

// scanChunk is the read size of a frameScanner; larger frames are read whole.
const scanChunk = 64 << 10

// frameScanner reads consecutive frames from a segment through a small
// buffer, so that walking a segment costs one pread per chunk.
type frameScanner struct {
	r     io.ReaderAt
	path  string
	off   int64  // offset of the next frame
	limit int64  // bytes at or past limit are not read
	seq   uint64 // sequence number of the next frame
	// end, when not 0, is the sequence number after the segment's last
	// record (known to a reader, not to recovery): a damaged last record
	// is then told from a torn one.
	end    uint64
	buf    []byte
	bufOff int64
}

func (s *frameScanner) reset(off int64, seq uint64) {
	s.off, s.seq = off, seq
	s.buf = s.buf[:0]
	s.bufOff = 0
}

// peek returns n bytes at s.off; n must not reach past s.limit.
func (s *frameScanner) peek(n int64) ([]byte, error) { return s.peekAt(s.off, n) }

// peekAt returns n bytes at off; off+n must not reach past s.limit.
func (s *frameScanner) peekAt(off, n int64) ([]byte, error) {
	if off >= s.bufOff && off+n <= s.bufOff+int64(len(s.buf)) {
		start := off - s.bufOff
		return s.buf[start : start+n], nil
	}
	want := max(n, scanChunk)
	want = min(want, s.limit-off)
	var b []byte
	if want <= scanChunk {
		if cap(s.buf) < scanChunk {
			s.buf = make([]byte, scanChunk)
		}
		b = s.buf[:want]
	} else {
		// One large frame: do not keep a big buffer around afterwards.
		b = make([]byte, want)
	}
	m, err := s.r.ReadAt(b, off)
	if int64(m) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		s.buf = s.buf[:0]
		return nil, fmt.Errorf("buffer: read %s at offset %d: %w", s.path, off, err)
	}
	if want <= scanChunk {
		s.buf, s.bufOff = b[:m], off
	} else {
		s.buf = s.buf[:0]
	}
	return b[:n], nil
}

// DamagedError is a record whose bytes were damaged on the medium (a
// flipped bit) while the segment's structure is intact: its length leads
// to a valid record for the next sequence number. The scan steps over it,
// so that one damaged record costs that record only. It matches ErrCorrupt.
type DamagedError struct {
	Path string
	Off  int64  // where the record starts
	Seq  uint64 // the record's sequence number
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("buffer: %s: offset %d: record %d is damaged (checksum mismatch); the records after it are intact", e.Path, e.Off, e.Seq)
}

// Is makes a DamagedError match ErrCorrupt.
func (e *DamagedError) Is(target error) bool { return target == ErrCorrupt }

// next returns the payload (valid until the next call), append time and
// frame length of the next record. It returns io.EOF at a clean end of data
// (the limit, or a zero size field), a *DamagedError, with the scanner
// moved past the record, for a damaged record between intact ones, and an
// ErrCorrupt error for anything else that is not a valid frame for
// sequence number s.seq.
func (s *frameScanner) next() (data []byte, t int64, n int64, err error) {
	rem := s.limit - s.off
	if rem <= 0 {
		return nil, 0, 0, io.EOF
	}
	if rem < 4 {
		b, err := s.peek(rem)
		if err != nil {
			return nil, 0, 0, err
		}
		if allZero(b) {
			return nil, 0, 0, io.EOF
		}
		return nil, 0, 0, corruptError(s.path, s.off, "truncated frame header (%d bytes)", rem)
	}
	b, err := s.peek(min(rem, frameHeaderSize))
	if err != nil {
		return nil, 0, 0, err
	}
	size := int64(binary.LittleEndian.Uint32(b[0:4]))
	if size == 0 {
		return nil, 0, 0, io.EOF
	}
	if rem < frameHeaderSize {
		return nil, 0, 0, corruptError(s.path, s.off, "truncated frame header (%d bytes)", rem)
	}
	if size < sizeFieldMin {
		return nil, 0, 0, corruptError(s.path, s.off, "invalid frame size %d", size)
	}
	n = 8 + size
	if n > rem {
		return nil, 0, 0, corruptError(s.path, s.off, "frame of %d bytes runs past end of data (%d bytes left)", n, rem)
	}
	b, err = s.peek(n)
	if err != nil {
		return nil, 0, 0, err
	}
	if got, want := binary.LittleEndian.Uint32(b[4:8]), frameChecksum(b, s.seq); got != want {
		if s.validAt(s.off+n, s.seq+1) || (s.seq+1 == s.end && s.endsAt(s.off+n)) {
			err := &DamagedError{Path: s.path, Off: s.off, Seq: s.seq}
			s.off += n
			s.seq++
			return nil, 0, n, err
		}
		return nil, 0, 0, corruptError(s.path, s.off, "checksum mismatch for sequence %d", s.seq)
	}
	t = int64(binary.LittleEndian.Uint64(b[8:16]))
	s.off += n
	s.seq++
	return b[frameHeaderSize:], t, n, nil
}

// Bounds of a resync search, so that a badly damaged segment costs a few
// tens of milliseconds, not a scan that checksums the rest of the segment
// from every offset: the next record must start within resyncSpan bytes
// and be no larger, and at most resyncBudget bytes are checksummed.
const (
	resyncSpan   = 1 << 20
	resyncBudget = 64 << 20
)

// resync finds where the record after the frame at s.off starts when that
// frame's size field is broken (or zero): the first offset past it, within
// resyncSpan, where a valid frame for s.seq+1 begins.
func (s *frameScanner) resync() (int64, bool) {
	from := s.off + frameHeaderSize
	end := min(s.limit, from+resyncSpan)
	if s.zeroBetween(from, end) {
		return 0, false // what follows the last record of a newest segment
	}
	budget := int64(resyncBudget)
	for p := from; p+frameHeaderSize <= end && budget > 0; p++ {
		n, ok := s.lenAt(p)
		if !ok || n > resyncSpan {
			continue
		}
		budget -= n
		if s.sumAt(p, n, s.seq+1) {
			return p, true
		}
	}
	return 0, false
}

// lostEnd reports whether the frame at s.off, which does not parse, is
// where the file's end never reached the disk (a power cut before its
// fsync; pages not written read as zeros): zeros from there on (zero, when
// the size field read as zero), or a torn frame, its size intact, with
// nothing but zeros after the bytes it claims.
func (s *frameScanner) lostEnd(zero bool) bool {
	if zero {
		return s.zeroBetween(s.off, s.limit)
	}
	if s.off+frameHeaderSize > s.limit {
		return true // the file ends inside the frame's header
	}
	n, ok := s.lenAt(s.off)
	return ok && s.zeroBetween(s.off+n, s.limit)
}

// zeroBetween reports whether the bytes from..to-1 are all zero.
func (s *frameScanner) zeroBetween(from, to int64) bool {
	for p := from; p < to; {
		n := min(int64(scanChunk), to-p)
		b, err := s.peekAt(p, n)
		if err != nil || !allZero(b) {
			return false
		}
		p += n
	}
	return true
}

// endsAt reports whether the data ends at off: the limit, or a zero size
// field.
func (s *frameScanner) endsAt(off int64) bool {
	rem := s.limit - off
	if rem <= 0 {
		return true
	}
	b, err := s.peekAt(off, min(rem, 4))
	return err == nil && allZero(b)
}

// lenAt returns the length of the frame whose size field is at off, and
// whether that is a possible length: the field at least the minimum and
// the frame within the limit.
func (s *frameScanner) lenAt(off int64) (int64, bool) {
	if s.limit-off < 4 {
		return 0, false
	}
	b, err := s.peekAt(off, 4)
	if err != nil {
		return 0, false
	}
	size := int64(binary.LittleEndian.Uint32(b))
	return 8 + size, size >= sizeFieldMin && 8+size <= s.limit-off
}

// validAt reports whether a valid frame for seq starts at off. The
// checksum covers the sequence number, so a frame that is not the record
// seq cannot pass by accident (short of a 1 in 2^32 collision).
func (s *frameScanner) validAt(off int64, seq uint64) bool {
	n, ok := s.lenAt(off)
	return ok && s.sumAt(off, n, seq)
}

// sumAt reports whether the n bytes at off are a frame whose checksum is
// right for seq.
func (s *frameScanner) sumAt(off, n int64, seq uint64) bool {
	b, err := s.peekAt(off, n)
	return err == nil && binary.LittleEndian.Uint32(b[4:8]) == frameChecksum(b, seq)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// cursorState is the content of the cursor file.
type cursorState struct {
	cursor  uint64 // first unacknowledged sequence number
	posOK   bool   // segBase and off locate the record at cursor
	segBase uint64
	off     int64
	timeOK  bool // t is the append time of the record at cursor
	t       int64
	dropped Dropped
}

func (c cursorState) encode() []byte {
	b := make([]byte, cursorFileSize)
	copy(b[0:4], cursorMagic)
	binary.LittleEndian.PutUint16(b[4:6], cursorVersion)
	var flags uint16
	if c.posOK {
		flags |= cursorPosOK
	}
	if c.timeOK {
		flags |= cursorTimeOK
	}
	binary.LittleEndian.PutUint16(b[6:8], flags)
	binary.LittleEndian.PutUint64(b[8:16], c.cursor)
	binary.LittleEndian.PutUint64(b[16:24], c.segBase)
	binary.LittleEndian.PutUint64(b[24:32], uint64(c.off))
	binary.LittleEndian.PutUint64(b[32:40], uint64(c.t))
	binary.LittleEndian.PutUint64(b[40:48], c.dropped.Full)
	binary.LittleEndian.PutUint64(b[48:56], c.dropped.Age)
	binary.LittleEndian.PutUint64(b[56:64], c.dropped.Corrupt)
	binary.LittleEndian.PutUint32(b[64:68], crc32.Checksum(b[:64], crcTable))
	return b
}

func decodeCursor(b []byte) (cursorState, string) {
	if len(b) != cursorFileSize {
		return cursorState{}, fmt.Sprintf("size %d, want %d", len(b), cursorFileSize)
	}
	if string(b[0:4]) != cursorMagic {
		return cursorState{}, fmt.Sprintf("bad magic %q", b[0:4])
	}
	if crc32.Checksum(b[:64], crcTable) != binary.LittleEndian.Uint32(b[64:68]) {
		return cursorState{}, "checksum mismatch"
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != cursorVersion {
		return cursorState{}, fmt.Sprintf("unsupported version %d", v)
	}
	flags := binary.LittleEndian.Uint16(b[6:8])
	c := cursorState{
		cursor:  binary.LittleEndian.Uint64(b[8:16]),
		posOK:   flags&cursorPosOK != 0,
		segBase: binary.LittleEndian.Uint64(b[16:24]),
		off:     int64(binary.LittleEndian.Uint64(b[24:32])),
		timeOK:  flags&cursorTimeOK != 0,
		t:       int64(binary.LittleEndian.Uint64(b[32:40])),
		dropped: Dropped{
			Full:    binary.LittleEndian.Uint64(b[40:48]),
			Age:     binary.LittleEndian.Uint64(b[48:56]),
			Corrupt: binary.LittleEndian.Uint64(b[56:64]),
		},
	}
	if c.posOK && c.off < segHeaderSize {
		c.posOK = false
	}
	return c, ""
}

func unixNano(ns int64) time.Time { return time.Unix(0, ns) }
