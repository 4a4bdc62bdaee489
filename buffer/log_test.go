package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for s, want := range map[string]SyncMode{"batch": SyncBatch, "always": SyncAlways, "off": SyncOff} {
		got, err := ParseSyncMode(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseSyncMode(%q) = %v, %v", s, got, err)
		}
	}
	for s, want := range map[string]FullPolicy{"drop_oldest": DropOldest, "drop_newest": DropNewest} {
		got, err := ParseFullPolicy(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseFullPolicy(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Error("ParseSyncMode accepted an unknown mode")
	}
	if _, err := ParseFullPolicy("drop_all"); err == nil {
		t.Error("ParseFullPolicy accepted an unknown policy")
	}
	if _, err := Open(Options{}); err == nil {
		t.Error("Open accepted an empty Dir")
	}
}

func TestRoundTripAcrossSegmentsAndReopen(t *testing.T) {
	e := newEnv(t)
	e.opts.SegmentSize = 1024
	l := e.open()
	const n = 2000
	appendN(t, l, 0, n)
	if st := l.Stats(); st.Messages != n || st.Segments < 100 || st.Appended != n {
		t.Fatalf("Stats = %+v, want %d messages in many segments", st, n)
	}
	got := drain(t, l.Reader())
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	checkRecords(t, got, 1, 0)
	if !got[0].Time.Equal(e.clock.Now()) {
		t.Errorf("record time %v, want %v", got[0].Time, e.clock.Now())
	}

	// Acknowledge the first 700: their whole segments go away.
	segsBefore := len(segFiles(t, e.dir))
	if err := l.Ack(701); err != nil {
		t.Fatal(err)
	}
	if after := len(segFiles(t, e.dir)); after >= segsBefore {
		t.Errorf("segments %d -> %d after Ack, want fewer", segsBefore, after)
	}
	if st := l.Stats(); st.Messages != n-700 || st.Cursor != 701 {
		t.Errorf("Stats after Ack = %+v", st)
	}

	// Reopen: delivery resumes at the cursor, and appends continue the
	// sequence.
	l = e.reopen(l)
	appendN(t, l, n, 10)
	got = drain(t, l.Reader())
	if len(got) != n-700+10 {
		t.Fatalf("after reopen read %d records, want %d", len(got), n-700+10)
	}
	checkRecords(t, got, 701, 700)

	if err := l.Ack(n + 11); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Messages != 0 || st.Segments != 1 || st.OldestAge != 0 {
		t.Errorf("Stats after acknowledging everything = %+v", st)
	}
	if err := l.Ack(n + 12); err == nil {
		t.Error("Ack past the last record succeeded")
	}
}

func TestNewReaderResendsUnacknowledged(t *testing.T) {
	e := newEnv(t)
	l := e.open()
	appendN(t, l, 0, 100)
	r1 := l.Reader()
	got := drain(t, r1)
	if len(got) != 100 {
		t.Fatalf("read %d", len(got))
	}
	// The consumer got 100 but only 40 were confirmed before a reconnect.
	if err := l.Ack(41); err != nil {
		t.Fatal(err)
	}
	r2 := l.Reader()
	if _, err := r1.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("replaced Reader: Next = %v, want ErrClosed", err)
	}
	got = drain(t, r2)
	if len(got) != 60 {
		t.Fatalf("new Reader read %d, want 60", len(got))
	}
	checkRecords(t, got, 41, 40)
	if st := l.Stats(); st.OldestAge != 0 {
		// All records carry the fake clock's time.
		t.Errorf("OldestAge = %v", st.OldestAge)
	}
}

// TestNextBefore: a caught-up Reader returns ErrCaughtUp at once for a
// past deadline, wakes for an append before a future one, and returns
// ErrCaughtUp when the deadline passes with nothing appended.
func TestNextBefore(t *testing.T) {
	e := newEnv(t)
	l := e.open()
	r := l.Reader()
	if _, err := r.NextBefore(context.Background(), past); !errors.Is(err, ErrCaughtUp) {
		t.Fatalf("NextBefore(past) on an empty log = %v, want ErrCaughtUp", err)
	}

	got := make(chan error)
	go func() {
		rec, err := r.NextBefore(context.Background(), time.Now().Add(time.Hour))
		if err == nil && string(rec.Data) != "woken" {
			err = fmt.Errorf("record %q", rec.Data)
		}
		got <- err
	}()
	waitReaderWaiting(t, l)
	if err := l.AppendAsync([]byte("woken")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("NextBefore woken by an append: %v", err)
	}

	// A deadline that passes while waiting: ErrCaughtUp, not a hang.
	if _, err := r.NextBefore(context.Background(), time.Now().Add(10*time.Millisecond)); !errors.Is(err, ErrCaughtUp) {
		t.Errorf("NextBefore past its deadline = %v, want ErrCaughtUp", err)
	}
}

