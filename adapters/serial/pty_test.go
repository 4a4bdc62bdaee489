package serial

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/configtest"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// TestSensorsGolden runs each testdata/cases/<case>: the device of
// config.yaml reads a pty whose other end gets input.txt, and what the
// driver reports, in order, then its counters, must equal expected.txt.
// Every input ends with a valid line, so once its events are in, all
// earlier lines have been handled.
func TestSensorsGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/cases/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			cfg, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			input, err := os.ReadFile(filepath.Join(dir, "input.txt"))
			if err != nil {
				t.Fatal(err)
			}
			goldenPath := filepath.Join(dir, "expected.txt")
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (write it by hand: it is the specification of the case)", err)
			}
			events := 0
			for _, l := range strings.Split(string(want), "\n") {
				if strings.HasPrefix(l, "report ") || strings.HasPrefix(l, "polled ") {
					events++
				}
			}

			pty := startSocat(t, t.TempDir())
			devs, errs := configtest.ConfigureFile(t, Driver{}, filepath.Join(dir, "config.yaml"), cfg, configtest.Env("PORT", pty.B))
			if len(errs) > 0 || len(devs) != 1 {
				t.Fatalf("config: %v", errs)
			}
			d := devs[0].(*Device)
			sinks, stop := start(t, d)
			write(t, pty.sensor(t), input)
			sinks[0].waitFor(t, fmt.Sprintf("%d events", events), func(ev []event) bool { return len(ev) >= events })
			stop()

			got := traceOf(d, sinks[0].snapshot())
			c := counters(t, d)
			keys := make([]string, 0, len(c))
			for k := range c {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				got += fmt.Sprintf("counter %s %g\n", k, c[k])
			}
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(want) {
				t.Errorf("%s differs\n--- got\n%s--- want\n%s", goldenPath, got, want)
			}
		})
	}
}

const kvDevice = `  - name: station
    driver: serial
    port: ${PORT}
    format: kv
    points:
      - {name: temperature, key: T}
`

func lastValue(ev []event) (float64, bool) {
	for i := len(ev) - 1; i >= 0; i-- {
		if !ev[i].polled && ev[i].err == nil {
			return ev[i].v.Float64(), true
		}
	}
	return 0, false
}

func hasValue(ev []event, f float64) bool {
	for _, e := range ev {
		if !e.polled && e.err == nil && e.v.Float64() == f {
			return true
		}
	}
	return false
}

// Binary garbage, overlong lines and bad checksums are dropped and counted,
// and nothing of them is published.
func TestGarbageDropped(t *testing.T) {
	pty := startSocat(t, t.TempDir())
	d := mustDevice(t, `  - name: gps
    driver: serial
    port: ${PORT}
    format: nmea
    max_line: 1KiB
    points: [{name: fix_quality}, {name: satellites}]
`, pty.B)
	sinks, stop := start(t, d)
	good := "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
	var in bytes.Buffer
	in.WriteString(good)
	in.WriteString("\x00\x01\x02\x03binary\x04\n")                    // control characters
	in.WriteString("$GPGGA,1235\xc3\x28,4807.038\n")                  // invalid UTF-8
	in.WriteString("$GPGGA," + strings.Repeat("9", 2000) + "*47\r\n") // overlong, with a valid-looking end
	for i := range 3000 {                                             // a binary burst with no line end
		in.WriteByte(byte(0x80 + i%0x7f))
	}
	in.WriteString("\n")
	in.WriteString("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48\n") // bad checksum
	in.WriteString("$GPGGA,123520,4807.038,N,01131.000,E,2,09,0.9,545.4,M,46.9,M,,*4F\n") // the last, valid
	write(t, pty.sensor(t), in.Bytes())

	// Two valid lines: 2 reports and a Polled each.
	ev := sinks[0].waitFor(t, "the last line", func(ev []event) bool { return len(ev) >= 6 })
	stop()
	ev = sinks[0].snapshot()
	want := "report fix_quality uint 1\nreport satellites uint 8\npolled ok\n" +
		"report fix_quality uint 2\nreport satellites uint 9\npolled ok\n"
	if got := traceOf(d, ev); got != want {
		t.Errorf("events\n%s want\n%s", got, want)
	}
	c := counters(t, d)
	for k, v := range map[string]float64{
		"lines": 7, "dropped garbage": 2, "dropped overlong": 2, "dropped bad_checksum": 1, "dropped unparsable": 0,
	} {
		if c[k] != v {
			t.Errorf("%s = %g, want %g (all: %v)", k, c[k], v, c)
		}
	}
}

