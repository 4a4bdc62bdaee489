package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/fieldbridge/gateway/mappings"
)

// Profile holds what a kind of cloud broker accepts on one connection.
// A bridge's profile fills the limits its configuration leaves unset and
// refuses settings and topics the cloud would reject; zero means no limit.
//
// The figures are the documented service quotas (AWS IoT Core) or the
// broker's shipped defaults (HiveMQ, EMQX), chosen so that a gateway
// staying within them is never throttled or disconnected.
type Profile struct {
	Name string
	// Rate is the default max_rate, messages per second.
	Rate float64
	// MaxRate is the highest max_rate the cloud accepts (a quota that
	// cannot be raised).
	MaxRate float64
	// Inflight is the default inflight, and MaxInflight its ceiling.
	Inflight, MaxInflight int
	// Payload is the default max_payload, and MaxPayload its ceiling.
	Payload, MaxPayload Size
	// ByteRate is the default max_byte_rate, bytes per second; MaxByteRate
	// its ceiling.
	ByteRate, MaxByteRate Size
	// Slashes caps the '/' in a topic or filter, after SlashesFree.
	Slashes int
	// SlashesFree is a topic filter ending in "/#": in a topic it matches,
	// the slashes before the '#' are not counted ("$aws/rules/+/#" for
	// AWS IoT Basic Ingest).
	SlashesFree string
	// TopicBytes caps the length of a topic or filter.
	TopicBytes int
	// MaxQoS is the highest QoS the cloud accepts.
	MaxQoS int
	// FiltersPerSubscribe caps the filters in one SUBSCRIBE; the bridge
	// sends its in-routes in as many SUBSCRIBEs as needed.
	FiltersPerSubscribe int
	// Subscriptions caps the filters of one connection.
	Subscriptions int
	// ClientIDBytes caps the client id.
	ClientIDBytes int
	// Keepalive bounds keepalive.
	KeepaliveMin, KeepaliveMax time.Duration
	// DollarPrefix, when set, is the only '$' prefix a topic may start
	// with (AWS accepts its own "$aws/" topics only).
	DollarPrefix string
}

// ProfileNames are the clouds a bridge's profile can name.
const ProfileNames = "aws-iot, hivemq-cloud, emqx or generic"

// LookupProfile returns the profile a bridge names; "" is generic.
func LookupProfile(name string) (Profile, bool) {
	switch name {
	// AWS IoT Core quotas per connection: 100 publishes/s, 100 QoS 1
	// messages awaiting PUBACK, 128 KB payloads, 512 KB/s, topics of at
	// most 7 slashes and 256 bytes, no QoS 2, 8 filters per SUBSCRIBE, 50
	// subscriptions, client ids of 128 bytes, keepalive 30s to 1200s. The
	// rates default to a tenth under the quotas: AWS counts what arrives,
	// and the internet can bunch what the bridge spaced out.
	case "aws-iot":
		return Profile{
			Name: "aws-iot", Rate: 90, MaxRate: 100, Inflight: 100, MaxInflight: 100,
			Payload: 128_000, MaxPayload: 128_000, ByteRate: 460 << 10, MaxByteRate: 512 << 10,
			Slashes: 7, SlashesFree: "$aws/rules/+/#", TopicBytes: 256, MaxQoS: 1,
			FiltersPerSubscribe: 8, Subscriptions: 50, ClientIDBytes: 128,
			KeepaliveMin: 30 * time.Second, KeepaliveMax: 1200 * time.Second,
			DollarPrefix: "$aws/",
		}, true
	// HiveMQ Cloud: the broker's receive maximum is 10 messages in
	// flight; messages are capped at 5 MB.
	case "hivemq-cloud":
		return Profile{Name: "hivemq-cloud", Inflight: 10, Payload: 5_000_000, MaxQoS: 2}, true
	// EMQX: 1 MB packets and 128 topic levels by default.
	case "emqx":
		return Profile{Name: "emqx", Inflight: 100, Payload: 1_000_000, Slashes: 127, MaxQoS: 2}, true
	// Any MQTT 3.1.1 broker: only the protocol's own limits.
	case "", "generic":
		return Profile{Name: "generic", Inflight: DefaultInflight, Payload: MaxPayloadLimit, MaxQoS: 2}, true
	}
	return Profile{}, false
}

// MaxPayloadLimit is the largest payload an MQTT 3.1.1 PUBLISH can carry
// with a short topic (the remaining length is at most 268,435,455 bytes).
const MaxPayloadLimit = Size(268_435_455 - 2 - 65535 - 2)

// CheckTopic reports why the cloud would refuse a topic name or filter.
func (p Profile) CheckTopic(topic string) error {
	if p.TopicBytes > 0 && len(topic) > p.TopicBytes {
		return fmt.Errorf("%s allows topics of at most %d bytes, %q has %d", p.Name, p.TopicBytes, topic, len(topic))
	}
	if p.Slashes > 0 {
		n := strings.Count(topic, "/")
		if p.SlashesFree != "" && mappings.MatchFilter(p.SlashesFree, topic) {
			n = max(0, n-strings.Count(p.SlashesFree, "/"))
		}
		if n > p.Slashes {
			return fmt.Errorf("%s allows at most %d '/' in a topic, %q has %d", p.Name, p.Slashes, topic, n)
		}
	}
	if p.DollarPrefix != "" && strings.HasPrefix(topic, "$") && !strings.HasPrefix(topic, p.DollarPrefix) {
		return fmt.Errorf("%s reserves topics starting with '$' (only %s... may be used), got %q", p.Name, p.DollarPrefix, topic)
	}
	return nil
}
