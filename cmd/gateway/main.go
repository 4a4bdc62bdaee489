// Command gateway is the Fieldbridge edge gateway: it polls field devices,
// publishes their readings on an embedded MQTT broker and forwards them to
// cloud brokers through a durable buffer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/fieldbridge/gateway/adapters"
	"github.com/fieldbridge/gateway/adapters/gpio"
	"github.com/fieldbridge/gateway/adapters/modbus"
	"github.com/fieldbridge/gateway/adapters/serial"
	"github.com/fieldbridge/gateway/adapters/simulation"
	"github.com/fieldbridge/gateway/config"
	"github.com/fieldbridge/gateway/gateway"
	"golang.org/x/sys/unix"
)

// Set at link time: -ldflags "-X main.version=1.2.3 -X main.commit=abc".
var (
	version = "dev"
	commit  = ""
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a run failed or a config is invalid
	exitUsage   = 2 // wrong flags or arguments
)

// registry lists the drivers this binary knows: adding a driver is one line here.
func registry() *adapters.Registry {
	return adapters.NewRegistry(
		gpio.Driver{},
		modbus.Driver{},
		serial.Driver{},
		simulation.Driver{},
	)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `Fieldbridge gateway: field devices to MQTT, with store-and-forward to the cloud.

Usage:
  gateway run --config FILE        run the gateway
  gateway validate --config FILE   check a configuration and list every problem
  gateway passwd                   ask for a password (or read stdin), print its bcrypt hash
  gateway buffer stats --data-dir DIR   backlog per bridge (works while the gateway runs)
  gateway modbus read --url URL ...     read registers for commissioning, like mbpoll
  gateway version                  print version, commit and Go version

Run 'gateway COMMAND --help' for a command's flags.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "passwd":
		return cmdPasswd(rest, stdin, stdout, stderr)
	case "buffer":
		return cmdBuffer(rest, stdout, stderr)
	case "modbus":
		return cmdModbus(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gateway %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse handles --help (exit 0) and bad flags (exit 2); ok is false when
// the caller should return code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	case err != nil:
		return exitUsage, false
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

func versionString() string {
	rev := commit
	if info, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("fieldbridge gateway %s (commit %s, %s, %s/%s)", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate --config FILE", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gateway validate: --config is required")
		return exitUsage
	}
	plan, err := gateway.Load(*path, registry(), nil)
	if err == nil {
		err = plan.CheckFiles()
	}
	if err != nil {
		printConfigErrors(stderr, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: ok (%d devices, %d bridges)\n", *path, len(plan.Devices.Devices), len(plan.File.Bridges))
	return exitOK
}

func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		fmt.Fprintf(w, "%d problem(s) found\n", len(errs))
		return
	}
	fmt.Fprintln(w, err)
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", "run --config FILE", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gateway run: --config is required")
		return exitUsage
	}
	plan, err := gateway.Load(*path, registry(), nil)
	if err != nil {
		printConfigErrors(stderr, err)
		return exitFailure
	}
	log := newLogger(stderr, plan.File.Log)
	if err := limitOpenFiles(); err != nil {
		log.Warn("cannot lower the open-files limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(ctx)
	go func() {
		// A second signal while shutting down exits at once.
		<-ctx.Done()
		stop()
	}()
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()
	opts := gateway.Options{Log: log, Version: version, Reload: reload, Ready: func() { sdNotify(log, daemon.SdNotifyReady) }}
	// systemd's watchdog: ping at half its interval, from the gateway's
	// main loop, so a stuck loop lets systemd restart the service.
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		opts.Watchdog = func() { sdNotify(log, daemon.SdNotifyWatchdog) }
		opts.WatchdogInterval = interval / 2
	}
	g := gateway.New(plan, opts)
	err = g.Run(ctx)
	sdNotify(log, daemon.SdNotifyStopping)
	if err != nil {
		log.Error("gateway stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}

// limitOpenFiles lowers the soft open-files limit to 1024: Go raises it at
// start, and go.bug.st/serial panics inside select() on a descriptor ≥ 1024;
// past the limit an open fails with EMFILE instead.
func limitOpenFiles() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur <= 1024 {
		return nil
	}
	lim.Cur = 1024
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
}

func cmdModbus(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "read" {
		fmt.Fprintln(stderr, "Usage: gateway modbus read --url URL [--unit N] [--table T] [--address A] [--count N] [--type T] [--order O]\nRun 'gateway modbus read --help' for every flag.")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return exitOK
		}
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return modbus.ReadCommand(ctx, args[1:], stdout, stderr)
}