// A query/response sensor: the request goes out every poll_interval; a
// request without an answer within response_timeout is a failed poll, and
// three in a row (the gateway's threshold) precede the recovery.
func TestRequestResponse(t *testing.T) {
	pty := startSocat(t, t.TempDir())
	d := mustDevice(t, `  - name: analyser
    driver: serial
    port: ${PORT}
    format: kv
    request: 'READ\r\n'
    poll_interval: 300ms
    response_timeout: 250ms
    points:
      - {name: co2, key: CO2, type: uint32}
`, pty.B)
	sensor := pty.sensor(t)
	requests := make(chan string, 100)
	// The responder answers requests 1-3, ignores 4-6, and answers from 7 on.
	go func() {
		r := bufio.NewReader(sensor)
		for n := 1; ; n++ {
			req, err := r.ReadString('\n')
			if err != nil {
				close(requests)
				return
			}
			requests <- req
			if n <= 3 || n >= 7 {
				if _, err := fmt.Fprintf(sensor, "CO2=%d\r\n", 400+n); err != nil {
					return
				}
			}
		}
	}()
	sinks, stop := start(t, d)
	ev := sinks[0].waitFor(t, "a reading after the silence", func(ev []event) bool { return hasValue(ev, 407) })
	stop()
	if err := checkRequests(requests); err != nil {
		t.Error(err)
	}
	for _, f := range []float64{401, 402, 403} {
		if !hasValue(ev, f) {
			t.Errorf("no reading %g:\n%s", f, traceOf(d, ev))
		}
	}
	for _, f := range []float64{404, 405, 406} {
		if hasValue(ev, f) {
			t.Errorf("reading %g for a request that got no answer", f)
		}
	}
	// Between the last answer before the silence and the first after it:
	// exactly the three unanswered requests, as failed polls.
	var between []event
	in := false
	for _, e := range ev {
		switch {
		case !e.polled && e.v.Float64() == 403:
			in = true
		case !e.polled && e.v.Float64() == 407:
			in = false
		case in && e.polled && e.err != nil:
			between = append(between, e)
		}
	}
	if len(between) != 3 {
		t.Fatalf("%d failed polls during the silence, want 3:\n%s", len(between), traceOf(d, ev))
	}
	for _, e := range between {
		if !errors.Is(e.err, ErrNoResponse) {
			t.Errorf("failed poll: %v, want ErrNoResponse", e.err)
		}
	}
	if c := counters(t, d); c["response_timeouts"] != 3 {
		t.Errorf("response_timeouts = %g, want 3", c["response_timeouts"])
	}
}

// checkRequests verifies that every request the sensor got was exactly
// READ\r\n: escapes interpreted, nothing else on the line.
func checkRequests(requests <-chan string) error {
	n := 0
	for {
		select {
		case r, ok := <-requests:
			if !ok {
				return nil
			}
			n++
			if r != "READ\r\n" {
				return fmt.Errorf("request %d is %q, want \"READ\\r\\n\"", n, r)
			}
		default:
			if n < 7 {
				return fmt.Errorf("%d requests, want at least 7", n)
			}
			return nil
		}
	}
}

