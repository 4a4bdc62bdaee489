package mappings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ParseCommand reads the payload of a command for point p and returns the
// raw value to write (before scale and offset, of the kind Encode takes for
// p.Type). The payload is a bare value (21.5, true) or {"value": x}; x may
// also be a JSON string holding the bare value ("21.5"), as dashboards
// send. A bool takes true/false, on/off or 1/0, case ignored. A number must
// be decimal (no hex, NaN or Inf), inside write_range (in the user's units)
// and must map to a raw value the type can hold (see Scaling.Raw). Errors
// are meant for the sender, such as "value 120 outside write_range [0, 90]".
func ParseCommand(payload []byte, p Point) (Value, error) {
	if !p.Writable {
		return Value{}, errors.New("point is not writable")
	}
	text, err := commandText(payload)
	if err != nil {
		return Value{}, err
	}
	switch {
	case p.Type == Bool:
		switch strings.ToLower(text) {
		case "true", "on", "1":
			return BoolValue(true), nil
		case "false", "off", "0":
			return BoolValue(false), nil
		}
		return Value{}, fmt.Errorf("%s is not a bool: use true/false, on/off or 1/0", quoteShort(text))
	case !p.Type.IsInteger() && !p.Type.IsFloat():
		return Value{}, fmt.Errorf("a %s point cannot be written", p.Type)
	}
	if !isDecimal(text) {
		return Value{}, fmt.Errorf("%s is not a number", quoteShort(text))
	}
	if p.Type.IsInteger() && p.Scaling.identity() && !strings.ContainsAny(text, ".eE") {
		return exactInteger(text, p)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		// Only a range error is left: the syntax was checked.
		return Value{}, fmt.Errorf("value %s outside the range of %s: %s", shortText(text), p.Scaling.describe(p.Type), p.Scaling.rangeText(p.Type))
	}
	if err := checkWriteRange(f, p); err != nil {
		return Value{}, err
	}
	return p.Scaling.Raw(f, p.Type)
}

// exactInteger parses an integer for an unscaled integer point without
// passing through float64, which would round above 2^53.
func exactInteger(text string, p Point) (Value, error) {
	text = strings.TrimPrefix(text, "+")
	outside := fmt.Errorf("value %s outside the range of %s: %s", shortText(text), p.Type, p.Type.rangeText())
	var v Value
	if p.Type.signed() {
		i, err := strconv.ParseInt(text, 10, p.Type.Bits())
		if err != nil {
			return Value{}, outside
		}
		v = IntValue(i)
	} else {
		if strings.HasPrefix(text, "-") {
			if strings.Trim(text[1:], "0") != "" {
				return Value{}, outside
			}
			text = "0"
		}
		u, err := strconv.ParseUint(text, 10, p.Type.Bits())
		if err != nil {
			return Value{}, outside
		}
		v = UintValue(u)
	}
	if err := checkWriteRange(v.Float64(), p); err != nil {
		return Value{}, err
	}
	return v, nil
}

func checkWriteRange(f float64, p Point) error {
	if r := p.WriteRange; r != nil && (f < r[0] || f > r[1]) {
		return fmt.Errorf("value %s outside write_range [%s, %s]", formatFloat(f), formatFloat(r[0]), formatFloat(r[1]))
	}
	return nil
}

// commandText returns the bare value of a payload: the payload itself, the
// content of a JSON string, or the "value" member of a JSON object.
func commandText(payload []byte) (string, error) {
	s := bytes.TrimSpace(payload)
	if len(s) == 0 {
		return "", errors.New("empty payload")
	}
	if s[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(s, &m); err != nil {
			return "", fmt.Errorf("invalid JSON: %v", err)
		}
		raw, ok := m["value"]
		if !ok {
			return "", errors.New(`JSON payload needs "value"`)
		}
		if len(m) > 1 {
			keys := make([]string, 0, len(m))
			for k := range m {
				if k != "value" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			return "", fmt.Errorf(`unknown key %s: a command holds only "value"`, quoteShort(keys[0]))
		}
		s = bytes.TrimSpace(raw)
		switch s[0] {
		case 'n':
			return "", errors.New("value is null")
		case '{', '[':
			return "", errors.New("value must be a number or a bool")
		}
	}
	if s[0] == '"' {
		var str string
		if err := json.Unmarshal(s, &str); err != nil {
			return "", fmt.Errorf("invalid JSON string: %v", err)
		}
		str = strings.TrimSpace(str)
		if str == "" {
			return "", errors.New("empty value")
		}
		return str, nil
	}
	return string(s), nil
}

// isDecimal accepts [+-]digits[.digits][e[+-]digits], with digits on at
// least one side of the point: what a person or a JSON encoder writes, and
// none of ParseFloat's extras (hex, underscores, inf, nan).
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// shortText cuts a syntax-checked number for a message.
func shortText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
