package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Local is the embedded broker as a bridge sees it: *broker.Broker
// satisfies it.
type Local interface {
	// PublishAs injects a message under the identity origin. It must not
	// block: it runs in the uplink's receive path (broker.Broker queues
	// for each subscriber and returns).
	PublishAs(origin, topic string, payload []byte, retain bool, qos byte) error
	// Allowed reports whether the configured user may publish to topic.
	Allowed(user, topic string) bool
}

var (
	_ Local        = (*broker.Broker)(nil)
	_ broker.Store = (*Bridge)(nil)
)

// Options are what a bridge gets besides its configuration.
type Options struct {
	// GatewayID replaces {gateway} in client_id.
	GatewayID string
	// Buffer is this bridge's own log, opened (and later closed) by the
	// caller after the bridge stopped.
	Buffer *buffer.Log
	// Local receives what in-routes bring in; needed only with in-routes.
	Local Local
	// Log receives connection events and errors; nil discards.
	Log *slog.Logger
	// Now is the clock of record times and status; nil means time.Now.
	Now func() time.Time
}

// Timing derived from keepalive.
const (
	// unreachableRetry caps the delay between attempts while the cloud's
	// address refuses or drops TCP connections.
	unreachableRetry = time.Second
	// drainWait bounds how long a stopping bridge waits for PUBACKs of what
	// is in flight, to spare duplicates at the next start.
	drainWait = time.Second
	// offlineWait bounds the "offline" status publish at shutdown.
	offlineWait = 500 * time.Millisecond
	// quiesce is what paho may take to send DISCONNECT.
	quiesce = 250 * time.Millisecond
	// liveQueue bounds QoS 0 messages waiting to be sent unbuffered.
	liveQueue = 1024
)

// ErrRunning is returned by a second call to Run.
var ErrRunning = errors.New("bridge: already running")

type outRoute struct {
	filter string
	qos    byte
	prefix string
	batch  *batchRoute // nil: one message per record
}

// sends reports whether Store would have sent a local topic under r as
// the remote topic: the same test as Store's, on the local topic r would
// have had. The sender, which has only the remote topic, takes the first
// route that sends it, as Store takes the first that matches.
func (r *outRoute) sends(remote string) bool {
	local, ok := strings.CutPrefix(remote, r.prefix)
	return ok && mappings.MatchFilter(r.filter, local)
}

type inRoute struct {
	filter string
	qos    byte
	strip  string
}

// Bridge is one uplink to a cloud broker: a broker.Store that buffers the
// messages of its out-routes, and the client that sends them and brings in
// the messages of its in-routes. Every method is safe for concurrent use.
type Bridge struct {
	name       string
	cfg        config.Bridge
	ep         endpoint
	publicURL  string
	clientID   string
	origin     string // broker.InlineOrigin(name): what the bridge injected
	out        []outRoute
	in         []inRoute
	inflight   int
	bufferQoS0 bool
	maxPayload int
	// subscribeChunk caps the filters of one SUBSCRIBE (0: no cap).
	subscribeChunk int

	keepalive      time.Duration
	pingTimeout    time.Duration
	connectTimeout time.Duration
	writeTimeout   time.Duration

	buf   *buffer.Log
	local Local
	log   *slog.Logger
	now   func() time.Time
	limit *limiter
	dial  dialFunc
	live  chan liveMsg
	recs  sync.Pool // *[]byte record buffers

	running atomic.Bool
	hol     headOfLine
	st      counters
	status  statusState
	drain   drainWatch
	limits  Limits
	logs    logLimits
}

type liveMsg struct {
	topic   string
	payload []byte
	retain  bool
}

