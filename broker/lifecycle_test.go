package broker

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/fieldbridge/gateway/broker/brokertest"
	"github.com/fieldbridge/gateway/config"
	"github.com/gorilla/websocket"
)

func TestMaxClientsUnderConcurrentConnects(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		MaxClients: 3,
		Users:      []config.User{{Username: "u", PasswordHash: fastHash(t, "pw")}},
		Listeners:  []config.Listener{tcpListener("local")},
	})
	u := brokerURL(t, b, "tcp", "local")
	var wg sync.WaitGroup
	var mu sync.Mutex
	connected, refused := 0, 0
	for range 15 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := connect(t, clientOpts(u).SetUsername("u").SetPassword("pw"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				connected++
			case errors.Is(err, packets.ErrorRefusedServerUnavailable):
				refused++
			default:
				t.Errorf("connect: %v", err)
			}
		}()
	}
	wg.Wait()
	if connected != 3 || refused != 12 || b.Clients() != 3 {
		t.Errorf("%d connected, %d refused, Clients() = %d; want 3, 12, 3", connected, refused, b.Clients())
	}
}

// expectClosed waits for the server to close c.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the broker did not close the connection", what)
	}
	if err == nil {
		t.Fatalf("%s: the broker sent data", what)
	}
}

func TestConnectTimeout(t *testing.T) {
	pki := brokertest.NewPKI(t)
	log, _ := newTestLog(t)
	b, err := New(config.Broker{Listeners: []config.Listener{
		tcpListener("tcp"),
		{Name: "tls", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile},
		{Name: "ws", Type: TypeWebsocket, Address: "127.0.0.1:0"},
	}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.connectTimeout = 100 * time.Millisecond
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tcp", "tls", "ws"} {
		c, err := net.Dial("tcp", b.Addr(name).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosed(t, c, name+" without a CONNECT")
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+b.Addr("ws").String()+"/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	if ce := (*websocket.CloseError)(nil); !errors.As(err, &ce) {
		t.Fatalf("websocket upgraded without a CONNECT: read %v, want a close frame", err)
	}

	// A client that connects in time keeps its connection past the timeout.
	lost := make(chan error, 1)
	c := mustConnect(t, clientOpts(brokerURL(t, b, "tcp", "tcp")).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
	msgs := mustSubscribe(t, c, "a")
	time.Sleep(3 * b.connectTimeout) // the thing under test is the passing of time
	if err := b.Publish("a", []byte("still here"), false, 0); err != nil {
		t.Fatal(err)
	}
	expect(t, msgs, "a", "still here")
	select {
	case err := <-lost:
		t.Fatalf("connection lost: %v", err)
	default:
	}
}

func TestSocketLimit(t *testing.T) {
	b, tl := startBroker(t, config.Broker{MaxClients: 1, Listeners: []config.Listener{tcpListener("local")}})
	addr := b.Addr("local").String()
	var idle []net.Conn
	for range 1 + connHeadroom {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	// Closed at once, well before the 10 s connect timeout.
	if err := over.SetReadDeadline(time.Now().Add(connectTimeout / 2)); err != nil {
		t.Fatal(err)
	}
	_, err = over.Read(make([]byte, 1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a socket over the limit was kept open")
	}
	if e := contains(tl.String(), "too many open connections"); e != nil {
		t.Error(e)
	}
	// A freed socket lets an MQTT client in.
	idle[0].Close()
	eventually(t, "the socket count to drop", func() bool { return b.gate.open.Load() == int64(connHeadroom) })
	mustConnect(t, clientOpts("tcp://"+addr))
}

func TestCloseEndsEverything(t *testing.T) {
	b, err := New(config.Broker{Listeners: []config.Listener{tcpListener("tcp"), {Name: "ws", Type: TypeWebsocket, Address: "127.0.0.1:0"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lost sync.WaitGroup
	for _, u := range []string{"tcp://" + b.Addr("tcp").String(), "ws://" + b.Addr("ws").String() + "/mqtt"} {
		lost.Add(1)
		var once sync.Once
		mustConnect(t, clientOpts(u).SetConnectionLostHandler(func(paho.Client, error) { once.Do(lost.Done) }))
	}
	half, err := net.Dial("tcp", b.Addr("tcp").String()) // no CONNECT yet
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if n := b.Clients(); n != 2 {
		t.Fatalf("Clients() = %d, want 2", n)
	}

	closed := make(chan error)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Close did not return")
	}
	allLost := make(chan struct{})
	go func() { lost.Wait(); close(allLost) }()
	select {
	case <-allLost:
	case <-time.After(wait):
		t.Fatal("clients were not disconnected")
	}
	expectClosed(t, half, "a connection without CONNECT at Close")
	if n := b.Clients(); n != 0 {
		t.Errorf("Clients() = %d after Close", n)
	}
	if _, err := net.Dial("tcp", b.Addr("tcp").String()); err == nil {
		t.Error("the listener still accepts after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
