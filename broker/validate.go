package broker

import (
	"github.com/fieldbridge/gateway/config"
)

// Listener types a config.Listener may name.
const (
	TypeTCP       = "tcp"
	TypeTLS       = "tls"
	TypeWebsocket = "websocket"
)

// authTables builds the auth hook's tables from a configuration that
// config.CheckBroker accepted: the checks live there, once, for both
// config.Load and New.
func authTables(cfg config.Broker) (map[string]*user, map[string]listenerSpec) {
	users := make(map[string]*user, len(cfg.Users))
	for _, u := range cfg.Users {
		users[u.Username] = &user{
			hash:      []byte(u.PasswordHash),
			publish:   append([]string(nil), u.Publish...),
			subscribe: append([]string(nil), u.Subscribe...),
		}
	}
	specs := make(map[string]listenerSpec, len(cfg.Listeners))
	for _, l := range cfg.Listeners {
		loopback := config.IsLoopback(l.Address)
		specs[l.Name] = listenerSpec{
			loopback:  loopback,
			mtls:      l.ClientCAFile != "",
			anonymous: loopback && cfg.Anonymous(),
		}
	}
	return users, specs
}
