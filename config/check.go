package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/mappings"
	"golang.org/x/crypto/bcrypt"
)

// MaxClientsLimit keeps the broker's sockets, with the serial ports, buffer
// segments and HTTP connections, below the 1024 open files that the
// gateway's soft limit allows (go.bug.st/serial panics on descriptors ≥ 1024).
const MaxClientsLimit = 900

// IsLoopback reports whether a listen address binds only to the loopback
// interface. An empty host (":1883") binds everywhere.
func IsLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	return err == nil && isLoopbackHost(host)
}

// isLoopbackHost reports whether a host only accepts connections from this
// machine. A hostname other than localhost is taken as network facing: what
// it resolves to can change.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (f *File) check() {
	d := f.dec
	if f.Gateway.ID == "" {
		d.Errorf("gateway.id", "required: it names this gateway in topics and client ids")
	} else if err := checkLevel(f.Gateway.ID); err != nil {
		d.Errorf("gateway.id", "%v", err)
	} else if strings.HasPrefix(f.Gateway.ID, "$") {
		d.Errorf("gateway.id", "%q cannot start with '$': topics that start with '$' are reserved for brokers ($SYS), and a '#' subscription does not cover them", f.Gateway.ID)
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		d.Errorf("log.level", "unknown level %q (want debug, info, warn or error)", f.Log.Level)
	}
	switch f.Log.Format {
	case "text", "json":
	default:
		d.Errorf("log.format", "unknown format %q (want text or json)", f.Log.Format)
	}
	if f.HTTP.Address != "" {
		if _, _, err := net.SplitHostPort(f.HTTP.Address); err != nil {
			d.Errorf("http.address", "want host:port, got %q", f.HTTP.Address)
		}
	}
	f.checkBroker()
	if _, err := mappings.ParseTemplate(f.Publish.Topic); err != nil {
		d.Errorf("publish.topic", "%v", err)
	}
	if _, err := mappings.ParseFormat(f.Publish.Format); err != nil {
		d.Errorf("publish.format", "%v", err)
	}
	if q := *f.Publish.QoS; q < 0 || q > 2 {
		d.Errorf("publish.qos", "qos must be 0, 1 or 2, got %d", q)
	}
	f.checkBridges()
}

// checkLevel accepts a value used as one topic level.
func checkLevel(s string) error {
	if strings.ContainsAny(s, "/+#\x00") || strings.TrimSpace(s) != s {
		return fmt.Errorf("%q cannot be one topic level: no '/', '+', '#' or surrounding spaces", s)
	}
	return nil
}

// CheckBroker checks a broker section on its own, as Load does, and does no
// I/O. It is what broker.New refuses a configuration with, so a broker
// built without Load meets the same rules. MaxClients 0 stands for
// DefaultMaxClients; listener names and types are not filled in. The
// error, when not nil, is an Errors without file positions, each naming
// its key path (broker.listeners[1].address).
func CheckBroker(b Broker) error {
	var errs Errors
	checkBroker(b, func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	})
	return errs.Err()
}

func (f *File) checkBroker() { checkBroker(f.Broker, f.dec.Errorf) }

