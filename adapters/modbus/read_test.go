package modbus

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

func runRead(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = ReadCommand(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestReadCommandUsage(t *testing.T) {
	if code, _, errOut := runRead("--help"); code != 0 || !strings.Contains(errOut, "Usage: gateway modbus read") || !strings.Contains(errOut, "-parity") {
		t.Errorf("--help: %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{},
		{"--url", "udp://x:1"},
		{"--url", "tcp://h", "--table", "holdings"},
		{"--url", "tcp://h", "--table", "coil", "--type", "float32"},
		{"--url", "tcp://h", "--table", "coil", "--bit", "1"},
		{"--url", "tcp://h", "--type", "bool"},
		{"--url", "tcp://h", "--type", "string"},
		{"--url", "tcp://h", "--type", "float32", "--order", "AB"},
		{"--url", "tcp://h", "--baud", "19200"},
		{"--url", "rtu:///dev/ttyS0", "--unit", "0"},
		{"--url", "rtu:///dev/ttyS0", "--parity", "X"},
		{"--url", "rtu:///dev/ttyS0", "--data-bits", "7"},
		{"--url", "tcp://h", "--unit", "248"},
		{"--url", "tcp://h", "--address", "65535", "--type", "float32"},
		{"--url", "tcp://h", "--address", "0x10000"},
		{"--url", "tcp://h", "--count", "0"},
		{"--url", "tcp://h", "--timeout", "0s"},
		{"--url", "tcp://h", "--nope"},
		{"--url", "tcp://h", "extra"},
	} {
		if code, out, errOut := runRead(args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error (2)", args, code, out, errOut)
		}
	}
}

func TestReadCommand(t *testing.T) {
	noLeak(t)
	srv := newSimServer(t)
	srv.setRegs(false, 0, regsOf(1.25)...)
	srv.setRegs(false, 2, regsOf(-2)...)
	srv.setRegs(false, 4, 0x4142, 0x4300)
	for a := range uint16(130) {
		srv.setRegs(true, a, a)
	}
	srv.mu.Lock()
	for a := range uint16(10) {
		srv.co[a] = a%3 == 0
	}
	srv.mu.Unlock()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "float32", "--count", "2"}, "0: 1.25\n2: -2\n"},
		{[]string{"--address", "4", "--type", "string", "--length", "2"}, "4: ABC\n"},
		{[]string{"--address", "0x4", "--type", "uint16", "--order", "BA"}, "4: 16961\n"},
		{[]string{"--address", "5", "--type", "bool", "--bit", "8"}, "5: true\n"},
		{[]string{"--table", "coil", "--count", "4"}, "0: true\n1: false\n2: false\n3: true\n"},
	} {
		code, out, errOut := runRead(append([]string{"--url", srv.url()}, tc.args...)...)
		if code != 0 || out != tc.want {
			t.Errorf("%v: exit %d, %q (%s); want %q", tc.args, code, out, errOut, tc.want)
		}
	}

	// 130 registers take two reads of at most 125.
	before := srv.count()
	code, out, _ := runRead("--url", srv.url(), "--table", "input", "--count", "130")
	if lines := strings.Count(out, "\n"); code != 0 || lines != 130 || !strings.HasSuffix(out, "129: 129\n") {
		t.Errorf("130 registers: exit %d, %d lines", code, lines)
	}
	if n := srv.count() - before; n != 2 {
		t.Errorf("130 registers in %d requests, want 2", n)
	}

	// A refused read fails with the exception; the values before it print.
	code, out, errOut := runRead("--url", srv.url(), "--address", "3", "--count", "200")
	if code != 1 || !strings.Contains(errOut, "illegal data address") {
		t.Errorf("refused read: exit %d, %q, %q", code, out, errOut)
	}
}

func TestReadCommandUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, out, errOut := runRead("--url", fmt.Sprintf("tcp://%s", addr))
	if code != 1 || out != "" || !strings.Contains(errOut, "connection failed") {
		t.Errorf("exit %d, %q, %q; want 1 and the connection error", code, out, errOut)
	}
}
