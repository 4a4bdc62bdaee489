package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fieldbridge/gateway/broker"
)

func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("passwd", "passwd [< password.txt]\n\nOn a terminal it asks for the password twice, without echo; otherwise it\nreads the first line of stdin.", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gateway passwd:", err)
		return exitFailure
	}
	hash, err := broker.HashPassword([]byte(pw))
	if err != nil {
		fmt.Fprintln(stderr, "gateway passwd:", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, hash)
	return exitOK
}

// readPassword asks for the password twice on a terminal, with echo off
// (so that it stays out of the screen and of the shell's history), or
// reads the first line of stdin when it is a pipe or a file.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if t, err := openTerminal(f); err != nil {
			return "", err
		} else if t != nil {
			defer t.restore()
			r := bufio.NewReader(f)
			pw, err := t.prompt(r, "Password: ", stderr)
			if err != nil || pw == "" {
				return "", cmp.Or(err, errors.New("empty password"))
			}
			again, err := t.prompt(r, "Again: ", stderr)
			if err != nil {
				return "", err
			}
			if again != pw {
				return "", errors.New("the two passwords differ")
			}
			return pw, nil
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password on stdin")
	}
	return pw, nil
}
