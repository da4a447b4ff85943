package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// This file holds the tolerant readers Normalize uses. Mimecast's payloads disagree with
// their documentation and with each other (numbers as strings, several date formats,
// recipients as a string, a list or an object), so every reader accepts each shape seen
// and returns the zero value for anything else: a field of the wrong shape is treated as
// absent, and only a missing time fails the record.

// DefaultMaxRecordBytes is Options.MaxRecordBytes's default (alerts.max_record_size): a
// record larger than this is hostile or broken (a real one is a few kilobytes).
const DefaultMaxRecordBytes = config.DefaultAlertsMaxRecordSize

// Reasons a record is unusable, as RecordError.Reason and the keys of
// SourceSummary.MalformedReasons.
const (
	ReasonTooLarge  = "too large"
	ReasonNotObject = "not a JSON object"
	ReasonNoTime    = "no time"
	ReasonBadTime   = "unreadable time"
	ReasonNoID      = "no id"
)

// RecordError says why one record is unusable: a Reason from the list above, and the
// detail (naming the field, when one is at fault).
type RecordError struct {
	Reason string
	Err    error
}

func (e *RecordError) Error() string { return e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

func recordError(reason string, format string, args ...any) error {
	return &RecordError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// record is one decoded record: the generic JSON values of its top-level object.
type record map[string]any

// decodeRecord decodes raw into a record whose numbers are json.Number, so that big
// integers and numeric strings keep their exact text.
func decodeRecord(raw json.RawMessage) (record, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, recordError(ReasonNotObject, "the record is not JSON: %w", err)
	}
	if dec.More() {
		return nil, recordError(ReasonNotObject, "the record holds more than one JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, recordError(ReasonNotObject, "the record is %s, not a JSON object", jsonKind(v))
	}
	return record(m), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "a value"
}

// plain converts json.Number values (recursively) to int64 when integral and in range,
// else float64, giving the generic values Alert.Raw documents and CEL understands.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// scalarString renders a scalar as text: strings as they are, numbers in their JSON text,
// booleans as true/false. Lists, objects and null give "".
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// str returns the first of keys whose value is a non-empty scalar, as text.
func (r record) str(keys ...string) string {
	for _, k := range keys {
		if s := scalarString(r[k]); s != "" {
			return s
		}
	}
	return ""
}

// obj returns the object at key, or nil.
func (r record) obj(key string) record {
	if m, ok := r[key].(map[string]any); ok {
		return record(m)
	}
	return nil
}

// boolean reads true/false given as a boolean or as text ("true", "True", "1").
func (r record) boolean(key string) bool {
	switch x := r[key].(type) {
	case bool:
		return x
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return err == nil && b
	case json.Number:
		return x.String() == "1"
	}
	return false
}

// int64Of reads an integer given as a number or as text; ok is false otherwise.
func int64Of(v any) (int64, bool) {
	s := scalarString(v)
	if s == "" {
		return 0, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// timeLayouts are the text forms of §5.1 of the API reference, most common first.
var timeLayouts = []string{
	"2006-01-02T15:04:05-0700",     // legacy responses: +0000
	time.RFC3339Nano,               // Z or +hh:mm, with or without fractions
	"2006-01-02T15:04:05.999-0700", // legacy form with millis
	"2006-01-02T15:04:05",          // no zone: UTC (inferred)
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05-0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	time.DateOnly,
}

// epochMillisThreshold separates epoch seconds from epoch milliseconds: 1e11 seconds is
// the year 5138, 1e11 milliseconds is March 1973, so values above it are milliseconds.
const epochMillisThreshold = 100_000_000_000

// parseTime reads a time in any form of §5.1: the text layouts above, the extended form
// with a zone id ("2023-04-17T00:00:00.000+05:30[Asia/Kolkata]": the offset is kept, the
// id ignored), or a number of epoch seconds or milliseconds (as a number or as text).
// The result is UTC; ok is false when v is none of these.
func parseTime(v any) (time.Time, bool) {
	if n, ok := v.(json.Number); ok {
		return epochTime(n.String())
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if i := strings.IndexByte(s, '['); i > 0 && strings.HasSuffix(s, "]") {
		s = s[:i]
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return epochTime(s)
}

func epochTime(s string) (time.Time, bool) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			return time.Time{}, false
		}
		if math.Abs(f) >= epochMillisThreshold {
			return time.UnixMilli(int64(f)).UTC(), true
		}
		return time.Unix(0, int64(f*1e9)).UTC(), true
	}
	if i <= 0 || i > 1e15 {
		return time.Time{}, false
	}
	if i >= epochMillisThreshold {
		return time.UnixMilli(i).UTC(), true
	}
	return time.Unix(i, 0).UTC(), true
}

// timeField reads the first of keys that holds a time; a key present with a value that
// is not a time is an error naming it, a record without any of them an error naming all.
func (r record) timeField(keys ...string) (time.Time, error) {
	for _, k := range keys {
		v, present := r[k]
		if !present || v == nil || v == "" {
			continue
		}
		t, ok := parseTime(v)
		if !ok {
			return time.Time{}, recordError(ReasonBadTime, "field %s: %s is not a time", k, quoteValue(v))
		}
		return t, nil
	}
	if len(keys) == 1 {
		return time.Time{}, recordError(ReasonNoTime, "field %s: missing; an alert needs its time", keys[0])
	}
	return time.Time{}, recordError(ReasonNoTime, "fields %s: all missing; an alert needs its time", strings.Join(keys, ", "))
}

// quoteValue quotes a record value for an error, shortened.
func quoteValue(v any) string {
	s := scalarString(v)
	if s == "" {
		return jsonKind(v)
	}
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return strconv.Quote(s)
}

// addressKeys are the keys an address object is known or guessed to carry (inferred).
var addressKeys = []string{"emailAddress", "address", "email", "emailAddr", "mailbox", "value"}

// addresses reads mail addresses given as a string ("a@x", or several separated by
// commas or semicolons), a list of strings or objects, or one object with an address key.
// They are lower-cased, trimmed and deduplicated, in the order given; at most
// maxAddresses are kept so a hostile record stays cheap.
func addresses(v any) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
			a := strings.ToLower(strings.Trim(strings.TrimSpace(part), "<>"))
			if a == "" || seen[a] || len(out) >= maxAddresses {
				continue
			}
			seen[a] = true
			out = append(out, a)
		}
	}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			if depth > 0 {
				return
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			for _, k := range addressKeys {
				if s, ok := x[k].(string); ok && s != "" {
					add(s)
					return
				}
			}
		}
	}
	walk(v, 0)
	return out
}

