package broker

import (
	"errors"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/fieldbridge/gateway/broker/brokertest"
	"github.com/fieldbridge/gateway/config"
)

func TestAnonymousOnLoopback(t *testing.T) {
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{tcpListener("local")}})
	sub := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))
	msgs := mustSubscribe(t, sub, "#")
	pub := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))
	mustPublish(t, pub, "plant/boiler/temp", 1, false, "21.5")
	expect(t, msgs, "plant/boiler/temp", "21.5")
	if n := b.Clients(); n != 2 {
		t.Errorf("Clients() = %d, want 2", n)
	}
}

func TestAnonymousRefused(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, _ := startBroker(t, config.Broker{
		AllowAnonymous: boolPtr(false),
		Users:          []config.User{{Username: "scada", PasswordHash: fastHash(t, "s3cret"), Publish: []string{"#"}, Subscribe: []string{"#"}}},
		Listeners: []config.Listener{
			tcpListener("local"),
			{Name: "secure", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile},
		},
	})
	tcp := clientOpts(brokerURL(t, b, "tcp", "local"))
	if _, err := connect(t, tcp); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("anonymous over TCP: %v, want %v", err, packets.ErrorRefusedNotAuthorised)
	}
	tlsOpts := clientOpts(brokerURL(t, b, "ssl", "secure")).SetTLSConfig(pki.ClientTLS(t, "", ""))
	if _, err := connect(t, tlsOpts); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("anonymous over TLS: %v, want %v", err, packets.ErrorRefusedNotAuthorised)
	}
	// The same listeners take the configured user.
	mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")).SetUsername("scada").SetPassword("s3cret"))
	mustConnect(t, clientOpts(brokerURL(t, b, "ssl", "secure")).SetTLSConfig(pki.ClientTLS(t, "", "")).
		SetUsername("scada").SetPassword("s3cret"))
}

func TestAnonymousRefusedOffLoopback(t *testing.T) {
	// Bound to every address, reached over loopback: the listener is not a
	// loopback listener, so anonymous clients are refused even from here.
	b, _ := startBroker(t, config.Broker{
		Users:     []config.User{{Username: "scada", PasswordHash: fastHash(t, "pw")}},
		Listeners: []config.Listener{{Name: "plant", Type: TypeTCP, Address: "0.0.0.0:0"}},
	})
	_, port, _ := strings.Cut(b.Addr("plant").String(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(b.Addr("plant").String(), ":")
	}
	if _, err := connect(t, clientOpts("tcp://127.0.0.1:"+port)); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("anonymous on a non-loopback listener: %v, want %v", err, packets.ErrorRefusedNotAuthorised)
	}
}

func TestPasswords(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, tl := startBroker(t, config.Broker{
		Users: []config.User{
			{Username: "scada", PasswordHash: fastHash(t, "s3cret-pw")},
			{Username: "certonly"},
		},
		Listeners: []config.Listener{
			tcpListener("local"),
			// A user without password_hash needs a listener that takes certificates.
			{Name: "plant", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile},
		},
	})
	u := brokerURL(t, b, "tcp", "local")
	mustConnect(t, clientOpts(u).SetUsername("scada").SetPassword("s3cret-pw"))
	for _, c := range []struct{ user, password string }{
		{"scada", "wrong-guess"},
		{"scada", ""},
		{"nobody", "s3cret-pw"},
		{"certonly", "anything"}, // no password_hash: a certificate is the only way in
	} {
		_, err := connect(t, clientOpts(u).SetUsername(c.user).SetPassword(c.password))
		if !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Errorf("%s/%q: %v, want %v", c.user, c.password, err, packets.ErrorRefusedBadUsernameOrPassword)
		}
	}
	log := tl.String()
	if !strings.Contains(log, "connection refused") {
		t.Error("refused connections are not logged")
	}
	for _, pw := range []string{"s3cret-pw", "wrong-guess"} {
		if strings.Contains(log, pw) {
			t.Errorf("the log shows the password %q", pw)
		}
	}
}

