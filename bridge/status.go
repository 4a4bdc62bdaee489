package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is a bridge's state for /api/status. Health is LastAck, the time
// of the cloud's last acknowledgement, rather than Connected: a socket can
// look open on a dead link.
type Status struct {
	Name string `json:"name"`
	// URL is the configured URL without credentials.
	URL string `json:"url"`
	// Limits are what the bridge keeps to, after its profile filled the
	// unset ones.
	Limits Limits `json:"limits"`
	// Connected is true while a session is up: the cloud accepted the
	// connection, "online" is published and the in-routes subscribed.
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastAck        time.Time `json:"last_ack,omitzero"`
	Backlog        Backlog   `json:"backlog"`
	// SendRate is the messages a second the cloud acknowledged over the
	// last ten seconds.
	SendRate float64 `json:"send_rate"`
	// Sent counts MQTT messages the cloud acknowledged since start, a
	// batch counting once.
	Sent uint64 `json:"sent"`
	// Delivered counts buffered messages the cloud acknowledged since
	// start, each message of a batch counting once.
	Delivered uint64 `json:"delivered"`
	// Batches counts batches sent since start.
	Batches         uint64  `json:"batches"`
	Drops           Drops   `json:"drops"`
	In              Inbound `json:"in"`
	Connects        uint64  `json:"connects"`
	ConnectFailures uint64  `json:"connect_failures"`
	// StoreErrors counts messages refused because the buffer failed (each
	// disconnected its publisher, who sends it again).
	StoreErrors uint64 `json:"store_errors"`
	// Stuck, when set, is the message every recent connection ended on
	// (see headOfLine): nothing behind it is delivered.
	Stuck         *Stuck    `json:"stuck,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Limits are the bridge's effective limits; 0 means none.
type Limits struct {
	Profile     string  `json:"profile"`
	MaxRate     float64 `json:"max_rate"`
	MaxByteRate float64 `json:"max_byte_rate"`
	Inflight    int     `json:"inflight"`
	MaxPayload  int     `json:"max_payload"`
}

// Backlog is what waits in the buffer for the cloud.
type Backlog struct {
	Messages         uint64  `json:"messages"`
	Bytes            int64   `json:"bytes"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// NotShrinking is true when, over the last minute connected and
	// sending, the backlog did not get smaller: new messages arrive as
	// fast as the bridge may send them, so live data stays behind it.
	NotShrinking bool `json:"not_shrinking"`
}

// Drops counts messages lost on purpose, by reason, since start (Full,
// Age and Corrupt are the buffer's lifetime totals).
type Drops struct {
	Full    uint64 `json:"full"`    // max_bytes reached (drop_oldest or drop_newest)
	Age     uint64 `json:"age"`     // older than max_age
	Corrupt uint64 `json:"corrupt"` // in a corrupt buffer segment
	// BadRecord counts buffer records that could not be decoded.
	BadRecord uint64 `json:"bad_record"`
	// Unsendable counts messages that cannot be sent: the remote topic is
	// too long, or the message is larger than max_bytes.
	Unsendable uint64 `json:"unsendable"`
	// Oversize counts messages larger than max_payload (or than a batch's
	// max_bytes), which the cloud would refuse.
	Oversize uint64 `json:"oversize"`
	// Live counts unbuffered QoS 0 messages (buffer_qos0: false) dropped
	// while disconnected or behind.
	Live uint64 `json:"live"`
	// Looped counts local messages not sent up because one of the
	// bridge's in-routes subscribes to their remote topic: the cloud would
	// send them back.
	Looped uint64 `json:"looped"`
}

// Inbound counts messages the in-routes received from the cloud.
type Inbound struct {
	Received uint64 `json:"received"`
	Injected uint64 `json:"injected"`
	// Refused counts messages not injected: no in-route matched after all,
	// the local topic was invalid, or local_user may not publish there.
	Refused uint64 `json:"refused"`
	// Failed counts messages the local broker did not take.
	Failed uint64 `json:"failed"`
}