func TestNextWaitsAndStops(t *testing.T) {
	e := newEnv(t)
	l := e.open()
	r := l.Reader()

	got := make(chan Record)
	go func() {
		rec, err := r.Next(context.Background())
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		got <- rec
	}()
	waitReaderWaiting(t, l)
	if err := l.AppendAsync([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if rec := <-got; string(rec.Data) != "late" || rec.Seq != 1 {
		t.Errorf("Next = %+v", rec)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := r.Next(ctx)
		errc <- err
	}()
	waitReaderWaiting(t, l)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v", err)
	}

	go func() {
		_, err := r.Next(context.Background())
		errc <- err
	}()
	waitReaderWaiting(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := l.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if err := l.AppendAsync([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAsync after Close = %v", err)
	}
	if err := l.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v", err)
	}
	if _, err := l.Reader().Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Reader after Close: Next = %v", err)
	}
}

// Many appenders, one consumer acknowledging as it goes: every record
// arrives once, each appender's records in its own order.
func TestConcurrentAppendReadAck(t *testing.T) {
	for _, mode := range []SyncMode{SyncBatch, SyncAlways, SyncOff} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t)
			e.opts.Sync = mode
			e.opts.SegmentSize = 2048
			l := e.open()
			const writers, each = 6, 300
			ctx := context.Background()
			var wg sync.WaitGroup
			for g := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						rec := fmt.Appendf(nil, "%d %d %s", g, i, bytes.Repeat([]byte{'x'}, i%90))
						var err error
						if i%3 == 0 {
							err = l.AppendAsync(rec)
						} else {
							err = l.Append(ctx, rec)
						}
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
					}
				}()
			}
			r := l.Reader()
			next := make([]int, writers)
			for k := range writers * each {
				rec, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("Next %d: %v", k, err)
				}
				var g, i int
				if _, err := fmt.Sscanf(string(rec.Data), "%d %d", &g, &i); err != nil {
					t.Fatalf("record %q: %v", rec.Data, err)
				}
				if i != next[g] {
					t.Fatalf("writer %d: got record %d, want %d", g, i, next[g])
				}
				next[g]++
				if k%7 == 0 {
					if err := l.Ack(rec.Seq + 1); err != nil {
						t.Fatal(err)
					}
				}
				if k%50 == 0 {
					l.Stats()
				}
			}
			wg.Wait()
			if err := l.Ack(uint64(writers*each) + 1); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.Messages != 0 || st.Segments != 1 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// In SyncAlways mode appends that arrive during an fsync share the next
// one.
func TestGroupCommit(t *testing.T) {
	e := newEnv(t)
	e.opts.Sync = SyncAlways
	l := e.open()
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	l.setBeforeSync(func() {
		entered <- struct{}{}
		<-release
	})
	ctx := context.Background()
	errc := make(chan error, 16)
	go func() { errc <- l.Append(ctx, []byte("leader")) }()
	<-entered // the first round is running and blocked
	const followers = 10
	for range followers {
		go func() { errc <- l.Append(ctx, []byte("follower")) }()
	}
	// Every follower's record is written before it waits; wait until all
	// ten are in the log so the next round covers them all.
	for {
		if l.Stats().Appended == followers+1 {
			break
		}
		runtime.Gosched()
	}
	release <- struct{}{}
	<-entered // second round: one leader among the followers
	release <- struct{}{}
	for range followers + 1 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Two fsync rounds served eleven appends.
	select {
	case <-entered:
		t.Error("a third fsync round ran")
	default:
	}

	// A waiter whose context ends returns promptly with its error.
	l.setBeforeSync(func() {
		entered <- struct{}{}
		<-release
	})
	cctx, cancel := context.WithCancel(ctx)
	go func() { errc <- l.Append(ctx, []byte("holds the round")) }()
	<-entered // a round is stuck (led by that Append or the background)
	go func() { errc <- l.Append(cctx, []byte("gives up")) }()
	for l.Stats().Appended != followers+3 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Append with cancelled context = %v", err)
	}
	l.setBeforeSync(nil)
	close(release)
	if err := <-errc; err != nil {
		t.Error(err)
	}
}

