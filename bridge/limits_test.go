package bridge

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/config"
)

// rateSlack is the allowance of the rate checks at the proxy for
// scheduling delay. The limiter itself is exact about the times it
// stamps: with a backlog waiting, message i+max_rate leaves no sooner
// than one second after message i. The proxy sees each message a little
// later, after paho's writer, the bridge's write coalescer, TLS and the
// loopback socket, and any of those steps can be descheduled (GC, two
// CPUs shared by mosquitto, the bridge and the test, the race detector):
// a message seen d late makes the span from it to the message max_rate
// later look d short. So the checks allow at most max_rate messages in
// any window of one second less the slack: they fail as soon as
// max_rate + 1 messages span less than that. Measured on two CPUs: at
// most 10 ms short, also with both CPUs otherwise busy; under -race
// usually 35 ms, but once in about ten runs 99 ms.
//
// A tolerance on the count in one-second windows would not do: with a
// backlog the limiter sends a whole window's worth at once and the next
// whole window one second later, so a millisecond of jitter moves tens of
// messages across a window's edge. Without the limiter the bridge sends a
// whole in-flight window within milliseconds, far outside any slack.
//
// The subscriber sees the messages after a second hop (mosquitto, and TLS
// again), whose delays are not the bridge's: what it sees is logged, not
// checked.
func rateSlack() time.Duration {
	d := 100 * time.Millisecond
	if raceEnabled {
		d = d * 5 / 2
	}
	return d
}

// ackHold is how long the proxy holds PUBACKs to fill the in-flight
// window: longer than the one second after which max_rate would let the
// next window's worth go.
const ackHold = 1500 * time.Millisecond

// TestLimitsAWSProfile: with the aws-iot profile's quotas (100 messages a
// second, 100 awaiting PUBACK, 512 KiB a second), a bridge replaying a
// backlog never exceeds them, as counted at an MQTT-aware proxy between
// the bridge and a real mosquitto; and with batching each message within
// those quotas carries many readings.
func TestLimitsAWSProfile(t *testing.T) {
	t.Run("one reading per message", testLimitsSingle)
	t.Run("batched", testLimitsBatched)
	t.Run("batched without a byte rate", testLimitsBatchedWindow)
}

// testLimitsSingle: a backlog of messages, one per MQTT message. First the
// proxy holds PUBACKs, so inflight binds; then it lets them through, so
// max_rate binds.
func testLimitsSingle(t *testing.T) {
	lr := newLimitsRig(t, nil)
	sub := newCloudSub()
	m := &arrivalMeter{next: sub.handle}
	routeCloud(t, lr.c, lr.p, "limits-sub", "sites/#", m.handle)

	topics := topicNames("plant/t", 5)
	const perTopic = 100
	n := len(topics) * perTopic
	publishLocal(t, lr.local, topics, perTopic) // the backlog, with the bridge not running yet
	lr.px.holdAcks(ackHold)
	start := time.Now()
	lr.start()
	// The first window's worth leaves at once; the next only when the
	// held PUBACKs come back, although max_rate would let it go after one
	// second.
	eventually(t, wait, "a second window's worth of PUBLISHes", func() bool { return lr.px.published() >= 2*lr.cfg.Inflight })
	lr.px.holdAcks(0)
	sub.waitFor(t, wait, "every message at the cloud", func(_, distinct int) bool { return distinct >= n })
	elapsed := time.Since(start)

	dups := checkDelivery(t, sub.snapshot(), topicNames("sites/a/plant/t", 5), perTopic)
	lr.checkLimits(t, m, limitBinds{rate: true, inflight: true})
	t.Logf("%d messages in %s, %d duplicates", n, elapsed.Round(time.Millisecond), dups)
}

// testLimitsBatched: a backlog of readings in batches of 200 with the
// aws-iot quotas: a batch of these readings is about 30 KB, so
// max_byte_rate binds, at thousands of readings a second (logged).
func testLimitsBatched(t *testing.T) {
	const batchTopic = "sites/a/batch/gw1"
	lr := newLimitsRig(t, func(cfg *config.Bridge) {
		cfg.Routes[0].Batch = &config.Batch{Topic: batchTopic, MaxMessages: 200}
	})
	const n = 10000 // three seconds' worth of bytes
	sink := newReadingSink(n, batchTopic)
	m := &arrivalMeter{}
	subscribeReadings(t, lr.c, lr.p, "limits-sub", sink, m)
	fillBacklog(t, lr.buf, n)
	start := time.Now()
	lr.start()
	sink.waitFor(t, wait, "every reading", func(c sinkCounts) bool { return c.distinct == n })
	got := sink.check(t)

	lr.checkLimits(t, m, limitBinds{bytes: true})
	// Ten readings or more a message make ten times max_rate in readings
	// a second; the rate reached depends on the machine: only logged.
	if got.readings < 10*got.msgs {
		t.Errorf("%d readings in %d messages, want at least 10 a message", got.readings, got.msgs)
	}
	t.Logf("%d readings in %d batches in %s: %.0f readings/s, %d duplicates", n, got.batches,
		got.last.Sub(start).Round(time.Millisecond), float64(n)/got.last.Sub(start).Seconds(), got.readings-got.distinct)
}

