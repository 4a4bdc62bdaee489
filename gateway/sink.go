package gateway

import (
	"log/slog"
	"strings"
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
	// warned: the point's failure was logged; its recovery will be too.
	warned bool
	// read and err: the outcome of the current poll, for Polled.
	read bool
	err  error
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
	log    *slog.Logger // carries the device's name

	failures  int
	offlineAt time.Time
	online    atomic.Int32 // 0 unknown, 1 online, 2 offline
	lastRead  atomic.Int64 // unix nanoseconds of the last good poll
	errMu     sync.Mutex
	lastErr   string
	lastErrT  time.Time

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
	p.read, p.err = true, err
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
		if was := s.online.Load(); was != 1 {
			s.online.Store(1)
			s.onlineG.Set(1)
			_ = s.pub.Publish(s.status, []byte("online"), true, 1)
			if was == 2 {
				s.log.Info("device online again", "offline_for", now.Sub(s.offlineAt).Round(time.Millisecond))
			}
		}
		s.logPoints(true)
		return
	}
	s.logPoints(false)
	s.setErr(err, now)
	s.failures++
	if s.failures >= offlineAfter && s.online.Load() != 2 {
		s.online.Store(2)
		s.offlineAt = now
		s.onlineG.Set(0)
		_ = s.pub.Publish(s.status, []byte("offline"), true, 1)
		s.log.Warn("device offline", "failed_polls", s.failures, "err", err.Error())
	}
}

// logPoints logs, once per change, the points of a reachable device that
// fail to read (an illegal address, a sensor fault) and their recovery.
// When the device itself cannot be reached (reachable false) its points'
// failures are the device's, which Polled logs as going offline.
func (s *deviceSink) logPoints(reachable bool) {
	var failed, recovered []string
	var firstErr error
	for i := range s.points {
		p := &s.points[i]
		switch {
		case !p.read:
			continue
		case p.err != nil && !p.warned && reachable:
			p.warned = true
			failed = append(failed, p.point.Name)
			if firstErr == nil {
				firstErr = p.err
			}
		case p.err == nil && p.warned:
			p.warned = false
			recovered = append(recovered, p.point.Name)
		}
		p.read, p.err = false, nil
	}
	if len(failed) > 0 {
		s.log.Warn("points unreadable", "points", strings.Join(failed, ","), "err", firstErr.Error())
	}
	if len(recovered) > 0 {
		s.log.Info("points readable again", "points", strings.Join(recovered, ","))
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