func TestSyncModesFsyncCounts(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		e := newEnv(t)
		e.opts.Sync = SyncOff
		e.opts.SegmentSize = 512
		l := e.open()
		before := l.Stats().Fsyncs
		appendN(t, l, 0, 200)
		if err := l.Ack(50); err != nil {
			t.Fatal(err)
		}
		l.maintain() // writes the cursor, without fsync in this mode
		if got := l.Stats().Fsyncs; got != before {
			t.Errorf("SyncOff issued %d fsyncs before Close", got-before)
		}
	})
	t.Run("always", func(t *testing.T) {
		e := newEnv(t)
		e.opts.Sync = SyncAlways
		l := e.open()
		var rounds atomic.Int64
		l.setBeforeSync(func() { rounds.Add(1) })
		appendN(t, l, 0, 5)
		if got := rounds.Load(); got != 5 {
			t.Errorf("5 sequential appends in SyncAlways: %d fsync rounds, want 5", got)
		}
		// AppendAsync returns while an fsync is stuck.
		release := make(chan struct{})
		l.setBeforeSync(func() { <-release })
		errc := make(chan error)
		go func() { errc <- l.Append(context.Background(), []byte("waits")) }()
		for l.Stats().Appended != 6 {
			runtime.Gosched()
		}
		if err := l.AppendAsync([]byte("does not wait")); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("batch", func(t *testing.T) {
		e := newEnv(t)
		l := e.open()
		appendN(t, l, 0, 5)
		// Append returned before any fsync; the background goroutine
		// covers the records within SyncInterval.
		waitSynced(t, l)
		if n := l.Stats().Fsyncs; n == 0 {
			t.Errorf("records covered without an fsync")
		}
	})
}

// TestDeferredSync: the first append after an fsync round arms the timer
// once; the round covers the whole burst with one fsync, and leaves the
// timer unarmed, so an idle log does not wake up.
func TestDeferredSync(t *testing.T) {
	e := newEnv(t)
	e.opts.SyncInterval = time.Hour // the test fires the timer itself
	l := e.open()
	var rounds atomic.Int64
	l.setBeforeSync(func() { rounds.Add(1) })
	armed := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.syncArmed
	}
	if armed() {
		t.Fatal("the sync timer is armed with nothing appended")
	}
	appendN(t, l, 0, 10)
	if !armed() || rounds.Load() != 0 {
		t.Fatalf("after a burst: armed %v, %d fsync rounds; want armed and none yet", armed(), rounds.Load())
	}
	l.syncTimer.Reset(0)
	waitSynced(t, l)
	if n := rounds.Load(); n != 1 {
		t.Errorf("%d fsync rounds for one burst, want 1", n)
	}
	waitUntil(t, "the timer disarmed after the round", func() bool { return !armed() })
}

// TestSyncAlwaysNeedsNoTimer: in SyncAlways an Append is covered by its
// own fsync, so it leaves the background timer unarmed; an AppendAsync
// still arms it.
func TestSyncAlwaysNeedsNoTimer(t *testing.T) {
	e := newEnv(t)
	e.opts.Sync = SyncAlways
	e.opts.SyncInterval = time.Hour
	l := e.open()
	armed := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.syncArmed
	}
	if err := l.Append(context.Background(), []byte("covered")); err != nil {
		t.Fatal(err)
	}
	if armed() {
		t.Error("an Append in SyncAlways armed the background fsync")
	}
	if err := l.AppendAsync([]byte("deferred")); err != nil {
		t.Fatal(err)
	}
	if !armed() {
		t.Error("an AppendAsync in SyncAlways left the background fsync unarmed")
	}
}

// waitReaderWaiting waits until a Reader blocks in Next for the next
// append, so that what the test does next wakes it rather than beats it.
func waitReaderWaiting(t *testing.T, l *Log) {
	t.Helper()
	waitUntil(t, "a Reader waiting", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.waitCh != nil
	})
}

// waitSynced waits until an fsync covered every record appended.
func waitSynced(t *testing.T, l *Log) {
	t.Helper()
	waitUntil(t, "an fsync covering the appended records", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.synced+1 == l.nextSeq
	})
}

// waitUntil polls cond until it holds, and fails after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxBytes = 8192
	e.opts.SegmentSize = 1024
	l := e.open()
	if err := l.Append(context.Background(), make([]byte, 9000)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append of a record larger than MaxBytes = %v, want ErrTooLarge", err)
	}
	// A record larger than a segment but within MaxBytes gets a segment of
	// its own.
	big := bytes.Repeat([]byte{7}, 3000)
	appendN(t, l, 0, 3)
	if err := l.Append(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3, 3)
	got := drain(t, l.Reader())
	if len(got) != 7 || !bytes.Equal(got[3].Data, big) {
		t.Fatalf("read %d records", len(got))
	}
	l = e.reopen(l)
	if got := drain(t, l.Reader()); len(got) != 7 || !bytes.Equal(got[3].Data, big) {
		t.Fatalf("after reopen read %d records", len(got))
	}
}

