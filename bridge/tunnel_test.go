package bridge

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/internal/syncbuf"
)

// httpProxy is a real tinyproxy on 127.0.0.1 that lets CONNECT through
// to one port, with a username and password.
type httpProxy struct {
	port int
	log  string
}

func newHTTPProxy(t *testing.T, connectPort int, user, password string) *httpProxy {
	t.Helper()
	bin := need(t, "tinyproxy", "tinyproxy")
	dir := t.TempDir()
	px := &httpProxy{port: freePort(t), log: filepath.Join(dir, "tinyproxy.log")}
	conf := filepath.Join(dir, "tinyproxy.conf")
	body := fmt.Sprintf(`User root
Group root
Port %d
Listen 127.0.0.1
Timeout 30
LogFile "%s"
LogLevel Connect
PidFile "%s/tinyproxy.pid"
MaxClients 10
Allow 127.0.0.1
ConnectPort %d
BasicAuth %s %s
DisableViaHeader Yes
`, px.port, px.log, dir, connectPort, user, password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			logs, _ := os.ReadFile(px.log)
			t.Logf("tinyproxy output:\n%s\nlog:\n%s", out, logs)
		}
	})
	eventually(t, wait, "tinyproxy listening", func() bool {
		select {
		case <-exited:
			t.Fatalf("tinyproxy exited:\n%s", out)
		default:
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", px.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return px
}

func (px *httpProxy) logText() string {
	b, _ := os.ReadFile(px.log)
	return string(b)
}

// TestProxyTunnel: with proxy set, the bridge reaches the cloud through an
// HTTP proxy's CONNECT tunnel, with TLS and the client certificate end to
// end, and messages arrive as without it.
func TestProxyTunnel(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	sendThroughProxy(t, c, p, bridgeConfig(c, p, t), c.port)
}

// TestProxyWebsocket: wss:// goes through the tunnel the same way.
func TestProxyWebsocket(t *testing.T) {
	c, p, cfg, port := newWebsocketCloud(t)
	sendThroughProxy(t, c, p, cfg, port)
}

// sendThroughProxy sends with cfg through a tinyproxy that lets CONNECT
// through to port only, and checks that the proxy carried the connection
// and that its password never reached the log.
func sendThroughProxy(t *testing.T, c *cloud, p *pki, cfg config.Bridge, port int) {
	t.Helper()
	const password = "pr0xy-s3cret"
	px := newHTTPProxy(t, port, "gw", password)
	cfg.Proxy = fmt.Sprintf("http://gw:%s@127.0.0.1:%d", password, px.port)
	r := sendAndCheck(t, c, p, cfg)
	if !strings.Contains(px.logText(), fmt.Sprintf("CONNECT 127.0.0.1:%d", port)) {
		t.Errorf("the proxy did not carry the connection:\n%s", px.logText())
	}
	if strings.Contains(r.log.String(), password) {
		t.Errorf("the proxy password reached the log:\n%s", r.log)
	}
}

// TestProxyRefused: a proxy that refuses the tunnel (a wrong password) is
// a clear error in the status, with the proxy's answer and without the
// password.
func TestProxyRefused(t *testing.T) {
	p := newPKI(t, "cloud")
	c := newCloud(t, p, cloudOpts{})
	c.start()
	px := newHTTPProxy(t, c.port, "gw", "right-password")
	cfg := bridgeConfig(c, p, t)
	cfg.Proxy = fmt.Sprintf("http://gw:wrong-password@127.0.0.1:%d", px.port)
	r := newRig(t, cfg, rigOpts{})
	eventually(t, wait, "the refusal in the status", func() bool {
		return strings.Contains(r.br.Status().LastError, "refused")
	})
	st := r.br.Status()
	// tinyproxy answers 401 where RFC 9110 says 407.
	if st.Connected || !strings.Contains(st.LastError, fmt.Sprintf("proxy 127.0.0.1:%d: CONNECT 127.0.0.1:%d refused: 401", px.port, c.port)) {
		t.Errorf("status: connected %v, last error %q", st.Connected, st.LastError)
	}
	if strings.Contains(r.log.String(), "wrong-password") || strings.Contains(st.LastError, "wrong-password") {
		t.Errorf("the proxy password reached the log or the status:\n%s", r.log)
	}
}
