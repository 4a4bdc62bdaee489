package bridge

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/buffer"
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

	cl := connectLocal(t, r.local)
	var want []string
	for i := 1; i <= 11; i++ {
		payload := fmt.Sprintf("m%d", i)
		if i == 6 {
			payload += strings.Repeat("x", 1000) // past the cloud's packet size
		} else {
			want = append(want, payload)
		}
		if tok := cl.Publish("plant/t", 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	cl.Disconnect(100)
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

	cl := connectLocal(t, r.local)
	defer cl.Disconnect(100)
	var want []string
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("m%d", i))
		if tok := cl.Publish("plant/t", 1, false, want[i-1]); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
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
