// Package wsconn carries an MQTT byte stream over websocket binary
// messages, as a net.Conn: the broker's websocket listener and the
// bridge's wss:// uplink both use it.
package wsconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNotBinary is returned by Read when the peer sends a text message:
// MQTT over websocket uses binary messages only (MQTT 3.1.1, 6.0).
var ErrNotBinary = errors.New("websocket message is not binary")

// closeWait bounds the close frame that Close sends: the peer may be gone.
const closeWait = 100 * time.Millisecond

// Conn is one websocket connection as a byte stream. Reads come from one
// goroutine; writes and write deadlines may come from several (paho's
// keepalive writes beside its writer), and are serialised here, since
// gorilla/websocket allows one writer at a time.
type Conn struct {
	ws  *websocket.Conn
	r   io.Reader
	wmu sync.Mutex
}

var _ net.Conn = (*Conn)(nil)

// New wraps an established websocket connection.
func New(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// Read reads from the current binary message, moving to the next one at
// its end: MQTT packets may span messages and a message may hold several.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, ErrNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a close frame, waiting at most closeWait, and closes the
// connection.
func (c *Conn) Close() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	// Best effort: the socket closes next either way. WriteControl may run
	// beside a writer.
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
	return c.ws.Close()
}

// LocalAddr is this side's address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetReadDeadline sets the deadline of the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of the next writes. gorilla applies
// it at each write, reading it without a lock of its own: it is set under
// the write lock.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// NetConn is the connection under the websocket (TCP or TLS), to find the
// client's certificate or a wrapper of it.
func (c *Conn) NetConn() net.Conn { return c.ws.NetConn() }
