package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/fieldbridge/gateway/internal/wsconn"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt cost HashPassword uses.
const PasswordCost = 10

// ErrPasswordMismatch is returned by CheckHash when the password does not
// match the hash.
var ErrPasswordMismatch = errors.New("broker: password does not match")

// HashPassword returns the bcrypt hash (cost PasswordCost) to put in a
// user's password_hash. bcrypt reads at most 72 bytes, so longer passwords
// are refused rather than silently truncated.
func HashPassword(password []byte) (string, error) {
	if len(password) == 0 {
		return "", errors.New("broker: empty password")
	}
	h, err := bcrypt.GenerateFromPassword(password, PasswordCost)
	if err != nil {
		return "", fmt.Errorf("broker: hashing password: %w", err)
	}
	return string(h), nil
}

// CheckHash compares a password with a bcrypt hash in constant time. It
// returns nil on a match, ErrPasswordMismatch on a mismatch, and another
// error when the hash is malformed.
func CheckHash(hash string, password []byte) error {
	err := bcrypt.CompareHashAndPassword([]byte(hash), password)
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return ErrPasswordMismatch
	}
	if err != nil {
		return fmt.Errorf("broker: checking password: %w", err)
	}
	return nil
}

// dummyHash is compared against when a username is unknown, so that the
// time a refusal takes does not tell which usernames exist. It is the hash
// of a random password nobody knows, at PasswordCost.
const dummyHash = "$2a$10$VDpSn33tvJ8lQVcH45nxAumx3LQQqG7sxK67qIIrJYWU5JWQYW/1."

// user is a configured account with its ACL.
type user struct {
	hash      []byte // empty: the account logs in with a client certificate only
	publish   []string
	subscribe []string
}

// listenerSpec is what the auth hook knows about a listener, looked up by
// the listener name mochi stores in each client.
type listenerSpec struct {
	loopback  bool
	mtls      bool
	anonymous bool // loopback and allow_anonymous
}

// authHook authenticates CONNECTs and enforces the ACLs. Its tables are
// built in New and never change, so the hot path (an ACL check for every
// delivery) takes no lock.
type authHook struct {
	mqtt.HookBase
	log       *slog.Logger
	server    *mqtt.Server
	users     map[string]*user
	listeners map[string]listenerSpec
	allowAnon bool

	clients    atomic.Int64 // admitted clients whose connection is open
	maxClients int64
}

// ID names the hook in mochi's logs.
func (h *authHook) ID() string { return "fieldbridge-auth" }

// Provides tells mochi which callbacks the hook implements.
func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// refusal is a CONNACK refusal with the reason kept for the log.
type refusal struct {
	v5     packets.Code // the MQTT 5 reason code
	v3     packets.Code // the MQTT 3.1/3.1.1 return code
	reason string
}

// Error is the reason, as logged.
func (r *refusal) Error() string { return r.reason }

func badCredentials(format string, args ...any) *refusal {
	// mochi maps its v5 "bad username or password" to the v3 "not
	// authorized" code; v3 clients get 4 here, which is what it means.
	return &refusal{v5: packets.ErrBadUsernameOrPassword, v3: packets.ErrMalformedUsernameOrPassword, reason: fmt.Sprintf(format, args...)}
}

func notAuthorized(format string, args ...any) *refusal {
	return &refusal{v5: packets.ErrNotAuthorized, v3: packets.Err3NotAuthorized, reason: fmt.Sprintf(format, args...)}
}

// reservedClientID reports whether id belongs to the broker's own inline
// clients. A network client taking one of these ids would take over the
// inline session (mochi keys sessions by client id) and its messages would
// pass for the gateway's own.
func reservedClientID(id string) bool {
	return id == mqtt.InlineClientId || strings.HasPrefix(id, inlineOriginPrefix)
}

// OnConnect authenticates the client and refuses it with the right CONNACK
// code. The decision is taken here rather than in OnConnectAuthenticate
// because mochi answers a failed OnConnectAuthenticate with "not
// authorized" for MQTT 3 clients whatever the cause.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	r := h.authenticate(cl, pk)
	if r == nil {
		r = h.admit(cl)
	}
	if r == nil {
		h.log.Debug("broker: client connected", "listener", cl.Net.Listener, "remote", cl.Net.Remote,
			"client", cl.ID, "username", string(cl.Properties.Username))
		return nil
	}
	code := r.v5
	if cl.Properties.ProtocolVersion < 5 {
		code = r.v3
	}
	h.log.Warn("broker: connection refused", "listener", cl.Net.Listener, "remote", cl.Net.Remote,
		"client", cl.ID, "username", string(pk.Connect.Username), "reason", r.reason)
	if err := h.server.SendConnack(cl, code, false, nil); err != nil {
		return fmt.Errorf("%w (sending CONNACK: %v)", r, err)
	}
	return r
}

