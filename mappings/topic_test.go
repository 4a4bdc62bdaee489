package mappings

import (
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	good := []struct {
		tmpl, want string
	}{
		{"{gateway}/{device}/{point}", "gw1/boiler/temperature"},
		{"plant-a-gw1/pumps/boiler", "plant-a-gw1/pumps/boiler"},
		{"sites/a/{gateway}/{device}-{point}/value", "sites/a/gw1/boiler-temperature/value"},
		{"{point}", "temperature"},
		{"x/{point}{device}", "x/temperatureboiler"},
		{"Ünïcode/°C/{point}", "Ünïcode/°C/temperature"},
		{"a b/{point}", "a b/temperature"},
	}
	for _, tc := range good {
		tmpl, err := ParseTemplate(tc.tmpl)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tc.tmpl, err)
			continue
		}
		if got := tmpl.Expand("gw1", "boiler", "temperature"); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
		if tmpl.String() != tc.tmpl || tmpl.IsZero() {
			t.Errorf("String = %q, IsZero %v", tmpl, tmpl.IsZero())
		}
	}
	bad := []struct {
		tmpl, want string
	}{
		{"", "topic is empty"},
		{"{gateway}/{dev}/{point}", "unknown placeholder {dev}"},
		{"{gateway}/{}/x", "unknown placeholder {}"},
		{"{gateway/{point}", "'{' without '}'"},
		{"{gateway", "'{' without '}'"},
		{"{{point}}", "'{' without '}'"},
		{"gateway}/x", "'}' without '{'"},
		{"a/+/b", "wildcard"},
		{"a/#", "wildcard"},
		{"/a/{point}", "empty level"},
		{"a//{point}", "empty level"},
		{"a/{point}/", "empty level"},
		{"/", "empty level"},
		{"a\x00b", "NUL"},
		{"a\nb", "control character"},
		{"$SYS/{point}", "reserved"},
		{"a/\xff", "UTF-8"},
		{strings.Repeat("a", 65536), "more than MQTT's 65535"},
	}
	for _, tc := range bad {
		if _, err := ParseTemplate(tc.tmpl); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTemplate(%.40q) error = %v, want %q", tc.tmpl, err, tc.want)
		}
	}
	if _, err := ParseTemplate(strings.Repeat("a", 65535)); err != nil {
		t.Errorf("a 65535-byte topic: %v", err)
	}
}

func TestPointTopicName(t *testing.T) {
	def, _ := ParseTemplate("{gateway}/{device}/{point}")
	own, _ := ParseTemplate("plant/{device}/pumps/{point}")
	p := Point{Name: "pump"}
	if got := p.TopicName(def, "gw", "boiler"); got != "gw/boiler/pump" {
		t.Errorf("default topic = %q", got)
	}
	p.Topic = own
	if got := p.TopicName(def, "gw", "boiler"); got != "plant/boiler/pumps/pump" {
		t.Errorf("own topic = %q", got)
	}
}

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "temperature_1", "Boiler-2", "0"} {
		if err := ValidName(s); err != nil {
			t.Errorf("ValidName(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "a/b", "a+", "#", "a b", "a.b", "é", "a\x00"} {
		if err := ValidName(s); err == nil {
			t.Errorf("ValidName(%q) accepted", s)
		}
	}
}

func TestValidTopicNameAndFilter(t *testing.T) {
	names := []struct {
		s  string
		ok bool
	}{
		{"a/b", true}, {"/", true}, {"a//b", true}, {"$SYS/x", true}, {" ", true},
		{"", false}, {"a/+", false}, {"a#", false}, {"a\x00", false}, {"\xff", false},
		{strings.Repeat("x", 65536), false},
	}
	for _, tc := range names {
		if err := ValidTopicName(tc.s); (err == nil) != tc.ok {
			t.Errorf("ValidTopicName(%.20q) = %v, want ok=%v", tc.s, err, tc.ok)
		}
	}
	filters := []struct {
		s  string
		ok bool
	}{
		{"#", true}, {"+", true}, {"a/#", true}, {"+/+", true}, {"a/+/b", true}, {"/+", true},
		{"+/#", true}, {"a/b", true}, {"$SYS/#", true},
		{"", false}, {"a#", false}, {"a/#/b", false}, {"a+/b", false}, {"a/b+", false}, {"##", false},
		{"#/", false}, {"a\x00", false}, {"\xc3", false},
	}
	for _, tc := range filters {
		if err := ValidTopicFilter(tc.s); (err == nil) != tc.ok {
			t.Errorf("ValidTopicFilter(%q) = %v, want ok=%v", tc.s, err, tc.ok)
		}
	}
}

func TestMatchFilter(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true}, // # matches the parent level too
		{"a/#", "a/b", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"/+", "/a", true},
		{"+/b", "a/b", true},
		{"+/b", "a/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a//c", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"+/+/#", "gw/boiler", true},
		{"gw/+/+/set", "gw/boiler/setpoint/set", true},
		{"gw/+/+/set", "gw/boiler/setpoint", false},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"$SYS/+", "$SYS/broker", true},
		{"a/$x", "a/$x", true},
		{"+/$x", "a/$x", true},
		{"sport/tennis/#", "sport/tennis", true},
		{"sport/tennis/+", "sport/tennis", false},
	}
	for _, tc := range tests {
		if got := MatchFilter(tc.filter, tc.topic); got != tc.want {
			t.Errorf("MatchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"{gateway}/{device}/{point}", "a/{point}", "{x}", "{", "}", "a//b", "$a", "a/+"} {
		f.Add(s, "gw", "dev", "pt")
	}
	f.Fuzz(func(t *testing.T, s, gateway, device, point string) {
		tmpl, err := ParseTemplate(s)
		if err != nil {
			if !tmpl.IsZero() {
				t.Fatalf("a failed parse returned %q", tmpl)
			}
			return
		}
		if err := ValidTopicName(s); err != nil {
			t.Fatalf("template %q is not a topic name: %v", s, err)
		}
		for _, n := range []string{gateway, device, point} {
			if ValidName(n) != nil {
				gateway, device, point = "gw", "dev", "pt"
			}
		}
		topic := tmpl.Expand(gateway, device, point)
		if err := ValidTopicName(topic); err != nil {
			t.Fatalf("Expand(%q) = %q: %v", s, topic, err)
		}
		if strings.HasPrefix(topic, "/") || strings.Contains(topic, "//") || strings.HasSuffix(topic, "/") ||
			strings.ContainsAny(topic, "{}") {
			t.Fatalf("Expand(%q) = %q", s, topic)
		}
		if !MatchFilter("#", topic) || !MatchFilter(topic, topic) {
			t.Fatalf("topic %q does not match itself or #", topic)
		}
	})
}
