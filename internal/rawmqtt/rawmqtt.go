// Package rawmqtt writes and reads MQTT 3.1.1 packets by hand, for
// benchmarks whose subscriber must not be what they measure: a client
// library's per-message hand-offs cost more than the broker under test.
package rawmqtt

import (
	"bufio"
	"encoding/binary"
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

// Subscribe writes a CONNECT and a SUBSCRIBE to filter at QoS 0.
func Subscribe(w io.Writer, clientID, filter string) error {
	sub := append([]byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}, filter...)
	_, err := w.Write(append(Connect(clientID), Packet(0x82, append(sub, 0))...))
	return err
}

// CountPublishes reads packets from r until it fails, adding one to n for
// each PUBLISH.
func CountPublishes(r io.Reader, n *atomic.Int64) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		h, err := br.ReadByte()
		if err != nil {
			return
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return
		}
		if _, err := br.Discard(int(size)); err != nil {
			return
		}
		if h>>4 == 3 {
			n.Add(1)
		}
	}
}