// maxAddresses bounds the recipients of one alert.
const maxAddresses = 1000

// firstAddresses returns the addresses of the first key that has any.
func (r record) addresses(keys ...string) []string {
	for _, k := range keys {
		if a := addresses(r[k]); len(a) > 0 {
			return a
		}
	}
	return nil
}

// ipOrEmpty returns s when it parses as an IP address, else "" ("Internal IP").
func ipOrEmpty(s string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}

// extension returns the file name's extension, lower case, without the dot.
func extension(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 || strings.ContainsAny(name[i:], `/\`) {
		return ""
	}
	return strings.ToLower(name[i+1:])
}

// statusFromAction maps the action Mimecast took to the message's status, where the
// mapping is clear: hold → held, bounce → bounced, reject → rejected, block → blocked,
// none/allow (or an action list of only those, such as "none, none") → delivered.
// Anything else (warn, Browser Isolation, replace, an unknown word) gives "": the status
// is not known rather than guessed. The strongest outcome of a list wins.
func statusFromAction(action string) string {
	words := strings.FieldsFunc(strings.ToLower(action), func(r rune) bool { return r == ',' || r == ';' || r == '|' })
	if len(words) == 0 {
		return ""
	}
	rank := map[string]int{"delivered": 1, "held": 2, "bounced": 3, "rejected": 4, "blocked": 5}
	best, known := "", true
	for _, w := range words {
		var s string
		switch strings.TrimSpace(w) {
		case "hold", "held", "hold for review":
			s = "held"
		case "bounce", "bounced":
			s = "bounced"
		case "reject", "rejected":
			s = "rejected"
		case "block", "blocked":
			s = "blocked"
		case "none", "allow", "allowed", "deliver", "delivered", "release", "released":
			s = "delivered"
		default:
			known = false
		}
		if rank[s] > rank[best] {
			best = s
		}
	}
	if best == "delivered" && !known {
		return "" // "none, replace": not clearly delivered as sent
	}
	return best
}
