package gateway

import (
	"strings"
	"testing"
)

// TestProfileRefusesDeepPointTopics: a point whose topic an out-route
// would send deeper than AWS IoT allows makes the configuration invalid,
// at the route, naming the topic (the device status counts too); a batch with its own topic
// carries point topics inside its payload, so they do not count.
func TestProfileRefusesDeepPointTopics(t *testing.T) {
	_, err := load(t, `gateway: {id: gw1}
publish: {topic: "{gateway}/{device}/{point}"}
devices:
  - name: boiler
    driver: simulation
    points: [{name: a, waveform: sine}, {name: b, waveform: sine}, {name: c, waveform: sine}, {name: d, waveform: sine}, {name: e, waveform: sine}]
bridges:
  - name: aws
    url: mqtts://example-ats.iot.eu-west-1.amazonaws.com:8883
    profile: aws-iot
    routes:
      - {direction: out, filter: "gw1/#", remote_prefix: "dt/plant/site-a/hall-2/line-4/cell-1/"}
  - name: batched
    url: mqtts://example-ats.iot.eu-west-1.amazonaws.com:8883
    client_id: "{gateway}-batched"
    profile: aws-iot
    routes:
      - {direction: out, filter: "gw1/#", remote_prefix: "dt/plant/site-a/hall-2/line-4/cell-1/", batch: {topic: "dt/plant/gw1/batch"}}
`)
	if err == nil {
		t.Fatal("accepted")
	}
	text := err.Error()
	for _, want := range []string{
		`gw.yaml:12:34: bridges[0].routes[0].filter: topic gw1/boiler/a: aws-iot allows at most 7 '/' in a topic, "dt/plant/site-a/hall-2/line-4/cell-1/gw1/boiler/a" has 8`,
		`bridges[0].routes[0].filter: and 3 more topics the same way`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "bridges[1]") || strings.Count(text, "\n") != 3 {
		t.Errorf("want exactly four errors, for bridges[0]:\n%s", text)
	}
}
