package serial

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fieldbridge/gateway/mappings"
)

// jsonPoint is a point read from a field of a JSON object.
type jsonPoint struct {
	index int    // into Info.Points
	field string // as configured
	path  []string
	typ   mappings.Type
}

// jsonParser reads one JSON object per line. A listed field that a line
// lacks is not reported: boards often print several kinds of objects.
type jsonParser struct {
	points []jsonPoint
}

func (p *jsonParser) parse(line []byte, emit emitFunc) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // integers stay exact until the point's type is known
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("%w: %v", errUnparsable, err)
	}
	if obj == nil {
		return fmt.Errorf("%w: null is not an object", errUnparsable)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: more than one JSON value on the line", errUnparsable)
	}
	for _, pt := range p.points {
		raw, found := lookup(obj, pt.field, pt.path)
		if !found {
			continue
		}
		v, err := convertJSON(raw, pt.typ)
		if err != nil {
			err = fmt.Errorf("field %s: %w", pt.field, err)
		}
		emit(pt.index, v, err)
	}
	return nil
}

// lookup finds a field: a top-level key spelled exactly as configured
// first, so that a key holding a dot still works, then the dotted path
// through nested objects, where a number indexes an array.
func lookup(obj map[string]any, field string, path []string) (any, bool) {
	if v, ok := obj[field]; ok {
		return v, true
	}
	if len(path) < 2 {
		return nil, false
	}
	var cur any = obj
	for _, seg := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// convertJSON reads a JSON value as type t. Numbers and strings go through
// convert; true and false only into a bool or a string.
func convertJSON(v any, t mappings.Type) (mappings.Value, error) {
	switch x := v.(type) {
	case nil:
		return mappings.Value{}, errors.New("null")
	case bool:
		switch t {
		case mappings.Bool:
			return mappings.BoolValue(x), nil
		case mappings.String:
			return mappings.StringValue(strconv.FormatBool(x)), nil
		}
		return mappings.Value{}, fmt.Errorf("%t is a bool, the point is %s (set type: bool)", x, t)
	case json.Number:
		return convert(string(x), t)
	case string:
		return convert(x, t)
	case map[string]any:
		return mappings.Value{}, errors.New("an object, not a value")
	case []any:
		return mappings.Value{}, errors.New("an array, not a value")
	}
	return mappings.Value{}, fmt.Errorf("unexpected %T", v)
}