type counters struct {
	sent, delivered, batches                    atomic.Uint64
	oversize                                    atomic.Uint64
	connects, connectFailures, storeErrors      atomic.Uint64
	badRecords, unsendable, liveDropped, looped atomic.Uint64
	inReceived, inInjected, inRefused, inFailed atomic.Uint64
}

// rateWindow is how many one-second samples SendRate averages over.
const rateWindow = 10

type statusState struct {
	mu        sync.Mutex
	since     time.Time
	lastAck   time.Time
	lastErr   string
	lastErrAt time.Time
	stuck     *Stuck
	stuckFlag atomic.Bool            // stuck != nil: read without the lock per acknowledgement
	samples   [rateWindow + 1]uint64 // sent, one per second, newest at head
	head, n   int
	connFlag  atomic.Bool // connected: read without the lock by Store
}

func (s *statusState) setConnected(up bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connFlag.Store(up)
	if up {
		s.since = now
	} else {
		s.since = time.Time{}
	}
}

func (s *statusState) isConnected() bool { return s.connFlag.Load() }

func (s *statusState) acked(now time.Time) {
	s.mu.Lock()
	s.lastAck = now
	s.mu.Unlock()
}

func (s *statusState) setError(msg string, now time.Time) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = msg, now
	s.mu.Unlock()
}

func (s *statusState) sample(sent uint64) {
	s.mu.Lock()
	s.head = (s.head + 1) % len(s.samples)
	s.samples[s.head] = sent
	s.n = min(s.n+1, len(s.samples))
	s.mu.Unlock()
}

// rate is SendRate.
func (s *statusState) rate() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLocked()
}

// rateLocked is the average over the samples kept, in messages a second.
func (s *statusState) rateLocked() float64 {
	if s.n < 2 {
		return 0
	}
	oldest := (s.head - (s.n - 1) + len(s.samples)) % len(s.samples)
	return float64(s.samples[s.head]-s.samples[oldest]) / float64(s.n-1)
}

// sampleRates feeds SendRate once a second, and watches whether the
// backlog drains, until ctx ends.
func (b *Bridge) sampleRates(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	b.status.sample(b.st.sent.Load())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.status.sample(b.st.sent.Load())
			bs := b.buf.Stats()
			if b.drain.observe(now, b.status.isConnected(), bs.Messages, b.st.delivered.Load()) {
				b.log.Warn("bridge: the backlog does not shrink: messages arrive as fast as the bridge may send them, so live data waits behind the backlog; batch the out-routes (batch:) or raise max_rate if the cloud allows",
					"backlog", bs.Messages, "max_rate", b.cfg.MaxRate, "send_rate", b.status.rate())
			}
		}
	}
}

// drainWindow is how long a connected bridge with a backlog is watched
// before it says whether the backlog shrinks; drainWarnEvery spaces the
// warnings.
const (
	drainWindow    = time.Minute
	drainWarnEvery = 10 * time.Minute
)

// drainWatch tells whether a backlog drains while the bridge sends.
type drainWatch struct {
	mu        sync.Mutex
	since     time.Time // start of the current window; zero when not watching
	backlog   uint64    // at since
	delivered uint64    // at since
	stuck     bool      // the last full window did not shrink the backlog
	warned    time.Time
}

// observe takes one sample and reports whether to warn that the backlog
// does not shrink.
func (w *drainWatch) observe(now time.Time, connected bool, backlog, delivered uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !connected || backlog == 0 {
		w.since, w.stuck = time.Time{}, false
		return false
	}
	if w.since.IsZero() {
		w.since, w.backlog, w.delivered = now, backlog, delivered
		return false
	}
	if now.Sub(w.since) < drainWindow {
		return false
	}
	// Sending, and yet no smaller: a stalled link is reported elsewhere.
	w.stuck = delivered > w.delivered && backlog >= w.backlog
	w.since, w.backlog, w.delivered = now, backlog, delivered
	if w.stuck && (w.warned.IsZero() || now.Sub(w.warned) >= drainWarnEvery) {
		w.warned = now
		return true
	}
	return false
}

