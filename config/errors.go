package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a configuration file.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem in a configuration file: where it is, the key path
// (devices[0].points[2].order) and what is wrong.
type Error struct {
	Pos  Pos
	Path string
	Msg  string
}

// Error is "file:line:col: path: message"; parts that are unknown are left
// out (CheckBroker's errors have no position).
func (e *Error) Error() string {
	var b strings.Builder
	if pos := e.Pos.String(); pos != "" {
		b.WriteString(pos)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns nil when es is empty, so a function can return es.Err() as an error.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
