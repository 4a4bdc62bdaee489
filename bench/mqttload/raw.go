package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"time"
)

// rawSubscribe counts PUBLISH packets with a minimal MQTT 3.1.1 reader, so
// that the subscriber is not the bottleneck of a broker benchmark (paho's
// per-message goroutine hand-off tops out near 110k msg/s here).
func rawSubscribe(broker, filter string, n *atomic.Int64) error {
	u, err := url.Parse(broker)
	if err != nil {
		return err
	}
	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err = net.Dial("tcp", u.Host)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	id := fmt.Sprintf("mqttload-raw-%d", time.Now().UnixNano())
	// CONNECT: protocol MQTT level 4, clean session, keepalive 0.
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0}
	pl := append([]byte{byte(len(id) >> 8), byte(len(id))}, id...)
	if _, err := conn.Write(packet(0x10, append(vh, pl...))); err != nil {
		return err
	}
	sub := []byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}
	sub = append(append(sub, filter...), 0)
	if _, err := conn.Write(packet(0x82, sub)); err != nil {
		return err
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			h, err := r.ReadByte()
			if err != nil {
				return
			}
			size, err := binary.ReadUvarint(r)
			if err != nil {
				return
			}
			for size > 0 {
				chunk := min(size, uint64(len(buf)))
				if _, err := io.ReadFull(r, buf[:chunk]); err != nil {
					return
				}
				size -= chunk
			}
			if h>>4 == 3 {
				n.Add(1)
			}
		}
	}()
	return nil
}

func packet(header byte, body []byte) []byte {
	out := []byte{header}
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// rawPublish writes QoS0 PUBLISH packets through a buffered socket as fast
// as the broker reads them, cycling over 100 topics under prefix.
func rawPublish(broker, prefix string, size int, until time.Time) error {
	u, err := url.Parse(broker)
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	id := fmt.Sprintf("mqttload-rawpub-%d", time.Now().UnixNano())
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0}
	pl := append([]byte{byte(len(id) >> 8), byte(len(id))}, id...)
	w := bufio.NewWriterSize(conn, 64<<10)
	w.Write(packet(0x10, append(vh, pl...)))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	pkts := make([][]byte, 100)
	for i := range pkts {
		topic := fmt.Sprintf("%s/%d", prefix, i)
		body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
		pkts[i] = packet(0x30, append(body, payload...))
	}
	for i := 0; ; i++ {
		if i%1000 == 0 && time.Now().After(until) {
			return w.Flush()
		}
		if _, err := w.Write(pkts[i%100]); err != nil {
			return err
		}
	}
}
