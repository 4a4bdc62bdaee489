package broker

import (
	"strings"
	"testing"
)

func TestValidFilter(t *testing.T) {
	for f, want := range map[string]bool{
		"a":        true,
		"a/b/c":    true,
		"#":        true,
		"+":        true,
		"a/+/c":    true,
		"a/#":      true,
		"+/+/#":    true,
		"/a":       true,
		"a//b":     true,
		"$SYS/#":   true,
		"":         false,
		"a/#/b":    false,
		"a#":       false,
		"a/b+":     false,
		"+a/b":     false,
		"a/\x00":   false,
		"##":       false,
		"a/b/c/#/": false,
	} {
		if got := validFilter(f); got != want {
			t.Errorf("validFilter(%q) = %v, want %v", f, got, want)
		}
	}
	if validFilter(strings.Repeat("a", 65536)) {
		t.Error("a filter longer than 65535 bytes is valid")
	}
}

func TestValidTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"a/b":     true,
		"/":       true,
		"$SYS/x":  true,
		"":        false,
		"a/+":     false,
		"a/#":     false,
		"a\x00b":  false,
		"a/b+c/d": false,
		"a/\xff":  false,
	} {
		if got := validTopic(topic); got != want {
			t.Errorf("validTopic(%q) = %v, want %v", topic, got, want)
		}
	}
}

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true}, // + matches an empty level
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"+/+", "a/b", true},
		{"+", "a", true},
		{"+", "/a", false},
		{"/+", "/a", true},
		{"a/#", "a", true}, // # matches the parent level
		{"a/#", "a/b", true},
		{"a/#", "a/b/c/d", true},
		{"a/#", "b/a", false},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/+/c/#", "a/x/c", true},
		{"a/+/c/#", "a/x/d/e", false},
		// $-topics are not matched by a leading wildcard (MQTT 4.7.2).
		{"#", "$SYS/broker/uptime", false},
		{"+/broker/uptime", "$SYS/broker/uptime", false},
		{"+/#", "$SYS/x", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"$SYS/+/uptime", "$SYS/broker/uptime", true},
		{"a/#", "a/$x", true}, // the rule is about the first level only
	}
	for _, c := range cases {
		if got := matchTopic(c.filter, c.topic); got != c.want {
			t.Errorf("matchTopic(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		permitted, requested string
		want                 bool
	}{
		{"plant/#", "plant/+/x", true},
		{"plant/#", "plant/#", true},
		{"plant/#", "plant", true},
		{"plant/+", "plant/#", false},
		{"plant/+", "plant/+", true},
		{"plant/+", "plant/a", true},
		{"plant/a", "plant/+", false},
		{"plant/+/x", "plant/+/+", false},
		{"plant/+/+", "plant/+/x", true},
		{"#", "#", true},
		{"#", "a/+/#", true},
		{"+/#", "a/#", true},
		{"a/b", "a/b/#", false},
		{"a/+/#", "a/#", false}, // a/# matches a, a/+/# does not
		{"#", "$SYS/#", false},
		{"+/#", "$SYS/broker/+", false},
		{"$SYS/#", "$SYS/broker/+", true},
		{"$SYS/broker", "$SYS/#", false},
		{"$SYS/#", "#", false},
	}
	for _, c := range cases {
		if got := covers(c.permitted, c.requested); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.permitted, c.requested, got, c.want)
		}
	}
}

// TestCoversAgreesWithMatch checks covers against its definition on every
// small filter and topic: when p covers r, each topic r matches is also
// matched by p, and when it does not, some topic shows it (except in the
// documented +/# corner, where covers is strict).
func TestCoversAgreesWithMatch(t *testing.T) {
	levels := []string{"a", "b", "$s"}
	var topics []string
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		for _, l := range levels {
			topic := l
			if prefix != "" {
				topic = prefix + "/" + l
			}
			topics = append(topics, topic)
			if depth > 1 {
				grow(topic, depth-1)
			}
		}
	}
	grow("", 3)
	var filters []string
	var growF func(prefix string, depth int)
	growF = func(prefix string, depth int) {
		for _, l := range []string{"a", "$s", "+", "#"} {
			f := l
			if prefix != "" {
				f = prefix + "/" + l
			}
			filters = append(filters, f)
			if depth > 1 && l != "#" {
				growF(f, depth-1)
			}
		}
	}
	growF("", 3)

	for _, p := range filters {
		for _, r := range filters {
			semantic := true
			for _, topic := range topics {
				if matchTopic(r, topic) && !matchTopic(p, topic) {
					semantic = false
					break
				}
			}
			got := covers(p, r)
			if got && !semantic {
				t.Errorf("covers(%q, %q) = true, but %q matches a topic %q does not", p, r, r, p)
			}
			if !got && semantic && !(strings.HasPrefix(p, "+/") && strings.HasSuffix(p, "#")) {
				t.Errorf("covers(%q, %q) = false, but every topic %q matches is matched by %q", p, r, r, p)
			}
		}
	}
}

func TestStripShare(t *testing.T) {
	for in, want := range map[string]string{
		"$share/g/plant/#": "plant/#",
		"$SHARE/g/a/b":     "a/b",
		"$share/g":         "$share/g",
		"plant/#":          "plant/#",
		"$SYS/#":           "$SYS/#",
	} {
		if got := stripShare(in); got != want {
			t.Errorf("stripShare(%q) = %q, want %q", in, got, want)
		}
	}
}
