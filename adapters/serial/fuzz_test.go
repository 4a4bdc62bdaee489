package serial

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldbridge/gateway/mappings"
)

// fuzzParser checks what every parser promises for any input: no panic; a
// refused line wraps errBadChecksum or errUnparsable and emitted nothing;
// emitted points exist, in increasing order, each at most once; a value
// without an error is of the point's kind. check adds format rules.
func fuzzParser(t *testing.T, d *Device, p parser, line []byte, check func(q string, v mappings.Value)) {
	last := -1
	var emitted int
	err := p.parse(line, func(i int, v mappings.Value, err error) {
		emitted++
		if i <= last || i >= len(d.info.Points) {
			t.Fatalf("point %d after %d, of %d", i, last, len(d.info.Points))
		}
		last = i
		if err != nil {
			return
		}
		pt := d.info.Points[i]
		if !kindFits(v.Kind(), pt.Type) {
			t.Fatalf("point %s (%s) got a %s value %v", pt.Name, pt.Type, v.Kind(), v)
		}
		if check != nil {
			check(pt.Name, v)
		}
	})
	if err != nil {
		if !errors.Is(err, errBadChecksum) && !errors.Is(err, errUnparsable) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if emitted > 0 {
			t.Fatalf("refused line emitted %d values: %v", emitted, err)
		}
	}
}

func kindFits(k mappings.Kind, t mappings.Type) bool {
	switch {
	case t == mappings.Bool:
		return k == mappings.KindBool
	case t == mappings.String:
		return k == mappings.KindString
	case t == mappings.Float32:
		return k == mappings.KindFloat32
	case t == mappings.Float64:
		return k == mappings.KindFloat64
	case t == mappings.Int16 || t == mappings.Int32 || t == mappings.Int64:
		return k == mappings.KindInt
	}
	return k == mappings.KindUint
}

// addInputs seeds f with every line of the golden inputs.
func addInputs(f *testing.F, format string) {
	data, err := os.ReadFile(filepath.Join("testdata/cases", format, "input.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.FieldsFunc(data, func(r rune) bool { return r == '\n' || r == '\r' }) {
		f.Add(l)
	}
}

func FuzzNMEA(f *testing.F) {
	addInputs(f, "nmea")
	f.Add([]byte(nmeaSentence("GPGGA,,9000.000,S,18000.000,W,8,99,,99999.9,M,,,,")))
	f.Add([]byte(nmeaSentence("GNRMC,,A,0000.0000,N,00000.0000,E,,,,,,A")))
	f.Add([]byte("$*"))
	f.Add([]byte("$GPGGA*"))
	d := mustDevice(f, "  - {name: gps, driver: serial, port: /dev/ttyS0, format: nmea}\n", "")
	p := d.parser()
	f.Fuzz(func(t *testing.T, line []byte) {
		fuzzParser(t, d, p, line, func(q string, v mappings.Value) {
			x := v.Float64()
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0):
				t.Fatalf("%s = %v", q, x)
			case q == "latitude" && math.Abs(x) > 90, q == "longitude" && math.Abs(x) > 180:
				t.Fatalf("%s = %v out of range", q, x)
			case (q == "speed" || q == "course") && x < 0, q == "course" && x > 360:
				t.Fatalf("%s = %v out of range", q, x)
			}
		})
	})
}

func FuzzJSONLine(f *testing.F) {
	addInputs(f, "json")
	f.Add([]byte(`{"a":{"b":[1,{"c":true}]},"s":"x","n":-1e308,"u":18446744073709551616}`))
	f.Add([]byte(`{"a.b":null,"a":[]}`))
	f.Add([]byte(`null`))
	d := mustDevice(f, `  - name: j
    driver: serial
    port: /dev/ttyS0
    format: json
    points:
      - {name: n}
      - {name: u, type: uint64}
      - {name: i, field: a.b.0, type: int16}
      - {name: c, field: a.b.1.c, type: bool}
      - {name: s, type: string}
      - {name: f, field: a.b, type: float32}
`, "")
	p := d.parser()
	f.Fuzz(func(t *testing.T, line []byte) { fuzzParser(t, d, p, line, nil) })
}

func FuzzKV(f *testing.F) {
	addInputs(f, "kv")
	f.Add([]byte(`T="a b" H=1;P:2,W = 3 x=`))
	f.Add([]byte(`=:=:"`))
	d := mustDevice(f, `  - name: k
    driver: serial
    port: /dev/ttyS0
    format: kv
    points:
      - {name: t, key: T}
      - {name: h, key: H, type: uint16}
      - {name: h2, key: H, type: int64}
      - {name: p, key: P, type: bool}
      - {name: s, key: ST, type: string}
`, "")
	p := d.parser()
	f.Fuzz(func(t *testing.T, line []byte) { fuzzParser(t, d, p, line, nil) })
}

func FuzzRegexLine(f *testing.F) {
	addInputs(f, "regex")
	f.Add([]byte("Temp: 99999999999999999999C Hum: 1% Rain: 1"))
	d := mustDevice(f, `  - name: r
    driver: serial
    port: /dev/ttyS0
    format: regex
    pattern: '^Temp:\s*(?P<temp>-?\d+(\.\d+)?)C\s+Hum:\s*(?P<hum>\d+)%(\s+Rain:\s*(?P<rain>\w*))?'
    points:
      - {name: temp, type: float32}
      - {name: hum, type: uint16}
      - {name: rain, type: bool}
      - {name: rain_text, group: rain, type: string}
`, "")
	p := d.parser()
	f.Fuzz(func(t *testing.T, line []byte) { fuzzParser(t, d, p, line, nil) })
}

// FuzzSplitter feeds a stream in pieces of varying size: lines never hold a
// line end, never exceed max, and what is not dropped comes out unchanged.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\r\nb\n\rccccccccccccccccccccc\nd"), uint8(3))
	f.Add([]byte("\n\n\r"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		const max = 16
		s := splitter{max: max}
		var out [][]byte
		overlong := 0
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(piece%32)+1)
			s.feed(rest[:n], func(b []byte) {
				if len(b) > max || indexEOL(b) >= 0 {
					t.Fatalf("line %q", b)
				}
				out = append(out, bytes.Clone(b))
			}, func() { overlong++ })
			rest = rest[n:]
		}
		// Without overlong lines, the lines are exactly the stream cut at
		// each line end (the unterminated tail stays buffered).
		if overlong == 0 {
			var cut [][]byte
			start := 0
			for i, c := range data {
				if c == '\n' || c == '\r' {
					cut = append(cut, data[start:i])
					start = i + 1
				}
			}
			if len(cut) != len(out) {
				t.Fatalf("%d lines, want %d", len(out), len(cut))
			}
			for i := range cut {
				if !bytes.Equal(cut[i], out[i]) {
					t.Fatalf("line %d = %q, want %q", i, out[i], cut[i])
				}
			}
		}
	})
}
