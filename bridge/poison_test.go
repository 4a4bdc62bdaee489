package bridge

import (
	"fmt"
	"strings"
	"testing"
)

// A cloud that closes the connection on one message (mosquitto's
// max_packet_size here; AWS IoT does the same for a topic its policy
// denies) would get it first at every reconnect, and nothing behind it
// would ever arrive. After three such connections the bridge holds it
// back, sees the cloud take the messages after it, drops it with a log
// line that names it, and delivers the rest in order.
func TestRefusedMessageDropped(t *testing.T) {
	p := newPKI(t, "ca")
	c := newCloud(t, p, cloudOpts{extra: "max_packet_size 600"})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "sub", "sites/a/#", sub, nil)
	r := newRig(t, bridgeConfig(c, p, t), rigOpts{})
	r.waitConnected(t, true)

	cl := connectLocal(t, r.local)
	defer cl.Disconnect(100)
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
	sub.waitFor(t, wait, "the ten messages the cloud takes", func(_, distinct int) bool { return distinct >= len(want) })
	if got := firstArrivals(sub); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the cloud received %v, want %v", got, want)
	}
	if n := r.br.Status().Drops.Unsendable; n != 1 {
		t.Errorf("unsendable drops = %d, want 1", n)
	}
	var line string
	for l := range strings.Lines(r.log.String()) {
		if strings.Contains(l, "dropping a message the cloud refuses") {
			line = l
		}
	}
	for _, w := range []string{"seq=6", "topic=sites/a/plant/t", "bytes=1002"} {
		if !strings.Contains(line, w) {
			t.Errorf("log line lacks %s: %q", w, line)
		}
	}
}

// A link that fails whenever anything is sent is not a refused message:
// the session that holds the suspect back fails too, so the suspicion
// ends, nothing is dropped, and everything arrives once the link works.
func TestFailingLinkDropsNothing(t *testing.T) {
	p := newPKI(t, "ca")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "sub", "sites/a/#", sub, nil)
	px := newProxy(t, c, p)
	// Three connections to make a suspect, the one that holds it back,
	// and two more.
	px.cuts.Store(suspectAfter + 3)
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
	if n := r.br.Status().Drops.Unsendable; n != 0 || strings.Contains(r.log.String(), "dropping a message") {
		t.Errorf("%d dropped as refused:\n%s", n, r.log)
	}
	if !strings.Contains(r.log.String(), "holding it back") {
		t.Errorf("the first message was never held back:\n%s", r.log)
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
