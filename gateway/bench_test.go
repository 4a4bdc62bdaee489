package gateway

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/internal/rawmqtt"
)

// rawSubscriber counts PUBLISH packets on filter with a minimal MQTT reader,
// so that the subscriber is not what a benchmark measures.
func rawSubscriber(tb testing.TB, addr, filter string) *atomic.Int64 {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := rawmqtt.Subscribe(conn, "raw", filter); err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int64
	go rawmqtt.CountPublishes(conn, &n)
	return &n
}

// BenchmarkSimulationToSubscriber measures readings/s from the simulation
// driver through the sinks and the embedded broker to one TCP subscriber.
func BenchmarkSimulationToSubscriber(b *testing.B) {
	// Two devices, so two runners publish in parallel as two buses would.
	var cfg strings.Builder
	cfg.WriteString("broker: {listeners: [{name: local, type: tcp, address: \"127.0.0.1:0\"}]}\npublish: {qos: 0, retain: false}\ndevices:\n")
	for d := range 2 {
		fmt.Fprintf(&cfg, "  - {name: sim%d, driver: simulation, poll_interval: 1ms, points: [", d)
		for i := range 200 {
			fmt.Fprintf(&cfg, "{name: p%d, waveform: ramp, period: 1s},", i)
		}
		cfg.WriteString("]}\n")
	}
	g := start(b, cfg.String())
	n := rawSubscriber(b, g.Broker().Addr("local").String(), "gw/#")
	b.ResetTimer()
	startN, t0 := n.Load(), time.Now()
	for n.Load()-startN < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(n.Load()-startN)/time.Since(t0).Seconds(), "readings/s")
}
