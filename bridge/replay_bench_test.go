package bridge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
)

// ---- readings: a plant's backlog, and a cloud client that accounts for it ----

// A backlog holds readings of backlogDevices devices with backlogPoints
// points each, in turn: reading seq is from device seq%10, point seq/10%10,
// under the remote prefix of bridgeConfig's route.
const (
	backlogDevices = 10
	backlogPoints  = 10
)

// readingTopic is the remote topic of reading seq.
func readingTopic(seq int) string {
	return "sites/a/plant/dev" + strconv.Itoa(seq%backlogDevices) + "/p" + strconv.Itoa(seq/backlogDevices%backlogPoints)
}

// appendReading appends reading seq's payload, about 90 bytes of JSON as
// a meter adapter publishes it, with its sequence number so that the
// cloud side can account for every reading.
func appendReading(dst []byte, seq int, at time.Time) []byte {
	return fmt.Appendf(dst, `{"value":%.6f,"unit":"degC","ts":%d,"quality":"good","sequence":%d}`,
		20+float64(seq%1000)/37, at.UnixMilli(), seq)
}

// fillBacklog appends readings 0..n-1 to buf as the bridge's Store does
// for a QoS 1 route, a millisecond apart, and returns the payload bytes.
func fillBacklog(tb testing.TB, buf *buffer.Log, n int) int64 {
	tb.Helper()
	start := time.Now().Add(-time.Duration(n) * time.Millisecond)
	var rec, payload []byte
	var bytes int64
	for seq := range n {
		at := start.Add(time.Duration(seq) * time.Millisecond)
		payload = appendReading(payload[:0], seq, at)
		bytes += int64(len(payload))
		var err error
		if rec, err = appendRecord(rec[:0], readingTopic(seq), 1, false, at, payload); err != nil {
			tb.Fatal(err)
		}
		if err := buf.AppendAsync(rec); err != nil {
			tb.Fatalf("appending reading %d: %v", seq, err)
		}
	}
	return bytes
}

// readingPayload is a reading as the cloud decodes it.
type readingPayload struct {
	Value   *float64 `json:"value"`
	Unit    string   `json:"unit"`
	TS      int64    `json:"ts"`
	Quality string   `json:"quality"`
	Seq     *int     `json:"sequence"`
}

// readingElem is one message of a batch (see batch.go).
type readingElem struct {
	Topic      string          `json:"topic"`
	TS         string          `json:"ts"`
	Payload    *readingPayload `json:"payload"`
	PayloadB64 *string         `json:"payload_b64"`
}

// readingSink is a cloud client's account of a backlog of n readings,
// sent one per message or in batches on batchTopic. It counts every
// delivery of every reading, and checks that each batch is whole and
// holds a run of consecutive readings (one batch topic is filled in buffer
// order) and that nothing was skipped: a reading after a gap was lost or
// came out of order.
type readingSink struct {
	batchTopic string

	mu       sync.Mutex
	seen     []uint8 // deliveries of each reading
	distinct int
	readings int // duplicates included
	msgs     int
	batches  int
	next     int // the reading after the highest one received
	problems []string
	first    time.Time
	last     time.Time
	signal   chan struct{}
}

func newReadingSink(n int, batchTopic string) *readingSink {
	return &readingSink{batchTopic: batchTopic, seen: make([]uint8, n), signal: make(chan struct{}, 1)}
}