// authenticate returns nil when the client may connect. On success it
// leaves the identity in cl.Properties.Username, where the ACL check finds
// it: the certificate CN for a client certificate, the CONNECT username
// otherwise, empty for anonymous clients.
func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) *refusal {
	spec, ok := h.listeners[cl.Net.Listener]
	if !ok {
		return notAuthorized("unknown listener %q", cl.Net.Listener)
	}
	if reservedClientID(cl.ID) {
		return &refusal{v5: packets.ErrClientIdentifierNotValid, v3: packets.Err3ClientIdentifierNotValid,
			reason: fmt.Sprintf("client id %q is reserved for the gateway", cl.ID)}
	}
	name := string(pk.Connect.Username)
	switch cn, hasCert := verifiedCN(cl.Net.Conn); {
	case spec.mtls && hasCert:
		if cn == "" {
			return notAuthorized("client certificate has an empty subject CN")
		}
		if name != "" && name != cn {
			return badCredentials("username %q differs from the client certificate CN %q", name, cn)
		}
		if _, ok := h.users[cn]; !ok && len(h.users) > 0 {
			return notAuthorized("client certificate CN %q is not a configured user", cn)
		}
		cl.Properties.Username = []byte(cn)
	case name != "":
		u, known := h.users[name]
		hash := []byte(dummyHash)
		if known && len(u.hash) > 0 {
			hash = u.hash
		}
		// Always run bcrypt, also for unknown users, so timing does not
		// reveal which usernames exist.
		err := bcrypt.CompareHashAndPassword(hash, pk.Connect.Password)
		if !known || len(u.hash) == 0 || err != nil {
			return badCredentials("bad username or password")
		}
	default:
		if !spec.loopback {
			return notAuthorized("anonymous clients are accepted only on loopback listeners")
		}
		if !h.allowAnon {
			return notAuthorized("anonymous clients are not allowed (broker.allow_anonymous is false)")
		}
	}
	if pk.Connect.WillFlag && !h.OnACLCheck(cl, pk.Connect.WillTopic, true) {
		// mochi publishes a will without an ACL check, so a will is an
		// unchecked publish unless it is checked here.
		return notAuthorized("not allowed to publish its will message to %q", pk.Connect.WillTopic)
	}
	return nil
}

// admit takes a client slot (max_clients) for an authenticated client.
// Counting after authentication keeps refused clients from holding slots.
func (h *authHook) admit(cl *mqtt.Client) *refusal {
	tc := trackedOf(cl.Net.Conn)
	if tc == nil {
		return notAuthorized("connection did not come through a broker listener")
	}
	if !tc.holdClientSlot(&h.clients, h.maxClients) {
		return &refusal{v5: packets.ErrServerBusy, v3: packets.Err3ServerUnavailable,
			reason: fmt.Sprintf("max_clients (%d) reached", h.maxClients)}
	}
	return nil
}

// OnConnectAuthenticate admits every client that OnConnect let through;
// mochi refuses all connections unless some hook returns true here.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return true
}

// OnACLCheck decides a PUBLISH (write) by matching the topic against the
// user's publish filters, and a SUBSCRIBE or a delivery (read) by checking
// that the filter or topic is covered by one of the subscribe filters.
// mochi checks reads again at every delivery, so a session taken over by
// another user never receives more than that user may see.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	spec, ok := h.listeners[cl.Net.Listener]
	if !ok {
		return false
	}
	name := cl.Properties.Username
	if len(name) == 0 {
		return spec.anonymous
	}
	u, ok := h.users[string(name)]
	if !ok {
		// Only a client certificate can get here with a name that is not
		// a user: with no users configured, the CA is the only gate.
		return spec.mtls && len(h.users) == 0
	}
	if write {
		return anyMatch(u.publish, topic)
	}
	return anyCovers(u.subscribe, stripShare(topic))
}

// allowedPublish is the publish ACL for a configured user.
func (h *authHook) allowedPublish(name, topic string) bool {
	u, ok := h.users[name]
	return ok && validTopic(topic) && anyMatch(u.publish, topic)
}

func anyMatch(filters []string, topic string) bool {
	for _, f := range filters {
		if matchTopic(f, topic) {
			return true
		}
	}
	return false
}

func anyCovers(filters []string, filter string) bool {
	for _, f := range filters {
		if covers(f, filter) {
			return true
		}
	}
	return false
}

// verifiedCN returns the subject CN of a verified client certificate on c.
func verifiedCN(c net.Conn) (string, bool) {
	st := tlsState(c)
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return "", false
	}
	return st.PeerCertificates[0].Subject.CommonName, true
}

// tlsState finds the TLS connection under the wrappers this package puts
// around accepted connections.
func tlsState(c net.Conn) *tls.ConnectionState {
	for {
		switch cc := c.(type) {
		case *tls.Conn:
			st := cc.ConnectionState()
			return &st
		case *wsconn.Conn:
			c = cc.NetConn()
		case *trackedConn:
			c = cc.Conn
		default:
			return nil
		}
	}
}
