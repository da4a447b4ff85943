// Package rule is the one rule of matching of the configuration's include and exclude lists:
// a regular expression that matches the whole value. It is a leaf, so that the components
// that match (crawler, alerts) and the configuration that compiles the rules can all use it
// without the components importing config.
package rule

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Regexp is a regular expression compiled when the configuration is loaded. It matches
// the whole value: the source "a.*" is compiled as "^(?:a.*)$", so a rule never matches
// by accident inside a longer string. String returns the source as written.
//
// The zero Regexp matches nothing.
type Regexp struct{ *regexp.Regexp }

// NewRegexp compiles source as a whole-value regular expression.
func NewRegexp(source string) (Regexp, error) {
	if source == "" {
		return Regexp{}, errors.New(`"" is an empty regular expression; write a pattern such as ".*@example\.com"`)
	}
	// Compile the source alone first so that an error quotes what the user wrote,
	// not the anchored wrapper.
	if _, err := regexp.Compile(source); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = string(se.Code) + ": `" + se.Expr + "`"
		}
		return Regexp{}, fmt.Errorf("%s is not a valid regular expression: %s", Quote(source), msg)
	}
	re, err := regexp.Compile(`^(?:` + source + `)$`)
	if err != nil {
		return Regexp{}, fmt.Errorf("%s is not a valid regular expression: %w", Quote(source), err)
	}
	return Regexp{re}, nil
}

// MustRegexp is NewRegexp for sources known to be valid, such as those in tests.
func MustRegexp(source string) Regexp {
	r, err := NewRegexp(source)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the source as written in the configuration.
func (r Regexp) String() string {
	if r.Regexp == nil {
		return ""
	}
	s := r.Regexp.String()
	return s[len(`^(?:`) : len(s)-len(`)$`)]
}

// MatchString reports whether the rule matches all of s. The zero Regexp matches nothing.
func (r Regexp) MatchString(s string) bool {
	return r.Regexp != nil && r.Regexp.MatchString(s)
}

// UnmarshalYAML implements yaml.Unmarshaler. A list or a mapping is an error that does not
// print the node.
func (r *Regexp) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("is %s, want a regular expression", KindName(n))
	}
	re, err := NewRegexp(n.Value)
	if err != nil {
		return err
	}
	*r = re
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Regexp) MarshalYAML() (any, error) { return r.String(), nil }

// MarshalText implements encoding.TextMarshaler (it shadows the anchored form of the
// embedded regexp).
func (r Regexp) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (it shadows the embedded one, which
// would dereference a nil pointer).
func (r *Regexp) UnmarshalText(b []byte) error {
	re, err := NewRegexp(string(b))
	if err != nil {
		return err
	}
	*r = re
	return nil
}

// MatchAny returns the index of the first rule that matches s, or -1 and false.
func MatchAny(rs []Regexp, s string) (int, bool) {
	for i, r := range rs {
		if r.MatchString(s) {
			return i, true
		}
	}
	return -1, false
}

// KindName names the kind of a YAML node that is not a single value, for an error that must
// not print the node (it may hold a secret).
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

// Quote quotes a configured value for an error message, shortened so that a pasted
// blob cannot flood the output.
func Quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + "..."
	}
	return strconv.Quote(s)
}
