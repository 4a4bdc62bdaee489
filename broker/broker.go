package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fieldbridge/gateway/config"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Limits the broker sets on mochi instead of its defaults.
const (
	// MaxPacketSize bounds an incoming MQTT packet. mochi's default is no
	// limit, and it allocates the size a packet header announces before
	// reading the body, CONNECT included: one unauthenticated socket could
	// claim 256 MB.
	MaxPacketSize = 1 << 20

	// SessionExpiry is the longest a disconnected persistent session (and
	// its queued QoS 1/2 messages) is kept. mochi's default is 136 years,
	// so every client id ever used with clean session off stays in memory.
	SessionExpiry = 7 * 24 * 60 * 60

	// sysInterval is the period in seconds of the $SYS topics, mosquitto's
	// default; mochi's 1 s reads runtime.MemStats every second.
	sysInterval = 10
)

// Errors callers can tell apart.
var (
	// ErrClosed is returned by calls on a closed broker.
	ErrClosed = errors.New("broker: closed")
	// ErrInvalidTopic is returned by Publish for a topic with wildcards,
	// a NUL, no characters or more than 65535 bytes.
	ErrInvalidTopic = errors.New("broker: invalid topic")
	// ErrHookNotAllowed is returned by AddHook for a hook that would take
	// part in authentication or ACL checks: mochi admits a client or a
	// topic when any one hook says yes, so such a hook could only widen
	// access past the configured users.
	ErrHookNotAllowed = errors.New("broker: hooks may not authenticate or check ACLs")
)

// Handler receives the messages of an inline subscription: the topic, the
// payload, the retain flag as published (true also for messages served
// from the retained store when subscribing) and the client id of the
// publisher ("inline" for Publish, InlineOrigin(name) for PublishAs).
//
// It runs synchronously in mochi's fan-out, in the publisher's goroutine:
// it must not block, and must copy the payload to keep it (never modify it:
// for a retained message it is the broker's stored copy).
type Handler func(topic string, payload []byte, retained bool, clientID string)

// inlineOriginPrefix starts the client ids of PublishAs; network clients
// may not use it.
const inlineOriginPrefix = mqtt.InlineClientId + "/"

// InlineOrigin is the client id that handlers see for messages published
// with PublishAs(name, ...).
func InlineOrigin(name string) string { return inlineOriginPrefix + name }

// Broker is the embedded MQTT broker: mochi with this package's listeners,
// authentication and ACLs, and an inline API for the rest of the gateway.
type Broker struct {
	cfg    config.Broker
	log    *slog.Logger
	server *mqtt.Server
	auth   *authHook
	gate   *connGate

	// connectTimeout bounds accept-to-CONNECT; tests shorten it.
	connectTimeout time.Duration

	mu      sync.Mutex
	started bool
	addrs   map[string]net.Addr

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	origins sync.Map // name → *mqtt.Client, the inline clients of PublishAs

	guard *retainGuard
}

// New checks the configuration with config.CheckBroker, refusing it with
// that error (a config.Errors), and builds the broker. It does no I/O:
// certificate files are read and sockets bound by Start.
func New(cfg config.Broker, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := config.CheckBroker(cfg); err != nil {
		return nil, err
	}
	users, specs := authTables(cfg)
	maxClients := cfg.ClientLimit()

	caps := mqtt.NewDefaultServerCapabilities()
	// max_clients is enforced by the auth hook (see holdClientSlot), so
	// mochi's MaximumClients stays unlimited: one count, without mochi's
	// check-then-count race.
	//
	// mochi's default maximum message expiry (one day) deletes every
	// retained message a day after it was published: the last value of a
	// point that has not changed, or a device's "online", would vanish.
	// 0 leaves expiry to the publisher (MQTT 5 message expiry).
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumSessionExpiryInterval = SessionExpiry
	caps.MaximumPacketSize = MaxPacketSize

	server := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		InlineClient:           true,
		SysTopicResendInterval: sysInterval,
		Logger:                 slog.New(newMochiHandler(log.Handler())).With("library", "mochi"),
	})
	b := &Broker{
		cfg:    cfg,
		log:    log,
		server: server,
		gate:   &connGate{limit: int64(maxClients) + connHeadroom, log: log},
		addrs:  map[string]net.Addr{},

		connectTimeout: connectTimeout,
	}
	b.auth = &authHook{
		log:       log,
		server:    server,
		users:     users,
		listeners: specs,
		allowAnon: cfg.Anonymous(),

		maxClients: int64(maxClients),
	}
	if err := server.AddHook(b.auth, nil); err != nil {
		return nil, fmt.Errorf("broker: adding the auth hook: %w", err)
	}
	b.guard = &retainGuard{}
	if err := server.AddHook(b.guard, nil); err != nil {
		return nil, fmt.Errorf("broker: adding the retain guard: %w", err)
	}
	return b, nil
}

