// Package mappings is the point model of the gateway: what a configured
// point is, how its registers become a value and back, when a value is worth
// publishing, on which topic and in which payload. It knows no driver and no
// MQTT client; drivers, the broker and the bridge build on it.
//
// A tour, in the order data flows:
//
//   - A driver decodes each YAML point into its own struct with [Spec]
//     embedded inline (`yaml:",inline"`) next to its keys such as table or
//     address, and calls [Spec.Compile] with [Options] that say what the
//     table allows. Compile returns a [Point] or [FieldError]s naming the
//     offending key, to which the caller adds file:line:col.
//   - Polling: [Decode] turns the words read off the wire into a raw [Value]
//     (integers keep full 64-bit precision, float32 stays float32); the
//     point's [Scaling] applies value = raw*scale + offset.
//   - A per-point [Reporter] decides, from deadband and heartbeat, whether
//     the value is published; [Reporter.Bad] does the same for a failed read.
//   - [Point.TopicName] expands the point's own [Template] or the default one,
//     and [AppendPayload] writes the payload in the configured [Format]
//     without allocating.
//   - Commands: [ParseCommand] checks a `{topic}/set` payload against the
//     point (type, range, write_range) and returns the raw value that
//     [Encode] turns back into words, the exact inverse of Decode.
//   - [ValidTopicName], [ValidTopicFilter] and [MatchFilter] are the MQTT
//     topic rules that ACLs and bridge routes share.
//
// Nothing here holds package-level state, and nothing blocks.
package mappings
