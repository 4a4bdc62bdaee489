package bridge

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/buffer"
)

// subscribeFailed is the SUBACK return code of a refused subscription.
const subscribeFailed = 0x80

// pending is a message handed to paho and not yet acknowledged to the
// buffer: one record (seq), or a batch of them (seqs). A nil tok is a
// record that is not sent (it could not be decoded, or is too large) but
// still acknowledged in its turn.
type pending struct {
	seq   uint64
	seqs  []uint64
	n     int // records delivered with it
	tok   paho.Token
	sent  time.Time
	topic string // the remote topic and payload size, for headOfLine
	bytes int
}

// first is the sequence number of the message's first record.
func (p pending) first() uint64 {
	if p.seqs != nil {
		return p.seqs[0]
	}
	return p.seq
}

// errSessionEnded reports a connection that paho closed without a reason.
var errSessionEnded = errors.New("connection lost")

// session makes one connection and serves it until it is lost or ctx
// ends. connected tells whether the cloud accepted the connection.
//
// Each session has its own paho client: paho's own reconnection resends
// its store in map order and completes tokens without a PUBACK, so the
// bridge drops the client with the connection and resends from the
// buffer's cursor instead.
func (b *Bridge) session(ctx context.Context) (connected bool, err error) {
	password, err := b.cfg.Secret()
	if err != nil {
		return false, err
	}
	var tlsCfg *tls.Config
	if b.ep.secure() {
		files := tlsFiles{b.cfg.TLS.CAFile, b.cfg.TLS.CertFile, b.cfg.TLS.KeyFile}
		if tlsCfg, err = loadTLS(files, b.ep.serverName); err != nil {
			return false, err
		}
	}
	lk := &link{}
	defer lk.close()
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().
		// paho wants a server URL; the connection itself comes from
		// CustomOpenConnectionFn.
		AddBroker("tcp://" + b.ep.addr).
		SetClientID(b.clientID).
		SetUsername(b.cfg.Username).
		SetPassword(password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetStore(paho.NewMemoryStore()).
		// In order, in paho's receive goroutine: receive only injects into
		// the local broker, which queues and never waits.
		SetOrderMatters(true).
		SetDefaultPublishHandler(b.receive).
		SetKeepAlive(b.keepalive).
		SetPingTimeout(b.pingTimeout).
		SetConnectTimeout(b.connectTimeout).
		SetWriteTimeout(b.writeTimeout).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			conn, err := b.ep.open(ctx, b.dial, tlsCfg, b.connectTimeout)
			if err == nil {
				conn = newBatchConn(conn, b.writeTimeout)
			}
			return lk.set(conn, err)
		})
	if b.cfg.StatusTopic != "" {
		opts.SetBinaryWill(b.cfg.StatusTopic, []byte("offline"), 1, true)
	}
	cl := paho.NewClient(opts)
	if err := await(ctx, cl.Connect(), 2*b.connectTimeout); err != nil {
		lk.close()
		if ctx.Err() != nil {
			return false, nil
		}
		if oerr := lk.openErr(); oerr != nil {
			return false, oerr
		}
		return false, fmt.Errorf("connecting to %s: %w", b.ep.addr, err)
	}

	b.st.connects.Add(1)
	defer b.status.setConnected(false, b.now())

	err = b.serve(ctx, cl, lk, lost)
	if ctx.Err() != nil {
		if b.cfg.StatusTopic != "" && err == nil {
			if perr := await(context.Background(), cl.Publish(b.cfg.StatusTopic, 1, true, "offline"), offlineWait); perr != nil {
				b.log.Warn("bridge: cannot publish offline status", "err", perr)
			}
		}
		cl.Disconnect(uint(quiesce / time.Millisecond))
		b.log.Info("bridge: disconnected", "url", b.publicURL)
		return true, nil
	}
	lk.close()
	cl.Disconnect(0)
	return true, err
}

