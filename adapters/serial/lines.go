package serial

import "unicode/utf8"

// splitter cuts a byte stream into lines. A line ends at '\n' or '\r', so
// \r\n, \n and a lone \r all work; the empty line between \r and \n is
// skipped by the caller. A line longer than max is dropped whole: the bytes
// up to its end are discarded as they come, so memory stays bounded.
type splitter struct {
	buf      []byte
	max      int
	skipping bool // discarding the rest of an overlong line
}

// feed hands each complete line of p to line, which must not keep it, and
// calls overlong once per line that exceeded max.
func (s *splitter) feed(p []byte, line func([]byte), overlong func()) {
	for len(p) > 0 {
		i := indexEOL(p)
		if s.skipping {
			if i < 0 {
				return
			}
			s.skipping = false
			p = p[i+1:]
			continue
		}
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if len(s.buf)+len(chunk) > s.max {
			s.buf = s.buf[:0]
			overlong()
			if i < 0 {
				s.skipping = true
				return
			}
			p = p[i+1:]
			continue
		}
		if i < 0 {
			s.buf = append(s.buf, chunk...)
			return
		}
		if len(s.buf) == 0 {
			line(chunk)
		} else {
			s.buf = append(s.buf, chunk...)
			line(s.buf)
			s.buf = s.buf[:0]
		}
		p = p[i+1:]
	}
}

// reset forgets a partial line: before a request, what came earlier is not
// part of the response.
func (s *splitter) reset() {
	s.buf = s.buf[:0]
	s.skipping = false
}

func indexEOL(p []byte) int {
	for i, c := range p {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// garbage reports whether a line holds control characters other than tab
// or is not valid UTF-8: noise on the line, a wrong baud rate, or a binary
// protocol, never a sensor's text.
func garbage(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return !utf8.Valid(b)
}
