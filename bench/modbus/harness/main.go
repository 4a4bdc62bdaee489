// Command harness runs the Modbus driver on its own and publishes every
// reading to an MQTT broker, the way the gateway's sink would. It stands in
// for the whole gateway in bench/modbus/compare.sh (--harness) while
// cmd/gateway does not run Modbus devices, and measures the driver alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/modbus"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	cfgPath := flag.String("config", "", "gateway configuration file; its devices and publish section are used")
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "MQTT broker to publish to")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	discard := flag.Bool("discard", false, "poll without publishing, to measure the driver alone")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*cfgPath, *broker, *discard); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(cfgPath, broker string, discard bool) error {
	f, err := config.Load(cfgPath, nil)
	if err != nil {
		return err
	}
	reg := adapters.NewRegistry(modbus.Driver{})
	devs := reg.Configure(f)
	if errs := f.Decoder().Errors(); len(errs) > 0 {
		return errs
	}
	tmpl, err := mappings.ParseTemplate(f.Publish.Topic)
	if err != nil {
		return err
	}
	format, err := mappings.ParseFormat(f.Publish.Format)
	if err != nil {
		return err
	}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("fieldbridge-harness-" + f.Gateway.ID).
		SetCleanSession(true).SetAutoReconnect(false)
	client := mqtt.NewClient(opts)
	if t := client.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect %s: %v", broker, t.Error())
	}
	defer client.Disconnect(250)

	sinks := map[string]*sink{}
	for _, d := range devs.Devices {
		info := d.Info()
		s := &sink{client: client, format: format, qos: byte(*f.Publish.QoS), retain: *f.Publish.Retain, discard: discard}
		for _, p := range info.Points {
			s.points = append(s.points, p.Point)
			s.topics = append(s.topics, p.TopicName(tmpl, f.Gateway.ID, info.Name))
		}
		sinks[info.Name] = s
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := adapters.Env{Log: log, Now: time.Now,
		Sink:     func(name string) adapters.Sink { return sinks[name] },
		Commands: func(string) <-chan adapters.Command { return nil }}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error)
	runners := reg.Runners(devs)
	for _, r := range runners {
		go func() { done <- r.Run(ctx, env) }()
	}
	var errs []error
	for range runners {
		errs = append(errs, <-done)
	}
	return errors.Join(errs...)
}

// sink publishes every reading of one device, without deadband.
type sink struct {
	client mqtt.Client
	format mappings.Format
	qos    byte
	retain bool
	points []mappings.Point
	topics []string
	buf    []byte
	// discard drops readings after formatting them.
	discard bool
}

func (s *sink) Report(i int, v mappings.Value, err error, at time.Time) {
	r := mappings.Reading{Value: s.points[i].Apply(v), Unit: s.points[i].Unit, Time: at, Err: err}
	var ok bool
	s.buf, ok = mappings.AppendPayload(s.buf[:0], s.format, r)
	if ok && !s.discard {
		// paho copies the payload into its queue; the token is not waited
		// for, so a slow broker cannot hold the bus.
		s.client.Publish(s.topics[i], s.qos, s.retain, append([]byte(nil), s.buf...))
	}
}

func (s *sink) Polled(error) {}
