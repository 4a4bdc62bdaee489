// Package gateway wires one running gateway together: it loads and checks a
// configuration (Plan), then runs the embedded broker, the device runners,
// the bridges and the HTTP endpoints, reloads devices and bridges on
// request, and shuts everything down in order.
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

// ShutdownTimeout bounds how long device runners get to stop: runners
// that do not return by then (a read stuck in a driver) are abandoned.
const ShutdownTimeout = 3 * time.Second

// statusFlush is how long a clean stop leaves the broker's write loops to
// deliver the last status messages before closing connections.
const statusFlush = 200 * time.Millisecond

// Options are the process-level inputs of a gateway.
type Options struct {
	Log     *slog.Logger
	Version string
	Now     func() time.Time
	// Ready, when set, is called once the buffers are recovered, the
	// broker listens and the runners started (systemd's READY=1).
	Ready func()
	// Reload delivers requests to re-read the configuration file (SIGHUP).
	Reload <-chan struct{}
	// Watchdog, when set, is called every WatchdogInterval from the main
	// loop after a health check, so a stuck loop stops the calls.
	Watchdog         func()
	WatchdogInterval time.Duration
}

// Gateway is one running gateway.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	broker  atomic.Pointer[broker.Broker]
	ready   atomic.Bool
	started time.Time
	httpLn  atomic.Pointer[net.Listener]

	// plan is the configuration in force; gen its devices; stores the
	// bridges. Run and reload own them; Status reads them under mu.
	mu     sync.RWMutex
	plan   *Plan
	gen    *generation
	stores *bridgeSet
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
	// Buffers are recovered before any listener opens, so that the first
	// accepted publish already has somewhere durable to go.
	stores := newBridgeSet(g.log, g.opts.Now, g.metrics.reg)
	g.mu.Lock()
	g.stores = stores
	g.mu.Unlock()
	if err := g.stores.apply(f, b); err != nil {
		g.stores.close()
		return err
	}
	defer g.stores.close()
	if err := b.AddStore(g.stores); err != nil {
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
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}()
	}

	// The gateway's own status is published as StatusOrigin: never buffered,
	// so a stale "offline" is not replayed to the cloud after a restart.
	if err := b.PublishAs(broker.StatusOrigin, g.plan.StatusTopic(), []byte("online"), true, 1); err != nil {
		return fmt.Errorf("publish gateway status: %w", err)
	}
	g.stores.start()
	gen, err := g.startGeneration(g.plan, b)
	if err != nil {
		g.stores.stop()
		return err
	}
	g.mu.Lock()
	g.gen = gen
	g.mu.Unlock()

	g.ready.Store(true)
	g.log.Info("gateway running", "id", f.Gateway.ID, "devices", len(gen.sinks), "bridges", len(f.Bridges), "version", g.opts.Version)
	if g.opts.Ready != nil {
		g.opts.Ready()
	}

	var watchdog <-chan time.Time
	if g.opts.Watchdog != nil && g.opts.WatchdogInterval > 0 {
		t := time.NewTicker(g.opts.WatchdogInterval)
		defer t.Stop()
		watchdog = t.C
	}
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-g.opts.Reload:
			g.reload(b)
		case <-watchdog:
			if g.healthy(b) {
				g.opts.Watchdog()
			}
		}
	}

	g.ready.Store(false)
	g.log.Info("shutting down")
	g.mu.RLock()
	gen = g.gen
	g.mu.RUnlock()
	gen.stop(g.log)
	if err := b.PublishAs(broker.StatusOrigin, g.plan.StatusTopic(), []byte("offline"), true, 1); err != nil {
		g.log.Warn("publish gateway status", "err", err)
	}
	if b.Clients() > 0 {
		// mochi drops what is still queued for a client when it closes, and
		// does not expose the queues: give its write loops a moment to send
		// the "offline" status to connected subscribers.
		time.Sleep(statusFlush)
	}
	// Bridges stop after the devices, so that the last readings are
	// buffered; each waits briefly for PUBACKs of what is in flight.
	g.stores.stop()
	return nil
}

// healthy is the watchdog's check that the broker still takes messages.
func (g *Gateway) healthy(b *broker.Broker) bool {
	err := b.PublishAs(broker.StatusOrigin, "$fieldbridge/watchdog", nil, false, 0)
	if err != nil {
		g.log.Error("watchdog: broker does not accept messages", "err", err)
		return false
	}
	return true
}

