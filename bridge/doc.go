// Package bridge is the uplink from the gateway's embedded broker to a
// cloud MQTT broker: out-routes go through a durable buffer, in-routes
// bring commands in under the bridge's own identity.
//
// # Wiring
//
// One Bridge per config.Bridge, each with its own buffer.Log; bridges
// share nothing, so one that is down never slows another:
//
//	log, _ := buffer.Open(buffer.Options{Dir: dataDir + "/buffers/" + cfg.Name, ...})
//	br, _ := bridge.New(cfg, bridge.Options{GatewayID: id, Buffer: log, Local: brk, Log: logger})
//	brk.AddStore(br)  // before brk.Start, so nothing published is missed
//	go br.Run(ctx)    // until ctx ends
//	...               // after Run returned and the broker closed: log.Close()
//
// # Out: broker → buffer → cloud
//
// The broker calls Store for every publish before it acknowledges it. A
// message matching an out-route becomes a record (remote topic after
// remote_prefix, the route's QoS, retain, time, payload; see record.go)
// appended to the buffer: for a network QoS 1/2 publish Store returns once
// the buffer's sync mode is satisfied, so a PUBACK from the gateway means
// the message is on disk. QoS 0 messages are buffered too unless
// buffer_qos0 is false.
//
// Run keeps one connection at a time. A single goroutine reads records
// from a buffer Reader and publishes them, at most inflight unacknowledged;
// another waits for their acknowledgements in order and acknowledges the
// buffer up to the last record for which every earlier one was
// acknowledged. So the buffer's cursor never passes a record the cloud
// lacks, topics keep their order, and after a reconnect a new Reader
// resends from the oldest unacknowledged record: at-least-once, with
// duplicates bounded by the window (plus, after a crash, the records
// acknowledged since the buffer last saved its cursor, about a second).
//
// # Batches and limits
//
// A record stored under an out-route with batch settings (the first
// out-route that sends its remote topic, as Store took the first that
// matched) joins an open batch (batch.go) instead of being published
// alone: one per batch topic, sent as a JSON array when it holds
// max_messages or max_bytes, or max_delay after it opened. Batches for
// different topics are acknowledged out of buffer order, so a tracker
// moves the buffer's cursor only past records whose every predecessor the
// cloud acknowledged. Every MQTT message, batch or not, takes a place in
// the inflight window and passes the limiter (pace.go): max_rate messages
// and max_byte_rate bytes within any sliding second. A message larger than
// max_payload is dropped and counted when it is published, and a record
// larger (buffered under an earlier max_payload) or larger than an empty
// batch can hold when it is sent.
//
// # The connection
//
// paho.mqtt.golang with a memory store, clean sessions and its own
// reconnection turned off: a new paho client per connection, opened
// through a dial function the bridge owns (TCP, TLS with verification
// always on, or websockets; never a fallback to plaintext). Writes are
// coalesced: packets paho writes while the previous batch is on its way
// leave together in one write (one TLS record instead of one per
// message), with no timer, so an idle link adds no delay. Failed
// attempts back off exponentially with full jitter between reconnect.min
// and reconnect.max; while the address refuses or drops TCP connections
// the delay stays under a second, so the backlog starts flowing about a
// second after the cloud is back. paho's keepalive detects a silent link
// when idle; with messages in flight, no acknowledgement for keepalive is
// taken as a dead link and the socket is closed. status_topic gets
// "online" (retained) on connect, "offline" at a clean stop, and "offline"
// as the Will.
//
// # In: cloud → broker
//
// The bridge subscribes to its in-routes' filters at every connection.
// Messages arrive in order in paho's receive goroutine and are injected at
// once with Local.PublishAs(name, ...) after strip_prefix and the
// local_user ACL check; the local broker queues and does not wait, so
// paho is never held up. What the bridge injects carries its origin, and
// its Store skips it: a command is never echoed back to the cloud by an
// out-route that matches it.
//
// # Health
//
// Status and Collectors report connection, last acknowledgement (the real
// health signal), backlog, send rate, drops and the last error.
package bridge
