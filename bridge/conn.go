package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/wsconn"
	"github.com/gorilla/websocket"
)

// dialFunc opens a TCP connection; tests replace it to dial from inside a
// network namespace.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// connectError is a failure to open the connection, before MQTT: the
// phase says how far it got.
type connectError struct {
	phase string // "tcp", "proxy", "tls" or "websocket"
	addr  string
	err   error
}

func (e *connectError) Error() string {
	switch e.phase {
	case "tcp":
		return fmt.Sprintf("cannot reach %s: %v", e.addr, e.err)
	case "proxy":
		return fmt.Sprintf("proxy %s: %v", e.addr, e.err)
	case "tls":
		return fmt.Sprintf("TLS handshake with %s failed: %v", e.addr, e.err)
	}
	return fmt.Sprintf("websocket handshake with %s failed: %v", e.addr, e.err)
}

func (e *connectError) Unwrap() error { return e.err }

// unreachable reports whether err is a connection that could not even be
// opened (refused, no route, timed out): retrying those costs the cloud
// nothing.
func unreachable(err error) bool {
	var ce *connectError
	return errors.As(err, &ce) && ce.phase == "tcp"
}

// link is the network connection of one session. paho opens it through
// CustomOpenConnectionFn, so the bridge holds the socket: closing it is the
// one way to end a stuck session at once (paho's Disconnect waits on its
// own goroutines), and the bridge sees which phase of a failed connect
// went wrong.
type link struct {
	mu     sync.Mutex
	conn   net.Conn
	err    error // the last open error
	closed bool
}

// set keeps conn, or closes it when the link was closed meanwhile.
func (l *link) set(conn net.Conn, err error) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = err
		return nil, err
	}
	if l.closed {
		conn.Close()
		return nil, errors.New("bridge: session ended while connecting")
	}
	l.conn = conn
	return conn, nil
}

func (l *link) openErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// close closes the connection, now or as soon as it is opened.
func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.conn != nil {
		l.conn.Close()
	}
}

// endpoint is where and how a bridge connects.
type endpoint struct {
	scheme     string // tcp, tls, ws or wss
	addr       string // host:port
	url        string // for websocket dialing: the configured URL without credentials
	serverName string
	proxy      *url.URL // an HTTP proxy to tunnel through with CONNECT, or nil
}

func parseEndpoint(raw, serverName string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the input, which may hold a password.
		return endpoint{}, errors.New("url: not a URL")
	}
	if u.Host == "" || u.Port() == "" {
		return endpoint{}, fmt.Errorf("url %q needs a host and a port", u.Redacted())
	}
	ep := endpoint{addr: u.Host, serverName: serverName}
	if ep.serverName == "" {
		ep.serverName = u.Hostname()
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		ep.scheme = "tcp"
	case "mqtts", "ssl", "tls":
		ep.scheme = "tls"
	case "ws", "wss":
		ep.scheme = u.Scheme
		wu := *u
		wu.User = nil
		ep.url = wu.String()
	default:
		return endpoint{}, fmt.Errorf("url scheme %q is not mqtts, wss or mqtt", u.Scheme)
	}
	return ep, nil
}

func (ep endpoint) secure() bool { return ep.scheme == "tls" || ep.scheme == "wss" }

// CheckTLS reads the bridge's tls files as each connection attempt reads
// them, for `gateway validate` (a running bridge logs the problem and
// retries, so that a certificate provisioned later is picked up).
func CheckTLS(cfg config.Bridge) error {
	_, err := loadTLS(tlsFiles{cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile}, cfg.TLS.ServerName)
	return err
}

