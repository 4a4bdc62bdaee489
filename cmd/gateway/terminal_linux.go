package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal is a terminal with its echo turned off until restore.
type terminal struct {
	fd    int
	saved unix.Termios
	stop  chan struct{}
}

// openTerminal turns echo off on f; it returns nil when f is not a
// terminal. An interrupt while echo is off restores it before the
// process ends.
func openTerminal(f *os.File) (*terminal, error) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil // not a terminal
	}
	quiet := *saved
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("turning the terminal's echo off: %w", err)
	}
	t := &terminal{fd: fd, saved: *saved, stop: make(chan struct{})}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer signal.Stop(sig)
		select {
		case <-sig:
			unix.IoctlSetTermios(t.fd, unix.TCSETS, &t.saved)
			os.Exit(exitFailure)
		case <-t.stop:
		}
	}()
	return t, nil
}

// prompt writes p to w and reads one line from r, which the user's Enter
// ends without being echoed, so a new line is written after it.
func (t *terminal) prompt(r *bufio.Reader, p string, w io.Writer) (string, error) {
	fmt.Fprint(w, p)
	line, err := r.ReadString('\n')
	fmt.Fprintln(w)
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// restore turns the echo back on.
func (t *terminal) restore() {
	close(t.stop)
	unix.IoctlSetTermios(t.fd, unix.TCSETS, &t.saved)
}
