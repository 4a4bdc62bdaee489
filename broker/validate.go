package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/fieldbridge/gateway/config"
)

// Listener types a config.Listener may name.
const (
	TypeTCP       = "tcp"
	TypeTLS       = "tls"
	TypeWebsocket = "websocket"
)

// validate checks the broker configuration without touching the file
// system or the network, and builds the auth tables.
func validate(cfg config.Broker) (map[string]*user, map[string]listenerSpec, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf("broker: "+format, args...)) }

	if cfg.MaxClients < 0 {
		fail("max_clients must not be negative (got %d)", cfg.MaxClients)
	}

	users := make(map[string]*user, len(cfg.Users))
	for i, u := range cfg.Users {
		if u.Username == "" {
			fail("users[%d]: username is empty", i)
			continue
		}
		if _, dup := users[u.Username]; dup {
			fail("user %q is configured twice", u.Username)
			continue
		}
		if u.PasswordHash != "" && !isBcrypt(u.PasswordHash) {
			fail("user %q: password_hash is not a bcrypt hash (make one with `gateway passwd`)", u.Username)
		}
		for _, f := range u.Publish {
			if !validFilter(f) {
				fail("user %q: publish filter %q is not a valid MQTT topic filter", u.Username, f)
			}
		}
		for _, f := range u.Subscribe {
			if !validFilter(f) {
				fail("user %q: subscribe filter %q is not a valid MQTT topic filter", u.Username, f)
			}
		}
		users[u.Username] = &user{
			hash:      []byte(u.PasswordHash),
			publish:   append([]string(nil), u.Publish...),
			subscribe: append([]string(nil), u.Subscribe...),
		}
	}

	specs := make(map[string]listenerSpec, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		if l.Name == "" {
			fail("listeners[%d]: name is empty", i)
			continue
		}
		if _, dup := specs[l.Name]; dup {
			fail("listener name %q is used twice", l.Name)
			continue
		}
		where := fmt.Sprintf("listener %q", l.Name)
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			fail("%s: address %q is not host:port: %v", where, l.Address, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			fail("%s: address %q: port %q is not a number from 0 to 65535", where, l.Address, port)
		}
		switch l.Type {
		case TypeTCP:
			if l.CertFile != "" || l.KeyFile != "" || l.ClientCAFile != "" {
				fail("%s: a tcp listener is plaintext; use type tls for cert_file, key_file and client_ca_file", where)
			}
		case TypeTLS:
			if l.CertFile == "" || l.KeyFile == "" {
				fail("%s: a tls listener needs cert_file and key_file", where)
			}
		case TypeWebsocket:
			if (l.CertFile == "") != (l.KeyFile == "") {
				fail("%s: a websocket listener serves wss only with both cert_file and key_file", where)
			}
			if l.ClientCAFile != "" && l.CertFile == "" {
				fail("%s: client_ca_file needs cert_file and key_file (client certificates need TLS)", where)
			}
		default:
			fail("%s: type %q is not one of tcp, tls, websocket", where, l.Type)
		}
		if len(l.AllowedOrigins) > 0 && l.Type != TypeWebsocket {
			fail("%s: allowed_origins applies to websocket listeners only", where)
		}
		loopback := err == nil && config.IsLoopbackHost(host)
		if err == nil && !loopback && len(cfg.Users) == 0 && l.ClientCAFile == "" {
			fail("%s binds %s, which is not a loopback address, and nobody could log in on it: "+
				"anonymous clients are accepted only on loopback listeners. "+
				"Add broker.users (password_hash from `gateway passwd`), set client_ca_file on this listener "+
				"to accept client certificates, or bind it to 127.0.0.1", where, l.Address)
		}
		specs[l.Name] = listenerSpec{
			loopback:  loopback,
			mtls:      l.ClientCAFile != "",
			anonymous: loopback && cfg.Anonymous(),
		}
	}
	return users, specs, errors.Join(errs...)
}
