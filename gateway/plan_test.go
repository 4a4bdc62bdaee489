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

// Every topic the gateway publishes or takes commands on belongs to one
// thing: two points on one topic, a point on a status topic, or a point on
// a writable point's command or answer topic are refused, at the point
// that publishes there.
func TestTopicCollisions(t *testing.T) {
	const head = `gateway: {id: gw1}
publish: {topic: "{gateway}/{device}/{point}", retain: false}
devices:
  - name: plc
    driver: simulation
    points:
      - {name: sp, waveform: setpoint, writable: true}
`
	for _, c := range []struct {
		name, point, want string
	}{
		{"distinct", `{name: x, waveform: sine}`, ""},
		{"same topic", `{name: x, waveform: sine, topic: gw1/plc/sp}`,
			`devices[0].points[1]: topic "gw1/plc/sp" is already used by devices[0].points[0]`},
		{"a status topic", `{name: x, waveform: sine, topic: gw1/plc/status}`,
			`devices[0].points[1]: topic "gw1/plc/status" is already used by the status of device plc`},
		{"a command topic", `{name: x, waveform: counter, topic: gw1/plc/sp/set}`,
			`devices[0].points[1]: topic "gw1/plc/sp/set" is where the writable point devices[0].points[0] takes commands`},
		{"a command answer topic", `{name: x, waveform: sine, topic: gw1/plc/sp/set/error}`,
			`devices[0].points[1]: topic "gw1/plc/sp/set/error" is where the writable point devices[0].points[0] answers refused commands`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, head+"      - "+c.point+"\n")
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "\n") != 0):
				t.Errorf("want one error %q, got:\n%v", c.want, err)
			}
		})
	}
}
