package bridge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/mappings"
)

// batchElem is one message of a batch as a consumer decodes it.
type batchElem struct {
	Topic      string          `json:"topic"`
	TS         string          `json:"ts"`
	Payload    json.RawMessage `json:"payload"`
	PayloadB64 *string         `json:"payload_b64"`
}

// unpack decodes a batch and returns each message's topic and payload.
func unpack(t testing.TB, data []byte) []cloudMsg {
	t.Helper()
	var elems []batchElem
	if err := json.Unmarshal(data, &elems); err != nil {
		t.Fatalf("a batch is not a JSON array of messages: %v\n%.300s", err, data)
	}
	out := make([]cloudMsg, len(elems))
	for i, e := range elems {
		if _, err := time.Parse(time.RFC3339Nano, e.TS); err != nil || !strings.HasSuffix(e.TS, "Z") || len(e.TS) != len("2006-01-02T15:04:05.000Z") {
			t.Fatalf("element %d: ts %q", i, e.TS)
		}
		switch {
		case e.PayloadB64 != nil && e.Payload == nil:
			p, err := base64.StdEncoding.DecodeString(*e.PayloadB64)
			if err != nil {
				t.Fatalf("element %d: payload_b64: %v", i, err)
			}
			out[i] = cloudMsg{topic: e.Topic, payload: string(p)}
		case e.Payload != nil && e.PayloadB64 == nil:
			out[i] = cloudMsg{topic: e.Topic, payload: string(e.Payload)}
		default:
			t.Fatalf("element %d holds neither or both of payload and payload_b64", i)
		}
	}
	return out
}

// TestBatchElements: JSON payloads are embedded as JSON, anything else as
// base64, and topics are escaped.
func TestBatchElements(t *testing.T) {
	ts := time.Date(2026, 11, 25, 19, 0, 0, 120e6, time.UTC)
	cases := []struct{ topic, payload string }{
		{"sites/a/t", `{"value":1.5,"unit":"°C"}`},
		{"sites/a/t", `42`},
		{"sites/a/t", ` "text" `},
		{"sites/a/t", `not json`},
		{"sites/a/t", ""},
		{"sites/a/t", "\xff\xfe\x00binary"},
		{"sites/a/t", "\"\xff\""}, // JSON-shaped but not UTF-8
		{`quote"back\slash` + "\x01", "1"},
	}
	var bt batcher
	route := &batchRoute{maxMessages: 100, maxBytes: 1 << 20, maxDelay: time.Second}
	for i, c := range cases {
		elem := append([]byte(nil), bt.element(record{topic: c.topic, time: ts, payload: []byte(c.payload)})...)
		if ready := bt.add(route, "b", 1, elem, uint64(i+1), ts); len(ready) != 0 {
			t.Fatalf("case %d: a batch left early", i)
		}
	}
	ready := bt.due(ts.Add(time.Second))
	if len(ready) != 1 || len(ready[0].seqs) != len(cases) {
		t.Fatalf("due: %d batches", len(ready))
	}
	got := unpack(t, ready[0].buf)
	for i, c := range cases {
		want := c.payload
		if json.Valid([]byte(want)) && !strings.Contains(want, "\xff") {
			want = strings.TrimSpace(want)
		}
		if got[i].topic != c.topic || strings.TrimSpace(got[i].payload) != want {
			t.Errorf("case %d: got %q %q, want %q %q", i, got[i].topic, got[i].payload, c.topic, want)
		}
	}
	if !strings.Contains(string(ready[0].buf), `"ts":"2026-11-25T19:00:00.120Z"`) {
		t.Errorf("ts not as payloads give it: %.200s", ready[0].buf)
	}
}