// generation is one configuration's devices: their sinks, command routes
// and runners. A reload stops one generation and starts the next.
type generation struct {
	sinks      []*deviceSink
	cmdTopics  []string
	broker     *broker.Broker
	collectors []prometheus.Collector
	metrics    *metrics
	cancel     context.CancelFunc
	done       chan struct{}
}

func (g *Gateway) startGeneration(plan *Plan, b *broker.Broker) (*generation, error) {
	f := plan.File
	gen := &generation{broker: b, metrics: g.metrics, done: make(chan struct{})}
	gen.sinks, gen.collectors = g.buildSinks(plan, b)
	sinks := make(map[string]adapters.Sink, len(gen.sinks))
	for _, s := range gen.sinks {
		sinks[s.name] = s
	}
	cmdr := newCommander(plan, b, g.log.With("component", "commands"), g.opts.Now)
	for topic := range cmdr.points {
		if err := b.Subscribe(topic, subscriptionID, cmdr.handle); err != nil {
			gen.unsubscribe(g.log)
			return nil, fmt.Errorf("commands: %w", err)
		}
		gen.cmdTopics = append(gen.cmdTopics, topic)
	}
	env := adapters.Env{
		Log:      g.log,
		Now:      g.opts.Now,
		Sink:     func(device string) adapters.Sink { return sinks[device] },
		Commands: cmdr.queue,
		StateDir: func(device string) string { return filepath.Join(f.Gateway.DataDir, "state", device) },
	}
	for _, s := range gen.sinks {
		if err := os.MkdirAll(env.StateDir(s.name), 0o750); err != nil {
			gen.unsubscribe(g.log)
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	gen.cancel = cancel
	var wg sync.WaitGroup
	for _, r := range plan.Registry.Runners(plan.Devices) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, env); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("device runner stopped", "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(gen.done) }()
	return gen, nil
}

// subscriptionID tells the gateway's command subscriptions apart from
// other inline subscriptions to the same filters.
const subscriptionID = 1

func (gen *generation) unsubscribe(log *slog.Logger) {
	for _, t := range gen.cmdTopics {
		if err := gen.broker.Unsubscribe(t, subscriptionID); err != nil {
			log.Warn("unsubscribe command topic", "topic", t, "err", err)
		}
	}
	gen.cmdTopics = nil
}

// stop ends the generation's runners (abandoning any stuck past
// ShutdownTimeout) and its command routes.
func (gen *generation) stop(log *slog.Logger) {
	gen.unsubscribe(log)
	gen.cancel()
	select {
	case <-gen.done:
	case <-time.After(ShutdownTimeout):
		log.Warn("device runners did not stop in time", "timeout", ShutdownTimeout)
	}
	for _, c := range gen.collectors {
		gen.metrics.reg.Unregister(c)
	}
}

func (g *Gateway) buildSinks(plan *Plan, b *broker.Broker) ([]*deviceSink, []prometheus.Collector) {
	f := plan.File
	var sinks []*deviceSink
	var collectors []prometheus.Collector
	for _, dev := range plan.Devices.Devices {
		info := dev.Info()
		s := &deviceSink{
			name:   info.Name,
			driver: info.Driver,
			pub:    b,
			now:    g.opts.Now,
			format: plan.Format,
			qos:    byte(*f.Publish.QoS),
			retain: *f.Publish.Retain,
			status: plan.DeviceStatusTopic(info.Name),
			points: make([]pointState, len(info.Points)),
			log:    g.log.With("device", info.Name),
		}
		topics := plan.Topics[info.Name]
		for i, p := range info.Points {
			s.points[i] = pointState{point: p, topic: topics[i], reporter: mappings.NewReporter(p.Deadband, p.Heartbeat)}
		}
		g.metrics.bind(s)
		sinks = append(sinks, s)
		// Drivers with their own metrics (requests, latency) expose them per device.
		if d, ok := dev.(interface{ Collector() prometheus.Collector }); ok {
			c := d.Collector()
			if err := g.metrics.reg.Register(c); err != nil {
				g.log.Warn("driver metrics", "device", info.Name, "err", err)
			} else {
				collectors = append(collectors, c)
			}
		}
	}
	return sinks, collectors
}
