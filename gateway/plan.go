package gateway

import (
	"fmt"
	"path/filepath"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/bridge"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// Plan is a checked configuration: the file, its configured devices and
// the topic of every point. Building one does no I/O beyond reading the file.
type Plan struct {
	File     *config.File
	Registry *adapters.Registry
	Devices  *adapters.Configured
	// Topics holds, per device name, the topic of each point.
	Topics map[string][]string
	Format mappings.Format
	// owners maps every topic the gateway publishes on (points, statuses)
	// to what publishes there.
	owners map[string]string
}

// Published reports whether the gateway publishes on topic.
func (p *Plan) Published(topic string) bool {
	_, ok := p.owners[topic]
	return ok
}

// Load reads and checks a configuration file completely: the top-level
// sections, every device through its driver, and the checks across them.
// The error lists every problem found, each with file:line:col.
func Load(path string, reg *adapters.Registry, lookup func(string) (string, bool)) (*Plan, error) {
	f, err := config.Load(path, lookup)
	if f == nil {
		return nil, err
	}
	p := &Plan{File: f, Registry: reg, Topics: map[string][]string{}}
	p.Devices = reg.Configure(f)
	p.resolveTopics()
	p.checkRemoteTopics()
	if errs := f.Decoder().Errors(); len(errs) > 0 {
		return p, errs.Err()
	}
	p.Format, _ = mappings.ParseFormat(f.Publish.Format)
	return p, nil
}

// CheckFiles reads every file the configuration names, as the broker and
// the bridges read them: listener certificates, keys and client CAs, and
// bridge password and TLS files. Load reads only the configuration file;
// `gateway validate` calls this too, so that its ok means the gateway
// would start with the files as they are.
func (p *Plan) CheckFiles() error {
	d := p.File.Decoder()
	for i, lc := range p.File.Broker.Listeners {
		if err := broker.CheckFiles(lc); err != nil {
			d.Errorf(fmt.Sprintf("broker.listeners[%d]", i), "%v", err)
		}
	}
	for i, b := range p.File.Bridges {
		if _, err := b.Secret(); err != nil {
			d.Errorf(fmt.Sprintf("bridges[%d].password_file", i), "%v", err)
		}
		if err := bridge.CheckTLS(b); err != nil {
			d.Errorf(fmt.Sprintf("bridges[%d].tls", i), "%v", err)
		}
	}
	return d.Errors().Err()
}

// StatusTopic is where the gateway's own availability is published.
func (p *Plan) StatusTopic() string { return p.File.Gateway.ID + "/status" }

// DeviceStatusTopic is where a device's availability is published.
func (p *Plan) DeviceStatusTopic(device string) string {
	return p.File.Gateway.ID + "/" + device + "/status"
}

func (p *Plan) resolveTopics() {
	d := p.File.Decoder()
	def, err := mappings.ParseTemplate(p.File.Publish.Topic)
	if err != nil {
		return // reported by config
	}
	used := map[string]string{p.StatusTopic(): "the gateway status"}
	p.owners = used
	for _, dev := range p.Devices.Devices {
		info := dev.Info()
		used[p.DeviceStatusTopic(info.Name)] = fmt.Sprintf("the status of device %s", info.Name)
	}
	for _, dev := range p.Devices.Devices {
		info := dev.Info()
		topics := make([]string, len(info.Points))
		for i, pt := range info.Points {
			topic := pt.TopicName(def, p.File.Gateway.ID, info.Name)
			if err := mappings.ValidTopicName(topic); err != nil {
				d.Errorf(pt.Where, "topic %q: %v", topic, err)
				continue
			}
			if prev, dup := used[topic]; dup {
				d.Errorf(pt.Where, "topic %q is already used by %s", topic, prev)
				continue
			}
			used[topic] = pt.Where
			topics[i] = topic
		}
		p.Topics[info.Name] = topics
	}
	// A writable point takes commands on {topic}/set and answers on
	// {topic}/set/error: a point publishing there would write its own
	// readings into the device at every poll.
	for _, dev := range p.Devices.Devices {
		info := dev.Info()
		for i, pt := range info.Points {
			topic := p.Topics[info.Name][i]
			if !pt.Writable || topic == "" {
				continue
			}
			if prev, dup := used[topic+"/set"]; dup {
				d.Errorf(prev, "topic %q is where the writable point %s takes commands: every reading would be written into the device", topic+"/set", pt.Where)
			}
			if prev, dup := used[topic+"/set/error"]; dup {
				d.Errorf(prev, "topic %q is where the writable point %s answers refused commands", topic+"/set/error", pt.Where)
			}
		}
	}
}

// checkRemoteTopics refuses a point (or a device's status) whose topic, as
// an out-route sends it to the cloud, is one the bridge's profile forbids:
// the cloud would drop the connection at its first message. Points are
// reported once per bridge, at the route that sends them.
func (p *Plan) checkRemoteTopics() {
	const shown = 3 // points named per route; the rest are counted
	d := p.File.Decoder()
	for i, b := range p.File.Bridges {
		prof, ok := config.LookupProfile(b.Profile)
		if !ok {
			continue // reported by config
		}
		bad := make([]int, len(b.Routes))
		for _, dev := range p.Devices.Devices {
			name := dev.Info().Name
			for _, topic := range append(p.Topics[name][:len(p.Topics[name]):len(p.Topics[name])], p.DeviceStatusTopic(name)) {
				if topic == "" {
					continue
				}
				j, r := firstOutRoute(b.Routes, topic)
				if r == nil || (r.Batch != nil && r.Batch.Topic != "") {
					continue // not sent, or sent inside a batch's payload
				}
				remote := r.RemotePrefix + topic
				if err := prof.CheckTopic(remote); err != nil {
					if bad[j]++; bad[j] <= shown {
						d.Errorf(fmt.Sprintf("bridges[%d].routes[%d].filter", i, j), "topic %s: %v", topic, err)
					}
				}
			}
		}
		for j, n := range bad {
			if n > shown {
				d.Errorf(fmt.Sprintf("bridges[%d].routes[%d].filter", i, j), "and %d more topics the same way", n-shown)
			}
		}
	}
}

// firstOutRoute is the out-route that carries a topic: the first whose
// filter matches, as the bridge picks it.
func firstOutRoute(routes []config.Route, topic string) (int, *config.Route) {
	for j := range routes {
		r := &routes[j]
		if r.Direction == "out" && mappings.ValidTopicFilter(r.Filter) == nil && mappings.MatchFilter(r.Filter, topic) {
			return j, r
		}
	}
	return -1, nil
}

// BuffersDir is the folder that holds one store-and-forward log per bridge.
func BuffersDir(dataDir string) string { return filepath.Join(dataDir, "buffers") }

// BufferDir is where the store-and-forward log of a bridge lives.
func BufferDir(dataDir, bridge string) string {
	return filepath.Join(BuffersDir(dataDir), bridge)
}
