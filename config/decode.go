package config

import (
	"encoding"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decoder turns YAML nodes into typed structs strictly: unknown keys, wrong
// types and bad values are errors that name file:line:col and the key path.
// It keeps going after an error so that one run reports every problem, and it
// remembers where every key path was, so that later checks can point at it.
type Decoder struct {
	file   string
	lookup func(string) (string, bool)
	errs   Errors
	seen   map[Error]bool // errs, to record each problem once
	// unreadable are key paths whose value could not be decoded: their
	// problem is reported, and checks of the zero value left in its
	// place would only add noise.
	unreadable map[string]bool
	pos        map[string]Pos
	// visits counts decoded nodes: YAML aliases can make a small file
	// expand exponentially ("billion laughs"), and the walk must end
	// after maxVisits (a test lowers it, to stay fast).
	visits, maxVisits int
}

// maxVisits bounds the values one file may expand to; a real gateway
// configuration has a few thousand.
const maxVisits = 1_000_000

// NewDecoder returns a decoder for file; lookup resolves ${NAME} (nil means os.LookupEnv).
func NewDecoder(file string, lookup func(string) (string, bool)) *Decoder {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Decoder{file: file, lookup: lookup, seen: map[Error]bool{}, unreadable: map[string]bool{}, pos: map[string]Pos{}, maxVisits: maxVisits}
}

// Raw is a YAML subtree whose schema belongs to someone else (a driver); it
// decodes later with the same rules and error reporting.
type Raw struct {
	node *yaml.Node
	path string
	dec  *Decoder
}

// Path is the key path of the subtree, such as devices[2].
func (r Raw) Path() string { return r.path }

// Pos is where the subtree starts.
func (r Raw) Pos() Pos { return r.dec.nodePos(r.node) }

// IsZero reports whether the key was absent.
func (r Raw) IsZero() bool { return r.node == nil }

// Decoder is the decoder the subtree came from, for Errorf.
func (r Raw) Decoder() *Decoder { return r.dec }

// Decode decodes the subtree into out (a pointer), strictly.
func (r Raw) Decode(out any) {
	if r.node == nil {
		return
	}
	r.dec.decode(r.node, r.path, reflect.ValueOf(out).Elem())
}

// Lookup reads a scalar key of a mapping subtree without decoding the rest,
// so that a registry can find a device's driver before its schema is known.
// It reads the key as Decode would: merge keys (<<) are followed, and
// ${NAME} references are replaced. found is false when the key is absent
// or not a single value; ok is false when a reference could not be
// replaced, which is then reported at the key (once, however often the key
// is read or decoded).
func (r Raw) Lookup(key string) (value string, found, ok bool) {
	n := resolve(r.node)
	if n == nil || n.Kind != yaml.MappingNode {
		return "", false, false
	}
	v := mappingValue(n, key)
	if v == nil || v.Kind != yaml.ScalarNode {
		return "", false, false
	}
	path := join(r.path, key)
	if _, seen := r.dec.pos[path]; !seen {
		r.dec.pos[path] = r.dec.nodePos(v)
	}
	value, ok = r.dec.scalar(v, path)
	return value, true, ok
}

// mappingValue is the value of key in mapping n, its own or merged (<<) in,
// with aliases resolved, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for _, p := range keyValues(n) {
		if p[0].Value == key {
			return resolve(p[1])
		}
	}
	return nil
}

// keyValues lists the key and value nodes of mapping n as a decoder reads
// them: merge keys (<<: *defaults) first, so that explicit keys win, and of
// two merged mappings with the same key the first, as YAML says. A key
// written twice in n itself is listed twice, for the decoder to report.
func keyValues(n *yaml.Node) [][2]*yaml.Node {
	pairs := make([][2]*yaml.Node, 0, len(n.Content)/2)
	merged := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			for _, m := range mergeSources(val) {
				for j := 0; j+1 < len(m.Content); j += 2 {
					if key := m.Content[j].Value; !hasKey(n, key) && !merged[key] {
						merged[key] = true
						pairs = append(pairs, [2]*yaml.Node{m.Content[j], m.Content[j+1]})
					}
				}
			}
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{k, val})
	}
	return pairs
}

// Size is a number of bytes; YAML accepts 1048576, 512KiB, 64MiB, 2GiB, 1TiB.
type Size int64

// ParseSize reads a size in bytes with an optional binary unit.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with KiB, MiB, GiB or TiB", s)
	}
	v := f * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(v), nil
}

