// Command harness drives the bridge benchmarks (bench/bridge/*.sh):
//
//	harness gateway  broker + buffer + bridge, as the gateway wires them
//	harness pub      a QoS 1 publisher for the local broker (paced or flat out)
//	harness sub      a cloud subscriber that times the arrival of N messages
//	harness paho     a plain paho QoS 1 publisher with a fixed window (the ceiling)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fieldbridge/gateway/bridge"
	"github.com/fieldbridge/gateway/broker"
	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/config"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: harness gateway|pub|sub|paho [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gateway":
		err = gateway(os.Args[2:])
	case "pub":
		err = pub(os.Args[2:])
	case "sub":
		err = sub(os.Args[2:])
	case "paho":
		err = pahoCeiling(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

type tlsFlags struct{ ca, cert, key string }

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ca, "ca", "", "CA file")
	fs.StringVar(&f.cert, "cert", "", "client certificate file")
	fs.StringVar(&f.key, "key", "", "client key file")
}

func (f *tlsFlags) config() (*tls.Config, error) {
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// gateway runs broker + buffer + bridge until SIGTERM, printing the local
// broker address and then a STATS line every second.
func gateway(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	var tf tlsFlags
	tf.register(fs)
	dir := fs.String("dir", "", "buffer directory")
	cloud := fs.String("cloud", "", "cloud URL (mqtts://host:port)")
	listen := fs.String("listen", "127.0.0.1:0", "local broker address")
	syncMode := fs.String("sync", "batch", "buffer sync mode")
	syncInterval := fs.Duration("sync-interval", 100*time.Millisecond, "buffer sync interval")
	inflight := fs.Int("inflight", 100, "bridge in-flight window")
	maxBytes := fs.Int64("max-bytes", 4<<30, "buffer max_bytes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here until exit")
	fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	mode, err := buffer.ParseSyncMode(*syncMode)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	buf, err := buffer.Open(buffer.Options{Dir: *dir, MaxBytes: *maxBytes, Sync: mode, SyncInterval: *syncInterval, Logger: log})
	if err != nil {
		return err
	}
	brk, err := broker.New(config.Broker{Listeners: []config.Listener{{Name: "local", Type: "tcp", Address: *listen}}}, log)
	if err != nil {
		return err
	}
	one := 1
	br, err := bridge.New(config.Bridge{
		Name: "cloud", URL: *cloud, ClientID: "bench-gw",
		TLS:       config.TLS{CAFile: tf.ca, CertFile: tf.cert, KeyFile: tf.key},
		Keepalive: config.DefaultKeepalive, Inflight: *inflight,
		Reconnect: config.Reconnect{Min: config.DefaultReconnectMin, Max: config.DefaultReconnectMax},
		Routes:    []config.Route{{Direction: "out", Filter: "plant/#", QoS: &one, RemotePrefix: "sites/a/"}},
	}, bridge.Options{GatewayID: "bench", Buffer: buf, Local: brk, Log: log})
	if err != nil {
		return err
	}
	if err := brk.AddStore(br); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := brk.Start(ctx); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	fmt.Printf("LOCAL tcp://%s\n", brk.Addr("local"))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			st, bs := br.Status(), buf.Stats()
			fmt.Printf("STATS t=%d appended=%d fsyncs=%d sent=%d backlog=%d connected=%v\n",
				time.Now().UnixNano(), bs.Appended, bs.Fsyncs, st.Sent, st.Backlog.Messages, st.Connected)
		case <-ctx.Done():
			runErr := <-done
			brk.Close()
			bs := buf.Stats()
			closeErr := buf.Close()
			fmt.Printf("FINAL appended=%d fsyncs=%d\n", bs.Appended, bs.Fsyncs)
			if runErr != nil {
				return runErr
			}
			return closeErr
		}
	}
}

// payload makes a message of size bytes that starts with its number.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = 'x'
	}
	copy(b, strconv.Itoa(i)+" ")
	return b
}

