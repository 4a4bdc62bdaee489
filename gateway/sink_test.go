package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/mappings"
)

type recordingPub struct{ msgs []string }

func (p *recordingPub) Publish(topic string, payload []byte, _ bool, _ byte) error {
	p.msgs = append(p.msgs, topic+" "+string(payload))
	return nil
}

// The journal tells the story a commissioning engineer needs: a device
// going offline and coming back, and a single point that stops reading on
// a device that answers, each once per change and never per poll.
func TestSinkLogsTransitionsOnce(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	pub := &recordingPub{}
	s := &deviceSink{
		name: "meter", driver: "modbus", pub: pub, now: func() time.Time { return now },
		format: mappings.FormatJSON, status: "gw/meter/status",
		log: slog.New(slog.NewTextHandler(&out, nil)).With("device", "meter"),
	}
	for _, n := range []string{"voltage", "current"} {
		s.points = append(s.points, pointState{point: adapters.Point{Point: mappings.Point{Name: n}}, topic: "gw/meter/" + n, reporter: mappings.NewReporter(nil, 0)})
	}
	newMetrics(func() float64 { return 0 }).bind(s)
	illegal := errors.New("modbus exception 2: illegal data address")
	down := errors.New("dial tcp 127.0.0.1:502: connect: connection refused")
	poll := func(voltage, current, device error) {
		now = now.Add(time.Second)
		s.Report(0, mappings.Float64Value(230), voltage, now)
		s.Report(1, mappings.Float64Value(5), current, now)
		s.Polled(device)
	}
	lines := func() []string {
		defer out.Reset()
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}
	expect := func(what string, want ...string) {
		t.Helper()
		got := lines()
		if len(want) == 0 {
			if got[0] != "" {
				t.Errorf("%s: logged %q, want nothing", what, got)
			}
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%s: logged %q, want %d lines", what, got, len(want))
		}
		for i, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: line %q lacks %q", what, got[i], w)
			}
		}
	}

	poll(nil, nil, nil)
	expect("first good poll")
	poll(nil, illegal, nil)
	expect("a point fails", `level=WARN msg="points unreadable" device=meter points=current err="modbus exception 2`)
	poll(nil, illegal, nil)
	expect("the point fails again")
	poll(nil, nil, nil)
	expect("the point recovers", `level=INFO msg="points readable again" device=meter points=current`)

	for range offlineAfter - 1 {
		poll(down, down, down)
	}
	expect("failures below the offline threshold")
	poll(down, down, down)
	expect("the device goes offline", `level=WARN msg="device offline" device=meter failed_polls=3 err="dial tcp`)
	if last := pub.msgs[len(pub.msgs)-1]; last != "gw/meter/status offline" {
		t.Errorf("last message %q, want the offline status", last)
	}
	poll(down, down, down)
	expect("still offline")
	poll(nil, illegal, nil)
	expect("back online with one point failing",
		`level=INFO msg="device online again" device=meter offline_for=2s`,
		`level=WARN msg="points unreadable" device=meter points=current`)
	if n := strings.Count(strings.Join(pub.msgs, "\n"), "gw/meter/status online"); n != 2 {
		t.Errorf("%d online statuses (first poll and recovery), want 2", n)
	}
	poll(nil, nil, nil)
	expect("all readable", `msg="points readable again" device=meter points=current`)
}