// testLimitsBatchedWindow: batches without max_byte_rate (a raised byte
// quota), so that the message rate and the in-flight window bind on
// batches as they do on single messages: held PUBACKs first, then not.
// Batches of 50 readings (8 KB) keep the work of four windows' worth small
// enough that a loaded machine still sends them as fast as max_rate lets.
func testLimitsBatchedWindow(t *testing.T) {
	const batchTopic = "sites/a/batch/gw1"
	const perBatch = 50
	lr := newLimitsRig(t, func(cfg *config.Bridge) {
		cfg.MaxByteRate = 0
		cfg.Routes[0].Batch = &config.Batch{Topic: batchTopic, MaxMessages: perBatch}
	})
	// Two windows' worth while PUBACKs are held, two more at max_rate.
	n := 4 * lr.cfg.Inflight * perBatch
	sink := newReadingSink(n, batchTopic)
	m := &arrivalMeter{}
	subscribeReadings(t, lr.c, lr.p, "limits-sub", sink, m)
	fillBacklog(t, lr.buf, n)
	lr.px.holdAcks(ackHold)
	start := time.Now()
	lr.start()
	eventually(t, wait, "a second window's worth of batches", func() bool { return lr.px.published() >= 2*lr.cfg.Inflight })
	lr.px.holdAcks(0)
	sink.waitFor(t, wait, "every reading", func(c sinkCounts) bool { return c.distinct == n })
	got := sink.check(t)

	lr.checkLimits(t, m, limitBinds{rate: true, inflight: true})
	if got.readings/got.msgs < perBatch/2 {
		t.Errorf("%d readings in %d messages: batches were not filled", got.readings, got.msgs)
	}
	t.Logf("%d readings in %d batches in %s: %.0f readings/s, %d duplicates", n, got.batches,
		got.last.Sub(start).Round(time.Millisecond), float64(n)/got.last.Sub(start).Seconds(), got.readings-got.distinct)
}

// limitsRig is a rig whose bridge has the aws-iot profile and reaches the
// cloud through an mqttProxy; Run is not started.
type limitsRig struct {
	*rig
	cfg config.Bridge
	p   *pki
	c   *cloud
	px  *mqttProxy
}

func newLimitsRig(t *testing.T, tune func(*config.Bridge)) *limitsRig {
	t.Helper()
	p := newPKI(t, "cloud")
	// newCloud sets max_inflight_messages 100, as AWS IoT: mosquitto
	// applies it to what it sends (the subscriber). AWS refuses payloads
	// over 128 KB; mosquitto closes the connection of a client that sends
	// a larger packet.
	c := newCloud(t, p, cloudOpts{extra: "max_packet_size 131072\n"})
	c.start()
	px := newProxy(t, c, p)
	cfg := bridgeConfig(c, p, t)
	cfg.URL = px.url()
	cfg.Profile = "aws-iot"
	cfg.Keepalive = 30 * time.Second // the profile's least
	// AWS's quotas themselves, the most the profile lets a configuration
	// set (its defaults sit a tenth under the rates).
	cfg.Inflight, cfg.MaxRate, cfg.MaxByteRate, cfg.MaxPayload = 100, 100, 512<<10, 128000
	prof, _ := config.LookupProfile("aws-iot")
	if prof.MaxInflight != cfg.Inflight || prof.MaxRate != cfg.MaxRate || prof.MaxByteRate != cfg.MaxByteRate || prof.MaxPayload != cfg.MaxPayload {
		t.Fatalf("the aws-iot profile's quotas changed: %+v; update this test", prof)
	}
	if tune != nil {
		tune(&cfg)
	}
	return &limitsRig{rig: newRig(t, cfg, rigOpts{noStart: true}), cfg: cfg, p: p, c: c, px: px}
}

// limitBinds says which limits a case drives the bridge against, so that the
// check also proves they were reached: a limit never reached would pass
// without the code that enforces it.
type limitBinds struct {
	rate, bytes, inflight bool
}

