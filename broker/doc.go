// Package broker is the gateway's embedded MQTT broker: mochi-mqtt v2
// behind this package's listeners, authentication and ACLs.
//
// # Lifecycle
//
// New validates a config.Broker without I/O; Start reads certificates,
// binds every listener (Addr reports the real port of a ":0" address) and
// serves; Close ends everything and may be called at any point, twice.
//
// # Listeners
//
// tcp, tls and websocket (ws, or wss with a certificate; paths / and
// /mqtt). They are this package's own implementations of mochi's
// listeners.Listener, because mochi's bind late, accept any websocket
// Origin and stop on the first Accept error. All sockets count against
// max_clients (plus a small headroom, so that clients over the limit get a
// CONNACK "server unavailable" from mochi rather than a reset), and a
// socket that has not completed its CONNECT within 10 s is closed.
//
// # Who may connect, and do what
//
//   - A client with a verified certificate on a listener with
//     client_ca_file is the user named by the certificate's CN, without a
//     password. With no users configured, any certificate from the CA has
//     full rights.
//   - A client with a username must give that user's password, checked
//     against the bcrypt password_hash (HashPassword makes one).
//   - A client without either is anonymous: accepted only on a loopback
//     listener and only with allow_anonymous, with full rights there.
//   - A user may publish to topics matched by its publish filters, and
//     subscribe to filters covered by its subscribe filters (`plant/#`
//     covers `plant/+/x`); every delivery is checked again. A client's
//     will message is checked at CONNECT: mochi publishes wills unchecked.
//
// New refuses a listener that is not on loopback when nobody could log in
// on it (no users and no client_ca_file).
//
// # Inline API
//
// Publish, PublishAs, Subscribe and Unsubscribe let the rest of the gateway
// use the broker without a network client; AddHook adds mochi hooks (for
// example one that stores a message before its PUBACK); Allowed applies a
// user's publish ACL for an inline publisher acting on its behalf. Inline
// publishes bypass ACLs and are QoS 0 inside mochi; inline handlers run in
// the publisher's goroutine and must not block.
package broker