func TestDropOldest(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxBytes = 16 << 10
	e.opts.SegmentSize = 2048
	l := e.open()
	const n = 1000
	appendN(t, l, 0, n)
	st := l.Stats()
	if st.Bytes > e.opts.MaxBytes {
		t.Errorf("Bytes %d over MaxBytes %d", st.Bytes, e.opts.MaxBytes)
	}
	if st.Dropped.Full == 0 || st.Dropped.Full+st.Messages != n {
		t.Errorf("Stats = %+v: dropped + retained should be %d", st, n)
	}
	if _, ok := e.logs.find(slog.LevelWarn, "dropped records", "reason=full"); !ok {
		t.Error("drop was not logged")
	}
	// The rate limit holds back further reports while the clock stands.
	if c := e.logs.count(slog.LevelWarn, "dropped records"); c != 1 {
		t.Errorf("%d drop reports, want 1 within the rate limit", c)
	}
	got := drain(t, l.Reader())
	if uint64(len(got)) != st.Messages {
		t.Fatalf("read %d, want %d", len(got), st.Messages)
	}
	first := int(got[0].Seq - 1)
	checkRecords(t, got, got[0].Seq, first)
	if got[len(got)-1].Seq != n {
		t.Errorf("newest record %d, want %d", got[len(got)-1].Seq, n)
	}
	l = e.reopen(l)
	if st2 := l.Stats(); st2.Messages != st.Messages || st2.Dropped != st.Dropped {
		t.Errorf("after reopen %+v, before %+v", st2, st)
	}
}

