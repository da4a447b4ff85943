package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/internal/rule"
)

// secretMask is what a non-empty Secret prints as, everywhere.
const secretMask = "<secret>"

// Secret is a string that must never be printed: every way of formatting or encoding it
// (fmt verbs, JSON, YAML, text) yields "<secret>" when it is set and "" when it is not.
// Reveal is the only way to get the value, so each use of the real value is explicit.
type Secret string

// Reveal returns the secret value. Call it only where the value is handed to the
// service that needs it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretMask
}

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %s, %q, %x, ...) can
// print the value, not even when the Secret is a field of a printed struct.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		fmt.Fprint(f, strconv.Quote(s.String()))
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler, for any other encoder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Regexp is a regular expression that matches the whole value (rule.Regexp, which the
// components that match use without importing config).
type Regexp = rule.Regexp

// NewRegexp compiles source as a whole-value regular expression.
func NewRegexp(source string) (Regexp, error) { return rule.NewRegexp(source) }

// MustRegexp is NewRegexp for sources known to be valid, such as those in tests.
func MustRegexp(source string) Regexp { return rule.MustRegexp(source) }

// MatchAny returns the index of the first rule that matches s, or -1 and false.
func MatchAny(rs []Regexp, s string) (int, bool) { return rule.MatchAny(rs, s) }

// Duration is a time.Duration written as a number with a unit: "30s", "15m", "1h30m",
// "-60s", "2d" (d = 24h). Units: ns, us (or µs), ms, s, m, h, d. A bare number other
// than 0 is rejected, because its unit would be a guess.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way it is written in the configuration.
func (d Duration) String() string { return formatDuration(time.Duration(d)) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errNotScalar(n, "a duration")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// durationUnit returns the length of a duration unit.
func durationUnit(name string) (time.Duration, bool) {
	switch name {
	case "ns":
		return time.Nanosecond, true
	case "us", "µs", "μs": // micro sign and Greek mu both appear in the wild
		return time.Microsecond, true
	case "ms":
		return time.Millisecond, true
	case "s":
		return time.Second, true
	case "m":
		return time.Minute, true
	case "h":
		return time.Hour, true
	case "d":
		return 24 * time.Hour, true
	}
	return 0, false
}

func parseDuration(raw string) (time.Duration, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s is not a duration: %s; write a number and a unit (ns, us, ms, s, m, h, d), e.g. 30s, 15m, 1h30m, -2d", quote(raw), why)
	}
	s := strings.TrimSpace(raw)
	if s == "0" || s == "+0" || s == "-0" {
		return 0, nil
	}
	if s == "" {
		return 0, bad("it is empty")
	}
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, bad("there is no number")
	}
	var total float64 // summed as float to detect overflow; exact for the values we accept
	var exact time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		num := s[:i]
		if num == "" || num == "." || strings.Count(num, ".") > 1 {
			return 0, bad("expected a number at " + quote(s))
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unitName := s[:j]
		s = s[j:]
		if unitName == "" {
			return 0, bad("the number " + num + " has no unit")
		}
		unit, ok := durationUnit(unitName)
		if !ok {
			return 0, bad("unknown unit " + quote(unitName))
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, bad("expected a number at " + quote(num))
		}
		total += f * float64(unit)
		if total > math.MaxInt64/2 {
			return 0, bad("it is too large")
		}
		if strings.Contains(num, ".") {
			exact += time.Duration(math.Round(f * float64(unit)))
		} else {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				return 0, bad("it is too large")
			}
			exact += time.Duration(n) * unit
		}
	}
	if neg {
		exact = -exact
	}
	return exact, nil
}

// formatDuration writes d in the shortest form parseDuration reads back: whole days as
// "2d", otherwise Go's form without trailing zero units ("1h30m", not "1h30m0s").
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d == 0 {
		return "0s"
	}
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Date is a point in time written as "2024-01-31" (midnight UTC) or in RFC 3339
// ("2024-01-31T08:00:00+01:00").
type Date struct{ time.Time }

