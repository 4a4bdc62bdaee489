package broker

import "strings"

// The matcher below is deliberately local to this package: ACL checks run
// for every delivery to every non-anonymous subscriber, so it works on the
// strings in place without splitting or allocating.

// maxTopicLen is the MQTT limit on a UTF-8 encoded topic or filter.
const maxTopicLen = 65535

// validTopic reports whether t can be published to: non-empty, no
// wildcards, no NUL, within the MQTT length limit.
func validTopic(t string) bool {
	return t != "" && len(t) <= maxTopicLen && !strings.ContainsAny(t, "+#\x00")
}

// validFilter reports whether f is a well-formed topic filter: `+` fills a
// whole level, `#` fills the last level only.
func validFilter(f string) bool {
	if f == "" || len(f) > maxTopicLen || strings.ContainsRune(f, 0) {
		return false
	}
	for {
		level, rest, more := strings.Cut(f, "/")
		if strings.ContainsAny(level, "+#") && len(level) != 1 {
			return false
		}
		if level == "#" && more {
			return false
		}
		if !more {
			return true
		}
		f = rest
	}
}

// matchTopic reports whether filter matches the topic name.
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
