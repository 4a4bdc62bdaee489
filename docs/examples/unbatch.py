#!/usr/bin/env python3
"""Unpack a Fieldbridge batch: one MQTT message holding many readings.

A batch is a JSON array; each element has "topic", "ts" (UTC, milliseconds)
and either "payload" (the message's own JSON) or "payload_b64" (any other
payload, base64). Use unpack() in an MQTT consumer or a cloud function;
run as a script, it reads one batch on stdin and prints one line per
message: topic, ts and the payload as JSON text.
"""
import base64
import json
import sys


def unpack(batch: bytes):
    """Yield (topic, ts, payload bytes) for each message of a batch."""
    for m in json.loads(batch):
        if "payload_b64" in m:
            payload = base64.b64decode(m["payload_b64"])
        else:
            payload = json.dumps(m["payload"], separators=(",", ":")).encode()
        yield m["topic"], m["ts"], payload


if __name__ == "__main__":
    for topic, ts, payload in unpack(sys.stdin.buffer.read()):
        print(topic, ts, payload.decode("utf-8", "backslashreplace"))
