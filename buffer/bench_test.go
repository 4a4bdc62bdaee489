package buffer

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeBytes returns this process's write_bytes from /proc/self/io: bytes
// it caused to be sent to the storage layer (page granular, so a page
// rewritten after each fsync counts each time). ok is false where the file
// is unavailable.
func writeBytes() (int64, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

const benchRecord = 200

// benchDir is where benchmarks write; FIELDBRIDGE_BENCH_DIR points it at
// the device to measure (an SD card, say), the default is a temporary
// directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("FIELDBRIDGE_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// reportAppend reports records/s, fsyncs per record and write
// amplification (bytes sent to the file system / payload bytes).
func reportAppend(b *testing.B, l *Log, n int, elapsed time.Duration, wb0 int64, wbOK bool) {
	st := l.Stats()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(st.Fsyncs)/float64(n), "fsyncs/op")
	if wb1, ok := writeBytes(); ok && wbOK {
		b.ReportMetric(float64(wb1-wb0)/float64(n*benchRecord), "write-amp")
	}
}

// BenchmarkAppend measures throughput with parallel appenders (4 per
// CPU), 200-byte records and the default segment size, as fast as they go.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []SyncMode{SyncBatch, SyncAlways, SyncOff} {
		b.Run(mode.String(), func(b *testing.B) {
			l, err := Open(Options{Dir: benchDir(b), Sync: mode})
			if err != nil {
				b.Fatal(err)
			}
			l.mu.Lock()
			l.fsyncs = 0 // count only the appends' fsyncs
			l.mu.Unlock()
			rec := make([]byte, benchRecord)
			wb0, wbOK := writeBytes()
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := l.Append(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			reportAppend(b, l, b.N, elapsed, wb0, wbOK)
		})
	}
}

// BenchmarkAppendPaced appends one 200-byte record at a time at a fixed
// rate, where the fsync pattern dominates write amplification: each op is
// one record, so the run lasts b.N / rate.
func BenchmarkAppendPaced(b *testing.B) {
	for _, tc := range []struct {
		name string
		mode SyncMode
		rate int
	}{
		{"batch/100msgps", SyncBatch, 100},
		{"batch/1000msgps", SyncBatch, 1000},
		{"always/100msgps", SyncAlways, 100},
		{"always/1000msgps", SyncAlways, 1000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := Open(Options{Dir: benchDir(b), Sync: tc.mode})
			if err != nil {
				b.Fatal(err)
			}
			l.mu.Lock()
			l.fsyncs = 0
			l.mu.Unlock()
			rec := make([]byte, benchRecord)
			ctx := context.Background()
			interval := time.Second / time.Duration(tc.rate)
			wb0, wbOK := writeBytes()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				if err := l.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			reportAppend(b, l, b.N, elapsed, wb0, wbOK)
		})
	}
}
