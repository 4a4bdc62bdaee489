package wsconn

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pair returns a client Conn and runs serve on the server side.
func pair(t *testing.T, serve func(ws *websocket.Conn)) *Conn {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := New(ws)
	t.Cleanup(func() { c.Close() })
	return c
}

// A stream is read across message boundaries, whatever the sizes of the
// messages and of the reads.
func TestReadAcrossMessages(t *testing.T) {
	c := pair(t, func(ws *websocket.Conn) {
		for _, m := range []string{"\x30\x05", "", "ab", "cde\x30", "\x00"} {
			ws.WriteMessage(websocket.BinaryMessage, []byte(m))
		}
		ws.ReadMessage() // hold the connection until the client closes
	})
	got := make([]byte, 9)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "\x30\x05abcde\x30\x00" {
		t.Errorf("read %q", got)
	}
}

// A text message is a protocol error, reported, not taken as bytes.
func TestTextMessageRefused(t *testing.T) {
	c := pair(t, func(ws *websocket.Conn) {
		ws.WriteMessage(websocket.TextMessage, []byte("\x30\x00"))
		ws.ReadMessage()
	})
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, ErrNotBinary) {
		t.Errorf("Read of a text message: %v, want ErrNotBinary", err)
	}
}

// Writes from several goroutines each arrive as one whole message: the
// race detector and gorilla's concurrent-writer panic watch the lock.
func TestConcurrentWrites(t *testing.T) {
	const writers, each = 4, 200
	got := make(chan string, writers*each)
	c := pair(t, func(ws *websocket.Conn) {
		for range writers * each {
			typ, m, err := ws.ReadMessage()
			if err != nil || typ != websocket.BinaryMessage {
				close(got)
				return
			}
			got <- string(m)
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msg := strings.Repeat(string(rune('a'+w)), 100)
			for range each {
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Error(err)
					return
				}
				c.SetWriteDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	for range writers * each {
		m, ok := <-got
		if !ok {
			t.Fatal("the server saw a broken or non-binary message")
		}
		if len(m) != 100 || strings.Count(m, m[:1]) != 100 {
			t.Fatalf("a message was interleaved: %q", m)
		}
	}
}