func TestPublishACL(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		Users: []config.User{
			{Username: "writer", PasswordHash: fastHash(t, "pw"), Publish: []string{"plant/+/+/set", "open/#"}},
			{Username: "reader", PasswordHash: fastHash(t, "pw"), Publish: []string{"open/#"}},
		},
		Listeners: []config.Listener{tcpListener("local")},
	})
	u := brokerURL(t, b, "tcp", "local")
	watcher := mustConnect(t, clientOpts(u))
	msgs := mustSubscribe(t, watcher, "#")

	reader := mustConnect(t, clientOpts(u).SetUsername("reader").SetPassword("pw"))
	mustPublish(t, reader, "plant/boiler/setpoint/set", 0, false, "90")
	// One connection's messages are delivered in order: when the marker
	// arrives, the refused message would have arrived before it.
	mustPublish(t, reader, "open/marker", 0, false, "1")
	expect(t, msgs, "open/marker", "1")

	writer := mustConnect(t, clientOpts(u).SetUsername("writer").SetPassword("pw"))
	mustPublish(t, writer, "plant/boiler/setpoint/set", 1, false, "80")
	expect(t, msgs, "plant/boiler/setpoint/set", "80")
	if !b.Allowed("writer", "plant/boiler/setpoint/set") || b.Allowed("reader", "plant/boiler/setpoint/set") ||
		b.Allowed("nobody", "open/x") || b.Allowed("writer", "plant/+/x/set") {
		t.Error("Allowed disagrees with the publish ACL")
	}

	// MQTT 3.1.1 has no negative PUBACK: a refused QoS 1 publish ends the
	// connection, and nothing is delivered.
	lost := make(chan struct{})
	reader2 := mustConnect(t, clientOpts(u).SetUsername("reader").SetPassword("pw").
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
	reader2.Publish("plant/boiler/setpoint/set", 1, false, "99")
	select {
	case <-lost:
	case m := <-msgs:
		t.Fatalf("refused publish delivered: %+v", m)
	case <-timeAfterWait():
		t.Fatal("a refused QoS 1 publish did not end the connection")
	}
	mustPublish(t, writer, "open/marker", 1, false, "2")
	expect(t, msgs, "open/marker", "2")
}

func TestSubscribeACL(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		Users: []config.User{
			{Username: "wide", PasswordHash: fastHash(t, "pw"), Subscribe: []string{"plant/#"}},
			{Username: "narrow", PasswordHash: fastHash(t, "pw"), Subscribe: []string{"plant/+"}},
		},
		Listeners: []config.Listener{tcpListener("local")},
	})
	u := brokerURL(t, b, "tcp", "local")
	wide := mustConnect(t, clientOpts(u).SetUsername("wide").SetPassword("pw"))
	narrow := mustConnect(t, clientOpts(u).SetUsername("narrow").SetPassword("pw"))
	for _, c := range []struct {
		user   string
		c      paho.Client
		filter string
		ok     bool
	}{
		{"wide", wide, "plant/+/x", true},
		{"wide", wide, "plant/#", true},
		{"wide", wide, "other/#", false},
		{"wide", wide, "#", false},
		{"wide", wide, "$SYS/#", false},
		{"wide", wide, "$share/g/plant/a", true},
		{"wide", wide, "$share/g/other/a", false},
		{"narrow", narrow, "plant/a", true},
		{"narrow", narrow, "plant/+", true},
		{"narrow", narrow, "plant/#", false},
	} {
		code, _ := subscribe(t, c.c, c.filter)
		if got := code <= 2; got != c.ok {
			t.Errorf("%s subscribing to %q: SUBACK %#x", c.user, c.filter, code)
		}
	}

	// A granted wildcard still delivers only what the user may read.
	msgs := mustSubscribe(t, narrow, "plant/+")
	pub := mustConnect(t, clientOpts(u))
	mustPublish(t, pub, "plant/a", 1, false, "ok")
	expect(t, msgs, "plant/a", "ok")
}

