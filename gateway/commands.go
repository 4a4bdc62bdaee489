package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
)

// commandQueue is how many commands may wait for one device's bus; past it
// a command is refused rather than blocking the broker's fan-out.
const commandQueue = 64

// ErrQueueFull means a device's command queue is full.
var ErrQueueFull = errors.New("device busy: too many commands waiting")

// errNotWritable answers a command for a point that is read-only.
var errNotWritable = errors.New("the point is not writable (writable: true in its configuration makes it so)")

// writablePoint routes the commands of one point to its device's queue; a
// nil queue is a read-only point, whose commands are refused.
type writablePoint struct {
	device string
	index  int
	point  adapters.Point
	topic  string // the point's topic; commands arrive on topic + "/set"
	queue  chan adapters.Command
}

// commander receives commands on {topic}/set for every point: a writable
// point's are applied, a read-only point's refused with an answer, so that
// a command sent to the wrong point is not met with silence. Its handlers
// run inside the broker's fan-out, so they only parse and enqueue; the
// runner that owns the device's bus applies them in arrival order.
type commander struct {
	pub    publisher
	log    *slog.Logger
	now    func() time.Time
	queues map[string]chan adapters.Command
	points map[string]*writablePoint // by /set topic
}

func newCommander(p *Plan, pub publisher, log *slog.Logger, now func() time.Time) *commander {
	c := &commander{pub: pub, log: log, now: now,
		queues: map[string]chan adapters.Command{}, points: map[string]*writablePoint{}}
	for _, dev := range p.Devices.Devices {
		info := dev.Info()
		for i, pt := range info.Points {
			topic := p.Topics[info.Name][i]
			if topic == "" {
				continue
			}
			wp := &writablePoint{device: info.Name, index: i, point: pt, topic: topic}
			if !pt.Writable {
				// Not where another point publishes (for a writable
				// point, the configuration is refused).
				if !p.Published(topic+"/set") && !p.Published(topic+"/set/error") {
					c.points[topic+"/set"] = wp
				}
				continue
			}
			q, ok := c.queues[info.Name]
			if !ok {
				q = make(chan adapters.Command, commandQueue)
				c.queues[info.Name] = q
			}
			wp.queue = q
			c.points[topic+"/set"] = wp
		}
	}
	return c
}

// queue returns a device's command queue; nil for a device with no writable point.
func (c *commander) queue(device string) <-chan adapters.Command {
	if q, ok := c.queues[device]; ok {
		return q
	}
	return nil
}

// handle takes one message published on a /set topic. It never blocks.
func (c *commander) handle(topic string, payload []byte, retained bool, sender string) {
	wp, ok := c.points[topic]
	if !ok {
		return
	}
	if wp.queue == nil {
		c.reject(wp, sender, payload, errNotWritable)
		return
	}
	if retained {
		// A retained command would rewrite the device at every reconnect.
		c.reject(wp, sender, payload, errors.New("retained commands are refused: publish /set with retain false"))
		return
	}
	raw, err := mappings.ParseCommand(payload, wp.point.Point)
	if err != nil {
		c.reject(wp, sender, payload, err)
		return
	}
	body := append([]byte(nil), payload...)
	cmd := adapters.Command{Point: wp.index, Raw: raw, Sender: sender, Topic: topic}
	cmd.Done = func(err error) {
		if err != nil {
			c.log.Info("write failed", "device", wp.device, "point", wp.point.Name, "sender", sender, "topic", topic, "value", string(body), "raw", raw.String(), "result", err)
			c.answer(wp, body, fmt.Errorf("write failed: %w", err))
			return
		}
		c.log.Info("write applied", "device", wp.device, "point", wp.point.Name, "sender", sender, "topic", topic, "value", string(body), "raw", raw.String(), "result", "ok")
	}
	select {
	case wp.queue <- cmd:
	default:
		c.reject(wp, sender, payload, ErrQueueFull)
	}
}

func (c *commander) reject(wp *writablePoint, sender string, payload []byte, err error) {
	c.log.Warn("command rejected", "device", wp.device, "point", wp.point.Name, "sender", sender, "topic", wp.topic+"/set", "value", string(payload), "err", err)
	c.answer(wp, payload, err)
}

// answer publishes why a command changed nothing on {topic}/set/error.
func (c *commander) answer(wp *writablePoint, payload []byte, err error) {
	msg := mappings.AppendCommandError(nil, err, payload, c.now())
	if perr := c.pub.Publish(wp.topic+"/set/error", msg, false, 1); perr != nil {
		c.log.Warn("publish command error", "topic", wp.topic+"/set/error", "err", perr)
	}
}