// TestBatchLimits: a batch closes at max_messages, never exceeds
// max_bytes, batches per topic are separate, and open batches are bounded.
func TestBatchLimits(t *testing.T) {
	now := time.Now()
	var bt batcher
	route := &batchRoute{maxMessages: 5, maxBytes: 300, maxDelay: time.Second}
	var sent []*openBatch
	for i := range 40 {
		topic := "t" + strconv.Itoa(i%2)
		elem := bt.element(record{topic: topic, time: now, payload: []byte(strconv.Itoa(i))})
		sent = append(sent, bt.add(route, topic, 1, elem, uint64(i+1), now)...)
	}
	sent = append(sent, bt.due(now.Add(time.Second))...)
	seen := 0
	for _, o := range sent {
		if o.size() > route.maxBytes+1 || len(o.buf) > route.maxBytes {
			t.Errorf("batch of %d bytes over max_bytes %d", len(o.buf), route.maxBytes)
		}
		msgs := unpack(t, o.buf)
		if len(msgs) > route.maxMessages || len(msgs) != len(o.seqs) {
			t.Errorf("batch of %d messages (%d seqs)", len(msgs), len(o.seqs))
		}
		for _, m := range msgs {
			if m.topic != o.topic {
				t.Errorf("message of %s in the batch of %s", m.topic, o.topic)
			}
		}
		seen += len(msgs)
	}
	if seen != 40 || bt.bytes != 0 || len(bt.open) != 0 {
		t.Errorf("%d messages in batches, %d bytes still open", seen, bt.bytes)
	}

	// Past maxOpenBytes, the oldest open batch leaves early.
	big := &batchRoute{maxMessages: 100000, maxBytes: 1 << 30, maxDelay: time.Hour}
	elem := []byte(`{"topic":"x","ts":"2026-11-25T19:00:00.000Z","payload":"` + strings.Repeat("a", 1<<20) + `"}`)
	var early []*openBatch
	for i := range 20 {
		early = append(early, bt.add(big, "topic"+strconv.Itoa(i), 1, elem, uint64(i+1), now)...)
	}
	if len(early) == 0 || early[0].topic != "topic0" || bt.bytes > maxOpenBytes {
		t.Errorf("open batches hold %d bytes; %d left early", bt.bytes, len(early))
	}

	// A rare topic's batch does not hold the cursor back for long.
	var rare batcher
	unbounded := &batchRoute{maxMessages: 1 << 30, maxBytes: 1 << 30, maxDelay: time.Hour}
	small := []byte(`{"topic":"x","ts":"2026-11-25T19:00:00.000Z","payload":1}`)
	if len(rare.add(unbounded, "rare", 1, small, 1, now)) != 0 {
		t.Fatal("a batch left at once")
	}
	var left []*openBatch
	for seq := uint64(2); seq <= maxOpenSpan+1; seq++ {
		left = append(left, rare.add(unbounded, "busy", 1, small, seq, now)...)
	}
	if len(left) != 1 || left[0].topic != "rare" || left[0].seqs[0] != 1 {
		t.Errorf("after %d records of another topic, %d batches left", maxOpenSpan, len(left))
	}
}

// TestTracker: the cursor passes a record only when it and every record
// before it were acknowledged, whatever order batches come back in.
func TestTracker(t *testing.T) {
	var tr tracker
	for s := uint64(10); s < 20; s++ {
		tr.add(s)
	}
	if c, moved := tr.finish(12, 14, 16); moved || c != 10 {
		t.Fatalf("cursor %d moved %v with 10 unacknowledged", c, moved)
	}
	if c, _ := tr.finish(10, 11); c != 13 {
		t.Fatalf("cursor %d, want 13", c)
	}
	if c, _ := tr.finish(13, 15, 17, 18, 19); c != 20 {
		t.Fatalf("cursor %d, want 20", c)
	}
	// Records dropped from the buffer under the reader count as done.
	tr.add(25)
	tr.add(26)
	if c, _ := tr.finish(26); c != 25 {
		t.Fatalf("cursor %d, want 25", c)
	}
	tr.add(30)
	if c, _ := tr.finish(25); c != 30 {
		t.Fatalf("cursor %d, want 30 (26 done, 27-29 dropped)", c)
	}
	if c, _ := tr.finish(30); c != 31 {
		t.Fatalf("cursor %d, want 31", c)
	}
	// A long session reuses its memory.
	for s := uint64(31); s < 100031; s++ {
		tr.add(s)
		tr.finish(s)
	}
	if cap(tr.done) > 16384 {
		t.Errorf("tracker holds %d entries after everything was acknowledged", cap(tr.done))
	}
}

