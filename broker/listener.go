package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldbridge/gateway/internal/wsconn"
	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// connectTimeout bounds the time from accept to a complete CONNECT (TLS
// handshake and websocket upgrade included). mochi sets no deadline before
// the CONNECT arrives, so without it an idle socket would hold a file
// descriptor and a goroutine forever.
const connectTimeout = 10 * time.Second

// closeGrace is how long Close waits for a client to take its DISCONNECT
// before the socket is closed under it.
const closeGrace = time.Second

// connHeadroom is how many connections beyond max_clients are accepted, so
// that clients over the limit hear "server unavailable" in a CONNACK
// instead of a reset, while the number of sockets stays bounded.
const connHeadroom = 16

// connGate bounds the sockets open across all listeners. max_clients
// counts clients past CONNECT, which bounds sessions but not file
// descriptors: sockets still in their handshake count here.
type connGate struct {
	open  atomic.Int64
	limit int64
	full  atomic.Bool // set while refusing, so the refusal is logged once per episode
	log   *slog.Logger
}

func (g *connGate) acquire() bool {
	if g.open.Add(1) > g.limit {
		g.open.Add(-1)
		if g.full.CompareAndSwap(false, true) {
			g.log.Warn("broker: too many open connections, closing new ones", "limit", g.limit)
		}
		return false
	}
	g.full.Store(false)
	return true
}

func (g *connGate) release() { g.open.Add(-1) }

// trackListener counts and remembers the connections it accepts, so that
// Close can end every one of them, including those still in their TLS
// handshake or websocket upgrade, which mochi does not know of yet.
type trackListener struct {
	net.Listener
	gate    *connGate
	timeout time.Duration // connectTimeout, shorter in tests

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackListener(ln net.Listener, gate *connGate, timeout time.Duration) *trackListener {
	return &trackListener{Listener: ln, gate: gate, timeout: timeout, conns: map[*trackedConn]struct{}{}}
}

// Accept returns the next connection within the gate's limit, with the
// connect deadline set.
func (l *trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.gate.acquire() {
			c.Close()
			continue
		}
		if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
			l.gate.release()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, l: l}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			tc.Close()
			return nil, net.ErrClosed
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// Close stops accepting; connections stay open until closeConns.
func (l *trackListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// setDeadline bounds every open connection's pending I/O.
func (l *trackListener) setDeadline(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Conn.SetDeadline(t) // a closed connection has nothing to bound
	}
}

// closeConns closes every open connection.
func (l *trackListener) closeConns() {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn gives its socket slot back to the gate when closed, and its
// client slot too once the client has been admitted (see holdClientSlot).
type trackedConn struct {
	net.Conn
	l *trackListener

	mu     sync.Mutex
	closed bool
	client *atomic.Int64 // the client count this connection holds one of
}

// holdClientSlot takes one of limit client slots from n for as long as the
// connection stays open. It fails when all are taken or the connection is
// already closed. Tying the slot to the socket, which mochi closes on every
// path out of a client's life, makes the count exact; mochi's own
// MaximumClients is checked before authentication and counted after it, so
// clients authenticating at the same time all get in (measured: 20 of 20
// with a limit of 5 and bcrypt passwords).
func (c *trackedConn) holdClientSlot(n *atomic.Int64, limit int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.client != nil {
		return false
	}
	if n.Add(1) > limit {
		n.Add(-1)
		return false
	}
	c.client = n
	return true
}

// Close closes the connection and releases its slots once.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return err
	}
	c.closed = true
	if c.client != nil {
		c.client.Add(-1)
	}
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	c.l.gate.release()
	return err
}

// trackedOf finds the trackedConn under the wrappers of an accepted
// connection.
func trackedOf(c net.Conn) *trackedConn {
	for {
		switch cc := c.(type) {
		case *trackedConn:
			return cc
		case *tls.Conn:
			c = cc.NetConn()
		case *wsconn.Conn:
			c = cc.NetConn()
		default:
			return nil
		}
	}
}

// admission counts the establish calls in progress on a listener, and
// refuses new ones once the listener closes, so that Close can wait for
// every client goroutine it started.
type admission struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (a *admission) admit() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	return true
}

func (a *admission) done() { a.wg.Done() }

func (a *admission) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
}

// logEnded logs how a client connection ended. A client that goes away
// without DISCONNECT is routine for a broker, so it is debug detail.
func logEnded(log *slog.Logger, err error) {
	if err != nil {
		log.Debug("broker: client connection ended", "error", err)
	}
}

// netListener serves MQTT over TCP, or TLS when tlsCfg is set. It
// replaces mochi's TCP listener, which binds only when mochi starts it,
// stops for good on the first Accept error (EMFILE included) and logs
// every client that leaves without DISCONNECT as a warning.
type netListener struct {
	id     string
	proto  string
	track  *trackListener
	tlsCfg *tls.Config
	log    *slog.Logger
	adm    admission
}

