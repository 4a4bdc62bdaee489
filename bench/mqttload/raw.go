package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/internal/rawmqtt"
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
	if err := rawmqtt.Subscribe(conn, id, filter); err != nil {
		return err
	}
	go rawmqtt.CountPublishes(conn, n)
	return nil
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
	w := bufio.NewWriterSize(conn, 64<<10)
	w.Write(rawmqtt.Connect(id))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	pkts := make([][]byte, 100)
	for i := range pkts {
		pkts[i] = rawmqtt.Publish(fmt.Sprintf("%s/%d", prefix, i), payload)
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