func (w *drainWatch) notShrinking() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stuck
}

// Status returns the bridge's current state.
func (b *Bridge) Status() Status {
	bs := b.buf.Stats()
	st := Status{
		Name:   b.name,
		URL:    b.publicURL,
		Limits: b.limits,
		Backlog: Backlog{
			Messages:         bs.Messages,
			Bytes:            bs.Bytes,
			OldestAgeSeconds: bs.OldestAge.Seconds(),
			NotShrinking:     b.drain.notShrinking(),
		},
		Sent:      b.st.sent.Load(),
		Delivered: b.st.delivered.Load(),
		Batches:   b.st.batches.Load(),
		Drops: Drops{
			Full:       bs.Dropped.Full,
			Age:        bs.Dropped.Age,
			Corrupt:    bs.Dropped.Corrupt,
			BadRecord:  b.st.badRecords.Load(),
			Unsendable: b.st.unsendable.Load(),
			Oversize:   b.st.oversize.Load(),
			Live:       b.st.liveDropped.Load(),
			Looped:     b.st.looped.Load(),
		},
		In: Inbound{
			Received: b.st.inReceived.Load(),
			Injected: b.st.inInjected.Load(),
			Refused:  b.st.inRefused.Load(),
			Failed:   b.st.inFailed.Load(),
		},
		Connects:        b.st.connects.Load(),
		ConnectFailures: b.st.connectFailures.Load(),
		StoreErrors:     b.st.storeErrors.Load(),
	}
	s := &b.status
	s.mu.Lock()
	st.Connected = s.connFlag.Load()
	st.ConnectedSince = s.since
	st.LastAck = s.lastAck
	st.Stuck = s.stuck
	st.LastError = s.lastErr
	st.LastErrorTime = s.lastErrAt
	st.SendRate = s.rateLocked()
	s.mu.Unlock()
	return st
}

// Collectors returns the bridge's Prometheus metrics, labelled with its
// name, for the caller to register: nothing is registered globally.
func (b *Bridge) Collectors() []prometheus.Collector {
	return []prometheus.Collector{newCollector(b)}
}

type collector struct {
	b      *Bridge
	descs  map[string]*prometheus.Desc
	labels prometheus.Labels
}

func newCollector(b *Bridge) *collector {
	// The drops series has a reason label.
	defs := []struct{ name, help string }{
		{"fieldbridge_bridge_connected", "1 while the bridge is connected to the cloud broker."},
		{"fieldbridge_bridge_last_ack_timestamp_seconds", "Unix time of the cloud's last acknowledgement."},
		{"fieldbridge_bridge_backlog_messages", "Messages in the buffer waiting for the cloud."},
		{"fieldbridge_bridge_backlog_bytes", "Bytes of the buffer's retained segments."},
		{"fieldbridge_bridge_oldest_age_seconds", "Age of the oldest message waiting for the cloud."},
		{"fieldbridge_bridge_backlog_not_shrinking", "1 when the backlog did not shrink over the last minute of sending."},
		{"fieldbridge_bridge_stuck", "1 while every recent connection ended waiting for the same message and the backlog did not move (see /api/status)."},
		{"fieldbridge_bridge_sent_total", "MQTT messages the cloud acknowledged (a batch counts once)."},
		{"fieldbridge_bridge_delivered_total", "Buffered messages the cloud acknowledged, alone or in a batch."},
		{"fieldbridge_bridge_batches_total", "Batches sent."},
		{"fieldbridge_bridge_dropped_total", "Messages dropped, by reason."},
		{"fieldbridge_bridge_connects_total", "Connections the cloud accepted."},
		{"fieldbridge_bridge_connect_failures_total", "Connection attempts that failed."},
		{"fieldbridge_bridge_store_errors_total", "Messages refused because the buffer failed."},
		{"fieldbridge_bridge_in_received_total", "Messages received from the cloud on in-routes."},
		{"fieldbridge_bridge_in_injected_total", "In-route messages published to the local broker."},
		{"fieldbridge_bridge_in_refused_total", "In-route messages refused (topic or local_user ACL)."},
		{"fieldbridge_bridge_in_failed_total", "In-route messages the local broker did not take."},
		{"fieldbridge_bridge_buffer_fsyncs_total", "fsync calls of the bridge's buffer since start."},
	}

	c := &collector{b: b, descs: map[string]*prometheus.Desc{}, labels: prometheus.Labels{"bridge": b.name}}
	for _, d := range defs {
		var vars []string
		if d.name == "fieldbridge_bridge_dropped_total" {
			vars = []string{"reason"}
		}
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, vars, c.labels)
	}
	return c
}

