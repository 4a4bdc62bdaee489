package bridge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// TestBatchConn: writes arrive complete and in order; a writer that
// outruns a stalled peer waits instead of buffering without bound, and
// Close releases it with an error.
func TestBatchConn(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	bc := newBatchConn(a, wait)
	var want bytes.Buffer
	got := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(io.LimitReader(b, 1000*7))
		got <- data
	}()
	for i := range 1000 {
		p := []byte{byte(i), 1, 2, 3, 4, 5, byte(i >> 8)}
		want.Write(p)
		if _, err := bc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if data := <-got; !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("the peer read %d bytes that differ from the %d written", len(data), want.Len())
	}

	// Nobody reads now: the flusher blocks, the buffer fills, and a write
	// past maxPending waits until Close.
	chunk := make([]byte, 64<<10)
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := bc.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
	}()
	held := func() int {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		return len(bc.pending)
	}
	eventually(t, wait, "a full buffer", func() bool {
		select {
		case err := <-errc:
			t.Fatalf("a write failed before Close: %v", err)
		default:
		}
		return held()+len(chunk) > maxPending
	})
	if n := held(); n > maxPending {
		t.Fatalf("%d bytes held, more than %d", n, maxPending)
	}
	bc.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked write returned %v", err)
	}
}