// TestBatchedOutage: readings buffered during an outage arrive in
// batches, every one of them, in order per topic; a message larger than
// max_payload is dropped and counted, when published (and logged with its
// topic) and when a record buffered under a larger max_payload is sent;
// the buffer empties only as batches are acknowledged.
func TestBatchedOutage(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	cfg := bridgeConfig(c, p, t)
	one := 1
	cfg.MaxPayload = 4096
	cfg.Routes = []config.Route{
		// Per remote topic.
		{Direction: "out", Filter: "plant/t/#", QoS: &one, RemotePrefix: "sites/a/",
			Batch: &config.Batch{MaxMessages: 50, MaxBytes: 2048, MaxDelay: 50 * time.Millisecond}},
		// Everything of the route in one topic.
		{Direction: "out", Filter: "plant/u/#", QoS: &one, RemotePrefix: "sites/a/",
			Batch: &config.Batch{Topic: "sites/a/batch", MaxMessages: 1000, MaxBytes: 3000, MaxDelay: 50 * time.Millisecond}},
		{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "sites/a/"},
	}
	sub := newCloudSub()
	subscribeCloud(t, c, p, "batch-sub", "sites/#", sub, nil)
	r := newRig(t, cfg, rigOpts{})
	r.waitConnected(t, true)

	c.stop()
	r.waitConnected(t, false)
	tTopics := topicNames("plant/t/", 5)
	uTopics := topicNames("plant/u/", 5)
	const perTopic = 400
	publishLocal(t, r.local, append(append([]string{}, tTopics...), uTopics...), perTopic)
	publishLocal(t, r.local, []string{"plant/big"}, 1) // "0": fits
	publishRaw(t, r.local, "plant/big", strings.Repeat("x", 5000))
	publishRaw(t, r.local, "plant/t/bin", "\x00\x01\xff")
	// As Store buffered it under an earlier max_payload of 8192.
	old, err := appendRecord(nil, "sites/a/plant/old", 1, false, time.Now(), bytes.Repeat([]byte("x"), 5000))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.buf.AppendAsync(old); err != nil {
		t.Fatal(err)
	}
	n := 10*perTopic + 3
	if got := r.br.Status().Backlog.Messages; got != uint64(n) {
		t.Fatalf("backlog %d, want %d: the message over max_payload is not buffered", got, n)
	}

	c.start()
	sub = newCloudSub()
	subscribeCloud(t, c, p, "batch-sub", "sites/#", sub, nil)
	eventually(t, bulkWait, "an empty backlog", func() bool { return r.br.Status().Backlog.Messages == 0 })
	st := r.br.Status()
	sub.waitFor(t, wait, "every batch", func(total, _ int) bool { return uint64(total) >= st.Sent })

	var readings []cloudMsg
	batches := 0
	for _, m := range sub.snapshot() {
		switch {
		case m.topic == "sites/a/plant/big":
			readings = append(readings, m)
		case strings.HasPrefix(m.payload, "["):
			batches++
			if len(m.payload) > 3000 {
				t.Errorf("a batch of %d bytes on %s", len(m.payload), m.topic)
			}
			if m.retained {
				t.Errorf("a retained batch on %s", m.topic)
			}
			for _, e := range unpack(t, []byte(m.payload)) {
				if m.topic != "sites/a/batch" && e.topic != m.topic {
					t.Errorf("%s in the batch of %s", e.topic, m.topic)
				}
				readings = append(readings, e)
			}
		case m.topic != "sites/a/status":
			t.Errorf("unbatched message on %s", m.topic)
		}
	}
	dups := checkDelivery(t, readings, topicNames("sites/a/plant/t/", 5), perTopic)
	dups += checkDelivery(t, readings, topicNames("sites/a/plant/u/", 5), perTopic)
	var bin, big int
	for _, m := range readings {
		switch m.topic {
		case "sites/a/plant/t/bin":
			bin++
			if m.payload != "\x00\x01\xff" {
				t.Errorf("binary payload arrived as %q", m.payload)
			}
		case "sites/a/plant/big":
			big++
			if m.payload != "0" {
				t.Errorf("the oversize message arrived")
			}
		case "sites/a/plant/old":
			t.Errorf("the oversize record arrived")
		}
	}
	if bin != 1 || big != 1 {
		t.Errorf("binary %d, small plant/big %d, want 1 each", bin, big)
	}
	// The second drop comes within the log limiter's interval: counted,
	// not logged.
	if st.Drops.Oversize != 2 || !strings.Contains(r.log.String(), "topic=plant/big") {
		t.Errorf("oversize drops %d, want 2, the first logged with its topic; log:\n%s", st.Drops.Oversize, r.log.String())
	}
	if st.Delivered < uint64(n-1) || st.Batches == 0 || st.Batches > uint64(n/10) {
		t.Errorf("status: %d delivered, %d batches for %d messages", st.Delivered, st.Batches, n)
	}
	t.Logf("%d readings in %d batches, %d duplicates", len(readings), batches, dups)
}

