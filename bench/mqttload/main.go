// Command mqttload drives and measures MQTT traffic for the benchmarks in
// docs/benchmarks.md: `sub` counts messages a subscriber receives per
// second, `pub` publishes as fast as the broker takes them.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mqttload sub|pub [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	topic := fs.String("topic", "#", "filter (sub) or topic prefix (pub)")
	dur := fs.Duration("duration", 10*time.Second, "how long to measure")
	warm := fs.Duration("warmup", 2*time.Second, "time before measuring starts")
	qos := fs.Int("qos", 0, "QoS")
	size := fs.Int("size", 100, "payload bytes (pub)")
	raw := fs.Bool("raw", false, "use a minimal MQTT 3.1.1 reader (sub) or QoS0 writer (pub) instead of paho")
	fs.Parse(os.Args[2:])

	opts := mqtt.NewClientOptions().AddBroker(*broker).
		SetClientID(fmt.Sprintf("mqttload-%s-%d", os.Args[1], os.Getpid())).
		SetAutoReconnect(false).SetOrderMatters(true).SetCleanSession(true).
		SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond)
	var n atomic.Int64
	switch os.Args[1] {
	case "sub":
		if *raw {
			if err := rawSubscribe(*broker, *topic, &n); err != nil {
				fail(err)
			}
			measure(&n, *warm, *dur)
			return
		}
		c := mqtt.NewClient(opts)
		if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			fail(t.Error())
		}
		if t := c.Subscribe(*topic, byte(*qos), func(mqtt.Client, mqtt.Message) { n.Add(1) }); t.Wait() && t.Error() != nil {
			fail(t.Error())
		}
		measure(&n, *warm, *dur)
	case "pub":
		if *raw {
			if err := rawPublish(*broker, *topic, *size, time.Now().Add(*warm+*dur)); err != nil {
				fail(err)
			}
			return
		}
		c := mqtt.NewClient(opts)
		if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			fail(t.Error())
		}
		payload := make([]byte, *size)
		for i := range payload {
			payload[i] = 'x'
		}
		deadline := time.Now().Add(*warm + *dur)
		for i := 0; time.Now().Before(deadline); i++ {
			t := c.Publish(fmt.Sprintf("%s/%d", *topic, i%100), byte(*qos), false, payload)
			if *qos > 0 && i%100 == 0 {
				t.Wait()
			}
		}
		c.Disconnect(100)
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}

func measure(n *atomic.Int64, warm, dur time.Duration) {
	time.Sleep(warm)
	start, n0 := time.Now(), n.Load()
	time.Sleep(dur)
	got := n.Load() - n0
	fmt.Printf("received %d messages in %s: %.0f msg/s\n", got, time.Since(start).Round(time.Millisecond), float64(got)/time.Since(start).Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mqttload:", err)
	os.Exit(1)
}
