// Package rawmqtt writes and reads MQTT 3.1.1 packets by hand, for
// benchmarks whose subscriber must not be what they measure (a client
// library's per-message hand-offs cost more than the broker under test),
// and for test proxies that look into the packets they forward.
package rawmqtt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Control packet types, the high four bits of the fixed header.
const (
	TypePublish = 3
	TypePuback  = 4
)

// ErrBadLength is a remaining length longer than the four bytes MQTT
// allows.
var ErrBadLength = errors.New("malformed remaining length")

// ReadPacket reads one control packet: pkt holds all its bytes as they
// came, body the part after the fixed header.
func ReadPacket(br *bufio.Reader) (pkt, body []byte, err error) {
	h, err := br.ReadByte()
	if err != nil {
		return nil, nil, err
	}
	n, pkt, err := readLength(br, append(make([]byte, 0, 64), h))
	if err != nil {
		return nil, nil, err
	}
	start := len(pkt)
	pkt = append(pkt, make([]byte, n)...)
	if _, err := io.ReadFull(br, pkt[start:]); err != nil {
		return nil, nil, err
	}
	return pkt, pkt[start:], nil
}

// readLength reads a remaining length, appending its bytes to dst.
func readLength(br *bufio.Reader, dst []byte) (int, []byte, error) {
	n := 0
	for shift := 0; ; shift += 7 {
		if shift > 21 {
			return 0, dst, ErrBadLength
		}
		b, err := br.ReadByte()
		if err != nil {
			return 0, dst, err
		}
		dst = append(dst, b)
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, dst, nil
		}
	}
}

// Packet is a control packet: the fixed header byte, the remaining length
// (a base-128 varint, as encoding/binary writes it) and the body.
func Packet(header byte, body []byte) []byte {
	out := binary.AppendUvarint([]byte{header}, uint64(len(body)))
	return append(out, body...)
}

// Connect is a CONNECT packet: protocol level 4, clean session, no
// keepalive.
func Connect(clientID string) []byte {
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, byte(len(clientID) >> 8), byte(len(clientID))}, clientID...)
	return Packet(0x10, body)
}

// Publish is a QoS 0 PUBLISH packet.
func Publish(topic string, payload []byte) []byte {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	return Packet(0x30, append(body, payload...))
}

// Subscribe writes a CONNECT and a SUBSCRIBE to filter at QoS 0, and reads
// the CONNACK and SUBACK, so that messages published after it returns
// reach the subscription. It reads exactly those two packets: rw can go to
// CountPublishes next.
func Subscribe(rw io.ReadWriter, clientID, filter string) error {
	sub := append([]byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}, filter...)
	if _, err := rw.Write(append(Connect(clientID), Packet(0x82, append(sub, 0))...)); err != nil {
		return err
	}
	var connack [4]byte
	if _, err := io.ReadFull(rw, connack[:]); err != nil {
		return fmt.Errorf("reading CONNACK: %w", err)
	}
	if connack[0] != 0x20 || connack[3] != 0 {
		return fmt.Errorf("CONNACK % x: the connection was refused", connack)
	}
	var suback [5]byte
	if _, err := io.ReadFull(rw, suback[:]); err != nil {
		return fmt.Errorf("reading SUBACK: %w", err)
	}
	if suback != [5]byte{0x90, 3, 0, 1, 0} {
		return fmt.Errorf("SUBACK % x: the subscription to %q was refused", suback, filter)
	}
	return nil
}

// CountPublishes reads packets from r until it fails, adding one to n for
// each PUBLISH, and returns the read error.
func CountPublishes(r io.Reader, n *atomic.Int64) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var lenBytes [4]byte
	for {
		h, err := br.ReadByte()
		if err != nil {
			return err
		}
		size, _, err := readLength(br, lenBytes[:0])
		if err != nil {
			return err
		}
		if _, err := br.Discard(size); err != nil {
			return err
		}
		if h>>4 == TypePublish {
			n.Add(1)
		}
	}
}
