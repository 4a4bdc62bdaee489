package adapters_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/gpio"
	"github.com/fieldbridge/gateway/adapters/modbus"
	"github.com/fieldbridge/gateway/adapters/serial"
	"github.com/fieldbridge/gateway/adapters/simulation"
	"github.com/fieldbridge/gateway/config"
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
				src := "gateway: {id: gw, data_dir: /tmp/fieldbridge-test}\ndevices:\n  - " + d.entry + c.key + "}\n"
				f, err := config.Parse("poll.yaml", []byte(src), func(string) (string, bool) { return "", false })
				if f == nil || err != nil {
					t.Fatalf("the test's file is invalid: %v", err)
				}
				devs := adapters.NewRegistry(d.driver).Configure(f).Devices
				errs := f.Decoder().Errors()
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
