package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fieldbridge/gateway/mappings"
)

// A record is one message as the bridge keeps it in its buffer, already in
// the form it is sent in: the remote topic (after remote_prefix) and the
// route's QoS are fixed when the message is accepted, so a configuration
// change never re-routes what is already queued.
//
// Version 1, integers little-endian:
//
//	0  1  version (1)
//	1  1  flags: bits 0-1 QoS, bit 2 retain, other bits zero
//	2  8  time the local broker accepted the message, unix nanoseconds
//	10 2  topic length n (1..65535)
//	12 n  topic, UTF-8, no NUL, no wildcards
//	.. .  payload (the rest)
const (
	recordVersion    = 1
	recordHeaderSize = 12
	flagQoSMask      = 0x03
	flagRetain       = 0x04
)

// errBadRecord marks bytes that are not a record of a known version.
var errBadRecord = errors.New("bridge: bad record")

// record is a decoded record. Its slices point into the bytes it was
// decoded from.
type record struct {
	topic   string
	qos     byte
	retain  bool
	time    time.Time
	payload []byte
}

// appendRecord encodes r at the end of dst.
func appendRecord(dst []byte, topic string, qos byte, retain bool, t time.Time, payload []byte) ([]byte, error) {
	if err := mappings.ValidTopicName(topic); err != nil {
		return dst, err
	}
	if qos > 2 {
		return dst, fmt.Errorf("bridge: QoS %d", qos)
	}
	flags := qos
	if retain {
		flags |= flagRetain
	}
	dst = append(dst, recordVersion, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(topic)))
	dst = append(dst, topic...)
	return append(dst, payload...), nil
}

// decodeRecord parses a record; it never panics, whatever b holds.
func decodeRecord(b []byte) (record, error) {
	if len(b) < recordHeaderSize {
		return record{}, fmt.Errorf("%w: %d bytes, shorter than the header", errBadRecord, len(b))
	}
	if b[0] != recordVersion {
		return record{}, fmt.Errorf("%w: version %d", errBadRecord, b[0])
	}
	flags := b[1]
	if flags&^(flagQoSMask|flagRetain) != 0 || flags&flagQoSMask == 3 {
		return record{}, fmt.Errorf("%w: flags %#x", errBadRecord, flags)
	}
	n := int(binary.LittleEndian.Uint16(b[10:12]))
	if n > len(b)-recordHeaderSize {
		return record{}, fmt.Errorf("%w: topic length %d past the end", errBadRecord, n)
	}
	topic := string(b[recordHeaderSize : recordHeaderSize+n])
	if err := mappings.ValidTopicName(topic); err != nil {
		return record{}, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	return record{
		topic:   topic,
		qos:     flags & flagQoSMask,
		retain:  flags&flagRetain != 0,
		time:    time.Unix(0, int64(binary.LittleEndian.Uint64(b[2:10]))),
		payload: b[recordHeaderSize+n:],
	}, nil
}