// TestBatchFollowsStoredRoute: whether a record is batched is decided by
// the out-route Store chose for it, the first whose filter matches, not
// by a later batched route whose remote filter also covers its remote
// topic.
func TestBatchFollowsStoredRoute(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	cfg := bridgeConfig(c, p, t)
	one := 1
	cfg.Routes = []config.Route{
		{Direction: "out", Filter: "plant/a/#", QoS: &one, RemotePrefix: "s/"},
		{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "s/",
			Batch: &config.Batch{Topic: "s/batch", MaxMessages: 10, MaxBytes: 4096, MaxDelay: 50 * time.Millisecond}},
	}
	sub := newCloudSub()
	subscribeCloud(t, c, p, "route-sub", "s/#", sub, nil)
	r := newRig(t, cfg, rigOpts{noStart: true})
	const perTopic = 20
	publishLocal(t, r.local, []string{"plant/a/x", "plant/b/y"}, perTopic)
	r.start()
	eventually(t, wait, "an empty backlog", func() bool { return r.br.Status().Backlog.Messages == 0 })
	st := r.br.Status()
	sub.waitFor(t, wait, "every message", func(total, _ int) bool { return uint64(total) >= st.Sent })

	var single, batched []cloudMsg
	for _, m := range sub.snapshot() {
		if m.topic == "s/batch" {
			batched = append(batched, unpack(t, []byte(m.payload))...)
		} else {
			single = append(single, m)
		}
	}
	for _, m := range batched {
		if m.topic != "s/plant/b/y" {
			t.Errorf("%s, stored under an unbatched route, arrived in a batch", m.topic)
		}
	}
	for _, m := range single {
		if m.topic != "s/plant/a/x" {
			t.Errorf("%s, stored under the batched route, arrived alone", m.topic)
		}
	}
	checkDelivery(t, single, []string{"s/plant/a/x"}, perTopic)
	checkDelivery(t, batched, []string{"s/plant/b/y"}, perTopic)
}

// publishRaw publishes one QoS 1 message with an arbitrary payload.
func publishRaw(t testing.TB, brokerURL, topic, payload string) {
	t.Helper()
	cl := connectLocal(t, brokerURL)
	defer cl.Disconnect(100)
	if tok := cl.Publish(topic, 1, false, []byte(payload)); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, fmt.Sprint(tok.Error()))
	}
}