func TestClientCertificate(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, _ := startBroker(t, config.Broker{
		Users: []config.User{
			{Username: brokertest.ClientCN, Publish: []string{"plant/+/+/set"}, Subscribe: []string{"plant/#"}},
			{Username: "other", PasswordHash: fastHash(t, "pw")},
		},
		Listeners: []config.Listener{
			tcpListener("local"),
			{Name: "plant", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile},
		},
	})
	watcher := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "local")))
	msgs := mustSubscribe(t, watcher, "#")

	mtls := brokerURL(t, b, "ssl", "plant")
	scada := mustConnect(t, clientOpts(mtls).SetTLSConfig(pki.ClientTLS(t, pki.ClientCertFile, pki.ClientKeyFile)))
	mustPublish(t, scada, "plant/boiler/setpoint/set", 0, false, "denied-first")
	mustPublish(t, scada, "secret/x", 0, false, "denied")
	mustPublish(t, scada, "plant/boiler/setpoint/set", 1, false, "70")
	expect(t, msgs, "plant/boiler/setpoint/set", "denied-first")
	expect(t, msgs, "plant/boiler/setpoint/set", "70")
	if code, _ := subscribe(t, scada, "plant/+/temp"); code > 2 {
		t.Errorf("CN scada subscribing to plant/+/temp: SUBACK %#x", code)
	}
	if code, _ := subscribe(t, scada, "other/#"); code <= 2 {
		t.Error("CN scada may subscribe to other/#")
	}

	// A username that is not the CN is refused; the CN itself is fine.
	withName := clientOpts(mtls).SetTLSConfig(pki.ClientTLS(t, pki.ClientCertFile, pki.ClientKeyFile))
	if _, err := connect(t, withName.SetUsername("other").SetPassword("pw")); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
		t.Errorf("certificate with another username: %v", err)
	}
	mustConnect(t, clientOpts(mtls).SetTLSConfig(pki.ClientTLS(t, pki.ClientCertFile, pki.ClientKeyFile)).SetUsername(brokertest.ClientCN))

	// A certificate from the CA whose CN is no user is not authorized.
	cert, key := pki.ClientCert(t, "intruder")
	if _, err := connect(t, clientOpts(mtls).SetTLSConfig(pki.ClientTLS(t, cert, key))); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("certificate for an unknown CN: %v, want %v", err, packets.ErrorRefusedNotAuthorised)
	}
	// Without a certificate the TLS handshake fails, password or not.
	if _, err := connect(t, clientOpts(mtls).SetTLSConfig(pki.ClientTLS(t, "", "")).SetUsername("other").SetPassword("pw")); err == nil {
		t.Error("a client without a certificate connected to an mTLS listener")
	}
	// Nor does a certificate from another CA get in.
	stranger := brokertest.NewPKI(t)
	foreign := pki.ClientTLS(t, stranger.ClientCertFile, stranger.ClientKeyFile)
	if _, err := connect(t, clientOpts(mtls).SetTLSConfig(foreign)); err == nil {
		t.Error("a certificate from another CA was accepted")
	}
}

func TestCertificateWithoutUsers(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{
		{Name: "plant", Type: TypeTLS, Address: "0.0.0.0:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile},
	}})
	_, port, _ := strings.Cut(b.Addr("plant").String(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(b.Addr("plant").String(), ":")
	}
	c := mustConnect(t, clientOpts("ssl://127.0.0.1:"+port).SetTLSConfig(pki.ClientTLS(t, pki.ClientCertFile, pki.ClientKeyFile)))
	msgs := mustSubscribe(t, c, "any/#")
	mustPublish(t, c, "any/thing", 1, false, "x")
	expect(t, msgs, "any/thing", "x")
}

func TestWillACL(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		Users:     []config.User{{Username: "dev", PasswordHash: fastHash(t, "pw"), Publish: []string{"devices/dev/#"}}},
		Listeners: []config.Listener{tcpListener("local")},
	})
	u := brokerURL(t, b, "tcp", "local")
	bad := clientOpts(u).SetUsername("dev").SetPassword("pw").SetWill("plant/boiler/setpoint/set", "90", 1, false)
	if _, err := connect(t, bad); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Errorf("will on a forbidden topic: %v, want %v", err, packets.ErrorRefusedNotAuthorised)
	}
	mustConnect(t, clientOpts(u).SetUsername("dev").SetPassword("pw").SetWill("devices/dev/status", "offline", 1, true))
}

func TestReservedClientID(t *testing.T) {
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{tcpListener("local")}})
	for _, id := range []string{"inline", InlineOrigin("cloud")} {
		_, err := connect(t, clientOpts(brokerURL(t, b, "tcp", "local")).SetClientID(id))
		if !errors.Is(err, packets.ErrorRefusedIDRejected) {
			t.Errorf("client id %q: %v, want %v", id, err, packets.ErrorRefusedIDRejected)
		}
	}
}

func TestMaxClients(t *testing.T) {
	b, _ := startBroker(t, config.Broker{MaxClients: 2, Listeners: []config.Listener{tcpListener("local")}})
	u := brokerURL(t, b, "tcp", "local")
	first := mustConnect(t, clientOpts(u))
	mustConnect(t, clientOpts(u))
	if _, err := connect(t, clientOpts(u)); !errors.Is(err, packets.ErrorRefusedServerUnavailable) {
		t.Fatalf("third client: %v, want %v", err, packets.ErrorRefusedServerUnavailable)
	}
	first.Disconnect(0)
	eventually(t, "a client slot to free", func() bool { return b.Clients() == 1 })
	mustConnect(t, clientOpts(u))
}
