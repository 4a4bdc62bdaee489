package modbustest

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// A TCP server answers a read of holding register 0 of unit 1 with the
// value it was given, as the gateway's tests expect.
func TestStartPymodbusTCP(t *testing.T) {
	port := StartPymodbus(t, TCP, map[int]Tables{1: {HR: []uint16{7}}})
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Transaction 0x0102, unit 1, read holding registers from 0, one.
	req := []byte{0x01, 0x02, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 11)
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x01, 0x02, 0, 0, 0, 5, 1, 3, 2, 0, 7}; !bytes.Equal(resp, want) {
		t.Errorf("reply % x, want % x", resp, want)
	}
}
