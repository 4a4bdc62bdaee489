package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics is one gateway's Prometheus registry; nothing is registered
// globally, so tests can run several gateways in one process.
type metrics struct {
	reg       *prometheus.Registry
	readings  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	publishes *prometheus.CounterVec
	pubErrors *prometheus.CounterVec
	online    *prometheus.GaugeVec
	lastRead  *prometheus.GaugeVec
}

func newMetrics(clients func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_readings_total", Help: "Good readings taken from a device.",
		}, []string{"device"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_read_errors_total", Help: "Failed reads of a device's points.",
		}, []string{"device"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_publishes_total", Help: "Messages published to the local broker for a device.",
		}, []string{"device"}),
		pubErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldbridge_publish_errors_total", Help: "Messages the local broker refused for a device.",
		}, []string{"device"}),
		online: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldbridge_device_online", Help: "1 when the device answered its last polls, 0 when offline.",
		}, []string{"device"}),
		lastRead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldbridge_device_last_read_timestamp_seconds", Help: "Unix time of the device's last good poll.",
		}, []string{"device"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.readings, m.errors, m.publishes, m.pubErrors, m.online, m.lastRead,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldbridge_broker_clients", Help: "Clients connected to the local broker.",
		}, clients),
	)
	return m
}

// bind gives a sink its per-device series, looked up once rather than per reading.
func (m *metrics) bind(s *deviceSink) {
	s.readings = m.readings.WithLabelValues(s.name)
	s.errors = m.errors.WithLabelValues(s.name)
	s.publishes = m.publishes.WithLabelValues(s.name)
	s.pubErrors = m.pubErrors.WithLabelValues(s.name)
	s.onlineG = m.online.WithLabelValues(s.name)
	s.lastReadG = m.lastRead.WithLabelValues(s.name)
}

// forget drops a removed device's series.
func (m *metrics) forget(device string) {
	for _, v := range []*prometheus.CounterVec{m.readings, m.errors, m.publishes, m.pubErrors} {
		v.DeleteLabelValues(device)
	}
	m.online.DeleteLabelValues(device)
	m.lastRead.DeleteLabelValues(device)
}