var _ listeners.Listener = (*netListener)(nil)

// ID is the configured listener name.
func (l *netListener) ID() string { return l.id }

// Address is the bound address.
func (l *netListener) Address() string { return l.track.Addr().String() }

// Protocol is "tcp" or "tls".
func (l *netListener) Protocol() string { return l.proto }

// Init does nothing: the socket is bound before mochi sees the listener,
// so that bind errors surface from Start.
func (l *netListener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until Close.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	var backoff time.Duration
	for {
		c, err := l.track.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("broker: accept failed", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.adm.admit() {
			c.Close()
			return
		}
		go l.handle(establish, c)
	}
}

func (l *netListener) handle(establish listeners.EstablishFn, c net.Conn) {
	defer l.adm.done()
	if l.tlsCfg != nil {
		tc := tls.Server(c, l.tlsCfg)
		ctx, cancel := context.WithTimeout(context.Background(), l.track.timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			l.log.Info("broker: TLS handshake failed", "remote", c.RemoteAddr().String(), "error", err)
			tc.Close()
			return
		}
		c = tc
	}
	logEnded(l.log, establish(l.id, c))
}

// Close stops accepting, sends DISCONNECT to the clients (through mochi's
// closeClients), closes what is left and waits for every client goroutine.
func (l *netListener) Close(closeClients listeners.CloseFn) {
	l.adm.close()
	l.track.Close()
	l.track.setDeadline(time.Now().Add(closeGrace))
	closeClients(l.id)
	l.track.closeConns()
	l.adm.wg.Wait()
}

// wsListener serves MQTT over websocket (ws, or wss when the listener has a
// certificate) on the paths / and /mqtt. It replaces mochi's websocket
// listener, which accepts any Origin and binds only when it starts serving.
type wsListener struct {
	id        string
	proto     string
	track     *trackListener
	ln        net.Listener // track, or TLS over track
	origins   []string
	log       *slog.Logger
	srv       *http.Server
	upgrader  websocket.Upgrader
	establish listeners.EstablishFn
	adm       admission
}

var _ listeners.Listener = (*wsListener)(nil)

func newWSListener(id string, track *trackListener, tlsCfg *tls.Config, origins []string, log *slog.Logger) *wsListener {
	l := &wsListener{id: id, proto: "ws", track: track, ln: track, origins: origins, log: log}
	if tlsCfg != nil {
		l.proto = "wss"
		l.ln = tls.NewListener(track, tlsCfg)
	}
	l.upgrader = websocket.Upgrader{
		HandshakeTimeout: track.timeout,
		Subprotocols:     []string{"mqtt", "mqttv3.1"},
		CheckOrigin:      l.checkOrigin,
	}
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(l.handle),
		ReadHeaderTimeout: track.timeout,
		IdleTimeout:       track.timeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelInfo),
	}
	return l
}

// ID is the configured listener name.
func (l *wsListener) ID() string { return l.id }

// Address is the bound address.
func (l *wsListener) Address() string { return l.track.Addr().String() }

// Protocol is "ws" or "wss".
func (l *wsListener) Protocol() string { return l.proto }

// Init does nothing: the socket is bound before mochi sees the listener.
func (l *wsListener) Init(*slog.Logger) error { return nil }

// Serve serves HTTP until Close.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("broker: websocket listener stopped", "error", err)
	}
}

// checkOrigin guards against cross-site websocket hijacking: a browser
// always sends Origin, so a request without one is not from a web page and
// is let through. With allowed_origins empty, only same-origin pages may
// connect; "*" allows any page.
func (l *wsListener) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(l.origins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	origin = strings.TrimSuffix(origin, "/")
	for _, o := range l.origins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/mqtt" {
		http.NotFound(w, r)
		return
	}
	if !l.checkOrigin(r) {
		l.log.Warn("broker: websocket origin refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !l.adm.admit() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.adm.done()
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the request with the error.
		l.log.Debug("broker: websocket upgrade failed", "remote", r.RemoteAddr, "error", err)
		return
	}
	// net/http clears deadlines once a request is read; the CONNECT still
	// has to arrive in time.
	if err := ws.NetConn().SetDeadline(time.Now().Add(l.track.timeout)); err != nil {
		ws.Close()
		return
	}
	logEnded(l.log, l.establish(l.id, wsconn.New(ws)))
}

// Close stops serving, sends DISCONNECT to the clients, closes what is
// left and waits for every client goroutine.
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.adm.close()
	// Close (not Shutdown): hijacked websocket connections are ours to
	// end, and idle HTTP connections may go at once.
	l.srv.Close()
	l.track.setDeadline(time.Now().Add(closeGrace))
	closeClients(l.id)
	l.track.closeConns()
	l.adm.wg.Wait()
}
