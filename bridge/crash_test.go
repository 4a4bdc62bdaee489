package bridge

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/syncbuf"
)

// The crash test runs broker, buffer and bridge in a child process (this
// test binary again) and kills it with SIGKILL.
const (
	crashEnvDir   = "FIELDBRIDGE_BRIDGE_CRASH_DIR"
	crashEnvCloud = "FIELDBRIDGE_BRIDGE_CRASH_CLOUD" // url ca cert key, space-separated
	crashEnvRate  = "FIELDBRIDGE_BRIDGE_CRASH_RATE"
)

// TestCrashChild is the child: it wires broker, buffer and bridge, prints
// the local broker's URL, and runs until killed or until its stdin closes.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	f := strings.Fields(os.Getenv(crashEnvCloud))
	rate, _ := strconv.ParseFloat(os.Getenv(crashEnvRate), 64)
	one := 1
	cfg := config.Bridge{
		Name: "cloud", URL: f[0], ClientID: "{gateway}",
		TLS:       config.TLS{CAFile: f[1], CertFile: f[2], KeyFile: f[3]},
		Keepalive: 5 * time.Second, Reconnect: config.Reconnect{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		Inflight: 100, MaxRate: rate,
		Routes: []config.Route{{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "sites/a/"}},
	}
	r := newRig(t, cfg, rigOpts{buffer: buffer.Options{Dir: dir}})
	os.Stdout.WriteString("LOCAL " + r.local + "\n")
	io.Copy(io.Discard, os.Stdin)
}

type crashChild struct {
	cmd   *exec.Cmd
	local string
	stdin io.WriteCloser
	done  chan struct{}
}

func startCrashChild(t *testing.T, dir, cloudEnv string, rate float64) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvCloud+"="+cloudEnv,
		crashEnvRate+"="+strconv.FormatFloat(rate, 'f', -1, 64))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	local := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if u, ok := strings.CutPrefix(line, "LOCAL "); ok {
				local <- u
			}
		}
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child output:\n%s", logs)
		}
	})
	select {
	case c.local = <-local:
	case <-c.done:
		t.Fatalf("the child exited at start:\n%s", logs)
	case <-time.After(wait):
		t.Fatalf("the child did not start:\n%s", logs)
	}
	return c
}

func (c *crashChild) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// TestCrash: SIGKILL of the process after the local publisher got its
// PUBACKs loses nothing; SIGKILL while the backlog drains loses nothing,
// and what arrives twice is only what was sent after the cursor the
// buffer had saved.
func TestCrash(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	certFile, keyFile := p.leaf(t, "gw1", nil, false)
	cloudEnv := strings.Join([]string{c.url(), p.ca, certFile, keyFile}, " ")
	dir := t.TempDir() + "/buffers/cloud"
	topics := topicNames("plant/t", 4)
	perTopic, rate := 5000, 4000.0
	if raceEnabled {
		perTopic, rate = 750, 800
	}
	n := perTopic * len(topics)

	// A persistent session keeps for the subscriber what arrives while it
	// is away.
	c.start()
	subscribeCloud(t, c, p, "crash-sub", "sites/#", newCloudSub(), nil)
	c.stop()

	// 1: the cloud is down; every message is acknowledged locally, then
	// the process dies.
	child := startCrashChild(t, dir, cloudEnv, 0)
	publishLocal(t, child.local, topics, perTopic)
	child.kill()
	if st, err := buffer.Inspect(dir); err != nil || st.Messages != uint64(n) {
		t.Fatalf("after the first kill the buffer holds %+v (%v), want %d messages", st, err, n)
	}

	// 2: the cloud is back; the process dies again while sending.
	c.start()
	sub := newCloudSub()
	subscribeCloud(t, c, p, "crash-sub", "sites/#", sub, nil)
	child = startCrashChild(t, dir, cloudEnv, rate)
	sub.waitFor(t, bulkWait, "a third of the messages", func(_, d int) bool { return d >= n/3 })
	var saved uint64
	eventually(t, wait, "a saved cursor", func() bool {
		st, err := buffer.Inspect(dir)
		saved = st.Cursor
		return err == nil && saved > 1
	})
	child.kill()

	// 3: restart; everything arrives.
	child = startCrashChild(t, dir, cloudEnv, 0)
	sub.waitFor(t, bulkWait, "every message", func(_, d int) bool { return d >= n })
	msgs := sub.snapshot()
	dups := checkDelivery(t, msgs, topicNames("sites/a/plant/t", len(topics)), perTopic)

	// Records are numbered from 1 in publish order (index-major, topic
	// minor); a record sent again must lie at or after the saved cursor.
	seen := map[string]bool{}
	for _, m := range msgs {
		key := m.topic + " " + m.payload
		if seen[key] {
			i, _ := strconv.Atoi(m.payload)
			k, _ := strconv.Atoi(strings.TrimPrefix(m.topic, "sites/a/plant/t"))
			if seq := uint64(i*len(topics) + k + 1); seq < saved {
				t.Fatalf("record %d arrived twice but lies before the cursor %d saved before the kill", seq, saved)
			}
		}
		seen[key] = true
	}
	t.Logf("%d messages, %d duplicates, all after the saved cursor %d", n, dups, saved)
	child.stdin.Close()
}
