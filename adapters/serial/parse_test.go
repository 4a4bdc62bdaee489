package serial

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fieldbridge/gateway/mappings"
)

func TestConvert(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  mappings.Type
		want string // Kind and value, or "error"
	}{
		{"21.5", mappings.Float64, "float64 21.5"},
		{" 21.5 ", mappings.Float32, "float32 21.5"},
		{"nan", mappings.Float64, "float64 NaN"}, // published as a bad reading by the gateway
		{"1e400", mappings.Float64, "error"},
		{"-32768", mappings.Int16, "int -32768"},
		{"32768", mappings.Int16, "error"},
		{"+7", mappings.Uint16, "uint 7"},
		{"-1", mappings.Uint64, "error"},
		{"18446744073709551615", mappings.Uint64, "uint 18446744073709551615"},
		{"1.0", mappings.Int32, "error"},
		{"0x10", mappings.Int32, "error"},
		{"ON", mappings.Bool, "bool true"},
		{"no", mappings.Bool, "bool false"},
		{"2", mappings.Bool, "error"},
		{"", mappings.Float64, "error"},
		{"", mappings.String, "string "},
		{"  a b ", mappings.String, "string a b"},
	} {
		v, err := convert(c.in, c.typ)
		got := v.Kind().String() + " " + v.String()
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("convert(%q, %s) = %s (%v), want %s", c.in, c.typ, got, err, c.want)
		}
	}
}

func TestNMEAFraming(t *testing.T) {
	for _, c := range []struct {
		line string
		want error
	}{
		{"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47", nil},
		{"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6a", nil}, // lower-case hex
		{"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", errBadChecksum},
		{"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4", errBadChecksum},
		{"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*XY", errBadChecksum},
		{"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*46", errBadChecksum},
		{"GPGGA,123519*47", errUnparsable},
		{"$*00", errUnparsable},
		{nmeaSentence("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,F,46.9,M,,"), errUnparsable}, // altitude in feet?
		{nmeaSentence("GPGGA,123519,4807.038,N,01131.000,E,,08,0.9,545.4,M,46.9,M,,"), errUnparsable},  // no quality
		{nmeaSentence("GPGGA,123519,,,,,1,08,0.9,545.4,M,46.9,M,,"), errUnparsable},                    // a fix without a position
		{nmeaSentence("GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4807.038,N,01131.000,E,-22.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,361.0,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4807.038,N,01131.000,E,1e3,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,9107.038,N,01131.000,E,022.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4860.000,N,01131.000,E,022.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4807.038,Q,01131.000,E,022.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC,123519,A,4807.038,N,1131.000,E,022.4,084.4,230394,003.1,W"), errUnparsable},
		{nmeaSentence("GPRMC"), errUnparsable},  // valid framing, no fields
		{"$PGRME,15.0,M,45.0,M,25.0,M*1C", nil}, // proprietary: valid, ignored
	} {
		p := newNMEAParser([nmeaCount]int{0, 1, 2, 3, 4, 5, 6})
		n := 0
		err := p.parse([]byte(c.line), func(int, mappings.Value, error) { n++ })
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.line, err, c.want)
		}
		if err != nil && n > 0 {
			t.Errorf("%s: refused, yet %d values emitted", c.line, n)
		}
	}
}

// RMC's mode N (NMEA 2.3) means no fix even when the status says A.
func TestNMEAModeNotValid(t *testing.T) {
	p := newNMEAParser([nmeaCount]int{0, 1, 2, 3, 4, 5, 6})
	var errs []error
	line := nmeaSentence("GNRMC,101010,A,4807.038,N,01131.000,E,1.0,2.0,230394,,,N")
	if err := p.parse([]byte(line), func(_ int, _ mappings.Value, err error) { errs = append(errs, err) }); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 {
		t.Fatalf("%d values, want 4", len(errs))
	}
	for _, err := range errs {
		if !errors.Is(err, ErrNoFix) {
			t.Errorf("got %v, want ErrNoFix", err)
		}
	}
}

// nmeaSentence frames body with '$' and its checksum.
func nmeaSentence(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	const hex = "0123456789ABCDEF"
	return "$" + body + "*" + string([]byte{hex[sum>>4], hex[sum&15]})
}