// Start binds every listener and starts serving. It returns once all
// listeners accept connections, or with the first error, naming the
// listener and its address; listeners bound before the error are closed.
// Serving goes on until Close; ctx bounds only the start. Start runs once:
// after a failure, Close the broker and build a new one.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.started {
		return errors.New("broker: already started")
	}
	b.started = true

	type bound struct {
		l     listeners.Listener
		track *trackListener
	}
	var opened []bound
	fail := func(err error) error {
		for _, o := range opened {
			o.track.Close()
		}
		return err
	}
	for _, lc := range b.cfg.Listeners {
		tlsCfg, err := loadTLS(lc)
		if err != nil {
			return fail(fmt.Errorf("broker: listener %q: %w", lc.Name, err))
		}
		var lcfg net.ListenConfig
		ln, err := lcfg.Listen(ctx, "tcp", lc.Address)
		if err != nil {
			return fail(listenError(lc, err))
		}
		track := newTrackListener(ln, b.gate, b.connectTimeout)
		log := b.log.With("listener", lc.Name)
		var l listeners.Listener
		switch lc.Type {
		case TypeWebsocket:
			l = newWSListener(lc.Name, track, tlsCfg, lc.AllowedOrigins, log)
		default:
			l = &netListener{id: lc.Name, proto: lc.Type, track: track, tlsCfg: tlsCfg, log: log}
		}
		opened = append(opened, bound{l, track})
	}
	for _, o := range opened {
		if err := b.server.AddListener(o.l); err != nil {
			return fail(fmt.Errorf("broker: listener %q: %w", o.l.ID(), err))
		}
	}
	if err := b.server.Serve(); err != nil {
		// The listeners now belong to mochi; Close releases them.
		return fmt.Errorf("broker: starting mochi: %w", err)
	}
	for _, o := range opened {
		b.addrs[o.l.ID()] = o.track.Addr()
		b.log.Info("broker: listening", "listener", o.l.ID(), "protocol", o.l.Protocol(), "address", o.l.Address())
	}
	return nil
}

// listenError explains a failed bind, naming the listener and address.
func listenError(lc config.Listener, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("broker: listener %q: cannot listen on %s: the address is already in use "+
			"(is another MQTT broker, such as mosquitto, running?): %w", lc.Name, lc.Address, err)
	}
	return fmt.Errorf("broker: listener %q: cannot listen on %s: %w", lc.Name, lc.Address, err)
}

// CheckFiles reads a listener's certificate files as Start reads them, for
// `gateway validate`.
func CheckFiles(lc config.Listener) error {
	_, err := loadTLS(lc)
	return err
}

// loadTLS reads a listener's certificate files; nil for a plaintext one.
func loadTLS(lc config.Listener) (*tls.Config, error) {
	if lc.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(lc.CertFile, lc.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading cert_file %s and key_file %s: %w", lc.CertFile, lc.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if lc.ClientCAFile != "" {
		pem, err := os.ReadFile(lc.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", lc.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Addr returns the bound address of the named listener (the real port when
// the configuration says :0), or nil before Start or for an unknown name.
func (b *Broker) Addr(name string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[name]
}

// Close disconnects every client, closes the listeners and stops the hooks.
// It is safe before Start, after a failed Start, and more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		// Taking the lock waits for a Start in progress.
		b.mu.Lock()
		defer b.mu.Unlock()
		b.closeErr = b.server.Close()
	})
	return b.closeErr
}

// Clients is the number of connected network clients, as counted against
// max_clients.
func (b *Broker) Clients() int {
	return int(b.auth.clients.Load())
}

