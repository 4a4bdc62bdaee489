package mappings

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is the MQTT limit on a topic, a two-byte length prefix.
const maxTopicLen = 65535

// Template is a topic with placeholders {gateway}, {device} and {point},
// such as "{gateway}/{device}/{point}". A placeholder may sit anywhere in a
// level. The zero Template is unset: see Point.TopicName.
type Template struct {
	src string
}

// ParseTemplate checks a topic template. Besides the MQTT rules for a topic
// name (UTF-8, no NUL, no + or #, at most 65535 bytes) it refuses what is
// legal but surely a mistake in a configuration: unknown placeholders,
// unbalanced braces, empty levels (a leading or doubled '/'), control
// characters and a leading '$', which brokers reserve for themselves.
func ParseTemplate(s string) (Template, error) {
	if err := checkTopicText(s, "topic"); err != nil {
		return Template{}, err
	}
	if strings.ContainsAny(s, "+#") {
		return Template{}, fmt.Errorf("topic %s holds a wildcard (+ or #)", quoteShort(s))
	}
	if s[0] == '$' {
		return Template{}, fmt.Errorf("topic %s starts with $, which is reserved for the broker", quoteShort(s))
	}
	levelStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			if levelStart {
				return Template{}, fmt.Errorf("topic %s has an empty level", quoteShort(s))
			}
			levelStart = true
			continue
		case c == '}':
			return Template{}, fmt.Errorf("topic %s has a '}' without '{'", quoteShort(s))
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}/")
			if end < 0 || s[i+1+end] != '}' {
				return Template{}, fmt.Errorf("topic %s has a '{' without '}'", quoteShort(s))
			}
			switch name := s[i+1 : i+1+end]; name {
			case "gateway", "device", "point":
			default:
				return Template{}, fmt.Errorf("topic %s: unknown placeholder {%s} (want {gateway}, {device} or {point})", quoteShort(s), name)
			}
			i += end + 1
		case c < 0x20 || c == 0x7f:
			return Template{}, fmt.Errorf("topic %s holds a control character", quoteShort(s))
		}
		levelStart = false
	}
	if levelStart {
		return Template{}, fmt.Errorf("topic %s has an empty level", quoteShort(s))
	}
	return Template{src: s}, nil
}

// String returns the template as written.
func (t Template) String() string { return t.src }

// IsZero reports whether t is unset.
func (t Template) IsZero() bool { return t.src == "" }

// Expand fills in the placeholders. With names that pass ValidName the
// result is a valid topic name; an unset Template expands to "".
func (t Template) Expand(gateway, device, point string) string {
	s := t.src
	if strings.IndexByte(s, '{') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(gateway) + len(device) + len(point))
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		end := strings.IndexByte(s, '}')
		switch s[:end] {
		case "gateway":
			b.WriteString(gateway)
		case "device":
			b.WriteString(device)
		case "point":
			b.WriteString(point)
		}
		s = s[end+1:]
	}
}

// ValidName checks a device or point name: it becomes one topic level, so
// it may hold only ASCII letters, digits, '_' and '-'.
func ValidName(s string) error {
	if s == "" {
		return errors.New("name is empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("name %s may hold only letters, digits, '_' and '-'", quoteShort(s))
		}
	}
	return nil
}

// checkTopicText applies the rules shared by topic names and filters.
func checkTopicText(s, what string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > maxTopicLen:
		return fmt.Errorf("%s is %d bytes long, more than MQTT's %d", what, len(s), maxTopicLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %s is not valid UTF-8", what, quoteShort(s))
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %s holds a NUL character", what, quoteShort(s))
	}
	return nil
}

// ValidTopicName checks a topic that is published to, by the MQTT rules:
// 1 to 65535 bytes of UTF-8 without NUL and without wildcards.
func ValidTopicName(s string) error {
	if err := checkTopicText(s, "topic"); err != nil {
		return err
	}
	if strings.ContainsAny(s, "+#") {
		return fmt.Errorf("topic %s holds a wildcard (+ or #)", quoteShort(s))
	}
	return nil
}

// ValidTopicFilter checks a topic filter by the MQTT rules: like a topic
// name, but '+' may fill a whole level and '#' only the whole last level.
func ValidTopicFilter(s string) error {
	if err := checkTopicText(s, "topic filter"); err != nil {
		return err
	}
	rest := s
	for {
		level, after, more := strings.Cut(rest, "/")
		if strings.ContainsAny(level, "+#") && len(level) > 1 {
			return fmt.Errorf("topic filter %s: a wildcard must fill a whole level", quoteShort(s))
		}
		if level == "#" && more {
			return fmt.Errorf("topic filter %s: # must be the last level", quoteShort(s))
		}
		if !more {
			return nil
		}
		rest = after
	}
}

// MatchFilter reports whether topic matches filter by the MQTT rules: '+'
// matches one level, a trailing '#' the parent level and everything below
// it, and a filter starting with a wildcard does not match a topic starting
// with '$'. Both are assumed valid (see ValidTopicFilter, ValidTopicName).
func MatchFilter(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" && !fmore {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}