// TestUnbatchHelper: the Python helper in docs/examples unpacks what the
// bridge packs, JSON and binary payloads alike.
func TestUnbatchHelper(t *testing.T) {
	python := need(t, "python3", "python3")
	ts := time.Date(2026, 11, 25, 19, 0, 0, 120e6, time.UTC)
	msgs := []cloudMsg{
		{topic: "sites/a/gw1/boiler/temperature", payload: `{"value":21.5,"unit":"°C","ts":"2026-11-25T19:00:00.120Z","quality":"good"}`},
		{topic: "sites/a/gw1/boiler/pump", payload: `true`},
		{topic: "sites/a/gw1/scale/line", payload: "\x02W 12.5kg\r\n"},
	}
	var bt batcher
	route := &batchRoute{maxMessages: 10, maxBytes: 1 << 16, maxDelay: time.Second}
	for i, m := range msgs {
		elem := append([]byte(nil), bt.element(record{topic: m.topic, time: ts, payload: []byte(m.payload)})...)
		bt.add(route, "sites/a/gw1/batch", 1, elem, uint64(i+1), ts)
	}
	batch := bt.due(ts.Add(time.Second))[0].buf
	script := `import sys, json, base64
sys.path.insert(0, sys.argv[1])
import unbatch
for topic, ts, payload in unbatch.unpack(sys.stdin.buffer.read()):
    print(json.dumps([topic, ts, base64.b64encode(payload).decode()]))`
	cmd := exec.Command(python, "-c", script, filepath.Join("..", "docs", "examples"))
	cmd.Stdin = bytes.NewReader(batch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unbatch.py: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("unbatch.py printed %d messages, want %d:\n%s", len(lines), len(msgs), out)
	}
	for i, line := range lines {
		var got [3]string
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		payload, _ := base64.StdEncoding.DecodeString(got[2])
		if got[0] != msgs[i].topic || got[1] != "2026-11-25T19:00:00.120Z" || !samePayload(payload, []byte(msgs[i].payload)) {
			t.Errorf("message %d: got %q %q %q, want %q %q", i, got[0], got[1], payload, msgs[i].topic, msgs[i].payload)
		}
	}
}

// samePayload compares JSON payloads as values and others byte for byte.
func samePayload(a, b []byte) bool {
	va, okA := jsonValue(a)
	vb, okB := jsonValue(b)
	if okA && okB {
		return reflect.DeepEqual(va, vb)
	}
	return bytes.Equal(a, b)
}

// jsonValue decodes a JSON payload with numbers kept as written: 1e700
// is valid JSON that a float64 cannot hold, and a batch carries it as is.
func jsonValue(p []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return nil, false
	}
	return v, true
}

// TestBatchStaysUntilPuback: a batch's messages leave the buffer only
// when the cloud acknowledged the batch; while the PUBACKs are held back,
// every message of the sent batches is still in the backlog.
func TestBatchStaysUntilPuback(t *testing.T) {
	lr := newLimitsRig(t, func(cfg *config.Bridge) {
		cfg.Routes[0].Batch = &config.Batch{Topic: "sites/a/batch", MaxMessages: 50, MaxBytes: 64 << 10, MaxDelay: 50 * time.Millisecond}
	})
	sub := newCloudSub()
	subscribeCloud(t, lr.c, lr.p, "puback-sub", "sites/#", sub, nil)
	topics := topicNames("plant/t", 5)
	const perTopic = 100
	publishLocal(t, lr.local, topics, perTopic)
	lr.px.pauseAcks()
	lr.start()
	eventually(t, wait, "every batch sent", func() bool { return lr.px.published() >= len(topics)*perTopic/50 })
	if st := lr.br.Status(); st.Backlog.Messages != uint64(len(topics)*perTopic) || st.Delivered != 0 {
		t.Fatalf("with every PUBACK held: backlog %d, delivered %d; want %d, 0", st.Backlog.Messages, st.Delivered, len(topics)*perTopic)
	}
	lr.px.releaseAcks()
	eventually(t, wait, "an empty backlog once the PUBACKs came", func() bool { return lr.br.Status().Backlog.Messages == 0 })
	sub.waitFor(t, wait, "every batch at the cloud", func(total, _ int) bool { return total >= len(topics)*perTopic/50 })
	var readings []cloudMsg
	for _, m := range sub.snapshot() {
		if m.topic == "sites/a/batch" {
			readings = append(readings, unpack(t, []byte(m.payload))...)
		}
	}
	checkDelivery(t, readings, topicNames("sites/a/plant/t", 5), perTopic)
}