// String formats the date the way it is written in the configuration.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	u := d.UTC()
	if d.Location() == time.UTC && u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0 && u.Nanosecond() == 0 {
		return u.Format(time.DateOnly)
	}
	return d.Format(time.RFC3339Nano)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errNotScalar(n, "a date")
	}
	t, err := parseDate(n.Value)
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}

// MarshalYAML implements yaml.Marshaler (as a string, so it reads back the same way).
func (d Date) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText implements encoding.TextMarshaler.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Date) UnmarshalText(b []byte) error {
	t, err := parseDate(string(b))
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}

func parseDate(raw string) (time.Time, error) {
	s := strings.TrimSpace(raw)
	if t, err := time.ParseInLocation(time.DateOnly, s, time.UTC); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s is not a date; write YYYY-MM-DD (midnight UTC) or an RFC 3339 time such as 2024-01-31T08:00:00Z", quote(raw))
}

// ByteSize is a number of bytes written as a plain integer ("1048576") or with a unit:
// decimal kB (or KB, k), MB (M), GB (G), TB (T) are powers of 1000, binary KiB (Ki),
// MiB (Mi), GiB (Gi), TiB (Ti) powers of 1024. Units are case-insensitive; "B" may be
// added or left out.
type ByteSize int64

// String formats the size with the largest unit that divides it exactly.
func (b ByteSize) String() string {
	for _, u := range byteUnitsDesc() {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errNotScalar(n, "a byte size")
	}
	v, err := parseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(t []byte) error {
	v, err := parseByteSize(string(t))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

type byteUnit struct {
	name string
	size int64
}

// byteUnitsDesc lists the units String chooses from, largest first; at equal rank the
// decimal unit wins, as sizes in this configuration are mostly written in decimal.
func byteUnitsDesc() []byteUnit {
	return []byteUnit{
		{"TB", 1e12}, {"TiB", 1 << 40},
		{"GB", 1e9}, {"GiB", 1 << 30},
		{"MB", 1e6}, {"MiB", 1 << 20},
		{"KB", 1e3}, {"KiB", 1 << 10},
	}
}

// byteUnitSize returns the size of a unit given in lower case.
func byteUnitSize(name string) (int64, bool) {
	switch name {
	case "", "b":
		return 1, true
	case "k", "kb":
		return 1e3, true
	case "m", "mb":
		return 1e6, true
	case "g", "gb":
		return 1e9, true
	case "t", "tb":
		return 1e12, true
	case "ki", "kib":
		return 1 << 10, true
	case "mi", "mib":
		return 1 << 20, true
	case "gi", "gib":
		return 1 << 30, true
	case "ti", "tib":
		return 1 << 40, true
	}
	return 0, false
}

func parseByteSize(raw string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s is not a byte size: %s; write a number of bytes or a number and a unit, e.g. 1048576, 512KiB, 25MB", quote(raw), why)
	}
	s := strings.TrimSpace(raw)
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unitName := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	unit, ok := byteUnitSize(unitName)
	if !ok {
		return 0, bad("unknown unit " + quote(s[i:]))
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, bad("expected a whole number")
		}
		if n > math.MaxInt64/unit || n < math.MinInt64/unit {
			return 0, bad("it is too large")
		}
		return n * unit, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad("expected a number")
	}
	v := math.Round(f * float64(unit))
	if v >= math.MaxInt64 || v <= math.MinInt64 {
		return 0, bad("it is too large")
	}
	return int64(v), nil
}

// errNotScalar reports a list or mapping where a single value belongs, without
// printing the node (it may hold a secret).
func errNotScalar(n *yaml.Node, want string) error {
	return fmt.Errorf("is %s, want %s", kindName(n), want)
}

func kindName(n *yaml.Node) string { return rule.KindName(n) }

// quote quotes a configured value for an error message, shortened (rule.Quote).
func quote(s string) string { return rule.Quote(s) }
