package serial

import (
	"fmt"
	"regexp"
)

// regexParser reads the named groups of a pattern. The pattern searches the
// line (anchor it with ^ and $ to match the whole line); a line it does not
// match is unparsable. A group that did not take part in the match is not
// reported.
type regexParser struct {
	re     *regexp.Regexp
	points []textPoint
}

func (p *regexParser) parse(line []byte, emit emitFunc) error {
	m := p.re.FindSubmatchIndex(line)
	if m == nil {
		return fmt.Errorf("%w: the pattern does not match", errUnparsable)
	}
	for _, pt := range p.points {
		lo, hi := m[2*pt.group], m[2*pt.group+1]
		if lo < 0 {
			continue
		}
		v, err := convert(string(line[lo:hi]), pt.typ)
		if err != nil {
			err = fmt.Errorf("group %s: %w", pt.name, err)
		}
		emit(pt.index, v, err)
	}
	return nil
}