// New builds a bridge for a configuration checked by config.Load; settings
// left unset are filled in by cfg.WithDefaults, as Load does. It does no
// I/O: certificates and password_file are read at each connection attempt
// by Run.
func New(cfg config.Bridge, opts Options) (*Bridge, error) {
	if opts.Buffer == nil {
		return nil, fmt.Errorf("bridge %s: Options.Buffer is nil", cfg.Name)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if cfg.Name == "" {
		return nil, errors.New("bridge: the configuration has no name")
	}
	cfg = cfg.WithDefaults()
	// config.Load refuses these; from a hand-built configuration they
	// would make a negative channel size or retries without a pause.
	if cfg.Inflight < 1 || cfg.MaxPayload < 1 || cfg.Keepalive < 0 || cfg.Reconnect.Min <= 0 {
		return nil, fmt.Errorf("bridge %s: inflight (%d), max_payload (%d) and reconnect.min (%s) must be positive and keepalive (%s) not negative",
			cfg.Name, cfg.Inflight, cfg.MaxPayload, cfg.Reconnect.Min, cfg.Keepalive)
	}
	ep, err := parseEndpoint(cfg.URL, cfg.TLS.ServerName)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	if ep.proxy, err = config.ParseProxy(cfg.Proxy); err != nil {
		return nil, fmt.Errorf("bridge %s: proxy: %w", cfg.Name, err)
	}
	if !ep.secure() && cfg.TLS != (config.TLS{}) {
		return nil, fmt.Errorf("bridge %s: tls settings need an mqtts:// or wss:// URL", cfg.Name)
	}
	u, _ := url.Parse(cfg.URL)
	u.User = nil
	if !ep.secure() && !cfg.InsecurePlaintext && !config.IsLoopback(ep.addr) {
		return nil, fmt.Errorf("bridge %s: %s sends data in clear text; use mqtts:// or wss://, or set insecure_plaintext", cfg.Name, u)
	}

	b := &Bridge{
		name:       cfg.Name,
		cfg:        cfg,
		ep:         ep,
		publicURL:  u.String(),
		clientID:   cfg.ClientIDFor(opts.GatewayID),
		origin:     broker.InlineOrigin(cfg.Name),
		inflight:   cfg.Inflight,
		bufferQoS0: *cfg.BufferQoS0,
		keepalive:  cfg.Keepalive,
		buf:        opts.Buffer,
		local:      opts.Local,
		log:        opts.Log.With("bridge", cfg.Name),
		now:        opts.Now,
		maxPayload: int(cfg.MaxPayload),
		dial:       (&net.Dialer{}).DialContext,
		live:       make(chan liveMsg, liveQueue),
	}
	if b.clientID == "" {
		return nil, fmt.Errorf("bridge %s: no client_id and no gateway id", cfg.Name)
	}
	prof, ok := config.LookupProfile(cfg.Profile)
	if !ok {
		return nil, fmt.Errorf("bridge %s: unknown profile %q", cfg.Name, cfg.Profile)
	}
	b.subscribeChunk = prof.FiltersPerSubscribe
	rate, byteRate := cfg.MaxRate, float64(cfg.MaxByteRate)
	b.limit = newLimiter(rate, byteRate)
	b.limits = Limits{Profile: prof.Name, MaxRate: rate, MaxByteRate: byteRate, Inflight: b.inflight, MaxPayload: b.maxPayload}
	b.keepalive = max(b.keepalive, time.Second)
	b.pingTimeout = min(max(b.keepalive/2, time.Second), 10*time.Second)
	b.connectTimeout = min(max(b.keepalive, 5*time.Second), 30*time.Second)
	b.writeTimeout = b.connectTimeout
	for i, r := range cfg.Routes {
		if *r.QoS < 0 || *r.QoS > 2 {
			return nil, fmt.Errorf("bridge %s: routes[%d]: qos %d", cfg.Name, i, *r.QoS)
		}
		qos := byte(*r.QoS)
		if err := mappings.ValidTopicFilter(r.Filter); err != nil {
			return nil, fmt.Errorf("bridge %s: routes[%d]: %w", cfg.Name, i, err)
		}
		switch r.Direction {
		case "out":
			route := outRoute{filter: r.Filter, qos: qos, prefix: r.RemotePrefix}
			if bt := r.Batch; bt != nil {
				route.batch = &batchRoute{
					topic:       bt.Topic,
					maxMessages: bt.MaxMessages,
					// config.Load refuses more; a hand-built one is capped.
					maxBytes: min(int(bt.MaxBytes), b.maxPayload),
					maxDelay: bt.MaxDelay,
				}
			}
			b.out = append(b.out, route)
		case "in":
			b.in = append(b.in, inRoute{filter: r.Filter, qos: qos, strip: r.StripPrefix})
		default:
			return nil, fmt.Errorf("bridge %s: routes[%d]: direction %q", cfg.Name, i, r.Direction)
		}
	}
	if len(b.in) > 0 && b.local == nil {
		return nil, fmt.Errorf("bridge %s: in-routes need Options.Local", cfg.Name)
	}
	b.logs.init()
	return b, nil
}

// Name is the bridge's configured name.
func (b *Bridge) Name() string { return b.name }

// Run connects to the cloud broker and keeps connecting until ctx ends:
// it sends the buffer's records, acknowledging each one to the buffer when
// the cloud acknowledged it and every record before it, and brings in the
// messages of the in-routes. When ctx ends it waits briefly for what is in
// flight, publishes "offline" to status_topic, disconnects cleanly and
// returns nil; the whole stop takes at most about two seconds. It returns
// an error only when the buffer is closed under it.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.sampleRates(rctx)
	}()

	bo := newBackoff(b.cfg.Reconnect.Min, b.cfg.Reconnect.Max)
	for {
		b.hol.start()
		cursor, started := b.buf.Stats().Cursor, time.Now()
		connected, err := b.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, buffer.ErrClosed) {
			return fmt.Errorf("bridge %s: %w", b.name, err)
		}
		after := b.buf.Stats().Cursor
		moved := after != cursor
		if stuck := b.hol.ended(connected, moved, b.now()); stuck != nil {
			b.setStuck(stuck)
		} else {
			// Also when the message went while no session ran (max_age,
			// a full buffer).
			b.clearStuck(after)
		}
		switch {
		case !connected:
			b.st.connectFailures.Add(1)
		case moved || time.Since(started) >= healthySession:
			// A session that moved nothing (a cloud that takes the
			// connection and drops it, a message it refuses) gets the
			// backoff too.
			bo.reset()
		}
		var limit time.Duration
		if unreachable(err) {
			limit = unreachableRetry
		}
		delay := bo.next(limit)
		b.setError(err, connected, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// setStuck records the message delivery is stuck behind, and logs when
// that starts.
func (b *Bridge) setStuck(s *Stuck) {
	b.status.mu.Lock()
	was := b.status.stuck
	if was != nil && was.Seq == s.Seq {
		s.Since = was.Since
	}
	b.status.stuck = s
	b.status.stuckFlag.Store(true)
	b.status.mu.Unlock()
	if was == nil || was.Seq != s.Seq {
		b.log.Error("bridge: delivery is stuck: each of the last connections ended waiting for the cloud to acknowledge this message, and the backlog did not move; "+
			"if the cloud refuses it (a packet size limit, a topic its policy denies), allow it there, or set max_payload below its size to drop it",
			"url", b.publicURL, "seq", s.Seq, "topic", s.Topic, "bytes", s.Bytes, "connections", s.Connections)
	}
}

// clearStuck ends the report once the buffer's cursor has passed the
// message delivery was stuck behind.
func (b *Bridge) clearStuck(cursor uint64) {
	b.status.mu.Lock()
	was := b.status.stuck
	if was == nil || cursor <= was.Seq {
		b.status.mu.Unlock()
		return
	}
	b.status.stuck = nil
	b.status.stuckFlag.Store(false)
	b.status.mu.Unlock()
	b.log.Info("bridge: delivery moves again", "url", b.publicURL, "seq", was.Seq)
}

// setError records why a session ended or a connection failed, and logs
// it: every change of error, and a repeated one at most once a minute.
func (b *Bridge) setError(err error, wasConnected bool, retry time.Duration) {
	if err == nil {
		err = errors.New("connection closed")
	}
	msg := err.Error()
	b.status.setError(msg, b.now())
	if wasConnected {
		b.log.Warn("bridge: connection lost", "url", b.publicURL, "err", msg, "retry_in", retry.Round(time.Millisecond))
		return
	}
	if n, ok := b.logs.connect.allow(msg, time.Now()); ok {
		args := []any{"url", b.publicURL, "err", msg, "retry_in", retry.Round(time.Millisecond)}
		if n > 0 {
			args = append(args, "repeated", n)
		}
		b.log.Warn("bridge: cannot connect", args...)
	}
}