// checkBroker reports every problem of b through errorf, by key path.
func checkBroker(b Broker, errorf func(path, format string, args ...any)) {
	if n := b.ClientLimit(); n < 1 || n > MaxClientsLimit {
		errorf("broker.max_clients", "max_clients must be between 1 and %d (the gateway keeps below 1024 open files), got %d", MaxClientsLimit, n)
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, l := range b.Listeners {
		p := fmt.Sprintf("broker.listeners[%d]", i)
		switch {
		case l.Name == "":
			errorf(p+".name", "a listener needs a name")
		case names[l.Name]:
			errorf(p+".name", "listener name %q is used twice", l.Name)
		}
		names[l.Name] = true
		_, port, err := net.SplitHostPort(l.Address)
		n, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			errorf(p+".address", "want host:port such as 127.0.0.1:1883, got %q", l.Address)
		case perr != nil:
			errorf(p+".address", "port %q is not a number from 0 to 65535", port)
		case n != 0 && addrs[l.Address]:
			// Port 0 takes a free port at each bind, so it cannot collide.
			errorf(p+".address", "address %s is used by another listener", l.Address)
		}
		addrs[l.Address] = true
		switch l.Type {
		case "tcp":
			if l.CertFile != "" || l.KeyFile != "" || l.ClientCAFile != "" {
				errorf(p+".type", "a tcp listener takes no certificates: use type: tls")
			}
		case "tls":
			if l.CertFile == "" || l.KeyFile == "" {
				errorf(p, "a tls listener needs cert_file and key_file")
			}
		case "websocket":
			if (l.CertFile == "") != (l.KeyFile == "") {
				errorf(p, "a websocket listener with TLS needs both cert_file and key_file")
			}
			if l.ClientCAFile != "" && l.CertFile == "" {
				errorf(p+".client_ca_file", "client_ca_file needs cert_file and key_file")
			}
		default:
			errorf(p+".type", "unknown listener type %q (want tcp, tls or websocket)", l.Type)
		}
		if len(l.AllowedOrigins) > 0 && l.Type != "websocket" {
			errorf(p+".allowed_origins", "allowed_origins applies to websocket listeners only")
		}
		if !IsLoopback(l.Address) && len(b.Users) == 0 && l.ClientCAFile == "" {
			errorf(p+".address", "listener %q on %s is reachable from the network but the broker has no users and the listener no client_ca_file: anyone could read and write; bind it to 127.0.0.1 or configure broker.users or client_ca_file", l.Name, l.Address)
		}
	}
	mtls := false
	for _, l := range b.Listeners {
		mtls = mtls || l.ClientCAFile != ""
	}
	users := map[string]bool{}
	for i, u := range b.Users {
		p := fmt.Sprintf("broker.users[%d]", i)
		if u.Username == "" {
			errorf(p+".username", "a user needs a username")
		} else if users[u.Username] {
			errorf(p+".username", "user %q is defined twice", u.Username)
		}
		users[u.Username] = true
		if u.PasswordHash == "" {
			if !mtls {
				errorf(p, "user %q needs password_hash (a bcrypt hash: run `gateway passwd`), or a listener with client_ca_file for certificate login", u.Username)
			}
		} else if !isBcrypt(u.PasswordHash) {
			errorf(p+".password_hash", "not a bcrypt hash (run `gateway passwd` to make one)")
		}
		for j, t := range u.Publish {
			if err := mappings.ValidTopicFilter(t); err != nil {
				errorf(fmt.Sprintf("%s.publish[%d]", p, j), "%v", err)
			}
		}
		for j, t := range u.Subscribe {
			if err := mappings.ValidTopicFilter(t); err != nil {
				errorf(fmt.Sprintf("%s.subscribe[%d]", p, j), "%v", err)
			}
		}
	}
}

// isBcrypt reports whether hash is a bcrypt hash ($2a$, $2b$ or $2y$).
// bcrypt.Cost alone also parses "$1$..." strings of the right shape.
func isBcrypt(hash string) bool {
	_, err := bcrypt.Cost([]byte(hash))
	return err == nil && strings.HasPrefix(hash, "$2")
}

