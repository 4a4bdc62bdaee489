package bridge

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
)

// A cloud that closes the connection on one message (mosquitto's
// max_packet_size here; AWS IoT does the same for a topic its policy
// denies) gets it first at every reconnect, and nothing behind it is
// delivered. The bridge cannot tell that from a failing link, so it drops
// nothing: it reports the message, with its topic and size, in the log and
// in its status. Setting max_payload below its size (the operator's fix)
// makes the sender drop it, and the rest follows in order.
func TestRefusedMessageReported(t *testing.T) {
	p := newPKI(t, "ca")
	c := newCloud(t, p, cloudOpts{extra: "max_packet_size 600"})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "sub", "sites/a/#", sub, nil)
	dir := filepath.Join(t.TempDir(), "buffer")
	cfg := bridgeConfig(c, p, t)
	r := newRig(t, cfg, rigOpts{buffer: buffer.Options{Dir: dir}})
	r.waitConnected(t, true)

	var want []string
	for i := 1; i <= 11; i++ {
		payload := fmt.Sprintf("m%d", i)
		if i == 6 {
			payload += strings.Repeat("x", 1000) // past the cloud's packet size
		} else {
			want = append(want, payload)
		}
		publishRaw(t, r.local, "plant/t", payload)
	}
	eventually(t, wait, "the bridge to report the stuck message", func() bool { return r.br.Status().Stuck != nil })
	st := r.br.Status().Stuck
	if st.Seq != 6 || st.Topic != "sites/a/plant/t" || st.Bytes != 1002 || st.Connections < stuckAfter {
		t.Errorf("stuck = %+v", st)
	}
	if !strings.Contains(r.log.String(), "delivery is stuck") || !strings.Contains(r.log.String(), "bytes=1002") {
		t.Errorf("not logged:\n%s", r.log)
	}
	if got := firstArrivals(sub); strings.Join(got, " ") != strings.Join(want[:5], " ") {
		t.Errorf("while stuck the cloud received %v, want %v", got, want[:5])
	}
	if r.br.Status().Drops.Unsendable+r.br.Status().Drops.Oversize != 0 {
		t.Errorf("dropped while stuck: %+v", r.br.Status().Drops)
	}

	r.stop()
	cfg.MaxPayload = 600
	r = newRig(t, cfg, rigOpts{buffer: buffer.Options{Dir: dir}})
	sub.waitFor(t, wait, "the messages behind it", func(_, distinct int) bool { return distinct >= len(want) })
	if got := firstArrivals(sub); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the cloud received %v, want %v", got, want)
	}
	if n := r.br.Status().Drops.Oversize; n != 1 {
		t.Errorf("oversize drops = %d, want 1", n)
	}
}

// A link that fails whenever anything is sent looks the same to the
// bridge, and the same message is reported; when the link works again,
// everything arrives and the report ends.
func TestFailingLinkDropsNothing(t *testing.T) {
	p := newPKI(t, "ca")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "sub", "sites/a/#", sub, nil)
	px := newProxy(t, c, p)
	px.cuts.Store(stuckAfter + 2)
	cfg := bridgeConfig(c, p, t)
	cfg.URL = px.url()
	r := newRig(t, cfg, rigOpts{})

	var want []string
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("m%d", i))
		publishRaw(t, r.local, "plant/t", want[i-1])
	}
	sub.waitFor(t, wait, "every message", func(_, distinct int) bool { return distinct >= len(want) })
	if got := firstArrivals(sub); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the cloud received %v, want %v", got, want)
	}
	eventually(t, wait, "the report to end", func() bool { return r.br.Status().Stuck == nil })
	log := r.log.String()
	if !strings.Contains(log, "delivery is stuck") || !strings.Contains(log, "delivery moves again") {
		t.Errorf("the stuck message was not reported, or its end not logged:\n%s", log)
	}
	if n := px.cuts.Load(); n >= 0 {
		t.Errorf("%d cuts left: the link never failed as often as the test needs", n+1)
	}
}

// With batched and unbatched out-routes mixed, the message reported is the
// one every connection ended waiting for, whether it is a batch with an
// unbatched message behind it that the cloud takes each time, or an
// unbatched one sent while the oldest record waits in an open batch.
func TestStuckWithBatches(t *testing.T) {
	for _, c := range []struct {
		name    string
		batched string // payload of plant/b/x, batched
		plain   string // payload of plant/t, not batched
		delay   time.Duration
		topic   string
		seq     uint64
	}{
		{"a refused batch", strings.Repeat("x", 1000), "small", 50 * time.Millisecond, "sites/a/batch", 1},
		{"a refused message behind an open batch", "small", strings.Repeat("x", 1000), time.Minute, "sites/a/plant/t", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPKI(t, "ca")
			cl := newCloud(t, p, cloudOpts{extra: "max_packet_size 600"})
			cl.start()
			cfg := bridgeConfig(cl, p, t)
			one := 1
			cfg.Routes = []config.Route{
				{Direction: "out", Filter: "plant/b/#", QoS: &one, RemotePrefix: "sites/a/",
					Batch: &config.Batch{Topic: "sites/a/batch", MaxMessages: 50, MaxBytes: 4000, MaxDelay: c.delay}},
				{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "sites/a/"},
			}
			r := newRig(t, cfg, rigOpts{})
			r.waitConnected(t, true)
			publishRaw(t, r.local, "plant/b/x", c.batched)
			publishRaw(t, r.local, "plant/t", c.plain)
			eventually(t, wait, "the stuck message to be reported", func() bool { return r.br.Status().Stuck != nil })
			if st := r.br.Status().Stuck; st.Topic != c.topic || st.Seq != c.seq {
				t.Errorf("reported %+v, want seq %d on %s", st, c.seq, c.topic)
			}
		})
	}
}

// firstArrivals lists the payloads the subscriber received, each at its
// first arrival: at-least-once allows a message acknowledged by the cloud
// but not to the bridge (the connection ended first) to come again.
func firstArrivals(sub *cloudSub) []string {
	var got []string
	seen := map[string]bool{}
	for _, m := range sub.snapshot() {
		if !seen[m.payload] {
			seen[m.payload] = true
			got = append(got, m.payload)
		}
	}
	return got
}