// A Reader inside a segment that is dropped for space skips to what is
// left, and the consumer's late Acks do no harm.
func TestDropOldestUnderReader(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxBytes = 8 << 10
	e.opts.SegmentSize = 2048
	l := e.open()
	appendN(t, l, 0, 10)
	r := l.Reader()
	first := drain(t, r)
	appendN(t, l, 10, 500)
	got := drain(t, r)
	if len(got) == 0 || got[0].Seq <= first[len(first)-1].Seq+1 {
		t.Fatalf("Reader did not skip dropped records: first after drop %d", got[0].Seq)
	}
	checkRecords(t, got, got[0].Seq, int(got[0].Seq-1))
	if err := l.Ack(5); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Cursor != got[0].Seq || st.Messages != uint64(len(got)) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestDropNewest(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxBytes = 8 << 10
	e.opts.SegmentSize = 2048
	e.opts.WhenFull = DropNewest
	l := e.open()
	stored := 0
	refused := 0
	rec := bytes.Repeat([]byte{1}, 100)
	for refused < 5 {
		err := l.Append(context.Background(), rec)
		switch {
		case err == nil:
			if refused > 0 {
				t.Fatal("an append succeeded after the log was full")
			}
			stored++
		case errors.Is(err, ErrFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	st := l.Stats()
	if st.Dropped.Full != 5 || st.Messages != uint64(stored) || st.Bytes > e.opts.MaxBytes {
		t.Errorf("Stats = %+v, stored %d", st, stored)
	}
	if got := drain(t, l.Reader()); len(got) != stored {
		t.Fatalf("read %d, stored %d", len(got), stored)
	}
	// Acknowledging frees whole segments, and appends succeed again.
	if err := l.Ack(uint64(stored) + 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), rec); err != nil {
		t.Errorf("Append after Ack = %v", err)
	}
}

func TestMaxAgeOnlyWhileClockSynced(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxAge = time.Hour
	e.opts.SegmentSize = 1024
	l := e.open()
	appendN(t, l, 0, 100) // several segments, all at the same time
	e.clock.Advance(30 * time.Minute)
	appendN(t, l, 100, 5)
	before := l.Stats()

	e.synced.Store(false)
	e.clock.Advance(2 * time.Hour)
	l.enforceAge()
	if st := l.Stats(); st.Messages != before.Messages || st.Dropped.Age != 0 {
		t.Fatalf("records deleted by age while the clock was not synchronized: %+v", st)
	}

	e.synced.Store(true)
	l.enforceAge()
	st := l.Stats()
	if st.Messages != 0 || st.Dropped.Age != 105 {
		t.Fatalf("after max_age with a synchronized clock: %+v", st)
	}
	if _, ok := e.logs.find(slog.LevelWarn, "dropped records", "reason=age"); !ok {
		t.Error("age drop not logged")
	}
	appendN(t, l, 105, 3)
	got := drain(t, l.Reader())
	checkRecords(t, got, 106, 105)
}

// Records appended while the clock was unsynchronized carry untrustworthy
// times: when the clock later jumps forward they do not count as aged
// until a synchronized segment proves how old they are.
func TestMaxAgeIgnoresRecordsFromUnsyncedClock(t *testing.T) {
	e := newEnv(t)
	e.opts.MaxAge = time.Hour
	e.opts.SegmentSize = 1024
	e.synced.Store(false)
	l := e.open()
	appendN(t, l, 0, 50)

	// NTP syncs and the clock jumps a year ahead.
	e.synced.Store(true)
	e.clock.Advance(365 * 24 * time.Hour)
	l.enforceAge()
	if st := l.Stats(); st.Messages != 50 || st.Dropped.Age != 0 {
		t.Fatalf("records from the unsynced boot were aged out: %+v", st)
	}
	appendN(t, l, 50, 5) // starts a synchronized segment
	l = e.reopen(l)      // and the bound survives a restart
	e.clock.Advance(30 * time.Minute)
	l.enforceAge()
	if st := l.Stats(); st.Messages != 55 {
		t.Fatalf("aged out too early: %+v", st)
	}
	e.clock.Advance(time.Hour)
	l.enforceAge()
	if st := l.Stats(); st.Messages != 0 || st.Dropped.Age != 55 {
		t.Fatalf("after an hour of synchronized time: %+v", st)
	}
}

func TestOldestAge(t *testing.T) {
	e := newEnv(t)
	e.opts.SegmentSize = 1024
	l := e.open()
	appendN(t, l, 0, 10)
	e.clock.Advance(time.Minute)
	appendN(t, l, 10, 10)
	e.clock.Advance(time.Minute)
	if age := l.Stats().OldestAge; age != 2*time.Minute {
		t.Errorf("OldestAge = %v, want 2m", age)
	}
	drain(t, l.Reader())
	if err := l.Ack(11); err != nil {
		t.Fatal(err)
	}
	if age := l.Stats().OldestAge; age != time.Minute {
		t.Errorf("OldestAge after Ack = %v, want 1m", age)
	}
	l = e.reopen(l)
	if age := l.Stats().OldestAge; age != time.Minute {
		t.Errorf("OldestAge after reopen = %v, want 1m", age)
	}
	st, err := Inspect(e.dir)
	if err != nil || st.Messages != 10 {
		t.Errorf("Inspect of an open log = %+v, %v", st, err)
	}
}

func TestMemoryDoesNotGrowWithBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("appends a million records")
	}
	total := 1_000_000
	if raceEnabled {
		total = 200_000
	}
	e := newEnv(t)
	e.opts.SegmentSize = 4 << 20
	e.opts.MaxBytes = 1 << 30
	e.opts.Sync = SyncOff
	l := e.open()
	rec := make([]byte, 200)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	const warm = 10_000
	for range warm {
		if err := l.AppendAsync(rec); err != nil {
			t.Fatal(err)
		}
	}
	h0 := heap()
	for range total - warm {
		if err := l.AppendAsync(rec); err != nil {
			t.Fatal(err)
		}
	}
	h1 := heap()
	if h1 > h0+(4<<20) {
		t.Errorf("heap grew from %d to %d bytes for %d more records", h0, h1, total-warm)
	}
	if st := l.Stats(); st.Messages != uint64(total) {
		t.Errorf("Messages = %d", st.Messages)
	}
}

func TestInspectReadOnly(t *testing.T) {
	e := newEnv(t)
	e.opts.SegmentSize = 1024
	l := e.open()
	appendN(t, l, 0, 100)
	drain(t, l.Reader())
	if err := l.Ack(31); err != nil {
		t.Fatal(err)
	}
	if err := l.persistCursor(false); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]int64 {
		m := map[string]int64{}
		filepath.Walk(e.dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				m[p] = fi.Size() ^ fi.ModTime().UnixNano()
			}
			return nil
		})
		return m
	}
	before := snapshot()
	st, err := Inspect(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 70 || st.Cursor != 31 || st.NextSeq != 101 {
		t.Errorf("Inspect = %+v", st)
	}
	after := snapshot()
	if len(before) != len(after) {
		t.Errorf("Inspect changed the directory")
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("Inspect changed %s", p)
		}
	}
	if _, err := Inspect(filepath.Join(e.dir, "missing")); err == nil {
		t.Error("Inspect of a missing directory succeeded")
	}
}
