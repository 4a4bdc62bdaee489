package broker

import (
	"net/http"
	"testing"

	"github.com/fieldbridge/gateway/broker/brokertest"
	"github.com/fieldbridge/gateway/config"
	"github.com/gorilla/websocket"
)

func TestWebsocketOrigin(t *testing.T) {
	b, tl := startBroker(t, config.Broker{Listeners: []config.Listener{
		{Name: "web", Type: TypeWebsocket, Address: "127.0.0.1:0", AllowedOrigins: []string{"http://localhost:8080"}},
		{Name: "open", Type: TypeWebsocket, Address: "127.0.0.1:0"},
	}})
	web := "ws://" + b.Addr("web").String()

	dial := func(url, origin string) (int, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: wait}
		c, resp, err := d.Dial(url, h)
		if c != nil {
			c.Close()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for _, c := range []struct {
		url, origin string
		status      int
	}{
		{web + "/mqtt", "http://localhost:8080", http.StatusSwitchingProtocols},
		{web + "/", "HTTP://LOCALHOST:8080", http.StatusSwitchingProtocols},
		{web + "/mqtt", "", http.StatusSwitchingProtocols}, // not a browser
		{web + "/mqtt", "http://evil.example", http.StatusForbidden},
		{web + "/mqtt", "http://localhost:8081", http.StatusForbidden},
		{web + "/other", "http://localhost:8080", http.StatusNotFound},
		// Without allowed_origins only same-origin pages may connect.
		{"ws://" + b.Addr("open").String() + "/mqtt", "http://" + b.Addr("open").String(), http.StatusSwitchingProtocols},
		{"ws://" + b.Addr("open").String() + "/mqtt", "http://evil.example", http.StatusForbidden},
	} {
		if got, err := dial(c.url, c.origin); got != c.status {
			t.Errorf("%s with Origin %q: status %d (%v), want %d", c.url, c.origin, got, err, c.status)
		}
	}
	if e := contains(tl.String(), "websocket origin refused", "evil.example"); e != nil {
		t.Error(e)
	}

	// MQTT over the upgraded connection, from an allowed page and without
	// an Origin; a refused Origin does not get to MQTT at all.
	header := http.Header{"Origin": []string{"http://localhost:8080"}}
	sub := mustConnect(t, clientOpts(web+"/mqtt").SetHTTPHeaders(header))
	msgs := mustSubscribe(t, sub, "plant/#")
	pub := mustConnect(t, clientOpts(web+"/"))
	mustPublish(t, pub, "plant/web", 1, false, "hello over websocket")
	expect(t, msgs, "plant/web", "hello over websocket")

	evil := clientOpts(web + "/mqtt").SetHTTPHeaders(http.Header{"Origin": []string{"http://evil.example"}})
	if _, err := connect(t, evil); err == nil {
		t.Error("MQTT connected from a refused origin")
	}
}

func TestWebsocketTLS(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, _ := startBroker(t, config.Broker{
		Users: []config.User{{Username: brokertest.ClientCN, Subscribe: []string{"b/#"}}},
		Listeners: []config.Listener{
			{Name: "wss", Type: TypeWebsocket, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile},
			{Name: "wssm", Type: TypeWebsocket, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile},
		},
	})
	u := brokerURL(t, b, "wss", "wss") + "/mqtt"
	c := mustConnect(t, clientOpts(u).SetTLSConfig(pki.ClientTLS(t, "", "")))
	msgs := mustSubscribe(t, c, "a/#")
	// A large message spans several websocket reads.
	big := string(make([]byte, 200<<10))
	mustPublish(t, c, "a/big", 1, false, big)
	if m := next(t, msgs); m.topic != "a/big" || m.payload != big {
		t.Errorf("got %d bytes on %q", len(m.payload), m.topic)
	}
	// Plain ws is not served on a wss listener.
	if _, err := connect(t, clientOpts("ws://"+b.Addr("wss").String()+"/mqtt")); err == nil {
		t.Error("plain websocket connected to a wss listener")
	}

	// Client certificates work over wss too: the CN is the user.
	mu := brokerURL(t, b, "wss", "wssm") + "/mqtt"
	scada := mustConnect(t, clientOpts(mu).SetTLSConfig(pki.ClientTLS(t, pki.ClientCertFile, pki.ClientKeyFile)))
	if code, _ := subscribe(t, scada, "a/#"); code <= 2 {
		t.Error("CN scada may subscribe to a/# over wss")
	}
	bmsgs := mustSubscribe(t, scada, "b/#")
	if err := b.Publish("b/x", []byte("y"), false, 0); err != nil {
		t.Fatal(err)
	}
	expect(t, bmsgs, "b/x", "y")
	if _, err := connect(t, clientOpts(mu).SetTLSConfig(pki.ClientTLS(t, "", ""))); err == nil {
		t.Error("a client without a certificate connected over wss with client_ca_file")
	}
}
