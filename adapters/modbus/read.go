package modbus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fieldbridge/gateway/adapters/internal/serialline"
	"github.com/fieldbridge/gateway/mappings"
)

// Exit codes of ReadCommand.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const readUsage = `Usage: gateway modbus read --url URL [flags]

Reads values from a Modbus device once and prints one per line as
"address: value", for commissioning (like mbpoll). Addresses are 0-based, as
on the wire: register 40001 is holding address 0.

Examples:
  gateway modbus read --url tcp://192.168.1.50:502 --address 0 --count 4 --type float32
  gateway modbus read --url rtu:///dev/ttyUSB0 --baud 9600 --parity E --unit 3 \
      --table input --address 0x0156 --type float32
  gateway modbus read --url tcp://10.0.0.7 --table coil --address 0 --count 16

Flags:
`

// ReadCommand is `gateway modbus read`: it reads --count values of --type
// from --address of a device and prints each with its address. args are
// the arguments after "read". It returns 0 when every value was read, 1
// when a read failed, and 2 for a usage error; --help prints the flags and
// returns 0.
func ReadCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway modbus read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), readUsage)
		fs.PrintDefaults()
	}
	url := fs.String("url", "", "device `URL`: tcp://host[:port], rtu:///dev/ttyX or rtu+tcp://host:port (required)")
	unit := fs.Int("unit", 1, "unit id (slave id), 0..247; 0 only over tcp://")
	tableName := fs.String("table", "holding", "table: holding, input, coil or discrete")
	address := fs.String("address", "0", "first `address`, 0-based, decimal or 0x hex")
	count := fs.Int("count", 1, "number of values to read")
	typeName := fs.String("type", "", "value type: bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string (default uint16 for registers, bool for coils and discrete inputs)")
	order := fs.String("order", "", "byte and word order: AB, BA; ABCD, CDAB, BADC, DCBA; ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA (default big-endian)")
	bit := fs.Int("bit", -1, "bit 0..15 of each register, for --type bool on registers")
	length := fs.Int("length", 0, "registers per value, for --type string")
	timeout := fs.Duration("timeout", defaultTimeout, "time to wait for each reply")
	baud := fs.Int("baud", serialline.DefaultBaud, "baud rate (rtu:// only)")
	parity := fs.String("parity", "N", "parity N, E or O (rtu:// only)")
	dataBits := fs.Int("data-bits", 8, "data bits, 8 (rtu:// only)")
	stopBits := fs.Int("stop-bits", 1, "stop bits, 1 or 2 (rtu:// only)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "gateway modbus read: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *url == "" {
		return usage("--url is required")
	}
	ep, err := parseURL(*url)
	if err != nil {
		return usage("%v", err)
	}
	if *unit < 0 || *unit > maxUnitID || *unit == 0 && ep.scheme != schemeTCP {
		return usage("--unit %d outside 1..%d (0 only over tcp://)", *unit, maxUnitID)
	}
	t, ok := parseTable(*tableName)
	if !ok {
		return usage("unknown --table %q (want holding, input, coil or discrete)", *tableName)
	}
	start, err := strconv.ParseUint(strings.ReplaceAll(*address, "_", ""), 0, 16)
	if err != nil {
		return usage("--address %q: want 0..65535, decimal or 0x hex", *address)
	}
	if *count < 1 {
		return usage("--count must be at least 1")
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	var mode serialline.Mode
	serialSet := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "baud", "parity", "data-bits", "stop-bits":
			serialSet = true
		}
	})
	if ep.scheme == schemeRTU {
		p, ok := serialline.ParseParity(*parity)
		switch {
		case *baud < serialline.MinBaud || *baud > serialline.MaxBaud:
			return usage("--baud %d outside %d..%d", *baud, serialline.MinBaud, serialline.MaxBaud)
		case !ok:
			return usage("unknown --parity %q (want N, E or O)", *parity)
		case *dataBits != 8:
			return usage("--data-bits must be 8: Modbus RTU sends 8-bit bytes")
		case *stopBits != 1 && *stopBits != 2:
			return usage("--stop-bits must be 1 or 2")
		}
		mode = serialline.Mode{Baud: *baud, DataBits: 8, Parity: p, StopBits: *stopBits}
	} else if serialSet {
		return usage("--baud, --parity, --data-bits and --stop-bits apply only to rtu:// urls")
	}

	spec := mappings.Spec{Name: "value", Type: *typeName, Order: *order, Length: *length}
	if *bit >= 0 {
		spec.Bit = bit
	}
	mp, errs := spec.Compile(t.options())
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = "--" + e.Key + ": " + e.Msg
		}
		return usage("%s", strings.Join(msgs, "; "))
	}
	n := 1
	if !t.bits() {
		n = mp.Registers()
	}
	if last := int(start) + *count*n - 1; last > 0xffff {
		return usage("--address %d with --count %d runs past address 65535", start, *count)
	}

	pts := make([]point, *count)
	for k := range pts {
		pts[k] = point{mp: mp, table: t, addr: uint16(int(start) + k*n), n: n, every: 1}
	}
	pl := newPlanner(pts, MaxRegistersPerRead, MaxBitsPerRead, 0)
	l := newLink(ep, mode)
	defer l.close()
	var words [MaxRegistersPerRead]uint16
	code := exitOK
	for _, b := range pl.plan(pl.all()) {
		data, err := l.read(ctx, byte(*unit), *timeout, &b)
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(stderr, "gateway modbus read: %v\n", ctx.Err())
				return exitFailure
			}
			fmt.Fprintf(stderr, "gateway modbus read: %s: %v\n", b.describe(), err)
			code = exitFailure
			continue
		}
		for _, i := range b.points {
			p := &pts[i]
			v, err := decodePoint(p, &b, data, words[:])
			if err != nil {
				fmt.Fprintf(stderr, "gateway modbus read: %d: %v\n", p.addr, err)
				code = exitFailure
				continue
			}
			fmt.Fprintf(stdout, "%d: %s\n", p.addr, v)
		}
	}
	return code
}