// pub publishes n QoS 1 messages to the local broker with a window of
// unacknowledged messages, flat out or paced at rate messages a second.
func pub(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	url := fs.String("url", "", "local broker URL (tcp://host:port)")
	n := fs.Int("n", 100000, "messages")
	topics := fs.Int("topics", 10, "topics plant/t0..")
	size := fs.Int("size", 200, "payload bytes")
	rate := fs.Float64("rate", 0, "messages a second (0: flat out)")
	window := fs.Int("window", 100, "unacknowledged messages at most")
	conns := fs.Int("conns", 1, "connections, each publishing n/conns")
	fs.Parse(args)

	start := time.Now()
	errc := make(chan error, *conns)
	for c := range *conns {
		go func() {
			errc <- publishOne(*url, c, *n / *conns, *topics, *size, *rate/float64(*conns), *window)
		}()
	}
	for range *conns {
		if err := <-errc; err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("PUB n=%d elapsed=%.3fs rate=%.0f/s\n", *n, el.Seconds(), float64(*n)/el.Seconds())
	return nil
}

func publishOne(url string, id, n, topics, size int, rate float64, window int) error {
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-pub-%d-%d", os.Getpid(), id)).
		SetProtocolVersion(4).SetAutoReconnect(false).SetWriteTimeout(time.Minute))
	if tok := cl.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	toks := make(chan paho.Token, window)
	var failed atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tok := range toks {
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				failed.Store(fmt.Sprint("publish: ", tok.Error()))
			}
		}
	}()
	start := time.Now()
	for i := range n {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		toks <- cl.Publish(fmt.Sprintf("plant/t%d", (i+id)%topics), 1, false, payload(i, size))
	}
	close(toks)
	<-done
	if f := failed.Load(); f != nil {
		return fmt.Errorf("%v", f)
	}
	return nil
}

// sub connects to the cloud as soon as it accepts connections (retrying
// every 5 ms), and times the arrival of n distinct messages from there.
func sub(args []string) error {
	fs := flag.NewFlagSet("sub", flag.ExitOnError)
	var tf tlsFlags
	tf.register(fs)
	url := fs.String("url", "", "cloud address (host:port)")
	id := fs.String("id", "bench-sub", "client id (persistent session)")
	filter := fs.String("filter", "sites/#", "topic filter")
	n := fs.Int("n", 100000, "messages to wait for")
	register := fs.Bool("register", false, "only create the persistent session")
	qos := fs.Int("qos", 1, "subscription QoS")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	fs.Parse(args)
	tc, err := tf.config()
	if err != nil {
		return err
	}
	var count atomic.Int64
	var first, last atomic.Int64
	seen := map[string]bool{}
	all := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker("ssl://" + *url).SetClientID(*id).SetProtocolVersion(4).
		SetCleanSession(false).SetAutoReconnect(false).SetTLSConfig(tc).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			key := m.Topic() + " " + strings.SplitN(string(m.Payload()), " ", 2)[0]
			if !seen[key] {
				seen[key] = true
				if count.Add(1) == int64(*n) {
					last.Store(now)
					close(all)
				}
			}
		})
	deadline := time.Now().Add(*timeout)
	var cl paho.Client
	for {
		cl = paho.NewClient(opts)
		tok := cl.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot connect to %s: %v", *url, tok.Error())
		}
		time.Sleep(5 * time.Millisecond)
	}
	connected := time.Now().UnixNano()
	if tok := cl.Subscribe(*filter, byte(*qos), nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	if *register {
		cl.Disconnect(100)
		return nil
	}
	select {
	case <-all:
	case <-time.After(time.Until(deadline)):
		return fmt.Errorf("%d of %d messages arrived", count.Load(), *n)
	}
	cl.Disconnect(100)
	fmt.Printf("SUB connected=%d first=%d last=%d count=%d first_after=%.3fs drain=%.3fs\n", connected, first.Load(), last.Load(),
		count.Load(), float64(first.Load()-connected)/1e9, float64(last.Load()-connected)/1e9)
	return nil
}

// pahoCeiling publishes n QoS 1 messages to the cloud with plain paho and
// a window of unacknowledged messages, and reports the rate to the last
// PUBACK.
func pahoCeiling(args []string) error {
	fs := flag.NewFlagSet("paho", flag.ExitOnError)
	var tf tlsFlags
	tf.register(fs)
	url := fs.String("url", "", "cloud address (host:port)")
	n := fs.Int("n", 100000, "messages")
	size := fs.Int("size", 200, "payload bytes")
	window := fs.Int("window", 100, "unacknowledged messages at most")
	fs.Parse(args)
	tc, err := tf.config()
	if err != nil {
		return err
	}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + *url).SetClientID("bench-paho").SetProtocolVersion(4).
		SetAutoReconnect(false).SetTLSConfig(tc).SetWriteTimeout(time.Minute))
	if tok := cl.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	toks := make(chan paho.Token, *window)
	done := make(chan error, 1)
	go func() {
		var err error
		for tok := range toks {
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				err = fmt.Errorf("publish: %v", tok.Error())
			}
		}
		done <- err
	}()
	start := time.Now()
	for i := range *n {
		toks <- cl.Publish(fmt.Sprintf("sites/a/plant/t%d", i%10), 1, false, payload(i, *size))
	}
	close(toks)
	if err := <-done; err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("PAHO n=%d elapsed=%.3fs rate=%.0f/s\n", *n, el.Seconds(), float64(*n)/el.Seconds())
	return nil
}
