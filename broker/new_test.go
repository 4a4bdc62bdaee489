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
	if e := contains(err.Error(), `listener "plant"`, "0.0.0.0:1883", "not a loopback address",
		"anonymous clients are accepted only on loopback", "broker.users", "client_ca_file"); e != nil {
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

func TestNewValidation(t *testing.T) {
	hash := fastHash(t, "pw")
	cases := []struct {
		name string
		cfg  config.Broker
		want []string
	}{
		{"bad hash", config.Broker{Users: []config.User{{Username: "u", PasswordHash: "secret"}}},
			[]string{`user "u"`, "not a bcrypt hash", "gateway passwd"}},
		{"bad filter", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash, Publish: []string{"a/#/b"}}}},
			[]string{`user "u"`, `publish filter "a/#/b"`}},
		{"bad subscribe filter", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash, Subscribe: []string{"a+"}}}},
			[]string{`subscribe filter "a+"`}},
		{"duplicate user", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash}, {Username: "u", PasswordHash: hash}}},
			[]string{`user "u" is configured twice`}},
		{"duplicate listener", config.Broker{Listeners: []config.Listener{tcpListener("a"), tcpListener("a")}},
			[]string{`listener name "a" is used twice`}},
		{"unknown type", config.Broker{Listeners: []config.Listener{{Name: "a", Type: "quic", Address: "127.0.0.1:1"}}},
			[]string{`listener "a"`, `type "quic"`}},
		{"bad address", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "1883"}}},
			[]string{`listener "a"`, `address "1883"`}},
		{"bad port", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:99999"}}},
			[]string{`port "99999"`}},
		{"tls without cert", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTLS, Address: "127.0.0.1:0"}}},
			[]string{"needs cert_file and key_file"}},
		{"tcp with cert", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:0", CertFile: "c"}}},
			[]string{"use type tls"}},
		{"wss half", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeWebsocket, Address: "127.0.0.1:0", CertFile: "c"}}},
			[]string{"both cert_file and key_file"}},
		{"origins on tcp", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTCP, Address: "127.0.0.1:0", AllowedOrigins: []string{"x"}}}},
			[]string{"allowed_origins applies to websocket"}},
		{"negative max_clients", config.Broker{MaxClients: -1}, []string{"max_clients"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, nil)
			if err == nil {
				t.Fatal("New succeeded")
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
	if !isBcrypt(dummyHash) {
		t.Error("dummyHash is not a bcrypt hash, so unknown users would be refused faster than known ones")
	}
	if cost, _ := bcrypt.Cost([]byte(dummyHash)); cost != PasswordCost {
		t.Errorf("dummyHash has cost %d, want %d", cost, PasswordCost)
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
