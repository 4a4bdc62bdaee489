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
