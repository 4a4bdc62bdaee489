package buffer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test runs this file's child in a separate process (the test
// binary itself) and SIGKILLs it at random moments.
const (
	crashEnvDir   = "FIELDBRIDGE_BUFFER_CRASH_DIR"
	crashEnvSync  = "FIELDBRIDGE_BUFFER_CRASH_SYNC"
	crashEnvRound = "FIELDBRIDGE_BUFFER_CRASH_ROUND"
	crashWriters  = 4
	crashSegment  = 2048
)

func crashOptions(dir string, mode SyncMode) Options {
	return Options{
		Dir:          dir,
		MaxBytes:     256 << 20,
		SegmentSize:  crashSegment,
		Sync:         mode,
		SyncInterval: 5 * time.Millisecond,
		ClockSynced:  func() bool { return true },
	}
}

// crashPayload is record i of writer g in round r: a parsable prefix and a
// deterministic body of varying length, so damage shows.
func crashPayload(r, g, i int) []byte {
	b := fmt.Appendf(nil, "r%d g%d i%d ", r, g, i)
	n := (i*61 + g*17) % 400
	for k := range n {
		b = append(b, byte('a'+(i+k)%26))
	}
	return b
}

func parseCrashPayload(data []byte) (r, g, i int, ok bool) {
	if _, err := fmt.Sscanf(string(data), "r%d g%d i%d ", &r, &g, &i); err != nil {
		return 0, 0, 0, false
	}
	return r, g, i, bytes.Equal(data, crashPayload(r, g, i))
}

// TestCrashChild is the child process: it appends from several goroutines
// and consumes and acknowledges from another, printing "A r g i" after each
// Append returns and "C r g i" before acknowledging a consumed record.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	mode, _ := ParseSyncMode(os.Getenv(crashEnvSync))
	round, _ := strconv.Atoi(os.Getenv(crashEnvRound))
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		outMu.Lock()
		os.Stdout.WriteString(line) // one write(2) per line
		outMu.Unlock()
	}
	l, err := Open(crashOptions(dir, mode))
	if err != nil {
		say("ERR open: %v", err)
		os.Exit(2)
	}
	say("OPEN")
	ctx := context.Background()
	go func() {
		r := l.Reader()
		for k := 0; ; k++ {
			rec, err := r.Next(ctx)
			if err != nil {
				say("ERR next: %v", err)
				os.Exit(2)
			}
			if bytes.HasPrefix(rec.Data, []byte("r-1 ")) {
				continue // written by the parent between rounds
			}
			rr, g, i, ok := parseCrashPayload(rec.Data)
			if !ok {
				say("ERR bad record %d: %q", rec.Seq, rec.Data)
				os.Exit(2)
			}
			say("C %d %d %d", rr, g, i)
			if k%5 == 0 {
				if err := l.Ack(rec.Seq + 1); err != nil {
					say("ERR ack: %v", err)
					os.Exit(2)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if err := l.Append(ctx, crashPayload(round, g, i)); err != nil {
					say("ERR append: %v", err)
					os.Exit(2)
				}
				say("A %d %d %d", round, g, i)
			}
		}()
	}
	wg.Wait()
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir() + "/log"
	modes := []SyncMode{SyncAlways, SyncBatch, SyncOff, SyncBatch, SyncOff, SyncAlways,
		SyncOff, SyncAlways, SyncBatch, SyncAlways, SyncBatch, SyncOff}
	for round, mode := range modes {
		// Kill points: right after Open, early, and well into the run.
		var killAfter int
		switch round % 3 {
		case 0:
			killAfter = rng.IntN(40)
		case 1:
			killAfter = 200 + rng.IntN(800)
		default:
			killAfter = 1000 + rng.IntN(3000)
		}
		appended, consumed, childErr := runCrashChild(t, dir, mode, round, killAfter)
		if childErr != "" {
			t.Fatalf("round %d (%v): child failed: %s", round, mode, childErr)
		}
		verifyAfterCrash(t, dir, mode, round, appended, consumed)
		t.Logf("round %d (%v): killed after %d lines, %d appends acknowledged", round, mode, killAfter, len(appended))
	}
	checkInvariants(t, dir)
}

type crashKey struct{ g, i int }

// runCrashChild starts the child, SIGKILLs it once it has printed
// killAfter lines, and returns what it reported.
func runCrashChild(t *testing.T, dir string, mode SyncMode, round, killAfter int) (appended, consumed map[crashKey]bool, childErr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashEnvDir+"="+dir,
		crashEnvSync+"="+mode.String(),
		crashEnvRound+"="+strconv.Itoa(round),
		"GOMAXPROCS=2",
	)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	appended, consumed = map[crashKey]bool{}, map[crashKey]bool{}
	sc := bufio.NewScanner(out)
	lines := 0
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if !killed && lines >= killAfter {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
		lines++
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && (f[0] == "A" || f[0] == "C"):
			r, _ := strconv.Atoi(f[1])
			g, _ := strconv.Atoi(f[2])
			i, _ := strconv.Atoi(f[3])
			if r != round {
				// A record of an earlier round delivered again: allowed
				// (duplicates, never loss).
				continue
			}
			if f[0] == "A" {
				appended[crashKey{g, i}] = true
			} else {
				consumed[crashKey{g, i}] = true
			}
		case strings.HasPrefix(line, "ERR"):
			childErr = line
		}
	}
	if !killed {
		cmd.Process.Signal(syscall.SIGKILL)
	}
	io.Copy(io.Discard, out)
	cmd.Wait()
	return appended, consumed, childErr
}

// verifyAfterCrash reopens the log and checks that every acknowledged
// append of this round is there, intact and in order, unless the child had
// consumed it (then it may be gone, acknowledged), and that appending
// continues. It then acknowledges everything for the next round.
func verifyAfterCrash(t *testing.T, dir string, mode SyncMode, round int, appended, consumed map[crashKey]bool) {
	t.Helper()
	l, err := Open(crashOptions(dir, mode))
	if err != nil {
		t.Fatalf("round %d: Open after kill: %v", round, err)
	}
	defer l.Close()
	if st := l.Stats(); st.Dropped.Total() != 0 || st.Quarantined != 0 {
		t.Fatalf("round %d: recovery dropped records: %+v", round, st)
	}
	r := l.Reader()
	got := drain(t, r)
	present := map[crashKey]bool{}
	last := make([]int, crashWriters)
	for k := range last {
		last[k] = -1
	}
	for _, rec := range got {
		rr, g, i, ok := parseCrashPayload(rec.Data)
		if !ok {
			t.Fatalf("round %d: record %d is damaged: %q", round, rec.Seq, rec.Data)
		}
		if rr != round {
			continue // an earlier round's record whose Ack was not yet on disk
		}
		if i <= last[g] {
			t.Fatalf("round %d: writer %d record %d after %d", round, g, i, last[g])
		}
		last[g] = i
		present[crashKey{g, i}] = true
	}
	for k := range appended {
		if !present[k] && !consumed[k] {
			t.Fatalf("round %d (%v): acknowledged append %+v lost", round, mode, k)
		}
	}
	if err := l.Append(context.Background(), []byte("r-1 g0 i0 after crash")); err != nil {
		t.Fatalf("round %d: Append after recovery: %v", round, err)
	}
	rec, err := r.Next(context.Background())
	if err != nil || string(rec.Data) != "r-1 g0 i0 after crash" {
		t.Fatalf("round %d: read back after recovery: %+v %v", round, rec, err)
	}
	if err := l.Ack(rec.Seq + 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
