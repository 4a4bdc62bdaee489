//go:build !linux

package main

import (
	"bufio"
	"io"
	"os"
)

// terminal is never returned here: echo control is written for Linux,
// the gateway's platform, and elsewhere passwd reads stdin as a pipe.
type terminal struct{}

func openTerminal(*os.File) (*terminal, error) { return nil, nil }

func (*terminal) prompt(*bufio.Reader, string, io.Writer) (string, error) { return "", nil }

func (*terminal) restore() {}
