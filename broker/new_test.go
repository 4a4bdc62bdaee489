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

// TestNewRefusesOpenNetworkListener: the security rule holds for a broker
// built without config.Load.
func TestNewRefusesOpenNetworkListener(t *testing.T) {
	cfg := config.Broker{Listeners: []config.Listener{
		{Name: "plant", Type: TypeTCP, Address: "0.0.0.0:1883"},
	}}
	_, err := New(cfg, nil)
	if err == nil {
		t.Fatal("New accepted a non-loopback listener with neither users nor client_ca_file")
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Errorf("error is %T, want config.Errors", err)
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
// name the key path as config.Load's do. The messages themselves are
// config's to test.
func TestNewValidation(t *testing.T) {
	hash := fastHash(t, "pw")
	cases := []struct {
		name string
		cfg  config.Broker
		want string
	}{
		{"user", config.Broker{Users: []config.User{{Username: "u", PasswordHash: hash, Publish: []string{"a/#/b"}}}},
			"broker.users[0].publish[0]: "},
		{"listener", config.Broker{Listeners: []config.Listener{{Name: "a", Type: TypeTLS, Address: "127.0.0.1:0"}}},
			"broker.listeners[0]: "},
		{"max_clients", config.Broker{MaxClients: config.MaxClientsLimit + 1}, "broker.max_clients: "},
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
			if e := contains(err.Error(), c.want); e != nil {
				t.Error(e)
			}
			if want := config.CheckBroker(c.cfg); want == nil || err.Error() != want.Error() {
				t.Errorf("New: %v\nCheckBroker: %v", err, want)
			}
			if strings.Contains(err.Error(), hash) {
				t.Error("the error shows a password hash")
			}
		})
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
