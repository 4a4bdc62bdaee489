package gateway

import (
	"errors"
	"reflect"

	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/config"
)

// reload re-reads the configuration file. An invalid file is refused with
// every problem logged, and the running configuration stays. Otherwise
// devices, points, publish settings and bridges change in place: the
// broker keeps its clients and retained messages, and buffers keep their
// backlog. Settings that need a restart (broker, gateway, http, log) are
// kept as they were, with a warning.
func (g *Gateway) reload(b *broker.Broker) {
	old := g.plan
	next, err := Load(old.File.Path, old.Registry, nil)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				g.log.Error("reload refused: configuration error", "err", e.Error())
			}
		} else {
			g.log.Error("reload refused", "err", err)
		}
		g.log.Warn("reload refused: the running configuration stays")
		return
	}
	for _, part := range []struct {
		name     string
		old, new any
	}{
		{"gateway", old.File.Gateway, next.File.Gateway},
		{"broker", old.File.Broker, next.File.Broker},
		{"http", old.File.HTTP, next.File.HTTP},
		{"log", old.File.Log, next.File.Log},
	} {
		if !reflect.DeepEqual(part.old, part.new) {
			g.log.Warn("reload: this section changed but applies only at restart", "section", part.name)
		}
	}
	// Keep the sections that need a restart, so that what runs and what
	// Status reports stay one configuration.
	next.File.Gateway, next.File.Broker, next.File.HTTP, next.File.Log = old.File.Gateway, old.File.Broker, old.File.HTTP, old.File.Log

	g.mu.RLock()
	gen := g.gen
	g.mu.RUnlock()
	gen.stop(g.log)
	// Before the new devices publish, so that a cleared topic does not
	// follow their first readings, and through the old routes, which
	// carried what is cleared.
	g.clearRetained(b, old, next)
	if err := g.stores.apply(next.File, b); err != nil {
		g.log.Error("reload: bridges", "err", err)
	}
	g.stores.start()
	newGen, err := g.startGeneration(next, b)
	if err != nil {
		g.log.Error("reload: devices could not start; restarting the previous ones", "err", err)
		if newGen, err = g.startGeneration(old, b); err != nil {
			g.log.Error("reload: previous devices could not start either", "err", err)
			return
		}
		next = old
	}
	g.forget(gen, newGen)
	g.mu.Lock()
	g.plan, g.gen = next, newGen
	g.mu.Unlock()
	g.log.Info("configuration reloaded", "devices", len(newGen.sinks), "bridges", len(next.File.Bridges))
}

// forget removes the metric series of devices that the new generation no longer has.
func (g *Gateway) forget(old, next *generation) {
	keep := map[string]bool{}
	for _, s := range next.sinks {
		keep[s.name] = true
	}
	for _, s := range old.sinks {
		if !keep[s.name] {
			g.metrics.forget(s.name)
		}
	}
}

// clearRetained removes the retained messages that the new configuration
// would not leave, as a restart would (the broker keeps retained messages
// in memory): those of removed points and devices, and every point's when
// publish.retain is turned off. An empty retained message clears a topic
// for local subscribers and, through the bridges, in the cloud.
func (g *Gateway) clearRetained(b *broker.Broker, old, next *Plan) {
	keep := map[string]bool{}
	for dev, topics := range next.Topics {
		keep[next.DeviceStatusTopic(dev)] = true
		if *next.File.Publish.Retain {
			for _, t := range topics {
				keep[t] = true
			}
		}
	}
	clear := func(topic string) {
		if topic == "" || keep[topic] {
			return
		}
		if err := b.Publish(topic, nil, true, 1); err != nil {
			g.log.Warn("reload: cannot clear a retained message", "topic", topic, "err", err)
		}
	}
	for dev, topics := range old.Topics {
		clear(old.DeviceStatusTopic(dev))
		if *old.File.Publish.Retain {
			for _, t := range topics {
				clear(t)
			}
		}
	}
}
