package gateway

import (
	"encoding/json"
	"sort"

	"github.com/fieldbridge/gateway/bridge"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is the body of /api/status.
type Status struct {
	Gateway string          `json:"gateway"`
	Version string          `json:"version"`
	Started time.Time       `json:"started"`
	Ready   bool            `json:"ready"`
	Broker  BrokerStatus    `json:"broker"`
	Devices []DeviceStatus  `json:"devices"`
	Bridges []bridge.Status `json:"bridges"`
}

// BrokerStatus describes the embedded broker in /api/status.
type BrokerStatus struct {
	Clients int `json:"clients"`
}

// Status reports the gateway's state; it is safe to call at any time.
func (g *Gateway) Status() Status {
	g.mu.RLock()
	plan, gen, stores := g.plan, g.gen, g.stores
	g.mu.RUnlock()
	st := Status{
		Gateway: plan.File.Gateway.ID,
		Version: g.opts.Version,
		Started: g.started,
		Ready:   g.ready.Load(),
		Devices: []DeviceStatus{},
		Bridges: []bridge.Status{},
	}
	if b := g.broker.Load(); b != nil {
		st.Broker.Clients = b.Clients()
	}
	if gen != nil {
		for _, s := range gen.sinks {
			st.Devices = append(st.Devices, s.snapshot())
		}
	}
	if stores != nil {
		ups := stores.list()
		sort.Slice(ups, func(i, j int) bool { return ups[i].cfg.Name < ups[j].cfg.Name })
		for _, u := range ups {
			st.Bridges = append(st.Bridges, u.bridge.Status())
		}
	}
	return st
}

func (g *Gateway) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !g.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(g.Status())
	})
	return mux
}
