package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/fieldbridge/gateway/bridge"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
	"github.com/prometheus/client_golang/prometheus"
)

// uplink is one bridge with its own buffer and run state.
type uplink struct {
	cfg        config.Bridge
	bridge     *bridge.Bridge
	log        *buffer.Log
	collectors []prometheus.Collector
	cancel     context.CancelFunc
	done       chan struct{}
}

// bridgeSet is the broker's one store: it hands every accepted publish to
// each bridge in force. A reload swaps bridges under the write lock, so a
// publish is never acknowledged while no buffer could take it.
type bridgeSet struct {
	log *slog.Logger
	now func() time.Time
	reg *prometheus.Registry

	mu  sync.RWMutex
	ups map[string]*uplink
}

var _ broker.Store = (*bridgeSet)(nil)

func newBridgeSet(log *slog.Logger, now func() time.Time, reg *prometheus.Registry) *bridgeSet {
	return &bridgeSet{log: log, now: now, reg: reg, ups: map[string]*uplink{}}
}

// Store implements broker.Store: every bridge stores what its routes take.
// The first failure refuses the message (the publisher is disconnected and
// sends it again), even if another bridge stored it: duplicates, never loss.
func (s *bridgeSet) Store(ctx context.Context, m broker.Message, durable bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first error
	for _, u := range s.ups {
		if err := u.bridge.Store(ctx, m, durable); err != nil && first == nil {
			first = err // it names the bridge
		}
	}
	return first
}

// list returns the bridges in force, in no particular order.
func (s *bridgeSet) list() []*uplink {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*uplink, 0, len(s.ups))
	for _, u := range s.ups {
		out = append(out, u)
	}
	return out
}

// apply makes the set match f.Bridges: unchanged bridges keep running,
// changed ones restart (on the same buffer when its settings did not
// change), removed ones stop and close their buffer, new ones open theirs
// (recovering it). Started bridges of the set run until stop.
func (s *bridgeSet) apply(f *config.File, local bridge.Local) error {
	want := map[string]config.Bridge{}
	for _, bc := range f.Bridges {
		want[bc.Name] = bc
	}
	// Stop what changes first, outside the lock: a stopped bridge still
	// stores (its buffer stays open), it only stops sending.
	var changed []*uplink
	for name, u := range s.snapshot() {
		if bc, ok := want[name]; !ok || !reflect.DeepEqual(bc, u.cfg) {
			u.stop()
			changed = append(changed, u)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range changed {
		bc, keep := want[u.cfg.Name]
		if keep && reflect.DeepEqual(bc.Buffer, u.cfg.Buffer) {
			continue // same buffer, new bridge below
		}
		s.unregister(u)
		if err := u.log.Close(); err != nil {
			s.log.Error("close buffer", "bridge", u.cfg.Name, "err", err)
		}
		delete(s.ups, u.cfg.Name)
	}
	for _, bc := range f.Bridges {
		old, exists := s.ups[bc.Name]
		if exists && reflect.DeepEqual(bc, old.cfg) {
			continue
		}
		var l *buffer.Log
		if exists {
			s.unregister(old)
			l = old.log
		} else {
			opts, err := bufferOptions(f.Gateway.DataDir, bc, s.log.With("bridge", bc.Name))
			if err != nil {
				return fmt.Errorf("bridge %s: buffer: %w", bc.Name, err)
			}
			if l, err = buffer.Open(opts); err != nil {
				return fmt.Errorf("bridge %s: buffer: %w", bc.Name, err)
			}
		}
		b, err := bridge.New(bc, bridge.Options{GatewayID: f.Gateway.ID, Buffer: l, Local: local,
			Log: s.log.With("component", "bridge"), Now: s.now})
		if err != nil {
			l.Close()
			delete(s.ups, bc.Name)
			return fmt.Errorf("bridge %s: %w", bc.Name, err)
		}
		u := &uplink{cfg: bc, bridge: b, log: l, collectors: b.Collectors()}
		for _, c := range u.collectors {
			if err := s.reg.Register(c); err != nil {
				s.log.Warn("bridge metrics", "bridge", bc.Name, "err", err)
			}
		}
		s.ups[bc.Name] = u
	}
	return nil
}

func (s *bridgeSet) snapshot() map[string]*uplink {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]*uplink, len(s.ups))
	for k, v := range s.ups {
		out[k] = v
	}
	return out
}

func (s *bridgeSet) unregister(u *uplink) {
	for _, c := range u.collectors {
		s.reg.Unregister(c)
	}
}

// start runs every bridge that is not running.
func (s *bridgeSet) start() {
	for _, u := range s.list() {
		if u.done != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		u.cancel, u.done = cancel, make(chan struct{})
		go func() {
			defer close(u.done)
			if err := u.bridge.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("bridge stopped", "bridge", u.cfg.Name, "err", err)
			}
		}()
	}
}

// stop ends every bridge's connection; buffers stay open until close.
func (s *bridgeSet) stop() {
	for _, u := range s.list() {
		u.stop()
	}
}

func (u *uplink) stop() {
	if u.done == nil {
		return
	}
	u.cancel()
	<-u.done
}

// close closes every buffer; the bridges must be stopped.
func (s *bridgeSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, u := range s.ups {
		if err := u.log.Close(); err != nil {
			s.log.Error("close buffer", "bridge", name, "err", err)
		}
	}
	s.ups = map[string]*uplink{}
}

func bufferOptions(dataDir string, bc config.Bridge, log *slog.Logger) (buffer.Options, error) {
	sync, err := buffer.ParseSyncMode(bc.Buffer.Sync)
	if err != nil {
		return buffer.Options{}, err
	}
	full, err := buffer.ParseFullPolicy(bc.Buffer.WhenFull)
	if err != nil {
		return buffer.Options{}, err
	}
	return buffer.Options{
		Dir:          BufferDir(dataDir, bc.Name),
		MaxBytes:     int64(bc.Buffer.MaxBytes),
		MaxAge:       bc.Buffer.MaxAge,
		WhenFull:     full,
		Sync:         sync,
		SyncInterval: bc.Buffer.SyncInterval,
		Logger:       log,
	}, nil
}
