// Package rawmqtt writes and reads MQTT 3.1.1 packets by hand, for
// benchmarks whose subscriber must not be what they measure: a client
// library's per-message hand-offs cost more than the broker under test.
package rawmqtt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
)

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
	for {
		h, err := br.ReadByte()
		if err != nil {
			return err
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return err
		}
		if _, err := br.Discard(int(size)); err != nil {
			return err
		}
		if h>>4 == 3 {
			n.Add(1)
		}
	}
}
