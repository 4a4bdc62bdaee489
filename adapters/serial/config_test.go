package serial

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
)

// TestConfigGolden compares the problems reported for each
// testdata/config/*.yaml to its .golden file.
func TestConfigGolden(t *testing.T) { configtest.Golden(t, Driver{}, *update) }

// The sample embedded in the package is a valid configuration.
func TestSampleIsValid(t *testing.T) {
	devs := configtest.Sample(t, Driver{}, Sample, 5, 5)
	gps := devs[0].(*Device)
	var names []string
	for _, p := range gps.info.Points {
		names = append(names, p.Name+" "+p.Type.String()+" "+p.Unit)
	}
	want := "latitude float64 °|longitude float64 °|altitude float64 m|satellites uint16 |fix_quality uint16 |speed float64 km/h|course float64 °"
	if got := strings.Join(names, "|"); got != want {
		t.Errorf("gps points:\n %s\nwant\n %s", got, want)
	}
	a := devs[4].(*Device)
	if string(a.request) != "READ\r\n" || a.every != 5*time.Second || a.respTO != 500*time.Millisecond {
		t.Errorf("analyser: request %q every %s timeout %s", a.request, a.every, a.respTO)
	}
	w := devs[3].(*Device)
	if w.mode != (serialline.Mode{Baud: 4800, DataBits: 7, Parity: 'E', StopBits: 1}) {
		t.Errorf("weather line: %s", w.mode)
	}
}

// Listing NMEA points selects them and keeps their default units unless
// the entry sets one.
func TestNMEASelection(t *testing.T) {
	d := mustDevice(t, `  - name: gps
    driver: serial
    port: /dev/ttyS0
    format: nmea
    points: [{name: speed, unit: "m/s", scale: 0.2777777777777778}, {name: latitude, unit: ""}, {name: course}]
`, "")
	got := ""
	for _, p := range d.info.Points {
		got += p.Name + "[" + p.Unit + "] "
	}
	if got != "speed[m/s] latitude[] course[°] " {
		t.Errorf("points: %s", got)
	}
	p := d.parser().(*nmeaParser)
	var order []int
	line := []byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A")
	if err := p.parse(line, func(i int, v mappings.Value, err error) { order = append(order, i) }); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Errorf("emitted points %v, want [0 1 2]", order)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`READ\r\n`:  "READ\r\n",
		`\x02Q\x03`: "\x02Q\x03",
		`a\\b\tc`:   "a\\b\tc",
		"plain\r\n": "plain\r\n",
		`\x0d\x0A`:  "\r\n",
	} {
		got, err := unescape(in)
		if err != nil || string(got) != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`\`, `\q`, `\x4`, `\xZZ`, `ab\x`} {
		if _, err := unescape(in); err == nil {
			t.Errorf("unescape(%q) accepted", in)
		}
	}
}