// The port vanishing (a USB adapter unplugged: socat ends and its links
// disappear) fails polls with ErrPort; when the same path comes back, the
// driver reopens it and data flows again.
func TestPortVanishesAndComesBack(t *testing.T) {
	dir := t.TempDir()
	pty := startSocat(t, dir)
	d := mustDevice(t, kvDevice, pty.B)
	write(t, pty.sensor(t), []byte("T=1\n"))
	sinks, stop := start(t, d)
	sinks[0].waitFor(t, "the first reading", func(ev []event) bool { return hasValue(ev, 1) })

	pty.stop()
	if _, err := os.Lstat(pty.B); !os.IsNotExist(err) {
		t.Fatalf("socat left its link %s behind: %v", pty.B, err)
	}
	// The gateway marks a device offline after three failed polls in a row.
	ev := sinks[0].waitFor(t, "three failed polls", func(ev []event) bool { return trailingErrors(ev, ErrPort) >= 3 })
	var last error
	for i := len(ev) - 1; i >= 0 && last == nil; i-- {
		last = ev[i].err
	}
	if !strings.Contains(last.Error(), pty.B) {
		t.Errorf("error %q does not name the port", last)
	}

	pty2 := startSocat(t, dir)
	write(t, pty2.sensor(t), []byte("T=2\r\n"))
	ev = sinks[0].waitFor(t, "a reading after the port came back", func(ev []event) bool {
		v, ok := lastValue(ev)
		return ok && v == 2 && ev[len(ev)-1].polled && ev[len(ev)-1].err == nil
	})
	stop()
	if c := counters(t, d); c["port_errors"] < 3 {
		t.Errorf("port_errors = %g, want at least 3", c["port_errors"])
	}
	_ = ev
}

// A cancelled context ends a read that is blocked with no timeout (a
// streaming sensor, no idle_timeout): Run returns at once.
func TestCancelStopsBlockedRead(t *testing.T) {
	pty := startSocat(t, t.TempDir())
	d := mustDevice(t, kvDevice, pty.B)
	write(t, pty.sensor(t), []byte("T=1\n"))
	sinks, stop := start(t, d)
	sinks[0].waitFor(t, "a valid line", func(ev []event) bool { return len(ev) >= 2 })
	// The driver now waits in Read for a line that never comes.
	if took := stop(); took > time.Second {
		t.Errorf("Run returned %s after cancel", took)
	}
	if ev := sinks[0].snapshot(); countPolled(ev, func(err error) bool { return err != nil }) != 0 {
		t.Errorf("shutting down reported a failure:\n%s", traceOf(d, ev))
	}
}

// A port that does not exist fails every poll, with backoff, and a
// cancelled context ends the wait between attempts.
func TestMissingPort(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ttyUSB9")
	d := mustDevice(t, kvDevice, missing)
	sinks, stop := start(t, d)
	ev := sinks[0].waitFor(t, "three failed polls", func(ev []event) bool { return trailingErrors(ev, ErrPort) >= 3 })
	if !strings.Contains(ev[0].err.Error(), "no such file") {
		t.Errorf("error %q does not say the port is missing", ev[0].err)
	}
	if took := stop(); took > time.Second {
		t.Errorf("Run returned %s after cancel", took)
	}
}

// A streaming sensor that falls silent fails a poll per idle_timeout; the
// next valid line brings it back.
func TestIdleTimeout(t *testing.T) {
	pty := startSocat(t, t.TempDir())
	d := mustDevice(t, `  - name: station
    driver: serial
    port: ${PORT}
    format: kv
    idle_timeout: 50ms
    points: [{name: t, key: T}]
`, pty.B)
	sinks, stop := start(t, d)
	sinks[0].waitFor(t, "three idle polls", func(ev []event) bool { return trailingErrors(ev, ErrIdle) >= 3 })
	write(t, pty.sensor(t), []byte("T=5\n"))
	sinks[0].waitFor(t, "the line", func(ev []event) bool { return hasValue(ev, 5) })
	stop()
}

// Two devices cannot read one port: the second fails its polls, saying
// which device owns the port, and the first is unaffected.
func TestPortConflict(t *testing.T) {
	pty := startSocat(t, t.TempDir())
	devs, errs := configure(t, `  - {name: one, driver: serial, port: "${PORT}", format: kv, points: [{name: t, key: T}]}
  - {name: two, driver: serial, port: "${PORT}", format: kv, points: [{name: t, key: T}]}
`, pty.B)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	sinks, stop := start(t, devs[0].(*Device), devs[1].(*Device))
	write(t, pty.sensor(t), []byte("T=3\n"))
	sinks[0].waitFor(t, "device one's reading", func(ev []event) bool { return hasValue(ev, 3) })
	ev := sinks[1].waitFor(t, "device two's failure", func(ev []event) bool { return len(ev) > 0 })
	stop()
	if !errors.Is(ev[0].err, ErrPort) || !strings.Contains(ev[0].err.Error(), "device one") {
		t.Errorf("device two: %v", ev[0].err)
	}
}