// Describe sends the descriptions of every series.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Status()
	fsyncs := c.b.buf.Stats().Fsyncs
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	gauge("fieldbridge_bridge_connected", connected)
	if !st.LastAck.IsZero() {
		gauge("fieldbridge_bridge_last_ack_timestamp_seconds", float64(st.LastAck.UnixNano())/1e9)
	}
	gauge("fieldbridge_bridge_backlog_messages", float64(st.Backlog.Messages))
	gauge("fieldbridge_bridge_backlog_bytes", float64(st.Backlog.Bytes))
	gauge("fieldbridge_bridge_oldest_age_seconds", st.Backlog.OldestAgeSeconds)
	stuck := 0.0
	if st.Backlog.NotShrinking {
		stuck = 1
	}
	gauge("fieldbridge_bridge_backlog_not_shrinking", stuck)
	blocked := 0.0
	if st.Stuck != nil {
		blocked = 1
	}
	gauge("fieldbridge_bridge_stuck", blocked)
	counter("fieldbridge_bridge_sent_total", st.Sent)
	counter("fieldbridge_bridge_delivered_total", st.Delivered)
	counter("fieldbridge_bridge_batches_total", st.Batches)
	d := st.Drops
	for reason, v := range map[string]uint64{
		"full": d.Full, "age": d.Age, "corrupt": d.Corrupt, "bad_record": d.BadRecord,
		"unsendable": d.Unsendable, "oversize": d.Oversize, "live": d.Live, "looped": d.Looped,
	} {
		counter("fieldbridge_bridge_dropped_total", v, reason)
	}
	counter("fieldbridge_bridge_connects_total", st.Connects)
	counter("fieldbridge_bridge_connect_failures_total", st.ConnectFailures)
	counter("fieldbridge_bridge_store_errors_total", st.StoreErrors)
	counter("fieldbridge_bridge_in_received_total", st.In.Received)
	counter("fieldbridge_bridge_in_injected_total", st.In.Injected)
	counter("fieldbridge_bridge_in_refused_total", st.In.Refused)
	counter("fieldbridge_bridge_in_failed_total", st.In.Failed)
	counter("fieldbridge_bridge_buffer_fsyncs_total", fsyncs)
}

// logLimit lets a repeated log line through at most once per interval,
// and at once when its text changes.
type logLimit struct {
	mu         sync.Mutex
	interval   time.Duration
	last       time.Time
	lastText   string
	suppressed int
}

// allow reports whether to log text now, and how many were held back.
func (l *logLimit) allow(text string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if text == l.lastText && !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.lastText, l.suppressed = now, text, 0
	return n, true
}

// logLimits are the bridge's log limiters, one per kind of line, so that
// one kind does not reset another's count. A line whose text varies from
// message to message (a topic) is keyed by a constant, the text an
// attribute: it would otherwise never repeat.
type logLimits struct {
	connect, badRecord, unsendable, oversize, inRefused, inFailed logLimit
}

func (l *logLimits) init() {
	l.connect.interval = time.Minute
	l.badRecord.interval = 10 * time.Second
	l.unsendable.interval = 10 * time.Second
	l.oversize.interval = 10 * time.Second
	l.inRefused.interval = 10 * time.Second
	l.inFailed.interval = 10 * time.Second
}
