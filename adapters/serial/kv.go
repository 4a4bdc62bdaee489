package serial

import (
	"fmt"
)

// kvParser reads `key=value` pairs: `temp=21.5 hum=40`, `T:21.5,H:40;P=1013`.
// Pairs are separated by spaces, tabs, commas or semicolons; a key and its
// value by '=' or ':', with optional spaces around it; a value in double
// quotes may hold separators. Words that are not pairs are skipped, so a
// leading tag such as `DATA` does no harm. When a key appears twice, the
// first one counts.
type kvParser struct {
	byKey  map[string][]int // key -> indexes into points
	points []textPoint
	// found is scratch: the value of each point in the current line.
	found []kvValue
}

type kvValue struct {
	text string
	set  bool
}

func newKVParser(points []textPoint) *kvParser {
	p := &kvParser{byKey: map[string][]int{}, points: points, found: make([]kvValue, len(points))}
	for i, pt := range points {
		p.byKey[pt.name] = append(p.byKey[pt.name], i)
	}
	return p
}

func (p *kvParser) parse(line []byte, emit emitFunc) error {
	clear(p.found)
	pairs := 0
	s := line
	for len(s) > 0 {
		s = skip(s, isPairSep)
		if len(s) == 0 {
			break
		}
		n := 0
		for n < len(s) && !isPairSep(s[n]) && s[n] != '=' && s[n] != ':' {
			n++
		}
		if n == 0 {
			s = s[1:] // a separator without a key
			continue
		}
		key := s[:n]
		s = skip(s[n:], isBlank)
		if len(s) == 0 || s[0] != '=' && s[0] != ':' {
			continue // a bare word
		}
		s = skip(s[1:], isBlank)
		var val []byte
		if len(s) > 0 && s[0] == '"' {
			end := 1
			for end < len(s) && s[end] != '"' {
				end++
			}
			if end == len(s) {
				return fmt.Errorf("%w: unterminated quote after %s", errUnparsable, quoteShort(string(key)))
			}
			val, s = s[1:end], s[end+1:]
		} else {
			n = 0
			for n < len(s) && !isPairSep(s[n]) {
				n++
			}
			val, s = s[:n], s[n:]
		}
		pairs++
		for _, i := range p.byKey[string(key)] {
			if !p.found[i].set {
				p.found[i] = kvValue{text: string(val), set: true}
			}
		}
	}
	if pairs == 0 {
		return fmt.Errorf("%w: no key=value pair", errUnparsable)
	}
	for i, pt := range p.points {
		if !p.found[i].set {
			continue
		}
		v, err := convert(p.found[i].text, pt.typ)
		if err != nil {
			err = fmt.Errorf("key %s: %w", pt.name, err)
		}
		emit(pt.index, v, err)
	}
	return nil
}

func isBlank(c byte) bool   { return c == ' ' || c == '\t' }
func isPairSep(c byte) bool { return c == ' ' || c == '\t' || c == ',' || c == ';' }

func skip(s []byte, f func(byte) bool) []byte {
	for len(s) > 0 && f(s[0]) {
		s = s[1:]
	}
	return s
}