func (f *File) checkBridges() {
	d := f.dec
	names := map[string]bool{}
	users := map[string]bool{}
	for _, u := range f.Broker.Users {
		users[u.Username] = true
	}
	clients := map[string]string{} // broker host:port and client id: the bridge's path
	for i, b := range f.Bridges {
		p := fmt.Sprintf("bridges[%d]", i)
		f.checkClientID(p, b, f.checkBridgeURL(p, b), clients)
		if b.Name == "" {
			d.Errorf(p, "a bridge needs a name")
		} else if err := checkLevel(b.Name); err != nil || strings.ContainsAny(b.Name, " .") {
			d.Errorf(p+".name", "bridge name %q may hold only letters, digits, '_' and '-' (it names a folder in data_dir)", b.Name)
		} else if names[b.Name] {
			d.Errorf(p+".name", "bridge name %q is used twice", b.Name)
		}
		names[b.Name] = true
		if b.Proxy != "" {
			if _, err := ParseProxy(b.Proxy); err != nil {
				d.Errorf(p+".proxy", "%v", err)
			}
		}
		if b.Password != "" && b.PasswordFile != "" {
			d.Errorf(p+".password_file", "give password or password_file, not both")
		}
		if (b.TLS.CertFile == "") != (b.TLS.KeyFile == "") {
			d.Errorf(p+".tls", "a client certificate needs both cert_file and key_file")
		}
		if b.Keepalive < 0 || (b.Keepalive > 0 && b.Keepalive.Seconds() < 1) {
			d.Errorf(p+".keepalive", "keepalive must be at least 1s")
		}
		if b.Reconnect.Min <= 0 || b.Reconnect.Max < b.Reconnect.Min {
			d.Errorf(p+".reconnect", "reconnect needs 0 < min <= max, got min %s, max %s", b.Reconnect.Min, b.Reconnect.Max)
		}
		if b.Inflight < 1 || b.Inflight > 65535 {
			d.Errorf(p+".inflight", "inflight must be between 1 and 65535, got %d", b.Inflight)
		}
		if b.MaxRate < 0 {
			d.Errorf(p+".max_rate", "max_rate cannot be negative (0 means unlimited)")
		}
		if b.MaxByteRate < 0 {
			d.Errorf(p+".max_byte_rate", "max_byte_rate cannot be negative (0 means unlimited)")
		}
		if b.MaxPayload < 1 || b.MaxPayload > MaxPayloadLimit {
			d.Errorf(p+".max_payload", "max_payload must be between 1 and %d bytes, got %d", MaxPayloadLimit, b.MaxPayload)
		}
		prof, ok := LookupProfile(b.Profile)
		if !ok {
			d.Errorf(p+".profile", "unknown profile %q (want %s)", b.Profile, ProfileNames)
		} else {
			f.checkProfile(p, b, prof)
		}
		if b.StatusTopic != "" {
			if err := mappings.ValidTopicName(b.StatusTopic); err != nil {
				d.Errorf(p+".status_topic", "%v", err)
			}
		}
		if b.LocalUser != "" && !users[b.LocalUser] {
			d.Errorf(p+".local_user", "local_user %q is not one of broker.users", b.LocalUser)
		}
		if len(b.Routes) == 0 {
			d.Errorf(p, "a bridge needs at least one route")
		}
		for j, r := range b.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", p, j)
			if err := mappings.ValidTopicFilter(r.Filter); err != nil {
				d.Errorf(rp+".filter", "%v", err)
			}
			if q := *r.QoS; q < 0 || q > 2 {
				d.Errorf(rp+".qos", "qos must be 0, 1 or 2, got %d", q)
			}
			if r.Batch != nil && r.Direction != "out" {
				d.Errorf(rp+".batch", "batch applies to out-routes only")
			}
			switch r.Direction {
			case "out":
				if r.StripPrefix != "" {
					d.Errorf(rp+".strip_prefix", "strip_prefix applies to in-routes; out-routes take remote_prefix")
				}
				if strings.ContainsAny(r.RemotePrefix, "+#\x00") {
					d.Errorf(rp+".remote_prefix", "remote_prefix %q cannot hold '+', '#' or NUL", r.RemotePrefix)
				} else if r.RemotePrefix != "" && !strings.HasSuffix(r.RemotePrefix, "/") {
					d.Errorf(rp+".remote_prefix", "remote_prefix %q must end with '/' (it is put in front of each topic: %q)", r.RemotePrefix, r.RemotePrefix+"/")
				}
				if r.Batch != nil {
					f.checkBatch(rp+".batch", b, *r.Batch)
				}
			case "in":
				if r.RemotePrefix != "" {
					d.Errorf(rp+".remote_prefix", "remote_prefix applies to out-routes; in-routes take strip_prefix")
				}
				if r.StripPrefix != "" && !strings.HasPrefix(r.Filter, r.StripPrefix) {
					d.Errorf(rp+".strip_prefix", "strip_prefix %q is not a prefix of filter %q", r.StripPrefix, r.Filter)
				} else if r.StripPrefix != "" && !strings.HasSuffix(r.StripPrefix, "/") {
					d.Errorf(rp+".strip_prefix", "strip_prefix %q must end with '/' (it is cut from the front of each topic: %q)", r.StripPrefix, r.StripPrefix+"/")
				}
			default:
				d.Errorf(rp+".direction", "direction must be out or in, got %q", r.Direction)
			}
		}
		bu := b.Buffer
		switch bu.WhenFull {
		case "drop_oldest", "drop_newest":
		default:
			d.Errorf(p+".buffer.when_full", "when_full must be drop_oldest or drop_newest, got %q", bu.WhenFull)
		}
		switch bu.Sync {
		case "batch", "always", "off":
		default:
			d.Errorf(p+".buffer.sync", "sync must be batch, always or off, got %q", bu.Sync)
		}
		if bu.MaxBytes < 1<<20 {
			d.Errorf(p+".buffer.max_bytes", "max_bytes must be at least 1MiB, got %s", bu.MaxBytes)
		}
		if bu.MaxAge < 0 {
			d.Errorf(p+".buffer.max_age", "max_age cannot be negative (0 means unlimited)")
		}
		if bu.SyncInterval <= 0 {
			d.Errorf(p+".buffer.sync_interval", "sync_interval must be positive")
		}
	}
}

