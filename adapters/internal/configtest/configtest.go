// Package configtest is what the drivers' tests share to configure device
// entries and to compare the problems reported with golden files.
package configtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/config"
)

// preamble is the gateway section that Configure puts above the devices.
const preamble = "gateway: {id: gw, data_dir: /tmp/fieldbridge-test}\ndevices:\n"

// Option changes how Configure builds and parses the test's file.
type Option func(*options)

type options struct {
	name   string
	indent string
	env    map[string]string
}

// Name is the file's name, which error messages start with; the default
// is test.yaml.
func Name(name string) Option { return func(o *options) { o.name = name } }

// Indent puts prefix before each line of the devices, so that a test can
// write its list unindented.
func Indent(prefix string) Option { return func(o *options) { o.indent = prefix } }

// Env sets ${name} to value. References to other names are unset: the
// tests never read the environment.
func Env(name, value string) Option {
	return func(o *options) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		o.env[name] = value
	}
}

// Configure puts devices, a YAML list of device entries indented as under
// `devices:` (see Indent), below a minimal gateway section and configures
// them with driver d through the registry. It fails the test when the file
// cannot be parsed or its gateway section is invalid, and returns the
// devices and every problem reported.
func Configure(t testing.TB, d adapters.Driver, devices string, opts ...Option) ([]adapters.Device, config.Errors) {
	t.Helper()
	o := options{name: "test.yaml"}
	for _, opt := range opts {
		opt(&o)
	}
	var b strings.Builder
	b.WriteString(preamble)
	if o.indent == "" {
		b.WriteString(devices)
	} else {
		for line := range strings.Lines(devices) {
			b.WriteString(o.indent + line)
		}
	}
	return ConfigureFile(t, d, o.name, []byte(b.String()), opts...)
}

// ConfigureFile is Configure for src, a whole configuration file: its
// name is the one given, and of the options only Env applies.
func ConfigureFile(t testing.TB, d adapters.Driver, name string, src []byte, opts ...Option) ([]adapters.Device, config.Errors) {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	lookup := func(k string) (string, bool) {
		v, ok := o.env[k]
		return v, ok
	}
	f, err := config.Parse(name, src, lookup)
	if f == nil || err != nil {
		t.Fatalf("%s: the test's file is invalid: %v", name, err)
	}
	c := adapters.NewRegistry(d).Configure(f)
	return c.Devices, f.Decoder().Errors()
}

// Sample configures sample, a driver's embedded sample.yaml (a list of
// device entries), below a minimal gateway section. It fails the test
// unless every entry is valid and the sample holds the given number of
// devices, polled by the given number of runners.
func Sample(t *testing.T, d adapters.Driver, sample []byte, devices, runners int) []adapters.Device {
	t.Helper()
	devs, errs := Configure(t, d, string(sample), Name("sample.yaml"))
	if len(errs) > 0 {
		t.Fatalf("sample.yaml:\n%v", errs)
	}
	if len(devs) != devices {
		t.Fatalf("want %d devices, got %d", devices, len(devs))
	}
	if n := len(d.Runners(devs)); n != runners {
		t.Errorf("want %d runners, got %d", runners, n)
	}
	return devs
}

// Golden configures each testdata/config/*.yaml with driver d and compares
// every problem reported, with file:line:col and key path, to its .golden
// file. With update it writes the golden files instead.
func Golden(t *testing.T, d adapters.Driver, update bool) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := config.Parse(file, data, func(string) (string, bool) { return "", false })
			if f == nil {
				t.Fatal("parse failed")
			}
			adapters.NewRegistry(d).Configure(f)
			var got bytes.Buffer
			for _, e := range f.Decoder().Errors() {
				got.WriteString(e.Error() + "\n")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestConfigGolden -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got.String(), want)
			}
		})
	}
}
