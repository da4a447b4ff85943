package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// problem is one thing wrong with the configuration, tied to a key path.
type problem struct {
	path string // "mailboxes.include[1]"; "" for the document as a whole
	line int    // line of the document the problem was found at, 0 if none
	msg  string
}

// origin records where the value at a key path came from, so that a problem found later
// by validation can point at the line of the file or at the environment variable.
type origin struct {
	line int
	env  string
}

// decoder walks the YAML node tree in step with the Config struct. yaml.v3 alone stops
// at the first error a custom unmarshaler returns and never knows the key path; walking
// the tree ourselves lets us report every problem with its path and line.
type decoder struct {
	problems []problem
	origins  map[string]origin
	// given holds the key paths the file gives a value (null, which keeps the default, is
	// not one).
	given map[string]bool
	// regexBytes counts the bytes of regular expression sources compiled so far; past
	// MaxRegexBytes the rest are refused (once) rather than compiled, because compiling costs
	// memory in proportion to the source.
	regexBytes   int
	regexRefused bool
}

// Bounds on what one configuration may ask for, so that a hostile or mistaken file costs
// bounded time and memory. docs/configuration.md states the same numbers.
const (
	// MaxFileBytes bounds the configuration file. The largest useful configuration (a few
	// thousand rules) is well under a megabyte; the YAML parser holds the whole document as
	// a tree many times its size.
	MaxFileBytes = 4 << 20
	// MaxListEntries bounds every list: rules, views, addresses.
	MaxListEntries = 10000
	// MaxRegexBytes bounds the total source of all regular expressions. Compiling one costs
	// memory in proportion to its source, about a hundred times as much.
	MaxRegexBytes = 256 << 10
)

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, problem{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

// decodeDocument decodes data strictly into cfg, which holds the defaults.
func (d *decoder) decodeDocument(data []byte, cfg *Config) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file: every setting keeps its default
		}
		d.addSyntax(err, "not valid YAML")
		return
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		line := next.Line
		if err != nil {
			d.addSyntax(err, "not valid YAML after the first document")
			return
		}
		d.add("", line, "the file holds more than one YAML document; put all settings in one")
		return
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
}

// syntaxLine splits yaml's "yaml: line 4: did not find ..." into the line and the rest.
var syntaxLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// addSyntax records a YAML syntax error, moving its line number to where lines go.
func (d *decoder) addSyntax(err error, what string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			d.add("", line, "%s: %s", what, m[2])
			return
		}
	}
	d.add("", 0, "%s: %s", what, msg)
}

// maxAliasDepth bounds alias chains; the parser rejects cycles, this is belt and braces.
const maxAliasDepth = 16

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i >= maxAliasDepth {
			d.add(path, n.Line, "alias *%s cannot be resolved", n.Value)
			return
		}
		n = n.Alias
	}
	if path != "" {
		d.origins[path] = origin{line: n.Line}
	}
	// A key given as null (or with nothing after the colon) keeps its default.
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if path != "" && d.given != nil {
		d.given[path] = true
	}
	if _, ok := v.Addr().Interface().(*Regexp); ok && n.Kind == yaml.ScalarNode {
		d.regexBytes += len(n.Value)
		if d.regexBytes > MaxRegexBytes {
			if !d.regexRefused {
				d.add(path, n.Line, "the regular expressions up to here total %d bytes; the limit for all of them together is %d bytes (%s)",
					d.regexBytes, MaxRegexBytes, ByteSize(MaxRegexBytes))
			}
			d.regexRefused = true
			return
		}
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			d.add(path, n.Line, "%s", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "is %s, want a mapping of %s", kindName(n), describeKeys(v.Type()))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "a key is %s; keys must be plain names such as %s", kindName(k), describeKeys(v.Type()))
			continue
		}
		name := k.Value
		sub := joinPath(path, name)
		if first, dup := seen[name]; dup {
			d.add(sub, k.Line, "key repeated; it is already set at line %d", first)
			continue
		}
		seen[name] = k.Line
		idx, ok := fields[name]
		if !ok {
			msg := "unknown key; allowed here: " + describeKeys(v.Type())
			if s := suggest(name, fields); s != "" {
				msg = fmt.Sprintf("unknown key; did you mean %q? Allowed here: %s", s, describeKeys(v.Type()))
			}
			d.add(sub, k.Line, "%s", msg)
			continue
		}
		d.decode(val, v.Field(idx), sub)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "is %s, want a list", kindName(n))
		return
	}
	if len(n.Content) > MaxListEntries {
		d.add(path, n.Line, "has %d entries; the limit is %d", len(n.Content), MaxListEntries)
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	want := map[reflect.Kind]string{
		reflect.String:  "a string",
		reflect.Bool:    "true or false",
		reflect.Int:     "an integer",
		reflect.Float64: "a number",
	}[v.Kind()]
	if want == "" {
		// Only reachable if a field of an unsupported type is added to Config.
		d.add(path, n.Line, "cannot be decoded into %s", v.Type())
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "is %s, want %s", kindName(n), want)
		return
	}
	if v.Kind() == reflect.String {
		// Any scalar is a string; yaml's tag resolution ("yes", "0x1F", dates) does not
		// apply to string settings. Secrets take this path too, so their value is never
		// quoted in an error.
		v.SetString(n.Value)
		return
	}
	target := reflect.New(v.Type())
	if err := n.Decode(target.Interface()); err != nil {
		d.add(path, n.Line, "%s is not %s", quote(n.Value), want)
		return
	}
	v.Set(target.Elem())
}

// yamlFields maps the yaml key of each field of t to its index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// describeKeys lists the keys of t in declaration order.
func describeKeys(t reflect.Type) string {
	fields := yamlFields(t)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return fields[names[i]] < fields[names[j]] })
	return strings.Join(names, ", ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known key closest to name when it is a plausible typo.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3 // more than two edits away is not a typo
	for k := range fields {
		dist := editDistance(strings.ToLower(name), k)
		if dist < bestDist || dist == bestDist && best != "" && k < best {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance, capped in cost by the short keys it compares.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
