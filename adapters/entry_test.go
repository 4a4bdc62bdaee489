package adapters_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/gpio"
	"github.com/fieldbridge/gateway/adapters/internal/configtest"
	"github.com/fieldbridge/gateway/adapters/modbus"
	"github.com/fieldbridge/gateway/adapters/serial"
	"github.com/fieldbridge/gateway/adapters/simulation"
)

// Every driver follows one poll_interval rule: absent is the driver's
// default; present, it must be at least the driver's minimum, so that an
// explicit 0 is refused rather than read as "the default".
func TestPollIntervalRule(t *testing.T) {
	for _, d := range []struct {
		driver adapters.Driver
		entry  string // a valid device entry, as a flow mapping without its closing brace
		min    time.Duration
	}{
		{modbus.Driver{}, `{name: d, driver: modbus, url: "tcp://127.0.0.1", points: [{name: x, table: holding, address: 0}]`, modbus.MinPollInterval},
		{serial.Driver{}, `{name: d, driver: serial, port: /dev/ttyS0, format: nmea, request: "Q"`, serial.MinPollInterval},
		{gpio.Driver{}, `{name: d, driver: gpio, points: [{name: x, line: 1, mode: input}]`, gpio.MinPollInterval},
		{simulation.Driver{}, `{name: d, driver: simulation, points: [{name: x, waveform: sine}]`, simulation.MinPollInterval},
	} {
		tooShort := "devices[0].poll_interval: poll_interval must be at least " + d.min.String()
		for _, c := range []struct {
			key  string // appended to the entry
			want string // the error expected; "" for none
		}{
			{"", ""},
			{", poll_interval: 0", tooShort},
			{", poll_interval: 0s", tooShort},
			{", poll_interval: " + (d.min / 2).String(), tooShort},
			{", poll_interval: -1s", tooShort},
			{", poll_interval: " + d.min.String(), ""},
		} {
			t.Run(d.driver.Name()+c.key, func(t *testing.T) {
				devs, errs := configtest.Configure(t, d.driver, "  - "+d.entry+c.key+"}\n", configtest.Name("poll.yaml"))
				switch {
				case c.want == "" && (len(errs) > 0 || len(devs) != 1):
					t.Errorf("want a valid device, got %d devices and:\n%v", len(devs), errs)
				case c.want != "" && (len(devs) != 0 || !strings.Contains(errs.Error(), c.want)):
					t.Errorf("want %q, got %d devices and:\n%v", c.want, len(devs), errs)
				}
			})
		}
	}
}

// The registry checks every device's name once, whatever its driver, at
// the name's value: as written, or with ${NAME} references replaced when
// the entry is otherwise usable. A device with a bad name is dropped.
func TestDeviceNameRule(t *testing.T) {
	const bad = `devices[0].name: name "a b" may hold only letters, digits, '_' and '-'`
	for _, c := range []struct {
		entry string // a simulation device entry
		env   string // the value of ${N}
		want  []string
	}{
		{`{name: ok-1, driver: simulation, points: [{name: x, waveform: sine}]}`, "", nil},
		{`{name: a b, driver: simulation, points: [{name: x, waveform: sine}]}`, "", []string{"names.yaml:3:12: " + bad}},
		{`{name: "${N}", driver: simulation, points: [{name: x, waveform: sine}]}`, "ok", nil},
		{`{name: "${N}", driver: simulation, points: [{name: x, waveform: sine}]}`, "a b", []string{"names.yaml:3:12: " + bad}},
		// Another problem does not hide the name's.
		{`{name: a b, driver: simulation, points: [{name: x, waveform: zigzag}]}`, "", []string{bad, `unknown waveform "zigzag"`}},
	} {
		t.Run(c.entry+c.env, func(t *testing.T) {
			devs, errs := configtest.Configure(t, simulation.Driver{}, "  - "+c.entry+"\n", configtest.Name("names.yaml"), configtest.Env("N", c.env))
			if len(c.want) == 0 {
				if len(errs) > 0 || len(devs) != 1 {
					t.Errorf("want a valid device, got %d devices and:\n%v", len(devs), errs)
				}
				return
			}
			if len(devs) != 0 || len(errs) != len(c.want) {
				t.Errorf("want no device and %d errors, got %d devices and:\n%v", len(c.want), len(devs), errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, errs)
				}
			}
		})
	}
}

// The registry reads a device's driver and name as the driver decodes the
// entry: with ${NAME} references replaced and merge keys followed, so that
// two names that end up the same are caught, and a device can take its
// driver and bus from a shared entry.
func TestDeviceEntryAsDecoded(t *testing.T) {
	const sine = `points: [{name: x, waveform: sine}]`
	for _, c := range []struct {
		name    string
		devices string // device entries, one per line
		want    []string
		devs    int
	}{
		{"name from the environment", `{name: "${N}", driver: simulation, ` + sine + `}
{name: boiler, driver: simulation, ` + sine + `}`,
			[]string{`entry.yaml:4:12: devices[1].name: device name "boiler" is already used by devices[0]`}, 1},
		{"driver from the environment", `{name: a, driver: "${D}", ` + sine + `}`, nil, 1},
		{"driver not set", `{name: a, driver: "${UNSET}", ` + sine + `}`,
			[]string{"entry.yaml:3:23: devices[0].driver: environment variable UNSET is not set"}, 0},
		{"name not set, reported once", `{name: "${UNSET}", driver: simulation, ` + sine + `}`,
			[]string{"entry.yaml:3:12: devices[0].name: environment variable UNSET is not set"}, 0},
		{"driver and points merged in", `&meter {name: m1, driver: simulation, ` + sine + `}
{<<: *meter, name: m2}`, nil, 2},
		{"two merged entries with the same keys", `&a {name: a, driver: simulation, ` + sine + `}
&b {name: b, driver: simulation, points: [{name: y, waveform: sine}]}
{<<: [*a, *b], name: c}`, nil, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			devs, errs := configtest.Configure(t, simulation.Driver{}, c.devices+"\n", configtest.Indent("  - "),
				configtest.Name("entry.yaml"), configtest.Env("N", "boiler"), configtest.Env("D", "simulation"))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") || len(devs) != c.devs {
				t.Errorf("got %d devices and errors:\n%s\nwant %d devices and:\n%s", len(devs), strings.Join(got, "\n"), c.devs, strings.Join(c.want, "\n"))
			}
		})
	}
}