// loadTLS builds the client TLS configuration from the files, read at
// every connection attempt so that renewed certificates are picked up.
// Verification is always on: without ca_file the system roots are used.
func loadTLS(files tlsFiles, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if files.ca != "" {
		pem, err := os.ReadFile(files.ca)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", files.ca)
		}
		cfg.RootCAs = pool
	}
	if files.cert != "" {
		cert, err := tls.LoadX509KeyPair(files.cert, files.key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", files.cert, files.key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

type tlsFiles struct{ ca, cert, key string }

// open dials ep within timeout: TCP, then TLS and the websocket handshake
// as the scheme asks. It never falls back to a weaker scheme.
func (ep endpoint) open(ctx context.Context, dial dialFunc, tlsCfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tcp := func(ctx context.Context, _, _ string) (net.Conn, error) {
		if ep.proxy != nil {
			return ep.tunnel(ctx, dial)
		}
		c, err := dial(ctx, "tcp", ep.addr)
		if err != nil {
			return nil, &connectError{"tcp", ep.addr, err}
		}
		return c, nil
	}
	tlsDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := tcp(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, &connectError{"tls", ep.addr, err}
		}
		return tc, nil
	}
	switch ep.scheme {
	case "tcp":
		return tcp(ctx, "tcp", ep.addr)
	case "tls":
		return tlsDial(ctx, "tcp", ep.addr)
	}
	d := websocket.Dialer{
		NetDialContext:   tcp,
		HandshakeTimeout: timeout,
		Subprotocols:     []string{"mqtt"},
	}
	if ep.scheme == "wss" {
		d.NetDialTLSContext = tlsDial
	}
	ws, resp, err := d.DialContext(ctx, ep.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		var ce *connectError
		if errors.As(err, &ce) {
			return nil, ce
		}
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, &connectError{"websocket", ep.addr, err}
	}
	return wsconn.New(ws), nil
}

// tunnel opens a TCP connection to ep.addr through the HTTP proxy with
// CONNECT. TLS, when the scheme has it, runs end to end through the
// tunnel: the proxy sees only the host and port.
func (ep endpoint) tunnel(ctx context.Context, dial dialFunc) (net.Conn, error) {
	px := ep.proxy.Host
	c, err := dial(ctx, "tcp", px)
	if err != nil {
		return nil, &connectError{"tcp", "proxy " + px, err}
	}
	fail := func(err error) (net.Conn, error) {
		c.Close()
		return nil, &connectError{"proxy", px, err}
	}
	// ctx ends at open's timeout at the latest: ending it unblocks the
	// exchange below.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: ep.addr},
		Host:   ep.addr,
		Header: http.Header{},
	}
	if u := ep.proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(c); err != nil {
		return fail(fmt.Errorf("sending CONNECT %s: %w", ep.addr, err))
	}
	// The broker says nothing before the client does, so nothing can
	// follow the proxy's answer yet; a proxy that sends more is refused
	// below rather than have its bytes lost with the reader.
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(fmt.Errorf("reading the answer to CONNECT %s: %w", ep.addr, err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("CONNECT %s refused: %s", ep.addr, resp.Status))
	}
	if br.Buffered() > 0 {
		return fail(fmt.Errorf("CONNECT %s: the proxy sent data before the client spoke", ep.addr))
	}
	if !stop() {
		// ctx ended meanwhile: the connection has a past deadline.
		return fail(fmt.Errorf("CONNECT %s: %w", ep.addr, context.Cause(ctx)))
	}
	return c, nil
}

// maxPending bounds the bytes a batchConn holds besides the batch being
// written; writers wait beyond it, so a stalled link pushes back instead
// of growing memory.
const maxPending = 256 << 10

// batchConn coalesces writes: paho writes each packet with its own Write,
// which over TLS is one record and one system call per message. Here
// Write appends to a buffer that one flusher goroutine writes out; packets
// written while a flush runs go out together in the next one (group
// commit, no timer, so an idle link adds no delay). A failed flush closes
// the connection, which paho's reader reports as a lost connection, and
// later Writes return the error.
//
// Reads are buffered too: paho reads each packet with three or more
// Reads (the first byte, the length byte by byte, the rest), one system
// call each without a buffer; a burst of PUBACKs then costs one.
type batchConn struct {
	net.Conn
	timeout time.Duration // bounds each flush
	r       *bufio.Reader // used by paho's one reading goroutine only

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
}

func newBatchConn(c net.Conn, timeout time.Duration) *batchConn {
	b := &batchConn{Conn: c, timeout: timeout, r: bufio.NewReaderSize(c, readBufSize)}
	b.cond = sync.NewCond(&b.mu)
	go b.flush()
	return b
}

// readBufSize holds a few hundred PUBACKs, or one typical inbound message.
const readBufSize = 4 << 10

func (b *batchConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.pending) > 0 && len(b.pending)+len(p) > maxPending {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.pending = append(b.pending, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *batchConn) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for b.err == nil && len(b.pending) == 0 {
			b.cond.Wait()
		}
		if b.err != nil {
			return
		}
		out := b.pending
		b.pending = b.spare[:0]
		b.cond.Broadcast() // writers waiting for room may fill the new buffer meanwhile
		b.mu.Unlock()
		b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil && b.err == nil {
			b.err = err
			b.Conn.Close()
		}
		b.cond.Broadcast()
	}
}

// SetWriteDeadline is ignored: paho sets it around its own Writes, which
// no longer touch the network; each flush has its own deadline.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline applies to reads only, for the same reason.
func (b *batchConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}