// checkBatch checks an out-route's batch settings.
func (f *File) checkBatch(p string, b Bridge, bt Batch) {
	d := f.dec
	if bt.MaxMessages < 1 || bt.MaxMessages > 100_000 {
		d.Errorf(p+".max_messages", "max_messages must be between 1 and 100000, got %d", bt.MaxMessages)
	}
	if bt.MaxBytes < 256 || bt.MaxBytes > b.MaxPayload {
		d.Errorf(p+".max_bytes", "max_bytes must be between 256 and the bridge's max_payload (%d), got %d", b.MaxPayload, bt.MaxBytes)
	}
	if bt.MaxDelay < 0 || bt.MaxDelay > time.Hour {
		d.Errorf(p+".max_delay", "max_delay must be between 0 and 1h, got %s", bt.MaxDelay)
	}
	if bt.Topic == "" {
		return
	}
	if err := mappings.ValidTopicName(bt.Topic); err != nil {
		d.Errorf(p+".topic", "%v", err)
		return
	}
	for _, r := range b.Routes {
		if r.Direction == "in" && mappings.ValidTopicFilter(r.Filter) == nil && mappings.MatchFilter(r.Filter, bt.Topic) {
			d.Errorf(p+".topic", "in-route %q subscribes to %q: the cloud would send every batch back", r.Filter, bt.Topic)
		}
	}
}

// clientPlaceholder finds a {placeholder} in a client_id.
var clientPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// checkClientID refuses a client_id with a placeholder other than
// {gateway}, and two bridges that would connect to the same broker with the
// same client id: the broker drops one whenever the other connects, and
// the two would take turns forever. u is the bridge's URL (nil when it
// does not parse); clients maps the broker and client id of the bridges
// before b to the first one's path.
func (f *File) checkClientID(p string, b Bridge, u *url.URL, clients map[string]string) {
	if m := clientPlaceholder.FindString(b.ClientIDFor("")); m != "" {
		f.dec.Errorf(p+".client_id", "unknown placeholder %s: client_id takes only {gateway}", m)
		return
	}
	if u == nil {
		return // the URL is reported
	}
	id := b.ClientIDFor(f.Gateway.ID)
	key := strings.ToLower(u.Hostname()) + ":" + u.Port() + " " + id
	if prev, dup := clients[key]; dup {
		f.dec.Errorf(p+".client_id", "%s connects to the same broker with the same client id %q: the broker would disconnect one whenever the other connects; give each bridge its own client_id, such as \"{gateway}-%s\"", prev, id, b.Name)
		return
	}
	clients[key] = p
}