// checkLimits checks what the proxy and the subscriber saw against the
// bridge's max_rate, max_byte_rate and inflight.
func (lr *limitsRig) checkLimits(t *testing.T, m *arrivalMeter, b limitBinds) {
	t.Helper()
	if n := lr.px.connections(); n != 1 {
		t.Errorf("the bridge connected %d times, want once", n)
	}
	for _, e := range lr.px.protocolErrors() {
		t.Errorf("proxy: %s", e)
	}
	inflight := lr.cfg.Inflight
	switch out := lr.px.maxOutstanding(); {
	case out > inflight:
		t.Errorf("%d PUBLISHes awaited their PUBACK at once, inflight is %d", out, inflight)
	case b.inflight && out < inflight:
		t.Errorf("at most %d PUBLISHes awaited their PUBACK at once: the in-flight window of %d was never full", out, inflight)
	}

	pubs := lr.px.publishes()
	at := make([]time.Time, len(pubs))
	size := make([]float64, len(pubs))
	for i, p := range pubs {
		at[i], size[i] = p.at, float64(p.size)
	}
	checkRate(t, "PUBLISHes at the proxy", at, nil, lr.cfg.MaxRate)
	checkRate(t, "PUBLISH bytes at the proxy", at, size, float64(lr.cfg.MaxByteRate))
	// The limits must have held sends back, or the checks above had
	// nothing to catch: the case drove the bridge against them.
	msgs, bytes := lr.br.limit.held()
	if b.rate && msgs == 0 {
		t.Errorf("no send waited for max_rate: the case never reached it")
	}
	if b.bytes && bytes == 0 {
		t.Errorf("no send waited for max_byte_rate: the case never reached it")
	}

	// The subscriber sees the same messages later, after mosquitto and a
	// second TLS hop, whose delays are not the bridge's: only logged.
	at, size = m.times()
	logRate(t, "messages at the subscriber", at, nil, lr.cfg.MaxRate)
	logRate(t, "message bytes at the subscriber", at, size, float64(lr.cfg.MaxByteRate))
	t.Logf("per second at the subscriber: %v messages", perWallSecond(at))
	if len(at) != len(pubs) {
		t.Errorf("the proxy saw %d PUBLISHes, the subscriber %d messages", len(pubs), len(at))
	}
}

// checkRate checks that no window of one second less rateSlack holds
// more than limit (0: none) of the weights (nil: one each) of messages
// seen at the times.
func checkRate(t *testing.T, what string, at []time.Time, weight []float64, limit float64) {
	t.Helper()
	if inner, from := logRate(t, what, at, weight, limit); inner > limit {
		t.Errorf("%s: %.0f within %s from %s, more than the limit of %.0f a second", what, inner, time.Second-rateSlack(), from.Format("15:04:05.000"), limit)
	}
}

// logRate logs the busiest windows of one second, and of one second less
// and more rateSlack, and returns the total in the shorter one and when
// that window starts.
func logRate(t *testing.T, what string, at []time.Time, weight []float64, limit float64) (float64, time.Time) {
	t.Helper()
	if limit == 0 {
		return 0, time.Time{}
	}
	short, long := time.Second-rateSlack(), time.Second+rateSlack()
	inner, from := busiestWindow(at, weight, short)
	outer, _ := busiestWindow(at, weight, long)
	exact, _ := busiestWindow(at, weight, time.Second)
	t.Logf("%s: at most %.0f in %s, %.0f in 1s, %.0f in %s (limit %.0f)%s", what, inner, short, exact, outer, long, limit, shortestSpan(at, weight, limit))
	return inner, from
}

// busiestWindow returns the largest total weight (nil: one each) of the times
// that fall within a window [from, from+span), and from.
func busiestWindow(at []time.Time, weight []float64, span time.Duration) (float64, time.Time) {
	idx := make([]int, len(at))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return at[a].Compare(at[b]) })
	w := func(i int) float64 {
		if weight == nil {
			return 1
		}
		return weight[i]
	}
	best, sum, lo := 0.0, 0.0, 0
	var from time.Time
	for _, i := range idx {
		sum += w(i)
		for at[i].Sub(at[idx[lo]]) >= span {
			sum -= w(idx[lo])
			lo++
		}
		if sum > best {
			best, from = sum, at[idx[lo]]
		}
	}
	return math.Round(best), from
}

// shortestSpan describes, for counted messages, the shortest time that
// limit+1 of them took: how much slack the check needed.
func shortestSpan(at []time.Time, weight []float64, limit float64) string {
	n := int(limit)
	if weight != nil || len(at) <= n {
		return ""
	}
	sorted := slices.SortedFunc(slices.Values(at), time.Time.Compare)
	least := sorted[n].Sub(sorted[0])
	for i := n; i < len(sorted); i++ {
		least = min(least, sorted[i].Sub(sorted[i-n]))
	}
	return fmt.Sprintf("; %d took %s at the least", n+1, least.Round(100*time.Microsecond))
}

// perWallSecond counts the times in each second of the wall clock, as a cloud
// that counts per second does.
func perWallSecond(at []time.Time) []int {
	if len(at) == 0 {
		return nil
	}
	first := at[0].Truncate(time.Second)
	var out []int
	for _, a := range at {
		i := int(a.Sub(first) / time.Second)
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	return out
}

// arrivalMeter notes when each message reaches a cloud client and the bytes of
// its topic and payload, and hands it on to next.
type arrivalMeter struct {
	next paho.MessageHandler

	mu   sync.Mutex
	at   []time.Time
	size []float64
}

func (m *arrivalMeter) handle(c paho.Client, msg paho.Message) {
	now := time.Now()
	m.mu.Lock()
	m.at = append(m.at, now)
	m.size = append(m.size, float64(len(msg.Topic())+len(msg.Payload())))
	m.mu.Unlock()
	m.next(c, msg)
}

func (m *arrivalMeter) times() ([]time.Time, []float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.at), slices.Clone(m.size)
}