// serve runs a connected session: the status message, the in-route
// subscriptions, then the sender and the collector of acknowledgements.
// It returns nil when ctx ended and the session stopped cleanly.
func (b *Bridge) serve(ctx context.Context, cl paho.Client, lk *link, lost <-chan error) error {
	wait := b.writeTimeout + b.keepalive
	if b.cfg.StatusTopic != "" {
		if err := b.limit.wait(ctx, len(b.cfg.StatusTopic)+len("online")); err != nil {
			return nil
		}
		if err := await(ctx, cl.Publish(b.cfg.StatusTopic, 1, true, "online"), wait); err != nil {
			return fmt.Errorf("publishing online status: %w", err)
		}
	}
	if err := b.subscribe(ctx, cl, wait); err != nil {
		return err
	}
	b.status.setConnected(true, b.now())
	// What waits at this moment is the backlog of the outage (or of the
	// start): its delivery is logged once, when the cloud has acknowledged
	// all of it.
	bl := b.buf.Stats()
	backlog := replay{records: bl.Messages, until: bl.NextSeq, since: time.Now()}
	args := []any{"url", b.publicURL, "client_id", b.clientID}
	if bl.Messages > 0 {
		args = append(args, "backlog", bl.Messages, "oldest_age", bl.OldestAge.Round(time.Second))
	}
	b.log.Info("bridge: connected", args...)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	rd := b.buf.Reader()
	defer rd.Close()
	tr := &tracker{}
	window := make(chan pending, b.inflight)
	slots := make(chan struct{}, b.inflight)
	var wg sync.WaitGroup
	var sendErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		sendErr = b.send(sctx, cl, rd, tr, window, slots)
	}()
	go func() {
		defer wg.Done()
		b.sendLive(sctx, cl)
	}()

	err := b.collect(ctx, tr, window, slots, lost, &backlog)
	stop()
	rd.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainWait):
		// The sender is stuck handing a message to paho on a dead link;
		// closing the socket frees it.
		lk.close()
		<-done
	}
	if err == nil {
		err = sendErr
	}
	if err == nil && ctx.Err() == nil {
		err = errSessionEnded
	}
	return err
}

// subscribe subscribes to the in-routes' filters, in as few SUBSCRIBEs
// as the profile allows (AWS IoT takes 8 filters in one). A filter the
// cloud refuses is reported and the session goes on with the others.
func (b *Bridge) subscribe(ctx context.Context, cl paho.Client, wait time.Duration) error {
	if len(b.in) == 0 {
		return nil
	}
	qos := map[string]byte{}
	var order []string
	for _, r := range b.in {
		if _, seen := qos[r.filter]; !seen {
			order = append(order, r.filter)
		}
		qos[r.filter] = max(qos[r.filter], r.qos)
	}
	chunk := len(order)
	if b.subscribeChunk > 0 {
		chunk = min(chunk, b.subscribeChunk)
	}
	for len(order) > 0 {
		n := min(chunk, len(order))
		filters := make(map[string]byte, n)
		for _, f := range order[:n] {
			filters[f] = qos[f]
		}
		order = order[n:]
		tok := cl.SubscribeMultiple(filters, nil)
		if err := await(ctx, tok, wait); err != nil {
			return fmt.Errorf("subscribing to the in-routes: %w", err)
		}
		st, ok := tok.(*paho.SubscribeToken)
		if !ok {
			continue
		}
		for f, code := range st.Result() {
			if code == subscribeFailed {
				msg := fmt.Sprintf("the cloud refused the subscription to %q", f)
				b.status.setError(msg, b.now())
				b.log.Error("bridge: "+msg, "url", b.publicURL)
			}
		}
	}
	return nil
}