func (s Size) String() string {
	switch {
	case s >= 1<<30 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s >= 1<<20 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s >= 1<<10 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return fmt.Sprintf("%dB", int64(s))
}

// Errorf records a problem at a key path; the position is the path's, or
// its nearest decoded parent's.
func (d *Decoder) Errorf(path, format string, args ...any) {
	if d.unreadable[path] {
		return // its value could not be decoded, which is reported
	}
	d.add(Error{Pos: d.Where(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// add records e unless the same problem at the same place was recorded:
// a key read early (Raw.Lookup) and decoded later would report it twice.
func (d *Decoder) add(e Error) {
	if d.seen[e] {
		return
	}
	d.seen[e] = true
	d.errs = append(d.errs, &e)
}

// Where is the position of a decoded key path, or of its nearest parent.
func (d *Decoder) Where(path string) Pos {
	for p := path; ; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return Pos{File: d.file}
}

// Has reports whether the key path was present in the file.
func (d *Decoder) Has(path string) bool {
	_, ok := d.pos[path]
	return ok
}

// Errors returns every problem recorded so far, in file order.
func (d *Decoder) Errors() Errors {
	d.errs.sort()
	return d.errs
}

func (d *Decoder) nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *Decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.unreadable[path] = true
	d.add(Error{Pos: d.nodePos(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 100; depth++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return resolve(n.Content[0])
	}
	return n
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	rawType      = reflect.TypeOf(Raw{})
	textType     = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	envRef       = regexp.MustCompile(`\$\{([^}]*)\}`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *Decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	if n == nil {
		return
	}
	if d.visits++; d.visits > d.maxVisits {
		if d.visits == d.maxVisits+1 {
			d.fail(n, path, "the file expands to more than %d values (YAML aliases?)", d.maxVisits)
		}
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = d.nodePos(n)
	}
	if v.Type() == rawType {
		v.Set(reflect.ValueOf(Raw{node: n, path: path, dec: d}))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// An empty value leaves the default in place.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textType) && v.Kind() != reflect.Struct {
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.Content[i+1], join(path, k), e)
			v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
	default:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if err := setScalar(v, s); err != nil {
			d.fail(n, path, "%v", err)
		}
	}
}

// scalar returns a scalar's text with ${NAME} replaced from the environment.
func (d *Decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a single value, got %s", describe(n))
		return "", false
	}
	s := n.Value
	if !strings.Contains(s, "${") {
		return s, true
	}
	ok := true
	s = envRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if !envName.MatchString(name) {
			d.fail(n, path, "invalid environment variable reference %q", m)
			ok = false
			return m
		}
		val, set := d.lookup(name)
		if !set {
			d.fail(n, path, "environment variable %s is not set", name)
			ok = false
		}
		return val
	})
	return s, ok
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

type field struct {
	index []int
	name  string
}

// fields lists a struct's YAML keys, following ",inline" embeds.
func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for _, sub := range fields(ft) {
				out = append(out, field{index: append([]int{i}, sub.index...), name: sub.name})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{index: []int{i}, name: name})
	}
	return out
}

func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v
}

func (d *Decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fs := fields(v.Type())
	byName := make(map[string]field, len(fs))
	for _, f := range fs {
		byName[f.name] = f
	}
	seen := map[string]bool{}
	pairs := keyValues(n)
	for _, p := range pairs {
		k, val := p[0], p[1]
		key := k.Value
		kp := join(path, key)
		f, ok := byName[key]
		if !ok {
			d.fail(k, kp, "unknown key %q%s", key, suggest(key, fs))
			continue
		}
		if seen[key] {
			d.fail(k, kp, "key %q appears twice", key)
			continue
		}
		seen[key] = true
		// Errors about a single value point at the value; about a list or
		// mapping, at its key.
		if rv := resolve(val); rv != nil && rv.Kind == yaml.ScalarNode {
			d.pos[kp] = d.nodePos(rv)
		} else {
			d.pos[kp] = d.nodePos(k)
		}
		d.decode(val, kp, fieldByIndex(v, f.index))
	}
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// mergeSources returns the mappings a merge key (<<) names: one mapping or
// a list of mappings, as YAML defines it; nested lists are not followed,
// so that aliases cannot make a merge expand exponentially.
func mergeSources(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.MappingNode:
		return []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			if m := resolve(c); m != nil && m.Kind == yaml.MappingNode {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// suggest names the closest known key, or lists them all when none is close.
func suggest(key string, fs []field) string {
	names := make([]string, 0, len(fs))
	best, bestDist := "", 3
	for _, f := range fs {
		names = append(names, f.name)
		if dist := levenshtein(key, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func setScalar(v reflect.Value, s string) error {
	switch v.Type() {
	case durationType:
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			if s == "0" {
				v.SetInt(0)
				return nil
			}
			return fmt.Errorf("invalid duration %q: want a number with a unit such as 500ms, 5s, 1m, 168h", s)
		}
		v.SetInt(int64(dur))
		return nil
	case sizeType:
		sz, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(sz))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return fmt.Errorf("expected true or false, got %q", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := parseInt(s)
		if err != nil || v.OverflowInt(i) {
			return fmt.Errorf("expected a whole number that fits %d bits, got %q", v.Type().Bits(), s)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := parseInt(s)
		if err != nil || i < 0 || v.OverflowUint(uint64(i)) {
			return fmt.Errorf("expected a whole number from 0 to %d, got %q", uint64(1)<<v.Type().Bits()-1, s)
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil {
			if i, ierr := parseInt(s); ierr == nil {
				f, err = float64(i), nil
			}
		}
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("expected a number, got %q", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot decode into %s", v.Type())
	}
	return nil
}

// parseInt reads decimal, 0x hex, 0o octal and 0b binary; a leading zero
// alone does not mean octal (YAML 1.2).
func parseInt(s string) (int64, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), "_", "")
	neg := strings.HasPrefix(t, "-")
	u := strings.TrimPrefix(strings.TrimPrefix(t, "-"), "+")
	base := 10
	if len(u) > 2 && u[0] == '0' {
		switch u[1] {
		case 'x', 'X':
			base, u = 16, u[2:]
		case 'o', 'O':
			base, u = 8, u[2:]
		case 'b', 'B':
			base, u = 2, u[2:]
		}
	}
	i, err := strconv.ParseInt(u, base, 64)
	if err != nil {
		return 0, err
	}
	if neg {
		i = -i
	}
	return i, nil
}

func reflectValue(ptr any) reflect.Value { return reflect.ValueOf(ptr).Elem() }