// FuzzBatch: whatever the topics and payloads, a batch is valid JSON that
// gives back every message's topic and payload (JSON payloads as JSON
// values), and never exceeds max_bytes.
func FuzzBatch(f *testing.F) {
	f.Add("sites/a/t", []byte(`{"value":1}`), "sites/b", []byte("\xff\x00"), 300)
	f.Add("a\"b\\c\x01", []byte(` [1, 2] `), "é/ü", []byte(`"\ud800"`), 256)
	f.Add("t", []byte("1e999"), "t", []byte{}, 1000)
	f.Fuzz(func(t *testing.T, topic1 string, p1 []byte, topic2 string, p2 []byte, maxBytes int) {
		if mappings.ValidTopicName(topic1) != nil || mappings.ValidTopicName(topic2) != nil {
			return
		}
		route := &batchRoute{maxMessages: 3, maxBytes: max(256, maxBytes%(1<<16)), maxDelay: time.Second}
		now := time.Unix(1795000000, 123e6)
		var bt batcher
		var sent []*openBatch
		in := []cloudMsg{{topic: topic1, payload: string(p1)}, {topic: topic2, payload: string(p2)}, {topic: topic1, payload: string(p2)}}
		kept := 0
		for i, m := range in {
			elem := append([]byte(nil), bt.element(record{topic: m.topic, time: now, payload: []byte(m.payload)})...)
			if len(elem)+2 > route.maxBytes {
				continue // the bridge drops it as oversize
			}
			in[kept] = m
			kept++
			sent = append(sent, bt.add(route, "batch", 1, elem, uint64(i+1), now)...)
		}
		sent = append(sent, bt.due(now.Add(time.Second))...)
		var out []cloudMsg
		for _, o := range sent {
			if len(o.buf) > route.maxBytes {
				t.Fatalf("a batch of %d bytes, max_bytes %d", len(o.buf), route.maxBytes)
			}
			out = append(out, unpack(t, o.buf)...)
		}
		if len(out) != kept {
			t.Fatalf("%d messages out of %d", len(out), kept)
		}
		for i, m := range out {
			if m.topic != in[i].topic || !samePayload([]byte(m.payload), []byte(in[i].payload)) {
				t.Fatalf("message %d: %q %q, want %q %q", i, m.topic, m.payload, in[i].topic, in[i].payload)
			}
		}
	})
}

// BenchmarkBatcher: what one record costs the sender with many batches
// open (a route batched by remote topic over many topics, most batches
// leaving at max_delay): it must not grow with the number of batches.
func BenchmarkBatcher(b *testing.B) {
	for _, topics := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", topics), func(b *testing.B) {
			route := &batchRoute{maxMessages: 50, maxBytes: 1 << 16, maxDelay: 10 * time.Millisecond}
			names := topicNames("sites/a/t", topics)
			elem := []byte(`{"topic":"sites/a/t0","ts":"2026-11-25T19:00:00.000Z","payload":1}`)
			now := time.Now()
			var bt batcher
			for i := range b.N {
				now = now.Add(time.Microsecond) // a thousand records a millisecond
				if dl, ok := bt.deadline(); ok && !now.Before(dl) {
					bt.due(now)
				}
				bt.add(route, names[i%topics], 1, elem, uint64(i+1), now)
			}
		})
	}
}
