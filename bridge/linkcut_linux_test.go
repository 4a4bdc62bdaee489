package bridge

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsPair is two network namespaces joined by a veth pair: the gateway
// side and the cloud side, with addresses that exist only inside them.
type netnsPair struct {
	gw, cloud     string // namespace names
	gwIP, cloudIP string
	cloudIf       string
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	need(t, "ip", "iproute2")
	need(t, "nft", "nftables")
	if os.Geteuid() != 0 {
		t.Fatalf("the link-cut test makes network namespaces and needs root (running as uid %d)", os.Geteuid())
	}
	id := os.Getpid() % 100000
	n := &netnsPair{
		gw: fmt.Sprintf("fbgw%d", id), cloud: fmt.Sprintf("fbcl%d", id),
		gwIP: "10.213.0.1", cloudIP: "10.213.0.2", cloudIf: "fbc0",
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("cannot set up the network namespaces for the link-cut test: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", n.gw)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.gw).Run() })
	ip("netns", "add", n.cloud)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.cloud).Run() })
	ip("link", "add", "fbg0", "netns", n.gw, "type", "veth", "peer", "name", n.cloudIf, "netns", n.cloud)
	ip("-n", n.gw, "addr", "add", n.gwIP+"/30", "dev", "fbg0")
	ip("-n", n.cloud, "addr", "add", n.cloudIP+"/30", "dev", n.cloudIf)
	for _, ns := range []string{n.gw, n.cloud} {
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", n.gw, "link", "set", "fbg0", "up")
	ip("-n", n.cloud, "link", "set", n.cloudIf, "up")
	return n
}

// cut drops every packet on the cloud's side of the link, in both
// directions, without a reset: to both ends the connection just goes
// silent.
func (n *netnsPair) cut(t *testing.T) {
	t.Helper()
	rules := fmt.Sprintf(`table inet fbcut {
	chain in { type filter hook input priority 0; iifname "%[1]s" drop; }
	chain out { type filter hook output priority 0; oifname "%[1]s" drop; }
}
`, n.cloudIf)
	path := filepath.Join(t.TempDir(), "cut.nft")
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", n.cloud, "nft", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

func (n *netnsPair) restore(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", n.cloud, "nft", "delete", "table", "inet", "fbcut").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

// dialIn returns a dial function whose sockets belong to namespace ns. A
// socket keeps the namespace it was created in, so only the socket call
// runs on a thread switched into ns.
func dialIn(ns string) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// The thread is unlocked only if it is back in its own
			// namespace; otherwise it ends with this goroutine.
			self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer self.Close()
			target, err := os.Open("/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// TestSilentLinkCut: packets dropped without a reset, first while idle
// (paho's keepalive ping goes unanswered) and then with messages in
// flight (no PUBACK within keepalive); both are detected, the bridge
// reconnects when the link is back, and every message arrives in order.
func TestSilentLinkCut(t *testing.T) {
	n := newNetnsPair(t)
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{host: n.cloudIP, netns: n.cloud})
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "cut-sub", "sites/#", sub, dialIn(n.cloud))

	cfg := bridgeConfig(c, p, t)
	cfg.Keepalive = 2 * time.Second // detection takes a few seconds
	cfg.StatusTopic = "sites/a/gw1/status"
	cfg.MaxRate = 1000
	r := newRig(t, cfg, rigOpts{dial: dialIn(n.gw)})
	r.waitConnected(t, true)

	// Idle: nothing in flight, only the keepalive can notice.
	before := r.br.Status().Connects
	n.cut(t)
	r.waitConnected(t, false)
	idleErr := r.br.Status().LastError
	// The cloud notices too (1.5 keepalives) and publishes the Will.
	sub.waitFor(t, wait, "the Will", func(int, int) bool { return sub.has("sites/a/gw1/status", "offline") })
	topics := topicNames("plant/t", 4)
	publishLocal(t, r.local, topics[:2], 500)
	n.restore(t)
	eventually(t, wait, "a new connection", func() bool { return r.br.Status().Connects > before })

	// Busy: max_rate keeps messages flowing for a while; cut in the middle.
	publishLocal(t, r.local, topics[2:], 2500)
	sub.waitFor(t, wait, "the second batch flowing", func(_, d int) bool { return d >= 1000+2+1500 })
	before = r.br.Status().Connects
	n.cut(t)
	r.waitConnected(t, false)
	busyErr := r.br.Status().LastError
	n.restore(t)
	eventually(t, wait, "a new connection", func() bool { return r.br.Status().Connects > before })
	// Distinct messages: 6000, plus "online" and "offline" on the status topic.
	sub.waitFor(t, bulkWait, "every message", func(_, d int) bool { return d >= 6000+2 })

	msgs := sub.snapshot()
	dups := checkDelivery(t, msgs, topicNames("sites/a/plant/t", 2), 500)
	dups += checkDelivery(t, msgs, topicNames("sites/a/plant/t", 4)[2:], 2500)
	t.Logf("idle cut: %s", idleErr)
	t.Logf("busy cut: %s", busyErr)
	t.Logf("all 6000 messages delivered, %d duplicates", dups)
	if !strings.Contains(idleErr, "pingresp") {
		t.Errorf("the idle cut was not found by the keepalive: %q", idleErr)
	}
}
