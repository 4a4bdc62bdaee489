package broker

import (
	"strings"

	"github.com/fieldbridge/gateway/mappings"
)

// validTopic and validFilter are the MQTT rules as mappings applies them
// to the configuration, so the broker and the file agree on what a topic is.
// They allocate only for a refused topic (the error they drop).
func validTopic(t string) bool { return mappings.ValidTopicName(t) == nil }

func validFilter(f string) bool { return mappings.ValidTopicFilter(f) == nil }

// matchTopic reports whether filter matches the topic name. It and covers
// are the ACL checks, which run for every publish and every delivery of a
// non-anonymous client, so they work on the strings in place, without
// splitting or allocating. covers is local because mappings matches a
// filter against a topic, not a filter against a filter.
func matchTopic(filter, topic string) bool {
	// A topic name has no wildcards, so "covers" and "matches" coincide.
	return covers(filter, topic)
}

// covers reports whether every topic matched by the filter r is also
// matched by the filter p. It is what a SUBSCRIBE needs: permission
// `plant/#` covers a subscription to `plant/+/x`, but `plant/+` does not
// cover `plant/#`. Filters that begin with a wildcard never match topics
// that begin with `$` (MQTT 4.7.2), so `#` does not cover `$SYS/#`.
//
// The answer errs towards "no" in one corner: `+/#` is equivalent to `#`
// but is not taken to cover it.
func covers(p, r string) bool {
	if strings.HasPrefix(r, "$") && (strings.HasPrefix(p, "+") || strings.HasPrefix(p, "#")) {
		return false
	}
	pDone, rDone := false, false
	for {
		if pDone {
			return rDone
		}
		pl, pRest, pMore := strings.Cut(p, "/")
		if pl == "#" {
			// `#` also matches the parent level: `a/#` matches `a`.
			return true
		}
		if rDone {
			return false
		}
		rl, rRest, rMore := strings.Cut(r, "/")
		switch {
		case rl == "#":
			return false
		case pl == "+":
		case rl == "+" || rl != pl:
			return false
		}
		p, pDone = pRest, !pMore
		r, rDone = rRest, !rMore
	}
}

// stripShare returns the topic filter inside a shared subscription
// (`$share/group/filter`), so that ACLs apply to what is actually received.
// mochi recognises the prefix case-insensitively; so does this.
func stripShare(f string) string {
	const prefix = "$share/"
	if len(f) < len(prefix) || !strings.EqualFold(f[:len(prefix)], prefix) {
		return f
	}
	_, filter, ok := strings.Cut(f[len(prefix):], "/")
	if !ok {
		return f
	}
	return filter
}
