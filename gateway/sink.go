package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
	"github.com/prometheus/client_golang/prometheus"
)

// offlineAfter is how many polls in a row must fail before a device is
// reported offline: one lost frame on a noisy RS-485 line is not an outage.
const offlineAfter = 3

// publisher is the gateway side of the broker: the sinks publish through it.
type publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

type pointState struct {
	point    adapters.Point
	topic    string
	reporter *mappings.Reporter
}

// deviceSink turns one device's readings into messages. The runner that
// owns the device's bus is its only writer; status readers use the atomics.
type deviceSink struct {
	name   string
	driver string
	pub    publisher
	now    func() time.Time
	format mappings.Format
	qos    byte
	retain bool
	status string // status topic
	points []pointState

	failures int
	online   atomic.Int32 // 0 unknown, 1 online, 2 offline
	lastRead atomic.Int64 // unix nanoseconds of the last good poll
	errMu    sync.Mutex
	lastErr  string
	lastErrT time.Time

	readings, errors, publishes, pubErrors prometheus.Counter
	onlineG                                prometheus.Gauge
	lastReadG                              prometheus.Gauge
}

var _ adapters.Sink = (*deviceSink)(nil)

func (s *deviceSink) Report(i int, v mappings.Value, err error, at time.Time) {
	if i < 0 || i >= len(s.points) {
		return
	}
	p := &s.points[i]
	if err != nil {
		s.errors.Inc()
		s.setErr(err, at)
		if !p.reporter.Bad() {
			return // a failed read is published once, not at every poll
		}
		s.publish(p.topic, mappings.Reading{Time: at, Err: err})
		return
	}
	s.readings.Inc()
	v = p.point.Apply(v)
	if !p.reporter.Should(v, at) {
		return
	}
	s.publish(p.topic, mappings.Reading{Value: v, Unit: p.point.Unit, Time: at})
}

func (s *deviceSink) publish(topic string, r mappings.Reading) {
	payload, ok := mappings.AppendPayload(nil, s.format, r)
	if !ok {
		return
	}
	if err := s.pub.Publish(topic, payload, s.retain, s.qos); err != nil {
		s.pubErrors.Inc()
		return
	}
	s.publishes.Inc()
}

func (s *deviceSink) Polled(err error) {
	now := s.now()
	if err == nil {
		s.failures = 0
		s.lastRead.Store(now.UnixNano())
		s.lastReadG.Set(float64(now.UnixNano()) / 1e9)
		if s.online.Load() != 1 {
			s.online.Store(1)
			s.onlineG.Set(1)
			_ = s.pub.Publish(s.status, []byte("online"), true, 1)
		}
		return
	}
	s.setErr(err, now)
	s.failures++
	if s.failures >= offlineAfter && s.online.Load() != 2 {
		s.online.Store(2)
		s.onlineG.Set(0)
		_ = s.pub.Publish(s.status, []byte("offline"), true, 1)
	}
}

func (s *deviceSink) setErr(err error, at time.Time) {
	s.errMu.Lock()
	s.lastErr, s.lastErrT = err.Error(), at
	s.errMu.Unlock()
}

// DeviceStatus is one device in /api/status.
type DeviceStatus struct {
	Name          string     `json:"name"`
	Driver        string     `json:"driver"`
	Online        *bool      `json:"online"`
	LastRead      *time.Time `json:"last_read,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorTime *time.Time `json:"last_error_time,omitempty"`
	Points        int        `json:"points"`
}

func (s *deviceSink) snapshot() DeviceStatus {
	st := DeviceStatus{Name: s.name, Driver: s.driver, Points: len(s.points)}
	switch s.online.Load() {
	case 1:
		t := true
		st.Online = &t
	case 2:
		f := false
		st.Online = &f
	}
	if ns := s.lastRead.Load(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		st.LastRead = &t
	}
	s.errMu.Lock()
	if s.lastErr != "" {
		st.LastError = s.lastErr
		t := s.lastErrT.UTC()
		st.LastErrorTime = &t
	}
	s.errMu.Unlock()
	return st
}
