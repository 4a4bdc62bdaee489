package broker

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/config"
	"golang.org/x/crypto/bcrypt"
)

func TestNewRefusesOpenNetworkListener(t *testing.T) {
	cfg := config.Broker{Listeners: []config.Listener{
		{Name: "plant", Type: TypeTCP, Address: "0.0.0.0:1883"},
	}}
	_, err := New(cfg, nil)
	if err == nil {
		t.Fatal("New accepted a non-loopback listener with neither users nor client_ca_file")
	}
	if e := contains(err.Error(), "broker.listeners[0].address", `listener "plant"`, "0.0.0.0:1883",
		"reachable from the network", "broker.users", "client_ca_file"); e != nil {
		t.Error(e)
	}

	// Either way of logging in makes it acceptable.
	withUsers := cfg
	withUsers.Users = []config.User{{Username: "scada", PasswordHash: fastHash(t, "pw")}}
	if _, err := New(withUsers, nil); err != nil {
		t.Errorf("with users: %v", err)
	}
	withCA := config.Broker{Listeners: []config.Listener{
		{Name: "plant", Type: TypeTLS, Address: "[::]:8883", CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "ca.crt"},
	}}
	if _, err := New(withCA, nil); err != nil {
		t.Errorf("with client_ca_file: %v", err)
	}
}

// TestNewValidation: New refuses with config.CheckBroker's errors, which
// name the key path as config.Load's do.
func TestNewValidation(t *testing.T) {
	hash := fastHash(t, "pw")
	cases := []struct {
		name string
		cfg  config.Broker
		want []string
	}{
		{"bad hash", config.Broker{Users: []config.User{{Username: "u", PasswordHash: "secret"}}},
			[]string{"broker.users[0].password_hash: not a bcrypt hash", "gateway passwd"}},
		{"not bcrypt", config.Broker{Users: []config.User{{Username: "u", PasswordHash: "$1" + hash[2:]}}},
			[]string{"broker.users[0].password_hash: not a bcrypt hash"}},
		{"no password_hash without client CA", config.Broker{Users: []config.User{{Username: "u"}}},
			[]string{"broker.users[0]: ", `user "u" needs password_hash`, "client_ca_file"}},
		{"bad filter", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash, Publish: []string{"a/#/b"}}}},
			[]string{"broker.users[0].publish[0]: ", `"a/#/b"`}},
		{"bad subscribe filter", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash, Subscribe: []string{"a+"}}}},
			[]string{"broker.users[0].subscribe[0]: ", `"a+"`}},
		{"empty username", config.Broker{Users: []config.User{{PasswordHash: hash}}},
			[]string{"broker.users[0].username: a user needs a username"}},
		{"duplicate user", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash}, {Username: "u", PasswordHash: hash}}},
			[]string{`broker.users[1].username: user "u" is defined twice`}},
		{"empty listener name", config.Broker{Listeners: []config.Listener{{Type: TypeTCP, Address: "127.0.0.1:0"}}},
			[]string{"broker.listeners[0].name: a listener needs a name"}},
		{"duplicate listener", config.Broker{Listeners: []config.Listener{tcpListener("a"), tcpListener("a")}},
			[]string{`broker.listeners[1].name: listener name "a" is used twice`}},
		{"duplicate address", config.Broker{Listeners: []config.Listener{
			{Name: "a", Type: TypeTCP, Address: "127.0.0.1:1883"}, {Name: "b", Type: TypeWebsocket, Address: "127.0.0.1:1883"}}},
			[]string{"broker.listeners[1].address: address 127.0.0.1:1883 is used by another listener"}},
		{"unknown type", config.Broker{Listeners: []config.Listener{{Name: "a", Type: "quic", Address: "127.0.0.1:1"}}},
			[]string{`broker.listeners[0].type: unknown listener type "quic"`}},
		{"empty type", config.Broker{Listeners: []config.Listener{{Name: "a", Address: "127.0.0.1:1"}}},
			[]string{`broker.listeners[0].type: unknown listener type ""`}},
		{"bad address", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "1883"}}},
			[]string{"broker.listeners[0].address: ", `"1883"`}},
		{"bad port", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:99999"}}},
			[]string{"broker.listeners[0].address: ", `port "99999"`}},
		{"tls without cert", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTLS, Address: "127.0.0.1:0"}}},
			[]string{"broker.listeners[0]: ", "needs cert_file and key_file"}},
		{"tcp with cert", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:0", CertFile: "c"}}},
			[]string{"broker.listeners[0].type: ", "use type: tls"}},
		{"wss half", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeWebsocket, Address: "127.0.0.1:0", CertFile: "c"}}},
			[]string{"broker.listeners[0]: ", "both cert_file and key_file"}},
		{"ws client CA without TLS", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeWebsocket, Address: "127.0.0.1:0", ClientCAFile: "ca"}}},
			[]string{"broker.listeners[0].client_ca_file: ", "needs cert_file and key_file"}},
		{"origins on tcp", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:0", AllowedOrigins: []string{"x"}}}},
			[]string{"broker.listeners[0].allowed_origins: ", "allowed_origins applies to websocket"}},
		{"negative max_clients", config.Broker{MaxClients: -1}, []string{"broker.max_clients: ", "got -1"}},
		{"too many max_clients", config.Broker{MaxClients: config.MaxClientsLimit + 1}, []string{"broker.max_clients: ", "1024 open files"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Errorf("error is %T, want config.Errors", err)
			}
			if e := contains(err.Error(), c.want...); e != nil {
				t.Error(e)
			}
			if strings.Contains(err.Error(), hash) {
				t.Error("the error shows a password hash")
			}
		})
	}
}

