// Package gateway wires one running gateway together: it loads and checks a
// configuration (Plan), then runs the embedded broker, the device runners,
// the bridges and the HTTP endpoints, and shuts them down in order.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/mappings"
	"github.com/prometheus/client_golang/prometheus"
)

// ShutdownTimeout bounds a graceful stop: runners that do not return by
// then (a read stuck in a driver) are abandoned.
const ShutdownTimeout = 4 * time.Second

// Options are the process-level inputs of a gateway.
type Options struct {
	Log     *slog.Logger
	Version string
	Now     func() time.Time
	// Ready, when set, is called once the broker listens and the runners
	// started (systemd's READY=1).
	Ready func()
}

// Gateway is one running gateway.
type Gateway struct {
	plan    *Plan
	opts    Options
	log     *slog.Logger
	metrics *metrics
	sinks   []*deviceSink
	broker  atomic.Pointer[broker.Broker]
	ready   atomic.Bool
	started time.Time
	httpLn  atomic.Pointer[net.Listener]
}

// New prepares a gateway for a checked plan; it does no I/O.
func New(plan *Plan, opts Options) *Gateway {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Gateway{plan: plan, opts: opts, log: opts.Log}
	g.metrics = newMetrics(func() float64 {
		if b := g.broker.Load(); b != nil {
			return float64(b.Clients())
		}
		return 0
	})
	return g
}

// HTTPAddr is the address the HTTP endpoint listens on, once running.
func (g *Gateway) HTTPAddr() net.Addr {
	if ln := g.httpLn.Load(); ln != nil {
		return (*ln).Addr()
	}
	return nil
}

// Broker is the embedded broker, once started.
func (g *Gateway) Broker() *broker.Broker { return g.broker.Load() }

// Run starts everything and blocks until ctx ends, then shuts down.
func (g *Gateway) Run(ctx context.Context) error {
	f := g.plan.File
	g.started = g.opts.Now().UTC()
	lock, err := lockDir(f.Gateway.DataDir)
	if err != nil {
		return err
	}
	defer lock.release()

	b, err := broker.New(f.Broker, g.log.With("component", "broker"))
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		b.Close()
		return err
	}
	g.broker.Store(b)
	defer b.Close()

	var srv *http.Server
	if f.HTTP.Address != "" {
		ln, err := net.Listen("tcp", f.HTTP.Address)
		if err != nil {
			return fmt.Errorf("http.address: %w", err)
		}
		g.httpLn.Store(&ln)
		srv = &http.Server{Handler: g.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("http server stopped", "err", err)
			}
		}()
	}

	if err := b.Publish(g.plan.StatusTopic(), []byte("online"), true, 1); err != nil {
		return fmt.Errorf("publish gateway status: %w", err)
	}
	g.buildSinks(b)
	cmdr := newCommander(g.plan, b, g.log.With("component", "commands"), g.opts.Now)
	id := 0
	for topic := range cmdr.points {
		id++
		if err := b.Subscribe(topic, id, cmdr.handle); err != nil {
			return fmt.Errorf("commands: %w", err)
		}
	}

	runCtx, stopRunners := context.WithCancel(ctx)
	defer stopRunners()
	var wg sync.WaitGroup
	env := adapters.Env{
		Log: g.log,
		Now: g.opts.Now,
		Sink: func(device string) adapters.Sink {
			for _, s := range g.sinks {
				if s.name == device {
					return s
				}
			}
			return nil
		},
		Commands: cmdr.queue,
		StateDir: func(device string) string { return filepath.Join(f.Gateway.DataDir, "state", device) },
	}
	for _, s := range g.sinks {
		if err := os.MkdirAll(env.StateDir(s.name), 0o750); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
	}
	for _, r := range g.plan.Registry.Runners(g.plan.Devices) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(runCtx, env); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("device runner stopped", "err", err)
			}
		}()
	}
	g.ready.Store(true)
	g.log.Info("gateway running", "id", f.Gateway.ID, "devices", len(g.sinks), "version", g.opts.Version)
	if g.opts.Ready != nil {
		g.opts.Ready()
	}

	<-ctx.Done()
	g.ready.Store(false)
	g.log.Info("shutting down")
	stopRunners()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(ShutdownTimeout):
		g.log.Warn("device runners did not stop in time", "timeout", ShutdownTimeout)
	}
	if err := b.Publish(g.plan.StatusTopic(), []byte("offline"), true, 1); err != nil {
		g.log.Warn("publish gateway status", "err", err)
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	return nil
}

func (g *Gateway) buildSinks(b *broker.Broker) {
	f := g.plan.File
	for _, dev := range g.plan.Devices.Devices {
		info := dev.Info()
		s := &deviceSink{
			name:   info.Name,
			driver: info.Driver,
			pub:    b,
			format: g.plan.Format,
			qos:    byte(*f.Publish.QoS),
			retain: *f.Publish.Retain,
			status: g.plan.DeviceStatusTopic(info.Name),
			points: make([]pointState, len(info.Points)),
		}
		topics := g.plan.Topics[info.Name]
		for i, p := range info.Points {
			s.points[i] = pointState{point: p, topic: topics[i], reporter: mappings.NewReporter(p.Deadband, p.Heartbeat)}
		}
		g.metrics.bind(s)
		g.sinks = append(g.sinks, s)
		// Drivers with their own metrics (requests, latency) expose them per device.
		if c, ok := dev.(interface{ Collector() prometheus.Collector }); ok {
			if err := g.metrics.reg.Register(c.Collector()); err != nil {
				g.log.Warn("driver metrics", "device", info.Name, "err", err)
			}
		}
	}
}