// checkProfile refuses settings and topics that the bridge's cloud would
// reject. Topics of points are checked by the gateway, which knows them.
func (f *File) checkProfile(p string, b Bridge, prof Profile) {
	d := f.dec
	if prof.MaxRate > 0 && (b.MaxRate <= 0 || b.MaxRate > prof.MaxRate) {
		d.Errorf(p+".max_rate", "%s accepts at most %g messages/s per connection, max_rate is %g", prof.Name, prof.MaxRate, b.MaxRate)
	}
	if prof.MaxInflight > 0 && b.Inflight > prof.MaxInflight {
		d.Errorf(p+".inflight", "%s accepts at most %d messages in flight per connection, inflight is %d", prof.Name, prof.MaxInflight, b.Inflight)
	}
	if prof.MaxPayload > 0 && b.MaxPayload > prof.MaxPayload {
		d.Errorf(p+".max_payload", "%s accepts payloads of at most %d bytes, max_payload is %d", prof.Name, prof.MaxPayload, b.MaxPayload)
	}
	if prof.MaxByteRate > 0 && (b.MaxByteRate <= 0 || b.MaxByteRate > prof.MaxByteRate) {
		d.Errorf(p+".max_byte_rate", "%s accepts at most %d bytes/s per connection, max_byte_rate is %d", prof.Name, prof.MaxByteRate, b.MaxByteRate)
	}
	if prof.KeepaliveMin > 0 && (b.Keepalive < prof.KeepaliveMin || b.Keepalive > prof.KeepaliveMax) {
		d.Errorf(p+".keepalive", "%s accepts a keepalive between %s and %s, got %s", prof.Name, prof.KeepaliveMin, prof.KeepaliveMax, b.Keepalive)
	}
	if id := b.ClientIDFor(f.Gateway.ID); prof.ClientIDBytes > 0 && len(id) > prof.ClientIDBytes {
		d.Errorf(p+".client_id", "%s accepts client ids of at most %d bytes, %q has %d", prof.Name, prof.ClientIDBytes, id, len(id))
	}
	if b.StatusTopic != "" {
		if err := prof.CheckTopic(b.StatusTopic); err != nil {
			d.Errorf(p+".status_topic", "%v", err)
		}
	}
	var in int
	for j, r := range b.Routes {
		rp := fmt.Sprintf("%s.routes[%d]", p, j)
		if r.QoS != nil && *r.QoS > prof.MaxQoS {
			d.Errorf(rp+".qos", "%s accepts QoS up to %d, got %d", prof.Name, prof.MaxQoS, *r.QoS)
		}
		switch r.Direction {
		case "in":
			in++
			if err := prof.CheckTopic(r.Filter); err != nil {
				d.Errorf(rp+".filter", "%v", err)
			}
		case "out":
			if r.Batch != nil && r.Batch.Topic != "" {
				if err := prof.CheckTopic(r.Batch.Topic); err != nil {
					d.Errorf(rp+".batch.topic", "%v", err)
				}
				continue
			}
			// The remote topics under this route are at least this deep.
			base := strings.TrimSuffix(strings.TrimSuffix(r.RemotePrefix+r.Filter, "#"), "/")
			if err := prof.CheckTopic(base); err != nil {
				d.Errorf(rp+".filter", "with remote_prefix %q: %v", r.RemotePrefix, err)
			}
		}
	}
	if prof.Subscriptions > 0 && in > prof.Subscriptions {
		d.Errorf(p+".routes", "%s accepts at most %d subscriptions per connection, the bridge has %d in-routes", prof.Name, prof.Subscriptions, in)
	}
}

// checkBridgeURL checks a bridge's url and returns it parsed, nil when it
// has no usable host.
func (f *File) checkBridgeURL(p string, b Bridge) *url.URL {
	d := f.dec
	u, err := url.Parse(b.URL)
	if b.URL == "" || err != nil || u.Host == "" {
		// The value is not echoed: it may hold user:password@.
		d.Errorf(p+".url", "want a URL such as mqtts://broker.example.com:8883")
		return nil
	}
	switch u.Scheme {
	case "mqtts", "ssl", "tls", "wss":
		if b.InsecurePlaintext {
			d.Errorf(p+".insecure_plaintext", "insecure_plaintext applies to mqtt:// and ws:// URLs only")
		}
	case "mqtt", "tcp", "ws":
		if !IsLoopback(u.Host) && !b.InsecurePlaintext {
			d.Errorf(p+".url", "%s:// sends passwords and data in clear text over the network: use mqtts:// or wss://, or set insecure_plaintext: true", u.Scheme)
		}
		if b.TLS != (TLS{}) {
			d.Errorf(p+".tls", "tls settings need an mqtts:// or wss:// URL")
		}
	default:
		d.Errorf(p+".url", "unknown scheme %q (want mqtts, wss or mqtt)", u.Scheme)
	}
	if u.Port() == "" {
		d.Errorf(p+".url", "the URL needs a port, such as :8883")
	}
	return u
}

// ParseProxy parses a bridge's proxy: an HTTP proxy as
// http://[user:password@]host:port. An empty one is no proxy (nil). Its
// errors never quote the input, which may hold a password.
func ParseProxy(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("want an HTTP proxy as http://[user:password@]host:port")
	}
	return u, nil
}
