package config

import (
	"strings"
	"testing"
	"time"
)

// TestProfileDefaults: a profile fills the limits left unset, and
// explicit values within the profile's ceilings stay.
func TestProfileDefaults(t *testing.T) {
	y := minimal + `bridges:
  - name: aws
    url: mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883
    profile: aws-iot
    routes:
      - {direction: out, filter: "gw1/#", remote_prefix: "dt/plant/", batch: {}}
  - name: hive
    url: mqtts://x.s1.eu.hivemq.cloud:8883
    profile: hivemq-cloud
    max_rate: 20
    routes: [{direction: out, filter: "gw1/#", batch: {topic: "plant/gw1/batch", max_messages: 50, max_delay: 250ms}}]
  - name: plain
    url: mqtts://cloud.example.com:8883
    routes: [{direction: out, filter: "gw1/#"}]
`
	f, errs := parse(t, y, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	aws, hive, plain := f.Bridges[0], f.Bridges[1], f.Bridges[2]
	if aws.MaxRate != 90 || aws.Inflight != 100 || aws.MaxPayload != 128000 || aws.MaxByteRate != 460<<10 {
		t.Errorf("aws-iot: rate %g inflight %d payload %d bytes/s %d", aws.MaxRate, aws.Inflight, aws.MaxPayload, aws.MaxByteRate)
	}
	if b := aws.Routes[0].Batch; b.MaxMessages != DefaultBatchCount || b.MaxBytes != 128000 || b.MaxDelay != DefaultBatchDelay || b.Topic != "" {
		t.Errorf("aws-iot batch defaults: %+v", b)
	}
	if hive.MaxRate != 20 || hive.Inflight != 10 || hive.MaxPayload != 5_000_000 {
		t.Errorf("hivemq-cloud: rate %g inflight %d payload %d", hive.MaxRate, hive.Inflight, hive.MaxPayload)
	}
	if b := hive.Routes[0].Batch; b.MaxMessages != 50 || b.MaxBytes != DefaultBatchBytes || b.MaxDelay != 250*time.Millisecond {
		t.Errorf("hivemq-cloud batch: %+v", b)
	}
	if plain.MaxRate != 0 || plain.Inflight != DefaultInflight || plain.MaxPayload != MaxPayloadLimit || plain.MaxByteRate != 0 {
		t.Errorf("generic: %+v", plain)
	}
}

// TestProfileRefuses: what the cloud would reject is an error at its
// file:line:col.
func TestProfileRefuses(t *testing.T) {
	y := minimal + `bridges:
  - name: aws
    url: mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883
    profile: aws-iot
    max_rate: 500
    inflight: 200
    max_payload: 1MiB
    keepalive: 5s
    client_id: "{gateway}-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
    status_topic: $SYS/gw1/status
    routes:
      - {direction: out, filter: "gw1/#", qos: 2, remote_prefix: "a/b/c/d/e/f/g/h/"}
      - {direction: in, filter: "a/b/c/d/e/f/g/h/i/set"}
      - {direction: out, filter: "x/#", batch: {topic: "a/b/c/d/e/f/g/h/i", max_bytes: 2MiB}}
  - name: other
    url: mqtts://cloud.example.com:8883
    profile: azure
    routes:
      - {direction: in, filter: "cmd/#", batch: {}}
      - {direction: out, filter: "gw1/#", batch: {topic: "cmd/batch", max_messages: 0x7fffffff, max_delay: 2h}}
`
	_, errs := parse(t, y, nil)
	want := []string{
		"test.yaml:8:15: bridges[0].max_rate: aws-iot accepts at most 100 messages/s",
		"test.yaml:9:15: bridges[0].inflight: aws-iot accepts at most 100",
		"test.yaml:10:18: bridges[0].max_payload: aws-iot accepts payloads of at most 128000 bytes",
		"test.yaml:11:16: bridges[0].keepalive: aws-iot accepts a keepalive between 30s and 20m0s",
		"bridges[0].client_id: aws-iot accepts client ids of at most 128 bytes",
		"bridges[0].status_topic: aws-iot reserves topics starting with '$'",
		"bridges[0].routes[0].qos: aws-iot accepts QoS up to 1, got 2",
		"bridges[0].routes[0].filter: with remote_prefix \"a/b/c/d/e/f/g/h/\": aws-iot allows at most 7 '/'",
		"bridges[0].routes[1].filter: aws-iot allows at most 7 '/'",
		"bridges[0].routes[2].batch.topic: aws-iot allows at most 7 '/'",
		"bridges[0].routes[2].batch.max_bytes: max_bytes must be between 256 and the bridge's max_payload",
		"bridges[1].profile: unknown profile \"azure\" (want aws-iot, hivemq-cloud, emqx or generic)",
		"bridges[1].routes[0].batch: batch applies to out-routes only",
		"bridges[1].routes[1].batch.max_messages: max_messages must be between 1 and 100000",
		"bridges[1].routes[1].batch.max_delay: max_delay must be between 0 and 1h",
		"bridges[1].routes[1].batch.topic: in-route \"cmd/#\" subscribes to \"cmd/batch\"",
	}
	wantErrors(t, errs, want...)
}

// TestProfileTopics: AWS does not count the slashes of a Basic Ingest
// prefix, and reserves other '$' topics.
func TestProfileTopics(t *testing.T) {
	aws, _ := LookupProfile("aws-iot")
	for topic, ok := range map[string]bool{
		"a/b/c/d/e/f/g/h":                   true,
		"a/b/c/d/e/f/g/h/i":                 false,
		"$aws/rules/ingest/a/b/c/d/e/f/g/h": true,
		"$aws/things/gw1/shadow/update":     true,
		"$SYS/x":                            false,
		strings.Repeat("a", 257):            false,
	} {
		if err := aws.CheckTopic(topic); (err == nil) != ok {
			t.Errorf("%.40s: %v", topic, err)
		}
	}
	emqx, _ := LookupProfile("emqx")
	if emqx.CheckTopic(strings.Repeat("a/", 127)+"a") != nil || emqx.CheckTopic(strings.Repeat("a/", 128)+"a") == nil {
		t.Error("emqx: 128 levels")
	}
	generic, _ := LookupProfile("")
	if generic.CheckTopic(strings.Repeat("a/", 1000)) != nil {
		t.Error("generic limits topic depth")
	}
}

// TestProxyKey: proxy takes an HTTP proxy URL, and a bad one (or a bad
// url) is refused without echoing it (it may hold a password).
func TestProxyKey(t *testing.T) {
	y := minimal + `bridges:
  - name: ok
    url: mqtts://cloud.example.com:8883
    proxy: http://gw:secret@proxy.plant.local:3128
    routes: [{direction: out, filter: "gw1/#"}]
  - name: bad
    url: mqtts://cloud.example.com:8883
    client_id: "{gateway}-bad"
    proxy: https://gw:secret@proxy.plant.local
    routes: [{direction: out, filter: "gw1/#"}]
  - name: badurl
    url: mqtts://gw:secret@cloud.example.com:88x3
    routes: [{direction: out, filter: "gw1/#"}]
`
	_, errs := parse(t, y, nil)
	wantErrors(t, errs, "bridges[1].proxy: want an HTTP proxy as http://[user:password@]host:port", "bridges[2].url: want a URL")
	if len(errs) != 2 || strings.Contains(errs.Error(), "secret") {
		t.Errorf("errors:\n%s", errs)
	}
}

// Two bridges to one broker with one client id would knock each other
// off for ever; a prefix without its '/' glues onto the topic; a client_id
// placeholder other than {gateway} is a typo.
func TestBridgeClientIDsAndPrefixes(t *testing.T) {
	bridge := func(name, url, extra string) string {
		return "  - {name: " + name + ", url: \"" + url + "\", routes: [{direction: out, filter: \"gw1/#\"}]" + extra + "}\n"
	}
	for _, c := range []struct {
		name    string
		bridges string
		want    string // "" when accepted
	}{
		{"same broker, same default id", bridge("a", "mqtts://Cloud.example.com:8883", "") + bridge("b", "mqtts://cloud.example.com:8883", ""),
			`bridges[1].client_id: bridges[0] connects to the same broker with the same client id "gw1"`},
		{"same broker, ids made distinct", bridge("a", "mqtts://cloud.example.com:8883", "") + bridge("b", "mqtts://cloud.example.com:8883", `, client_id: "{gateway}-b"`), ""},
		{"other port", bridge("a", "mqtts://cloud.example.com:8883", "") + bridge("b", "wss://cloud.example.com:443/mqtt", ""), ""},
		{"other broker", bridge("a", "mqtts://cloud.example.com:8883", "") + bridge("b", "mqtts://backup.example.com:8883", ""), ""},
		{"unknown placeholder", bridge("a", "mqtts://cloud.example.com:8883", `, client_id: "{gatway}-a"`),
			"bridges[0].client_id: unknown placeholder {gatway}: client_id takes only {gateway}"},
		{"remote_prefix without /", "  - {name: a, url: \"mqtts://h:1\", routes: [{direction: out, filter: \"gw1/#\", remote_prefix: sites/a}]}\n",
			`bridges[0].routes[0].remote_prefix: remote_prefix "sites/a" must end with '/'`},
		{"strip_prefix without /", "  - {name: a, url: \"mqtts://h:1\", routes: [{direction: in, filter: \"sites/a/#\", strip_prefix: sites/a}]}\n",
			`bridges[0].routes[0].strip_prefix: strip_prefix "sites/a" must end with '/'`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errs := parse(t, minimal+"bridges:\n"+c.bridges, nil)
			if c.want == "" {
				if len(errs) > 0 {
					t.Errorf("refused:\n%s", errs)
				}
				return
			}
			wantErrors(t, errs, c.want)
			if len(errs) != 1 {
				t.Errorf("want one error, got:\n%s", errs)
			}
		})
	}
}