// Listeners on port 0 take a free port each, so they share an address.
func TestNewPortZeroListeners(t *testing.T) {
	if _, err := New(config.Broker{Listeners: []config.Listener{tcpListener("a"), tcpListener("b")}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "::": false, "192.168.1.10": false, "example.com": false,
	} {
		if got := config.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$10$") {
		t.Errorf("hash %q is not bcrypt cost 10", h)
	}
	if err := CheckHash(h, []byte("correct horse")); err != nil {
		t.Errorf("CheckHash(right password) = %v", err)
	}
	if err := CheckHash(h, []byte("wrong")); !errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("CheckHash(wrong password) = %v, want ErrPasswordMismatch", err)
	}
	if err := CheckHash("not a hash", []byte("x")); err == nil || errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("CheckHash(malformed hash) = %v", err)
	}
	// htpasswd -B writes $2y$, other tools $2b$: the same algorithm.
	for _, v := range []string{"$2b$", "$2y$"} {
		if err := CheckHash(v+h[4:], []byte("correct horse")); err != nil {
			t.Errorf("CheckHash(%s hash) = %v", v, err)
		}
	}
	if _, err := HashPassword(nil); err == nil {
		t.Error("HashPassword accepted an empty password")
	}
	if _, err := HashPassword([]byte(strings.Repeat("x", 73))); err == nil {
		t.Error("HashPassword accepted a password bcrypt would truncate")
	}
	// A dummy hash that is not bcrypt at the same cost would refuse
	// unknown users faster than known ones.
	if cost, err := bcrypt.Cost([]byte(dummyHash)); err != nil || cost != PasswordCost {
		t.Errorf("dummyHash has cost %d (%v), want %d", cost, err, PasswordCost)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cfg := config.Broker{Listeners: []config.Listener{
		tcpListener("first"),
		{Name: "second", Type: TypeTCP, Address: busy.Addr().String()},
	}}
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded on a port in use")
	}
	if e := contains(err.Error(), `listener "second"`, busy.Addr().String(), "already in use"); e != nil {
		t.Error(e)
	}
	if b.Addr("first") != nil {
		t.Error("a listener of a failed start has an address")
	}
	if err := b.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	for i := 0; i < 2; i++ {
		if err := b.Close(); err != nil {
			t.Errorf("Close #%d after a failed start: %v", i+1, err)
		}
	}
	if err := b.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := b.Publish("a", nil, false, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}

	missing := config.Broker{Listeners: []config.Listener{
		{Name: "secure", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: "/nonexistent/s.crt", KeyFile: "/nonexistent/s.key"},
	}}
	b, err = New(missing, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded without certificate files")
	}
	if e := contains(err.Error(), `listener "secure"`, "/nonexistent/s.crt"); e != nil {
		t.Error(e)
	}
}

func TestCloseWithoutStart(t *testing.T) {
	b, err := New(config.Broker{Listeners: []config.Listener{tcpListener("local")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