func (s *readingSink) problem(format string, args ...any) {
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

// handle accounts for one MQTT message from the cloud.
func (s *readingSink) handle(_ paho.Client, m paho.Message) {
	now := time.Now()
	var seqs []int
	var bad []string
	if m.Topic() == s.batchTopic {
		var elems []readingElem
		if err := json.Unmarshal(m.Payload(), &elems); err != nil {
			bad = append(bad, fmt.Sprintf("batch of %d bytes: %v", len(m.Payload()), err))
		}
		if len(elems) == 0 {
			bad = append(bad, "an empty batch")
		}
		seqs = make([]int, 0, len(elems))
		for i, e := range elems {
			switch {
			case e.Payload == nil || e.Payload.Seq == nil || e.Payload.Value == nil || e.PayloadB64 != nil:
				bad = append(bad, fmt.Sprintf("batch element %d without its JSON reading: %+v", i, e))
				continue
			case e.Topic != readingTopic(*e.Payload.Seq) || e.TS == "":
				bad = append(bad, fmt.Sprintf("batch element %d: reading %d with topic %q, ts %q", i, *e.Payload.Seq, e.Topic, e.TS))
			case i > 0 && *e.Payload.Seq != seqs[len(seqs)-1]+1:
				bad = append(bad, fmt.Sprintf("batch element %d: reading %d after %d", i, *e.Payload.Seq, seqs[len(seqs)-1]))
			}
			seqs = append(seqs, *e.Payload.Seq)
		}
	} else {
		var r readingPayload
		if err := json.Unmarshal(m.Payload(), &r); err != nil || r.Seq == nil {
			bad = append(bad, fmt.Sprintf("message on %s: %q: %v", m.Topic(), m.Payload(), err))
		} else if m.Topic() != readingTopic(*r.Seq) {
			bad = append(bad, fmt.Sprintf("reading %d on %s", *r.Seq, m.Topic()))
		} else {
			seqs = []int{*r.Seq}
		}
	}

	s.mu.Lock()
	for _, b := range bad {
		s.problem("%s", b)
	}
	if s.msgs == 0 {
		s.first = now
	}
	s.last = now
	s.msgs++
	if m.Topic() == s.batchTopic {
		s.batches++
	}
	if len(seqs) > 0 && seqs[0] > s.next {
		s.problem("readings %d to %d skipped: lost or out of order", s.next, seqs[0]-1)
	}
	for _, q := range seqs {
		if q < 0 || q >= len(s.seen) {
			s.problem("reading %d is not from the backlog", q)
			continue
		}
		if s.seen[q] == 0 {
			s.distinct++
		}
		s.seen[q] = min(s.seen[q]+1, 255)
		s.readings++
		s.next = max(s.next, q+1)
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// sinkCounts is a readingSink's account so far.
type sinkCounts struct {
	distinct, readings, msgs, batches int
	first, last                       time.Time
	problems                          []string
}

func (s *readingSink) counts() sinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkCounts{s.distinct, s.readings, s.msgs, s.batches, s.first, s.last, append([]string(nil), s.problems...)}
}

// waitFor waits until cond holds or a problem shows.
func (s *readingSink) waitFor(tb testing.TB, limit time.Duration, what string, cond func(sinkCounts) bool) sinkCounts {
	tb.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c := s.counts()
		if len(c.problems) > 0 {
			tb.Fatalf("while waiting for %s: %s", what, strings.Join(c.problems, "; "))
		}
		if cond(c) {
			return c
		}
		select {
		case <-s.signal:
		case <-deadline.C:
			tb.Fatalf("timed out after %s waiting for %s (%d readings in %d messages, %d distinct)", limit, what, c.readings, c.msgs, c.distinct)
		}
	}
}

// check fails unless every reading arrived, once or more, whole.
func (s *readingSink) check(tb testing.TB) sinkCounts {
	tb.Helper()
	c := s.counts()
	if len(c.problems) > 0 {
		tb.Fatalf("readings at the cloud: %s", strings.Join(c.problems, "; "))
	}
	if c.distinct != len(s.seen) {
		s.mu.Lock()
		missing := -1
		for q, n := range s.seen {
			if n == 0 {
				missing = q
				break
			}
		}
		s.mu.Unlock()
		tb.Fatalf("%d of %d readings arrived; reading %d is missing", c.distinct, len(s.seen), missing)
	}
	return c
}

// subscribeReadings subscribes a readingSink at the cloud, through m when
// it is not nil.
func subscribeReadings(tb testing.TB, c *cloud, p *pki, id string, s *readingSink, m *arrivalMeter) {
	tb.Helper()
	h := s.handle
	if m != nil {
		m.next, h = h, m.handle
	}
	routeCloud(tb, c, p, id, "sites/#", h)
}

// routeCloud subscribes a cloud client whose messages go to h (cloudSub's
// own handler does not see them).
func routeCloud(tb testing.TB, c *cloud, p *pki, id, filter string, h paho.MessageHandler) {
	tb.Helper()
	sub := newCloudSub()
	subscribeCloud(tb, c, p, id, filter, sub, nil)
	// Before anything is published: a route takes a message from the
	// default handler.
	sub.client.AddRoute(filter, h)
}

// ---- the benchmark ----

// replayReadings is the backlog of the issue: a day of a small plant.
const replayReadings = 1_000_000

// replayWindow is how long the unbatched replay is measured: draining a
// million readings at 100 messages/s would take 2.8 hours.
const replayWindow = 15 * time.Second

// BenchmarkReplayBacklog replays a backlog of a million readings to a
// real mosquitto over mutual TLS with max_rate 100 and inflight 100 (the
// aws-iot quotas, without its byte rate: see below), batched and one
// reading per message, and measures readings delivered per second at a
// cloud subscriber. Batched, it runs until every reading arrived and
// checks each was accounted for; one per message, it measures over
// replayWindow.
//
// max_byte_rate is off: the aws-iot profile's 512 KiB/s would bind first
// (about 3,200 of these readings a second once batched) and this measures
// what batching does for the message rate. TestLimitsAWSProfile covers the
// byte rate.
func BenchmarkReplayBacklog(b *testing.B) {
	var batched, single replayResult
	b.Run("batched", func(b *testing.B) {
		for range b.N {
			batched = replayBacklog(b, true)
		}
		batched.report(b)
	})
	b.Run("single", func(b *testing.B) {
		for range b.N {
			single = replayBacklog(b, false)
		}
		single.report(b)
		if batched.readings > 0 {
			b.Logf("batched delivers %.0fx the readings/s of one reading per message at max_rate 100 (goal: at least 100x)",
				batched.readingsPerSec()/single.readingsPerSec())
		}
	})
}

// replayResult is what one replay delivered at the cloud.
type replayResult struct {
	readings, msgs, dups int
	elapsed              time.Duration
}

func (r replayResult) readingsPerSec() float64 { return float64(r.readings) / r.elapsed.Seconds() }

func (r replayResult) report(b *testing.B) {
	b.ReportMetric(r.readingsPerSec(), "readings/s")
	b.ReportMetric(float64(r.msgs)/r.elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(r.readings)/float64(r.msgs), "readings/msg")
	b.ReportMetric(float64(r.dups), "dups")
}

// replayBacklog fills a buffer with replayReadings readings, starts the bridge
// and counts what the cloud receives.
func replayBacklog(b *testing.B, batched bool) replayResult {
	b.StopTimer()
	p := newPKI(b, "cloud")
	c := newCloud(b, p, cloudOpts{})
	c.start()
	cfg := bridgeConfig(c, p, b)
	cfg.MaxRate, cfg.Inflight = 100, 100
	batchTopic := ""
	if batched {
		// 128000 bytes is the largest payload AWS IoT takes: about 780 of
		// these readings.
		batchTopic = "sites/a/batch/gw1"
		cfg.Routes[0].Batch = &config.Batch{Topic: batchTopic, MaxMessages: 1000, MaxBytes: 128000, MaxDelay: time.Second}
	}
	r := newRig(b, cfg, rigOpts{noStart: true})
	fillStart := time.Now()
	bytes := fillBacklog(b, r.buf, replayReadings)
	b.Logf("backlog: %d readings, %.1f payload bytes each, appended in %s", replayReadings,
		float64(bytes)/replayReadings, time.Since(fillStart).Round(time.Millisecond))

	sink := newReadingSink(replayReadings, batchTopic)
	subscribeReadings(b, c, p, "replay-sub", sink, nil)
	b.StartTimer()
	start := time.Now()
	r.start()
	var res replayResult
	if batched {
		sink.waitFor(b, bulkWait, "every reading", func(s sinkCounts) bool { return s.distinct == replayReadings })
		got := sink.check(b)
		res = replayResult{readings: got.distinct, msgs: got.msgs, dups: got.readings - got.distinct, elapsed: got.last.Sub(start)}
	} else {
		deadline := time.NewTimer(replayWindow)
		<-deadline.C // a fixed measuring window, not a wait for a condition
		got := sink.counts()
		if len(got.problems) > 0 {
			b.Fatalf("readings at the cloud: %s", strings.Join(got.problems, "; "))
		}
		res = replayResult{readings: got.distinct, msgs: got.msgs, dups: got.readings - got.distinct, elapsed: replayWindow}
	}
	b.StopTimer()
	b.Logf("%d readings in %d messages in %s, %d duplicates; the bridge sent %d messages",
		res.readings, res.msgs, res.elapsed.Round(time.Millisecond), res.dups, r.br.Status().Sent)
	return res
}
