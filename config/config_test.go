package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func parse(t *testing.T, yaml string, vars map[string]string) (*File, Errors) {
	t.Helper()
	f, err := Parse("test.yaml", []byte(yaml), env(vars))
	if err == nil {
		return f, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	return f, errs
}

const minimal = `gateway:
  id: gw1
  data_dir: /tmp/x
`

func TestMinimalDefaults(t *testing.T) {
	f, errs := parse(t, minimal, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	if f.Broker.MaxClients != DefaultMaxClients || !f.Broker.Anonymous() {
		t.Errorf("broker defaults: %+v", f.Broker)
	}
	if len(f.Broker.Listeners) != 1 || f.Broker.Listeners[0].Address != "127.0.0.1:1883" {
		t.Errorf("default listener: %+v", f.Broker.Listeners)
	}
	if f.Publish.Topic != DefaultTopic || f.Publish.Format != "json" || *f.Publish.QoS != 1 || !*f.Publish.Retain {
		t.Errorf("publish defaults: %+v", f.Publish)
	}
}

// The Done-when case of the Foundation issue: an unknown key on line 4 is
// named with its line and key path.
func TestUnknownKeyNamesLineAndKey(t *testing.T) {
	_, errs := parse(t, "gateway:\n  id: gw1\n  data_dir: /tmp/x\n  colour: blue\n", nil)
	if len(errs) != 1 {
		t.Fatalf("want 1 error, got %v", errs)
	}
	e := errs[0]
	if e.Pos.Line != 4 || e.Pos.Column != 3 || e.Path != "gateway.colour" {
		t.Errorf("got %s, want line 4 col 3 path gateway.colour", e)
	}
	if !strings.HasPrefix(e.Error(), "test.yaml:4:3: gateway.colour: unknown key") {
		t.Errorf("message: %s", e)
	}
}

func TestSuggestion(t *testing.T) {
	_, errs := parse(t, minimal+"broker:\n  max_client: 10\n", nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, `did you mean "max_clients"`) {
		t.Fatalf("got %v", errs)
	}
}

func TestEveryErrorReported(t *testing.T) {
	y := `gateway:
  id: gw/1
log: {level: loud, format: xml}
broker:
  max_clients: many
  listeners:
    - {name: a, type: udp, address: 127.0.0.1:1}
bridges:
  - name: cloud
    url: mqtt://cloud.example.com:1883
    keepalive: soon
    buffer: {max_bytes: 2GB, sync: sometimes}
    routes: [{direction: sideways, filter: "a/#/b"}]
`
	_, errs := parse(t, y, nil)
	want := []string{
		"test.yaml:2:7: gateway.id:",
		"test.yaml:3:14: log.level:",
		"test.yaml:3:28: log.format:",
		"test.yaml:5:16: broker.max_clients:",
		"broker.listeners[0].type:",
		"bridges[0].url: mqtt:// sends passwords",
		"bridges[0].keepalive: invalid duration",
		"bridges[0].buffer.max_bytes: invalid size",
		"bridges[0].buffer.sync:",
		"bridges[0].routes[0].direction:",
		"bridges[0].routes[0].filter:",
	}
	wantErrors(t, errs, want...)
}

// A gateway id names the first topic level: '$' there would make every
// topic a broker-reserved one.
func TestGatewayIDReserved(t *testing.T) {
	_, errs := parse(t, "gateway: {id: $gw}\n", nil)
	wantErrors(t, errs, `test.yaml:1:15: gateway.id: "$gw" cannot start with '$'`)
	_, errs = parse(t, "gateway: {id: ''}\n", nil)
	wantErrors(t, errs, "test.yaml:1:15: gateway.id: required")
}

// wantErrors checks that each of want is part of the errors' text.
func wantErrors(t *testing.T, errs Errors, want ...string) {
	t.Helper()
	if len(errs) == 0 {
		t.Fatal("accepted")
	}
	text := errs.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}

func TestTypesSizesDurations(t *testing.T) {
	y := minimal + `bridges:
  - name: cloud
    url: mqtts://cloud.example.com:8883
    keepalive: 15s
    inflight: 0x40
    max_rate: 100
    routes: [{direction: out, filter: "gw1/#"}]
    buffer: {max_bytes: 2GiB, max_age: 168h, sync_interval: 50ms}
`
	f, errs := parse(t, y, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	b := f.Bridges[0]
	if b.Keepalive != 15*time.Second || b.Inflight != 64 || b.MaxRate != 100 {
		t.Errorf("bridge: %+v", b)
	}
	if b.Buffer.MaxBytes != 2<<30 || b.Buffer.MaxAge != 168*time.Hour || b.Buffer.SyncInterval != 50*time.Millisecond {
		t.Errorf("buffer: %+v", b.Buffer)
	}
	if b.Buffer.Sync != "batch" || b.Buffer.WhenFull != "drop_oldest" || !*b.BufferQoS0 || *b.Routes[0].QoS != 1 {
		t.Errorf("defaults: %+v", b)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"1048576": 1 << 20, "512KiB": 512 << 10, "64MiB": 64 << 20, "2GiB": 2 << 30, "1.5GiB": 3 << 29, "1TiB": 1 << 40, "10B": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1MiB", "2GB", "ten"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	hash := "$2b$10$abcdefghijklmnopqrstuu5P/eJ6yO0FuBiNPkPGkbGxXQmDVprS2"
	y := minimal + `broker:
  users:
    - {username: scada, password_hash: "` + hash + `", publish: ["${PREFIX}/#"]}
bridges:
  - name: cloud
    url: mqtts://${CLOUD_HOST}:8883
    username: ${CLOUD_USER}
    password: "${CLOUD_PASS}"
    routes: [{direction: out, filter: "gw1/#"}]
`
	f, errs := parse(t, y, map[string]string{"PREFIX": "plant", "CLOUD_HOST": "cloud.example.com", "CLOUD_USER": "u", "CLOUD_PASS": "p$w"})
	if errs != nil && !strings.Contains(errs.Error(), "password_hash") {
		t.Fatal(errs)
	}
	if f.Broker.Users[0].PasswordHash != hash {
		t.Errorf("bcrypt hash changed: %q", f.Broker.Users[0].PasswordHash)
	}
	if f.Broker.Users[0].Publish[0] != "plant/#" || f.Bridges[0].URL != "mqtts://cloud.example.com:8883" || f.Bridges[0].Username != "u" || f.Bridges[0].Password != "p$w" {
		t.Errorf("not expanded: %+v %+v", f.Broker.Users[0], f.Bridges[0])
	}
	_, errs = parse(t, y, map[string]string{"PREFIX": "plant", "CLOUD_HOST": "h"})
	text := errs.Error()
	for _, v := range []string{"CLOUD_USER is not set", "CLOUD_PASS is not set"} {
		if !strings.Contains(text, v) {
			t.Errorf("missing %q in %s", v, text)
		}
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "pw")
	if err := os.WriteFile(pf, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := Bridge{Name: "c", PasswordFile: pf}
	if s, err := b.Secret(); err != nil || s != "s3cret" {
		t.Fatalf("Secret() = %q, %v", s, err)
	}
	b.PasswordFile = filepath.Join(dir, "missing")
	if _, err := b.Secret(); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestNonLoopbackListenerNeedsAuth(t *testing.T) {
	_, errs := parse(t, minimal+"broker:\n  listeners:\n    - {name: plant, type: tcp, address: 0.0.0.0:1883}\n", nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "reachable from the network") || errs[0].Pos.Line != 6 {
		t.Fatalf("got %v", errs)
	}
	_, errs = parse(t, minimal+"broker:\n  listeners:\n    - {name: plant, type: tls, address: \":8883\", cert_file: c, key_file: k, client_ca_file: ca}\n", nil)
	if errs != nil {
		t.Fatalf("mTLS listener refused: %v", errs)
	}
}

func TestYAMLSyntaxAndShape(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"syntax":      {"gateway:\n  id: [gw\n", "YAML syntax"},
		"empty":       {"", "the file is empty"},
		"list-as-map": {"gateway: [1, 2]\n", "expected a mapping"},
		"duplicate":   {"gateway:\n  id: a\n  id: b\n", "appears twice"},
		"bool":        {minimal + "broker: {allow_anonymous: yes}\n", "expected true or false"},
		"two-docs":    {minimal + "---\ngateway: {id: b}\n", "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errs := parse(t, tc.yaml, nil)
			if !strings.Contains(errs.Error(), tc.want) {
				t.Errorf("got %v, want %q", errs, tc.want)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	y := minimal + `x-tls: &tls {ca_file: /ca.pem, server_name: cloud}
bridges:
  - name: cloud
    url: mqtts://cloud.example.com:8883
    tls: {<<: *tls, server_name: other}
    routes: [{direction: out, filter: "gw1/#"}]
`
	_, errs := parse(t, y, nil)
	// x-tls is not a known key: merges work but unknown top-level keys still fail.
	if len(errs) != 1 || errs[0].Path != "x-tls" {
		t.Fatalf("got %v", errs)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("gateway: {id: a}\nbridges: [{name: b, url: 'mqtts://h:1', routes: [{direction: in, filter: 'a/#', strip_prefix: a/}]}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse("fuzz.yaml", data, env(map[string]string{"A": "1"}))
	})
}

// TestAliasBomb: aliases that expand exponentially end with the decoder's
// limit, not a hang. They nest along real types (a bridge holds routes), so
// that every expansion is decoded: 200 bridges of 200 routes are 120,000
// values from 2 KB. The test lowers the limit to stay fast; at the real
// one, 2000 bridges of 2000 routes fail in about two seconds.
func TestAliasBomb(t *testing.T) {
	y := minimal + "bridges:\n" +
		"  - &b {name: c, url: \"mqtts://h:8883\", routes: [&r {direction: out, filter: \"a/#\"}" + strings.Repeat(", *r", 199) + "]}\n" +
		strings.Repeat("  - *b\n", 199)
	d := NewDecoder("test.yaml", env(nil))
	d.maxVisits = 10_000
	_, err := d.parse([]byte(y))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	wantErrors(t, errs, "the file expands to more than 10000 values")
	if n := strings.Count(errs.Error(), "expands to more than"); n != 1 {
		t.Errorf("the limit is reported %d times, want once", n)
	}
}

// TestCheckBroker: CheckBroker is the check Load runs on the broker
// section, so both give the same key paths and messages; CheckBroker's
// have no file position.
func TestCheckBroker(t *testing.T) {
	y := minimal + `broker:
  max_clients: 901
  listeners:
    - {name: a, type: tcp, address: "127.0.0.1:1883"}
    - {name: a, type: websocket, address: "127.0.0.1:1883", cert_file: c}
    - {name: b, type: tcp, address: "127.0.0.1:99999"}
    - {name: c, type: tcp, address: "0.0.0.0:1884"}
  users:
    - {username: u, publish: ["a/#/b"]}
    - {username: u, password_hash: "$1a$04$XB5FTTaTuvQ.6CpqEJcLlebBvkznF9OYgZygDU.AlfhhkkYc4YRdW"}
`
	f, errs := parse(t, y, nil)
	wantErrors(t, errs,
		"test.yaml:5:16: broker.max_clients: max_clients must be between 1 and 900",
		"broker.listeners[1].name: listener name \"a\" is used twice",
		"broker.listeners[1].address: address 127.0.0.1:1883 is used by another listener",
		"broker.listeners[1]: a websocket listener with TLS needs both cert_file and key_file",
		"broker.listeners[2].address: port \"99999\" is not a number from 0 to 65535",
		"broker.users[0]: user \"u\" needs password_hash",
		"broker.users[0].publish[0]: topic filter",
		"broker.users[1].username: user \"u\" is defined twice",
		"broker.users[1].password_hash: not a bcrypt hash",
	)
	err := CheckBroker(f.Broker)
	var direct Errors
	if !errors.As(err, &direct) {
		t.Fatalf("CheckBroker: %T %v, want Errors", err, err)
	}
	// Load lists them in file order, CheckBroker in the order checked.
	var fromLoad, fromCheck []string
	for _, e := range errs {
		fromLoad = append(fromLoad, e.Path+": "+e.Msg)
	}
	for _, e := range direct {
		fromCheck = append(fromCheck, e.Error())
	}
	slices.Sort(fromLoad)
	slices.Sort(fromCheck)
	if !slices.Equal(fromCheck, fromLoad) {
		t.Errorf("CheckBroker:\n%s\nLoad:\n%s", strings.Join(fromCheck, "\n"), strings.Join(fromLoad, "\n"))
	}

	// Unset max_clients is the default; listeners on port 0 share an address.
	ok := Broker{Listeners: []Listener{{Name: "a", Type: "tcp", Address: "127.0.0.1:0"}, {Name: "b", Type: "tcp", Address: "127.0.0.1:0"}}}
	if err := CheckBroker(ok); err != nil {
		t.Errorf("CheckBroker(%+v): %v", ok, err)
	}
	// The security rule: a network listener needs users or client_ca_file.
	open := Broker{Listeners: []Listener{{Name: "plant", Type: "tcp", Address: "0.0.0.0:1883"}}}
	if err := CheckBroker(open); err == nil || !strings.Contains(err.Error(), `broker.listeners[0].address: listener "plant" on 0.0.0.0:1883 is reachable from the network`) {
		t.Errorf("CheckBroker(open listener): %v", err)
	}
}

// TestCheckBrokerMessages: each rule of CheckBroker on its own, with the
// key path and the words that tell the user what to do. It never shows a
// password hash.
func TestCheckBrokerMessages(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash := string(h)
	cases := []struct {
		name string
		cfg  Broker
		want []string
	}{
		{"bad hash", Broker{Users: []User{{Username: "u", PasswordHash: "secret"}}},
			[]string{"broker.users[0].password_hash: not a bcrypt hash", "gateway passwd"}},
		{"no password_hash without client CA", Broker{Users: []User{{Username: "u"}}},
			[]string{"broker.users[0]: ", `user "u" needs password_hash`, "client_ca_file"}},
		{"bad filter", Broker{Users: []User{{Username: "u", PasswordHash: hash, Publish: []string{"a/#/b"}}}},
			[]string{"broker.users[0].publish[0]: ", `"a/#/b"`}},
		{"bad subscribe filter", Broker{Users: []User{{Username: "u", PasswordHash: hash, Subscribe: []string{"a+"}}}},
			[]string{"broker.users[0].subscribe[0]: ", `"a+"`}},
		{"empty username", Broker{Users: []User{{PasswordHash: hash}}},
			[]string{"broker.users[0].username: a user needs a username"}},
		{"empty listener name", Broker{Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:0"}}},
			[]string{"broker.listeners[0].name: a listener needs a name"}},
		{"unknown type", Broker{Listeners: []Listener{{Name: "a", Type: "quic", Address: "127.0.0.1:1"}}},
			[]string{`broker.listeners[0].type: unknown listener type "quic"`}},
		{"empty type", Broker{Listeners: []Listener{{Name: "a", Address: "127.0.0.1:1"}}},
			[]string{`broker.listeners[0].type: unknown listener type ""`}},
		{"bad address", Broker{Listeners: []Listener{{Name: "a", Type: "tcp", Address: "1883"}}},
			[]string{"broker.listeners[0].address: ", `"1883"`}},
		{"tls without cert", Broker{Listeners: []Listener{{Name: "a", Type: "tls", Address: "127.0.0.1:0"}}},
			[]string{"broker.listeners[0]: ", "needs cert_file and key_file"}},
		{"tcp with cert", Broker{Listeners: []Listener{{Name: "a", Type: "tcp", Address: "127.0.0.1:0", CertFile: "c"}}},
			[]string{"broker.listeners[0].type: ", "use type: tls"}},
		{"ws client CA without TLS", Broker{Listeners: []Listener{{Name: "a", Type: "websocket", Address: "127.0.0.1:0", ClientCAFile: "ca"}}},
			[]string{"broker.listeners[0].client_ca_file: ", "needs cert_file and key_file"}},
		{"origins on tcp", Broker{Listeners: []Listener{{Name: "a", Type: "tcp", Address: "127.0.0.1:0", AllowedOrigins: []string{"x"}}}},
			[]string{"broker.listeners[0].allowed_origins: ", "allowed_origins applies to websocket"}},
		{"negative max_clients", Broker{MaxClients: -1}, []string{"broker.max_clients: ", "got -1"}},
		{"too many max_clients", Broker{MaxClients: MaxClientsLimit + 1}, []string{"broker.max_clients: ", "1024 open files"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckBroker(c.cfg)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("CheckBroker = %T %v, want Errors", err, err)
			}
			wantErrors(t, errs, c.want...)
			if strings.Contains(err.Error(), hash) {
				t.Error("the error shows a password hash")
			}
		})
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "::": false, "192.168.1.10": false, "example.com": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestBridgeWithDefaults: Load's bridge defaults are WithDefaults', which
// leaves its receiver alone and changes nothing a second time.
func TestBridgeWithDefaults(t *testing.T) {
	y := minimal + `bridges:
  - name: cloud
    url: mqtts://cloud.example.com:8883
    profile: aws-iot
    routes: [{direction: out, filter: "gw1/#", batch: {topic: gw1/batch}}]
`
	f, errs := parse(t, y, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	hand := Bridge{Name: "cloud", URL: "mqtts://cloud.example.com:8883", Profile: "aws-iot",
		Routes: []Route{{Direction: "out", Filter: "gw1/#", Batch: &Batch{Topic: "gw1/batch"}}}}
	got := hand.WithDefaults()
	if !reflect.DeepEqual(got, f.Bridges[0]) {
		t.Errorf("WithDefaults:\n%+v\nLoad:\n%+v", got, f.Bridges[0])
	}
	if hand.Routes[0].QoS != nil || *hand.Routes[0].Batch != (Batch{Topic: "gw1/batch"}) || hand.Keepalive != 0 {
		t.Errorf("WithDefaults changed its receiver: %+v", hand)
	}
	if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
		t.Errorf("a second WithDefaults changed %+v into %+v", got, again)
	}
	b := got
	if b.Keepalive != DefaultKeepalive || b.Reconnect != (Reconnect{DefaultReconnectMin, DefaultReconnectMax}) ||
		b.Inflight != 100 || b.MaxRate != 90 || b.MaxPayload != 128_000 || b.ClientID != "{gateway}" ||
		*b.Routes[0].QoS != 1 || b.Routes[0].Batch.MaxBytes != min(DefaultBatchBytes, 128_000) || b.Buffer.Sync != "batch" {
		t.Errorf("defaults: %+v", b)
	}
}
