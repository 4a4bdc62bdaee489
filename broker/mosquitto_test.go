package broker

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fieldbridge/gateway/broker/brokertest"
	"github.com/fieldbridge/gateway/config"
)

// mosquittoTool finds a mosquitto client; its absence fails the test, so
// a machine without them cannot pass silently.
func mosquittoTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: install the Debian package mosquitto-clients (apt-get install -y mosquitto-clients): %v", name, err)
	}
	return path
}

// hostPort splits a listener's address for mosquitto's -h and -p.
func hostPort(t *testing.T, b *Broker, listener string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(b.Addr(listener).String())
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// runTool runs a mosquitto client to completion and returns its output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, mosquittoTool(t, name), args...).CombinedOutput()
	return string(out), err
}

// startSub starts mosquitto_sub for one message and returns a function
// that waits for it and returns its output.
func startSub(t *testing.T, subscribed <-chan string, filter string, args ...string) func() string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, mosquittoTool(t, "mosquitto_sub"), append(args, "-t", filter, "-C", "1", "-v")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait() // reaped; the test has its result from the function below
	})
	waitSubscribed(t, subscribed, filter)
	return func() string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("mosquitto_sub: %v\n%s", err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
}

func TestMosquittoAnonymous(t *testing.T) {
	b, _ := startBroker(t, config.Broker{Listeners: []config.Listener{tcpListener("local")}})
	subscribed := addSubscribedHook(t, b)
	host, port := hostPort(t, b, "local")
	result := startSub(t, subscribed, "plant/#", "-h", host, "-p", port, "-q", "1")
	if out, err := runTool(t, "mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", "plant/boiler/temp", "-m", "21.5"); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if got := result(); got != "plant/boiler/temp 21.5" {
		t.Errorf("mosquitto_sub printed %q", got)
	}
}

func TestMosquittoConnackCodes(t *testing.T) {
	b, _ := startBroker(t, config.Broker{
		AllowAnonymous: boolPtr(false),
		Users:          []config.User{{Username: "scada", PasswordHash: fastHash(t, "s3cret"), Publish: []string{"plant/#"}, Subscribe: []string{"plant/#"}}},
		Listeners:      []config.Listener{tcpListener("local")},
	})
	subscribed := addSubscribedHook(t, b)
	host, port := hostPort(t, b, "local")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password v3.1.1", []string{"-u", "scada", "-P", "wrong"}, "bad user name or password"},
		{"wrong password v5", []string{"-V", "mqttv5", "-u", "scada", "-P", "wrong"}, "bad user name or password"},
		{"unknown user v3.1.1", []string{"-u", "ghost", "-P", "s3cret"}, "bad user name or password"},
		{"anonymous v3.1.1", nil, "not authori"},
		{"anonymous v5", []string{"-V", "mqttv5"}, "not authori"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runTool(t, "mosquitto_pub", append([]string{"-h", host, "-p", port, "-t", "plant/x", "-m", "1"}, c.args...)...)
			if err == nil {
				t.Fatalf("mosquitto_pub connected: %s", out)
			}
			if !strings.Contains(strings.ToLower(out), c.want) {
				t.Errorf("mosquitto_pub said %q, want %q", out, c.want)
			}
		})
	}

	// The right password works, and the publish arrives.
	result := startSub(t, subscribed, "plant/#", "-h", host, "-p", port, "-u", "scada", "-P", "s3cret")
	if out, err := runTool(t, "mosquitto_pub", "-h", host, "-p", port, "-u", "scada", "-P", "s3cret",
		"-t", "plant/boiler/temp", "-m", "22"); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if got := result(); got != "plant/boiler/temp 22" {
		t.Errorf("mosquitto_sub printed %q", got)
	}
}

func TestMosquittoClientCertificate(t *testing.T) {
	pki := brokertest.NewPKI(t)
	b, _ := startBroker(t, config.Broker{
		Users: []config.User{{Username: brokertest.ClientCN, Publish: []string{"plant/+/+/set"}, Subscribe: []string{"plant/#"}}},
		Listeners: []config.Listener{
			{Name: "plant", Type: TypeTLS, Address: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile},
		},
	})
	subscribed := addSubscribedHook(t, b)
	msgs := make(chan string, 100)
	if err := b.Subscribe("plant/#", 1, func(topic string, payload []byte, _ bool, _ string) {
		select {
		case msgs <- topic + " " + string(payload):
		default: // inline handlers must not block
		}
	}); err != nil {
		t.Fatal(err)
	}
	host, port := hostPort(t, b, "plant")
	withCert := []string{"-h", host, "-p", port, "--cafile", pki.CAFile, "--cert", pki.ClientCertFile, "--key", pki.ClientKeyFile}

	result := startSub(t, subscribed, "plant/#", withCert...)
	if err := b.Publish("plant/boiler/temp", []byte("23"), false, 1); err != nil {
		t.Fatal(err)
	}
	if got := result(); got != "plant/boiler/temp 23" {
		t.Errorf("mosquitto_sub printed %q", got)
	}
	if recvString(t, msgs) != "plant/boiler/temp 23" {
		t.Fatal("inline subscriber missed the message")
	}

	// CN=scada may publish a command but nothing else.
	if out, err := runTool(t, "mosquitto_pub", append(withCert, "-q", "0", "-t", "plant/other/x", "-m", "no")...); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if out, err := runTool(t, "mosquitto_pub", append(withCert, "-q", "1", "-t", "plant/boiler/setpoint/set", "-m", "60")...); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if got := recvString(t, msgs); got != "plant/boiler/setpoint/set 60" {
		t.Errorf("inline subscriber got %q, want the permitted command only", got)
	}

	// Without a client certificate the handshake fails.
	out, err := runTool(t, "mosquitto_pub", "-h", host, "-p", port, "--cafile", pki.CAFile, "-t", "plant/a/b/set", "-m", "1")
	if err == nil {
		t.Errorf("mosquitto_pub without a certificate succeeded: %s", out)
	}
}

func recvString(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(wait):
		t.Fatal("no message arrived")
		return ""
	}
}