// AddHook adds a mochi hook, such as one that stores a message before the
// PUBACK. Hooks run in the order added, after the auth hook. A hook that
// provides OnConnectAuthenticate or OnACLCheck is refused with
// ErrHookNotAllowed. Add hooks before Start: mochi calls OnStarted and
// loads stored state only for hooks present then.
func (b *Broker) AddHook(h mqtt.Hook, cfg any) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if h.Provides(mqtt.OnConnectAuthenticate) || h.Provides(mqtt.OnACLCheck) {
		return fmt.Errorf("%w: %s", ErrHookNotAllowed, h.ID())
	}
	if err := b.server.AddHook(h, cfg); err != nil {
		return fmt.Errorf("broker: adding hook %s: %w", h.ID(), err)
	}
	return nil
}

// Publish delivers a message from the gateway itself (client id "inline")
// to the matching subscribers and, with retain, to the retained store.
//
// Inline publishes bypass the ACLs (check Allowed first when acting for a
// user) and mochi handles them as QoS 0 internally: qos only caps the QoS
// of the copies sent to subscribers, nothing is acknowledged, and a
// subscriber whose outbound queue is full loses the message. Publish
// returns once the message is queued for every subscriber; payload is
// copied and may be reused. Hooks see it in OnPublish; mochi logs an
// OnPublish error for an inline message and delivers it anyway.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if err := b.checkPublish(topic, qos); err != nil {
		return err
	}
	if retain {
		b.guard.mu.Lock()
		defer b.guard.mu.Unlock()
	}
	if err := b.server.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publish to %q: %w", topic, err)
	}
	return nil
}

// PublishAs is Publish with the message marked as coming from origin:
// handlers and hooks see the client id InlineOrigin(origin). A bridge uses
// it so that it can recognise, and not forward back, what it injected.
func (b *Broker) PublishAs(origin, topic string, payload []byte, retain bool, qos byte) error {
	if origin == "" {
		return errors.New("broker: PublishAs needs an origin")
	}
	if err := b.checkPublish(topic, qos); err != nil {
		return err
	}
	cl, ok := b.origins.Load(origin)
	if !ok {
		cl, _ = b.origins.LoadOrStore(origin, b.server.NewClient(nil, mqtt.LocalListener, InlineOrigin(origin), true))
	}
	if retain {
		b.guard.mu.Lock()
		defer b.guard.mu.Unlock()
	}
	err := b.server.InjectPacket(cl.(*mqtt.Client), packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain},
		TopicName:   topic,
		Payload:     payload,
		PacketID:    uint16(qos), // as mochi's Publish: QoS>0 needs a packet id to pass validation
	})
	if err != nil {
		return fmt.Errorf("broker: publish to %q as %s: %w", topic, origin, err)
	}
	return nil
}

func (b *Broker) checkPublish(topic string, qos byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if !validTopic(topic) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	if qos > 2 {
		return fmt.Errorf("broker: publish to %q: QoS %d is not 0, 1 or 2", topic, qos)
	}
	return nil
}

// Subscribe adds an inline subscription: handler receives every message
// matching filter, first the retained ones (synchronously, before Subscribe
// returns). id tells apart several subscriptions to one filter.
func (b *Broker) Subscribe(filter string, id int, handler Handler) error {
	if handler == nil {
		return errors.New("broker: Subscribe needs a handler")
	}
	if !validFilter(filter) {
		return fmt.Errorf("broker: subscribe: %q is not a valid topic filter", filter)
	}
	// The retained messages are delivered inside Subscribe: see retainGuard.
	b.guard.mu.RLock()
	defer b.guard.mu.RUnlock()
	err := b.server.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, pk.Payload, pk.FixedHeader.Retain, pk.Origin)
	})
	if err != nil {
		return fmt.Errorf("broker: subscribe to %q: %w", filter, err)
	}
	return nil
}

// Unsubscribe removes the inline subscription made with the same filter
// and id.
func (b *Broker) Unsubscribe(filter string, id int) error {
	if err := b.server.Unsubscribe(filter, id); err != nil {
		return fmt.Errorf("broker: unsubscribe from %q: %w", filter, err)
	}
	return nil
}

// Allowed reports whether the configured user may publish to topic. It is
// for inline publishers acting on a user's behalf (a bridge's in-routes),
// since inline publishes skip the ACLs. Unknown users may publish nothing.
func (b *Broker) Allowed(user, topic string) bool {
	return b.auth.allowedPublish(user, topic)
}
