package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what is written to master is
// typed on slave, and what slave echoes can be read from master.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	var n int
	rc, err := master.SyscallConn()
	if err == nil {
		// Through SyscallConn, so that master stays non-blocking and
		// takes read deadlines.
		rc.Control(func(fd uintptr) {
			if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
				n, err = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// On a terminal, passwd asks twice with the echo off, so the password is
// never shown, and turns the echo back on.
func TestPasswordOnTerminal(t *testing.T) {
	for _, c := range []struct {
		name, first, second, want, err string
	}{
		{"same twice", "s3cret", "s3cret", "s3cret", ""},
		{"typo", "s3cret", "s3crte", "", "the two passwords differ"},
	} {
		t.Run(c.name, func(t *testing.T) {
			master, slave := openPTY(t)
			prompts, promptW := io.Pipe()
			type result struct {
				pw  string
				err error
			}
			done := make(chan result, 1)
			go func() {
				pw, err := readPassword(slave, promptW)
				promptW.Close()
				done <- result{pw, err}
			}()
			pr := bufio.NewReader(prompts)
			// Each prompt is written once the echo is off: only then is the
			// line typed.
			for _, step := range []struct{ prompt, typed string }{{"Password: ", c.first}, {"\nAgain: ", c.second}} {
				got := make([]byte, len(step.prompt))
				if _, err := io.ReadFull(pr, got); err != nil || string(got) != step.prompt {
					t.Fatalf("prompt %q, want %q (%v)", got, step.prompt, err)
				}
				if _, err := master.Write([]byte(step.typed + "\n")); err != nil {
					t.Fatal(err)
				}
			}
			if rest, _ := io.ReadAll(pr); string(rest) != "\n" {
				t.Errorf("after the second line: %q", rest)
			}
			r := <-done
			if r.pw != c.want || (r.err == nil) != (c.err == "") || (r.err != nil && r.err.Error() != c.err) {
				t.Errorf("got %q, %v; want %q, %q", r.pw, r.err, c.want, c.err)
			}
			master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			shown, _ := io.ReadAll(master)
			if strings.Contains(string(shown), c.first) || strings.Contains(string(shown), c.second) {
				t.Errorf("the terminal echoed %q", shown)
			}
			tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil || tio.Lflag&unix.ECHO == 0 {
				t.Errorf("echo not restored (%v)", err)
			}
		})
	}
}
