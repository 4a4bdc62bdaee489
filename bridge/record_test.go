package bridge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	for _, c := range []struct {
		topic   string
		qos     byte
		retain  bool
		payload []byte
	}{
		{"sites/a/plant/boiler/temp", 1, true, []byte(`{"value":21.5}`)},
		{"x", 0, false, nil},
		{"q2/ü/€", 2, false, bytes.Repeat([]byte{0, 0xff}, 5000)},
		{strings.Repeat("t", 65535), 1, false, []byte("long topic")},
	} {
		rec, err := appendRecord(nil, c.topic, c.qos, c.retain, now, c.payload)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if r.topic != c.topic || r.qos != c.qos || r.retain != c.retain || !r.time.Equal(now) || !bytes.Equal(r.payload, c.payload) {
			t.Errorf("round trip of %.20q: %+v", c.topic, r)
		}
	}
	for _, topic := range []string{"", "a/+/b", "a/#", "a\x00b", "\xff", strings.Repeat("t", 65536)} {
		if _, err := appendRecord(nil, topic, 1, false, now, nil); err == nil {
			t.Errorf("encoded topic %.20q", topic)
		}
	}
	if _, err := appendRecord(nil, "a", 3, false, now, nil); err == nil {
		t.Error("encoded QoS 3")
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good, _ := appendRecord(nil, "a/b", 1, false, time.Unix(1, 0), []byte("p"))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short":         good[:recordHeaderSize-1],
		"version":       mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"flags":         mutate(func(b []byte) []byte { b[1] = 0x08; return b }),
		"qos 3":         mutate(func(b []byte) []byte { b[1] = 3; return b }),
		"topic length":  mutate(func(b []byte) []byte { b[10] = 0xff; return b }),
		"empty topic":   mutate(func(b []byte) []byte { b[10] = 0; return b }),
		"wildcard":      mutate(func(b []byte) []byte { b[recordHeaderSize] = '#'; return b }),
		"invalid utf-8": mutate(func(b []byte) []byte { b[recordHeaderSize] = 0xc0; return b }),
	} {
		if _, err := decodeRecord(b); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeRecord: decoding never panics, and whatever decodes encodes
// back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	good, _ := appendRecord(nil, "sites/a/plant/x", 1, true, time.Unix(1700000000, 5), []byte("21.5"))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 'a'})
	f.Add(good[:recordHeaderSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("error %v does not wrap errBadRecord", err)
			}
			return
		}
		again, err := appendRecord(nil, r.topic, r.qos, r.retain, r.time, r.payload)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
