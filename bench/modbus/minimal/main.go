// Command minimal is the least a Go program can do at the load of
// bench/modbus/compare.sh: a ticker and one Modbus TCP request (FC3, 10
// holding registers) per tick, with the reply read and its length checked,
// and nothing decoded or published. compare.sh --minimal runs it next to
// Node-RED to show the CPU that the Go runtime itself spends on this load,
// below which no Go gateway can go.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:502", "Modbus TCP server")
	unit := flag.Uint("unit", 1, "unit id")
	count := flag.Uint("count", 10, "holding registers to read from address 0")
	interval := flag.Duration("interval", 100*time.Millisecond, "poll interval")
	flag.Parse()
	if err := run(*addr, byte(*unit), uint16(*count), *interval); err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
}

func run(addr string, unit byte, count uint16, interval time.Duration) error {
	if count == 0 || count > 125 {
		return errors.New("count must be 1 to 125")
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := make([]byte, 12)
	binary.BigEndian.PutUint16(req[4:], 6) // length: unit, function, address, count
	req[6] = unit
	req[7] = 3
	binary.BigEndian.PutUint16(req[10:], count)
	reply := make([]byte, 9+2*int(count))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for tid := uint16(1); ; tid++ {
		<-tick.C
		binary.BigEndian.PutUint16(req[0:], tid)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, reply[:9]); err != nil {
			return err
		}
		if got := binary.BigEndian.Uint16(reply[0:]); got != tid {
			return fmt.Errorf("reply has transaction id %d, want %d", got, tid)
		}
		if reply[7] != 3 || int(reply[8]) != 2*int(count) {
			return fmt.Errorf("unexpected reply % x", reply[:9])
		}
		if _, err := io.ReadFull(conn, reply[9:]); err != nil {
			return err
		}
	}
}