// send reads records from the buffer and hands them to paho, at most
// inflight messages unacknowledged at a time. It is the only goroutine
// that publishes records, so they leave in buffer order, which keeps each
// topic's order. A record under a batched route joins the open batch of
// its batch topic, which leaves when it is full or its max_delay passed.
func (b *Bridge) send(ctx context.Context, cl paho.Client, rd *buffer.Reader, tr *tracker, window chan<- pending, slots chan struct{}) error {
	defer close(window)
	var bt batcher
	for {
		var rec buffer.Record
		var err error
		if dl, ok := bt.deadline(); ok {
			// Batches come due whether or not records keep coming.
			if now := time.Now(); !now.Before(dl) {
				for _, o := range bt.due(now) {
					if !b.publishBatch(ctx, cl, o, window, slots) {
						return nil
					}
				}
				continue
			}
			rec, err = rd.NextBefore(ctx, dl)
		} else {
			rec, err = rd.Next(ctx)
		}
		if errors.Is(err, buffer.ErrCaughtUp) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading the buffer: %w", err)
		}
		tr.add(rec.Seq)
		r, err := decodeRecord(rec.Data)
		if err != nil {
			// Nothing can send it, now or later: acknowledge it in its turn.
			b.st.badRecords.Add(1)
			if n, ok := b.logs.badRecord.allow("", time.Now()); ok {
				b.log.Error("bridge: skipping a bad record in the buffer", "seq", rec.Seq, "err", err, "suppressed", n)
			}
			if !b.skip(ctx, rec.Seq, window, slots) {
				return nil
			}
			continue
		}
		if out := b.remoteRoute(r.topic); out != nil && out.batch != nil {
			route := out.batch
			elem := bt.element(r)
			if len(elem)+2 > route.maxBytes {
				b.oversize(r.topic, len(elem)+2, route.maxBytes)
				if !b.skip(ctx, rec.Seq, window, slots) {
					return nil
				}
				continue
			}
			topic := cmp.Or(route.topic, r.topic)
			for _, o := range bt.add(route, topic, r.qos, elem, rec.Seq, time.Now()) {
				if !b.publishBatch(ctx, cl, o, window, slots) {
					return nil
				}
			}
			continue
		}
		if len(r.payload) > b.maxPayload {
			b.oversize(r.topic, len(r.payload), b.maxPayload)
			if !b.skip(ctx, rec.Seq, window, slots) {
				return nil
			}
			continue
		}
		if !b.acquire(ctx, slots, len(r.topic)+len(r.payload)) {
			return nil
		}
		tok := cl.Publish(r.topic, r.qos, r.retain, r.payload)
		window <- pending{seq: rec.Seq, n: 1, tok: tok, sent: time.Now(), topic: r.topic, bytes: len(r.payload)}
	}
}

// remoteRoute is the out-route a record with this remote topic was
// stored under, as far as the remote topic tells: the first that sends
// it. A record stored under an older configuration may have none.
func (b *Bridge) remoteRoute(remote string) *outRoute {
	for i := range b.out {
		if b.out[i].sends(remote) {
			return &b.out[i]
		}
	}
	return nil
}

// acquire takes a place in the in-flight window, then waits for max_rate
// and max_byte_rate; false means ctx ended.
func (b *Bridge) acquire(ctx context.Context, slots chan struct{}, size int) bool {
	return takeSlot(ctx, slots) && b.limit.wait(ctx, size) == nil
}

