// Package buffer is the durable store-and-forward log behind each bridge:
// records appended while the uplink is down come out later, in order, and
// a crash or power cut loses nothing that Append acknowledged (within the
// promise of the sync mode). It stores opaque bytes and knows nothing of
// MQTT.
//
// # Use
//
// Open a Log per bridge; producers call Append (or AppendAsync for
// fire-and-forget data); the bridge reads with a Reader and calls Ack when
// the cloud has confirmed records. A new Reader, after a reconnect, starts
// again at the oldest unacknowledged record, so delivery is at-least-once.
//
// # Files
//
// A log directory holds:
//
//	00000000000000000001.seg   segments, named by the sequence number of their first record
//	00000000000000052310.seg   the newest segment is the one being appended to
//	cursor                     the consumer cursor, replaced atomically
//	quarantine/                segments found corrupt, kept for inspection
//
// Every integer is little-endian. A segment starts with a 32-byte header:
//
//	0  4  magic "FBSG"
//	4  2  version (1)
//	6  2  flags: bit 0 = records appended while the clock was not synchronized
//	8  8  base: sequence number of the first record
//	16 8  creation time, unix nanoseconds
//	24 4  reserved, zero
//	28 4  CRC-32C of bytes 0-27
//
// Frames follow back to back, one per record:
//
//	0  4  size = 8 + payload length; 0 marks the end of written data
//	4  4  CRC-32C of the size field, bytes 8 to the end, and the record's
//	      sequence number (8 bytes, not stored: implied by the position)
//	8  8  append time, unix nanoseconds
//	16 n  payload
//
// The segment being written is preallocated to Options.SegmentSize
// (fallocate), so an fdatasync after an append flushes data without
// changing the file's size, and the zeros after the last frame read as a
// size of 0. When the next frame would not fit, the segment is sealed
// (trimmed to its data) and a new one starts at the next sequence number.
// A sealed segment's record count is the next segment's base minus its own,
// so nothing but the newest segment is read at Open.
//
// The cursor file (68 bytes) holds the first unacknowledged sequence
// number, where that record is (segment base and offset) and when it was
// appended, if known, and the lifetime drop counters, followed by a
// CRC-32C. It is written to cursor.tmp, synced and renamed over cursor.
//
// # Recovery
//
// A damaged record, one whose checksum fails while its size leads to a
// valid record for the next sequence number (or to the segment's known
// end), is a flipped bit on the medium, not a broken file: the Reader steps
// over it, counts it in Stats.Dropped.Corrupt once and logs it, and the
// records after it are delivered. A record whose size field is broken, or
// zeroed while records must follow, is handled alike when the next record
// can be found by its checksum (which covers the sequence number, so only
// the right record matches) within a megabyte; the search checksums at
// most 64 MiB. Each record is counted once, also when its segment is
// dropped or quarantined later (a restart before the cursor passes it
// counts it again). Anything else that does not parse is handled as
// follows.
//
// Open scans only the newest segment. There, a broken size field with the
// next record found after it is rewritten to reach that record (the frame
// is then whole again, or a damaged record). Any other frame whose size or
// checksum is wrong ends the valid data there (a torn write); the file is
// cut at that point and preallocated again. Older segments are verified
// as the Reader passes through them. One whose records end before the
// next segment begins has the records in between counted as lost when
// nothing but zeros follows its last good record: its file was cut short
// at a record's boundary, a segment file between them was deleted, or its
// end never reached the disk (a power cut before the fsync leaves zeros
// from some record on, or from inside a torn record whose size field
// survived). Any other bad frame past which no record can be found (a file
// cut inside a record, data after the bad frame) moves the whole segment
// to quarantine/ (named with its sequence range), its unacknowledged
// records are counted in Stats.Dropped.Corrupt (those before the bad frame
// were delivered once but cannot be delivered again), and reading
// continues with the next segment. A newest segment that holds only zeros (its
// creation was cut short) is removed. A missing or corrupt cursor starts
// delivery at the oldest retained record: duplicates, never loss.
//
// # Bounds
//
// MaxBytes bounds the retained segments: DropOldest deletes whole oldest
// segments to make room, DropNewest refuses appends with ErrFull. MaxAge
// deletes segments whose newest record is older, but only while the clock
// is synchronized, and records appended while it was not are aged from the
// first segment created after it was. Every drop is counted in Stats and
// logged at most every few seconds per reason.
package buffer
