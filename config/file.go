package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is one gateway configuration as the YAML file gives it, with
// defaults filled in. Device entries stay Raw: each driver owns its schema.
type File struct {
	Gateway Gateway  `yaml:"gateway"`
	Log     Log      `yaml:"log"`
	HTTP    HTTP     `yaml:"http"`
	Broker  Broker   `yaml:"broker"`
	Publish Publish  `yaml:"publish"`
	Devices []Raw    `yaml:"devices"`
	Bridges []Bridge `yaml:"bridges"`

	// Path is the file the configuration came from.
	Path string `yaml:"-"`
	dec  *Decoder
}

// Decoder is the decoder that read the file; drivers decode their device
// entries with it and checks across sections report through it.
func (f *File) Decoder() *Decoder { return f.dec }

// Gateway identifies this gateway and where it keeps state.
type Gateway struct {
	ID      string `yaml:"id"`
	DataDir string `yaml:"data_dir"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// HTTP is the metrics, health and status endpoint; an empty address turns it off.
type HTTP struct {
	Address string `yaml:"address"`
}

// Broker configures the embedded MQTT broker.
type Broker struct {
	MaxClients     int        `yaml:"max_clients"`
	AllowAnonymous *bool      `yaml:"allow_anonymous"`
	Listeners      []Listener `yaml:"listeners"`
	Users          []User     `yaml:"users"`
}

// Anonymous reports whether anonymous clients may connect (on loopback listeners only).
func (b Broker) Anonymous() bool { return b.AllowAnonymous == nil || *b.AllowAnonymous }

// ClientLimit is max_clients, DefaultMaxClients when unset (0).
func (b Broker) ClientLimit() int { return cmp.Or(b.MaxClients, DefaultMaxClients) }

// Listener is one network endpoint of the broker.
type Listener struct {
	Name           string   `yaml:"name"`
	Type           string   `yaml:"type"` // tcp | tls | websocket
	Address        string   `yaml:"address"`
	CertFile       string   `yaml:"cert_file"`
	KeyFile        string   `yaml:"key_file"`
	ClientCAFile   string   `yaml:"client_ca_file"`
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// User is a broker account with its topic permissions.
type User struct {
	Username     string   `yaml:"username"`
	PasswordHash string   `yaml:"password_hash"`
	Publish      []string `yaml:"publish"`
	Subscribe    []string `yaml:"subscribe"`
}

// Publish holds the defaults for every point's messages.
type Publish struct {
	Topic  string `yaml:"topic"`
	Format string `yaml:"format"` // json | value
	QoS    *int   `yaml:"qos"`
	Retain *bool  `yaml:"retain"`
}

// Bridge is one uplink to a cloud broker.
type Bridge struct {
	Name              string        `yaml:"name"`
	URL               string        `yaml:"url"`
	ClientID          string        `yaml:"client_id"`
	Username          string        `yaml:"username"`
	Password          string        `yaml:"password"`
	PasswordFile      string        `yaml:"password_file"`
	InsecurePlaintext bool          `yaml:"insecure_plaintext"`
	Proxy             string        `yaml:"proxy"`
	TLS               TLS           `yaml:"tls"`
	Keepalive         time.Duration `yaml:"keepalive"`
	Reconnect         Reconnect     `yaml:"reconnect"`
	Profile           string        `yaml:"profile"`
	Inflight          int           `yaml:"inflight"`
	MaxRate           float64       `yaml:"max_rate"`
	MaxByteRate       Size          `yaml:"max_byte_rate"`
	MaxPayload        Size          `yaml:"max_payload"`
	StatusTopic       string        `yaml:"status_topic"`
	LocalUser         string        `yaml:"local_user"`
	BufferQoS0        *bool         `yaml:"buffer_qos0"`
	Routes            []Route       `yaml:"routes"`
	Buffer            Buffer        `yaml:"buffer"`
}

// Secret returns the bridge password from password or password_file. It
// reads the file, so it runs at start-up, not during validation.
func (b Bridge) Secret() (string, error) {
	if b.PasswordFile == "" {
		return b.Password, nil
	}
	data, err := os.ReadFile(b.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("bridge %s: password_file: %w", b.Name, err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// TLS holds the files for a TLS client connection.
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Reconnect bounds the exponential backoff between connection attempts.
type Reconnect struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// Route selects messages that cross a bridge.
type Route struct {
	Direction    string `yaml:"direction"` // out | in
	Filter       string `yaml:"filter"`
	QoS          *int   `yaml:"qos"`
	RemotePrefix string `yaml:"remote_prefix"`
	StripPrefix  string `yaml:"strip_prefix"`
	Batch        *Batch `yaml:"batch"`
}

// Batch packs an out-route's buffered messages into one MQTT message, a
// JSON array, when the bridge sends them.
type Batch struct {
	// Topic, when set, receives every batch of the route; otherwise each
	// remote topic gets its own batches.
	Topic       string        `yaml:"topic"`
	MaxMessages int           `yaml:"max_messages"`
	MaxBytes    Size          `yaml:"max_bytes"`
	MaxDelay    time.Duration `yaml:"max_delay"`
}

// Buffer bounds and tunes a bridge's store-and-forward log.
type Buffer struct {
	MaxBytes     Size          `yaml:"max_bytes"`
	MaxAge       time.Duration `yaml:"max_age"`
	WhenFull     string        `yaml:"when_full"` // drop_oldest | drop_newest
	Sync         string        `yaml:"sync"`      // batch | always | off
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// Defaults that the contract promises.
const (
	DefaultDataDir      = "/var/lib/fieldbridge"
	DefaultMaxClients   = 500
	DefaultTopic        = "{gateway}/{device}/{point}"
	DefaultMaxBytes     = Size(1 << 30)
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultInflight     = 100
	DefaultKeepalive    = 30 * time.Second
	DefaultReconnectMin = 200 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
	DefaultBatchCount   = 1000
	DefaultBatchBytes   = Size(128 << 10)
	DefaultBatchDelay   = time.Second
)

// Load reads, decodes and checks a configuration file. The error, when not
// nil, is an Errors listing every problem found in the top-level sections;
// device entries are left for their drivers.
func Load(path string, lookup func(string) (string, bool)) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, lookup)
}

// Parse is Load on bytes already read; path names them in errors.
func Parse(path string, data []byte, lookup func(string) (string, bool)) (*File, error) {
	return NewDecoder(path, lookup).parse(data)
}

// parse is Parse with the decoder given, so that a test can lower its limits.
func (d *Decoder) parse(data []byte) (*File, error) {
	path := d.file
	f := &File{Path: path, dec: d}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, &Error{Pos: Pos{File: path}, Msg: "the file is empty"})
			return f, d.Errors()
		}
		d.errs = append(d.errs, syntaxError(path, err))
		return f, d.Errors()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.fail(&extra, "", "the file holds more than one YAML document")
	}
	d.decode(&doc, "", reflectValue(f))
	f.applyDefaults()
	f.check()
	return f, d.Errors().Err()
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func syntaxError(path string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: path}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		pos.Column = 1
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	}
	return &Error{Pos: pos, Msg: "YAML syntax: " + msg}
}

func (f *File) applyDefaults() {
	if f.Gateway.DataDir == "" {
		f.Gateway.DataDir = DefaultDataDir
	}
	if f.Log.Level == "" {
		f.Log.Level = "info"
	}
	if f.Log.Format == "" {
		f.Log.Format = "text"
	}
	f.Broker.MaxClients = f.Broker.ClientLimit()
	if len(f.Broker.Listeners) == 0 && !f.dec.Has("broker.listeners") {
		f.Broker.Listeners = []Listener{{Name: "local", Type: "tcp", Address: "127.0.0.1:1883"}}
	}
	for i := range f.Broker.Listeners {
		l := &f.Broker.Listeners[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i)
		}
		if l.Type == "" {
			l.Type = "tcp"
		}
	}
	if f.Publish.Topic == "" {
		f.Publish.Topic = DefaultTopic
	}
	if f.Publish.Format == "" {
		f.Publish.Format = "json"
	}
	if f.Publish.QoS == nil {
		one := 1
		f.Publish.QoS = &one
	}
	if f.Publish.Retain == nil {
		yes := true
		f.Publish.Retain = &yes
	}
	for i := range f.Bridges {
		f.Bridges[i] = f.Bridges[i].WithDefaults()
	}
}

// ClientIDFor is the client id the bridge connects with, for gateway id
// gateway: client_id with {gateway} replaced.
func (b Bridge) ClientIDFor(gateway string) string {
	return strings.ReplaceAll(b.ClientID, "{gateway}", gateway)
}

// WithDefaults returns the bridge with every unset setting filled in as the
// contract promises: Load applies it to each bridge, and bridge.New to the
// configuration it is given. Values that are set, valid or not, are kept
// for the checks to judge. b itself is not changed: routes and their
// batches are copied before they are filled in.
func (b Bridge) WithDefaults() Bridge {
	if b.ClientID == "" {
		b.ClientID = "{gateway}"
	}
	if b.Keepalive == 0 {
		b.Keepalive = DefaultKeepalive
	}
	if b.Reconnect.Min == 0 {
		b.Reconnect.Min = DefaultReconnectMin
	}
	if b.Reconnect.Max == 0 {
		b.Reconnect.Max = DefaultReconnectMax
	}
	prof, _ := LookupProfile(b.Profile)
	if prof.Name == "" {
		prof, _ = LookupProfile("generic") // an unknown profile is reported by the checks
	}
	if b.Inflight == 0 {
		b.Inflight = prof.Inflight
	}
	if b.MaxRate == 0 {
		b.MaxRate = prof.Rate
	}
	if b.MaxByteRate == 0 {
		b.MaxByteRate = prof.ByteRate
	}
	if b.MaxPayload == 0 {
		b.MaxPayload = prof.Payload
	}
	if b.BufferQoS0 == nil {
		yes := true
		b.BufferQoS0 = &yes
	}
	b.Routes = slices.Clone(b.Routes)
	for j := range b.Routes {
		r := &b.Routes[j]
		if r.QoS == nil {
			one := 1
			r.QoS = &one
		}
		if r.Batch != nil {
			bt := *r.Batch
			if bt.MaxMessages == 0 {
				bt.MaxMessages = DefaultBatchCount
			}
			if bt.MaxBytes == 0 {
				bt.MaxBytes = min(DefaultBatchBytes, b.MaxPayload)
			}
			if bt.MaxDelay == 0 {
				bt.MaxDelay = DefaultBatchDelay
			}
			r.Batch = &bt
		}
	}
	bu := &b.Buffer
	if bu.MaxBytes == 0 {
		bu.MaxBytes = DefaultMaxBytes
	}
	if bu.WhenFull == "" {
		bu.WhenFull = "drop_oldest"
	}
	if bu.Sync == "" {
		bu.Sync = "batch"
	}
	if bu.SyncInterval == 0 {
		bu.SyncInterval = DefaultSyncInterval
	}
	return b
}