// takeSlot takes a place in the in-flight window; false means ctx ended.
func takeSlot(ctx context.Context, slots chan<- struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// publishBatch sends a closed batch; false means ctx ended.
func (b *Bridge) publishBatch(ctx context.Context, cl paho.Client, o *openBatch, window chan<- pending, slots chan struct{}) bool {
	if !b.acquire(ctx, slots, len(o.topic)+len(o.buf)) {
		return false
	}
	tok := cl.Publish(o.topic, o.qos, false, o.buf)
	b.st.batches.Add(1)
	window <- pending{seqs: o.seqs, n: len(o.seqs), tok: tok, sent: time.Now(), topic: o.topic, bytes: len(o.buf)}
	return true
}

// skip hands a record that is not sent to the collector, which
// acknowledges it in its turn; false means ctx ended.
func (b *Bridge) skip(ctx context.Context, seq uint64, window chan<- pending, slots chan struct{}) bool {
	if !takeSlot(ctx, slots) {
		return false
	}
	window <- pending{seq: seq}
	return true
}

// oversize counts and logs a message larger than the cloud accepts: it
// is dropped, since sending it would get it refused (or the connection
// closed) at every attempt.
func (b *Bridge) oversize(topic string, size, limit int) {
	b.st.oversize.Add(1)
	if n, ok := b.logs.oversize.allow("", time.Now()); ok {
		b.log.Warn("bridge: dropping a message larger than the cloud accepts", "topic", topic, "bytes", size, "max", limit, "suppressed", n)
	}
}

// collect waits for the acknowledgements in the order the messages were
// sent and acknowledges the buffer up to the first record the cloud does
// not have yet, so the buffer's cursor only ever passes records the cloud
// has. A message whose PUBACK does not come within keepalive of it being
// sent (or of the previous PUBACK) means the link is dead even if the
// socket looks open. When ctx ends it keeps collecting for at most
// drainWait and returns nil.
func (b *Bridge) collect(ctx context.Context, tr *tracker, window <-chan pending, slots <-chan struct{}, lost <-chan error, backlog *replay) error {
	ctxDone := ctx.Done()
	var drain <-chan time.Time
	stopping := func() {
		ctxDone = nil
		drain = time.After(drainWait)
	}
	lastAck := time.Now()
	for {
		var p pending
		select {
		case q, ok := <-window:
			if !ok {
				return nil
			}
			p = q
		case err := <-lost:
			return lostError(err)
		case <-ctxDone:
			stopping()
			continue
		case <-drain:
			return nil
		}
		if p.tok != nil {
			deadline := p.sent
			if lastAck.After(deadline) {
				deadline = lastAck
			}
			timer := time.NewTimer(time.Until(deadline.Add(b.keepalive)))
		wait:
			for {
				select {
				case <-p.tok.Done():
					break wait
				case err := <-lost:
					timer.Stop()
					if !isDone(p.tok) || p.tok.Error() != nil {
						// Not when its PUBACK came with the loss (select
						// picks either): it was not what the cloud refused.
						b.hol.waitedOn(p)
					}
					return lostError(err)
				case <-timer.C:
					if isDone(p.tok) {
						break wait
					}
					b.hol.waitedOn(p)
					return fmt.Errorf("no acknowledgement from the cloud for %s with %d messages in flight: link presumed dead",
						b.keepalive, len(window)+1)
				case <-ctxDone:
					stopping()
				case <-drain:
					timer.Stop()
					return nil
				}
			}
			timer.Stop()
			if err := p.tok.Error(); err != nil {
				b.hol.waitedOn(p)
				return fmt.Errorf("publishing: %w", err)
			}
			lastAck = time.Now()
			b.st.sent.Add(1)
			b.st.delivered.Add(uint64(p.n))
			b.status.acked(b.now())
		}
		var cursor uint64
		var moved bool
		if p.seqs != nil {
			cursor, moved = tr.finish(p.seqs...)
		} else {
			cursor, moved = tr.finish(p.seq)
		}
		if moved {
			if err := b.buf.Ack(cursor); err != nil {
				return fmt.Errorf("acknowledging to the buffer: %w", err)
			}
			if b.status.stuckFlag.Load() {
				b.clearStuck(cursor)
			}
			if backlog.records > 0 && cursor >= backlog.until {
				b.log.Info("bridge: backlog delivered", "url", b.publicURL, "records", backlog.records,
					"took", time.Since(backlog.since).Round(time.Millisecond))
				backlog.records = 0
			}
		}
		<-slots
	}
}

// replay is the backlog found at connection: records up to sequence until
// (excluded), waiting since the session started.
type replay struct {
	records uint64
	until   uint64
	since   time.Time
}

func isDone(tok paho.Token) bool {
	select {
	case <-tok.Done():
		return true
	default:
		return false
	}
}

func lostError(err error) error {
	if err == nil {
		return errSessionEnded
	}
	return fmt.Errorf("connection lost: %w", err)
}

// sendLive sends QoS 0 messages that are not buffered (buffer_qos0:
// false), best effort, until ctx ends.
func (b *Bridge) sendLive(ctx context.Context, cl paho.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.live:
			if b.limit.wait(ctx, len(m.topic)+len(m.payload)) != nil {
				return
			}
			cl.Publish(m.topic, 0, m.retain, m.payload)
		}
	}
}

// await waits for a paho token, for ctx, or for timeout, whichever comes
// first: no token wait is unbounded.
func await(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer within %s", timeout)
	}
}