func TestParseCoordinate(t *testing.T) {
	for _, c := range []struct {
		s, hemi string
		deg     int
		want    float64
		ok      bool
	}{
		{"4807.038", "N", 2, 48.1173, true},
		{"4807.038", "S", 2, -48.1173, true},
		{"01131.000", "W", 3, -11.51667, true},
		{"0000.0000", "N", 2, 0, true},
		{"9000.0000", "N", 2, 90, true},
		{"18000.00", "E", 3, 180, true},
		{"18000.01", "E", 3, 0, false},
		{"9000.0001", "N", 2, 0, false},
		{"4807", "N", 2, 48.12, true}, // whole minutes: degrees to 2 decimals
		{"48-7.038", "N", 2, 0, false},
		{"4807.038", "", 2, 0, false},
		{"4807.03e", "N", 2, 0, false},
	} {
		limit := 90.0
		pos, neg := byte('N'), byte('S')
		if c.deg == 3 {
			limit, pos, neg = 180, 'E', 'W'
		}
		got, err := parseCoordinate(c.s, c.hemi, c.deg, pos, neg, limit)
		if (err == nil) != c.ok || c.ok && got != c.want {
			t.Errorf("parseCoordinate(%q, %q) = %v, %v; want %v ok=%v", c.s, c.hemi, got, err, c.want, c.ok)
		}
	}
}

func TestKVEdges(t *testing.T) {
	pts := []textPoint{{index: 0, name: "a", typ: mappings.Float64}, {index: 1, name: "b", typ: mappings.String}}
	for _, c := range []struct {
		line, want string
	}{
		{"a=1 b=x", "0=1 1=x"},
		{"a = 1 ; b : \"x y\"", "0=1 1=x y"},
		{"a=1 a=2", "0=1"},
		{"=5 a=3", "0=3"},
		{"== :: ,;", "unparsable"},
		{"b=\"open", "unparsable"},
		{"tag a=7", "0=7"},
		{"c=1", ""},
		{"time=12:30:00 a=1", "0=1"},
	} {
		p := newKVParser(pts)
		var got []string
		err := p.parse([]byte(c.line), func(i int, v mappings.Value, err error) {
			got = append(got, string(rune('0'+i))+"="+v.String())
		})
		s := strings.Join(got, " ")
		if errors.Is(err, errUnparsable) {
			s = "unparsable"
		}
		if s != c.want {
			t.Errorf("%q: %q (%v), want %q", c.line, s, err, c.want)
		}
	}
}

// A top-level key spelled with a dot wins over the nested path.
func TestJSONLookup(t *testing.T) {
	p := &jsonParser{points: []jsonPoint{{index: 0, field: "a.b", path: []string{"a", "b"}, typ: mappings.Float64}}}
	for line, want := range map[string]float64{
		`{"a.b": 1, "a": {"b": 2}}`: 1,
		`{"a": {"b": 2}}`:           2,
		`{"a": [5]}`:                math.NaN(),
	} {
		got := math.NaN()
		if err := p.parse([]byte(line), func(_ int, v mappings.Value, _ error) { got = v.Float64() }); err != nil {
			t.Fatal(err)
		}
		if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%s: %v, want %v", line, got, want)
		}
	}
}

func TestSplitter(t *testing.T) {
	for _, c := range []struct {
		chunks []string
		want   string // lines joined by |, overlong as #
	}{
		{[]string{"a\r\nb\n"}, "a||b"},
		{[]string{"a", "b", "c\n"}, "abc"},
		{[]string{"ab\rcd\r"}, "ab|cd"},
		{[]string{"12345678\n", "x\n"}, "12345678|x"},
		{[]string{"123456789\n", "x\n"}, "#|x"},
		{[]string{"12345", "6789", "0123", "\nx\n"}, "#|x"},
		{[]string{"1234", "5678", "\n"}, "12345678"},
		{[]string{"123456789", "0", "\r\n"}, "#|"},
	} {
		s := splitter{max: 8}
		var got []string
		for _, ch := range c.chunks {
			s.feed([]byte(ch), func(b []byte) { got = append(got, string(b)) }, func() { got = append(got, "#") })
		}
		if g := strings.Join(got, "|"); g != c.want {
			t.Errorf("%q: %q, want %q", c.chunks, g, c.want)
		}
	}
}

func TestGarbage(t *testing.T) {
	for line, want := range map[string]bool{
		"T=21.5\tH=40":  false,
		"Temp: 21,5 °C": false,
		"a\x00b":        true,
		"a\x1bb":        true,
		"a\x7fb":        true,
		"\xff\xfe":      true,
		"caf\xc3":       true,
	} {
		if got := garbage([]byte(line)); got != want {
			t.Errorf("garbage(%q) = %v", line, got)
		}
	}
}
