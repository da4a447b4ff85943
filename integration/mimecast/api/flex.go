package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// Tolerant decoding. The API is documented loosely and the public sources disagree about
// shapes (an address is an object in one place and an array in another, numbers arrive as
// strings, times in several layouts; ../shared/mimecast-api.md §2, §5.1, §7). So the wire
// types decode like a careful client of an undocumented API: every field accepts every shape
// seen or plausible, a value that cannot be read leaves the zero value instead of failing
// the record, unknown fields are ignored and keys match case-insensitively (the reference's
// own sample spells userCount "usercount"). Only a record that is not a JSON object fails.
// Whether a record still holds what its consumer needs (an id, a received time) is the
// consumer's check, not the decoder's.
//
// Decode reports the fields whose JSON kind was not the documented one, as Shapes (path and
// kind, never the value), so a client can warn about a new shape once. The marshalled form
// of every type is unchanged: the simulator still emits the documented shapes by default.

// Kind is the JSON kind of a value.
type Kind string

// The JSON kinds.
const (
	KindObject Kind = "object"
	KindArray  Kind = "array"
	KindString Kind = "string"
	KindNumber Kind = "number"
	KindBool   Kind = "bool"
	KindNull   Kind = "null"
)

// KindOf returns the JSON kind of raw, which must be one valid JSON value.
func KindOf(raw []byte) Kind {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return KindNull
	}
	switch raw[0] {
	case '{':
		return KindObject
	case '[':
		return KindArray
	case '"':
		return KindString
	case 't', 'f':
		return KindBool
	case 'n':
		return KindNull
	}
	return KindNumber
}

// Shape is one field whose JSON kind was not the documented one: Field is a path such as
// "to" or "attachments[].size", Kind the kind seen. It never carries the value.
type Shape struct {
	Field string
	Kind  Kind
}

// shapes collects Shapes, each path once. A nil *shapes collects nothing.
type shapes struct{ list []Shape }

// maxShapes bounds what one record can report; the documented fields are far fewer.
const maxShapes = 64

func (s *shapes) add(path string, k Kind) {
	if s == nil || len(s.list) >= maxShapes {
		return
	}
	for _, x := range s.list {
		if x.Field == path {
			return
		}
	}
	s.list = append(s.list, Shape{Field: path, Kind: k})
}

// flexer decodes one JSON value into its receiver without ever failing: what cannot be read
// leaves the zero value and is reported to s under path.
type flexer interface {
	flex(raw []byte, path string, s *shapes)
}

// Record is a wire type that Decode can read.
type Record interface {
	record(raw []byte, path string, s *shapes) error
}

// Decode reads one record into v tolerantly and returns the fields whose shape was not the
// documented one. The error is non-nil only if raw is not a JSON object.
func Decode(raw []byte, v Record) ([]Shape, error) {
	// The decoders below split the record without validating it again (scan.go).
	if !json.Valid(raw) {
		return nil, errNotObject
	}
	var s shapes
	err := v.record(raw, "", &s)
	return s.list, err
}

// errNotObject is the one way a record fails to decode.
var errNotObject = errors.New("record is not a JSON object")

// field is one documented field of a record and where it goes.
type field struct {
	name string // documented spelling
	dst  flexer
}

// fields decodes a JSON object into the documented fields of a record. A key matches its
// field exactly or, failing that, case-insensitively (the smallest such key wins, so the
// outcome does not depend on map order). Unknown keys are ignored. It fails only if raw is
// not an object.
func fields(raw []byte, path string, s *shapes, set ...field) error {
	if KindOf(raw) != KindObject {
		return errNotObject
	}
	var buf [16]member
	obj, ok := objectMembers(raw, buf[:0])
	if !ok {
		return errNotObject
	}
	for _, f := range set {
		v, ok := lookup(obj, f.name)
		if !ok {
			continue
		}
		p := f.name
		if path != "" {
			p = path + "." + f.name
		}
		f.dst.flex(v, p, s)
	}
	return nil
}

// FlexString is a string that also accepts a number or boolean (as its JSON text); other
// kinds give "".
type FlexString string

func (f *FlexString) flex(raw []byte, path string, s *shapes) {
	*f = ""
	switch k := KindOf(raw); k {
	case KindString:
		if v, ok := unquote(raw); ok {
			*f = FlexString(v)
		}
	case KindNull:
	case KindNumber, KindBool:
		*f = FlexString(bytes.TrimSpace(raw))
		s.add(path, k)
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexString) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// FlexInt64 is an integer that also accepts a numeric string ("123", "1.0") and null.
type FlexInt64 int64

func (f *FlexInt64) flex(raw []byte, path string, s *shapes) {
	n, ok := flexNumber(raw, path, s)
	*f = 0
	if ok {
		*f = FlexInt64(n)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexInt64) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// FlexInt is FlexInt64 for int fields.
type FlexInt int

func (f *FlexInt) flex(raw []byte, path string, s *shapes) {
	n, ok := flexNumber(raw, path, s)
	*f = 0
	if ok && n >= math.MinInt32 && n <= math.MaxInt32 {
		*f = FlexInt(n)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexInt) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// flexNumber reads an integer from a number or a numeric string; fractions are truncated.
func flexNumber(raw []byte, path string, s *shapes) (int64, bool) {
	text := string(bytes.TrimSpace(raw))
	switch k := KindOf(raw); k {
	case KindNumber:
	case KindString:
		s.add(path, k)
		v, ok := unquote(raw)
		if !ok {
			return 0, false
		}
		text = strings.TrimSpace(v)
	case KindNull:
		return 0, false
	default:
		s.add(path, k)
		return 0, false
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, true
	}
	x, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(x) || x < math.MinInt64 || x >= math.MaxInt64 {
		return 0, false
	}
	return int64(x), true
}

// FlexBool is a boolean that also accepts "true"/"false" (any case), 1/0 and null.
type FlexBool bool

func (f *FlexBool) flex(raw []byte, path string, s *shapes) {
	*f = false
	switch k := KindOf(raw); k {
	case KindBool:
		*f = FlexBool(bytes.Equal(bytes.TrimSpace(raw), []byte("true")))
	case KindNull:
	case KindString, KindNumber:
		s.add(path, k)
		v, ok := "", false
		if k == KindString {
			v, ok = unquote(raw)
		}
		if !ok {
			v = string(bytes.TrimSpace(raw))
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "yes":
			*f = true
		}
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexBool) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// FlexStrings is a list of strings that also accepts a single string (a header with one
// value) and null; elements that are not strings are read as FlexString does.
type FlexStrings []string

func (f *FlexStrings) flex(raw []byte, path string, s *shapes) {
	*f = nil
	switch k := KindOf(raw); k {
	case KindArray:
		var buf [16][]byte
		items, ok := arrayItems(raw, buf[:0])
		if !ok {
			return
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			var v FlexString
			v.flex(it, path+"[]", s)
			if KindOf(it) != KindNull {
				out = append(out, string(v))
			}
		}
		*f = out
	case KindNull:
	case KindString, KindNumber, KindBool:
		s.add(path, k)
		var v FlexString
		v.flex(raw, path, nil)
		*f = FlexStrings{string(v)}
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexStrings) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// FlexTime is a date-time kept as the text the API sent, so that its consumer decides what
// an unreadable time means (see ParseTime for the layouts accepted). A number is read as
// Unix epoch milliseconds (seconds if small), as the SIEM events carry them, and kept in
// TimeLayout.
type FlexTime string

func (f *FlexTime) flex(raw []byte, path string, s *shapes) {
	*f = ""
	switch k := KindOf(raw); k {
	case KindString:
		if v, ok := unquote(raw); ok {
			*f = FlexTime(v)
		}
	case KindNull:
	case KindNumber:
		s.add(path, k)
		n, ok := flexNumber(raw, path, nil)
		if !ok || n <= 0 {
			return
		}
		if n < 1e11 { // before 1973 in milliseconds: these are seconds
			n *= 1000
		}
		*f = FlexTime(FormatTime(time.UnixMilli(n)))
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *FlexTime) UnmarshalJSON(b []byte) error { f.flex(b, "", nil); return nil }

// flex reads an address from its documented object, from an array of them (the first with
// an address wins), from a string ("a@b" or "Name <a@b>") or null.
func (a *Address) flex(raw []byte, path string, s *shapes) {
	*a = Address{}
	switch k := KindOf(raw); k {
	case KindObject:
		_ = fields(raw, path, s,
			field{"emailAddress", (*FlexString)(&a.EmailAddress)},
			field{"displayableName", (*FlexString)(&a.DisplayableName)})
	case KindArray:
		s.add(path, k)
		var list Addresses
		list.flex(raw, path+"[]", s)
		for _, x := range list {
			if x.EmailAddress != "" {
				*a = x
				return
			}
		}
		if len(list) > 0 {
			*a = list[0]
		}
	case KindString:
		s.add(path, k)
		if v, ok := unquote(raw); ok {
			if list := parseAddresses(v); len(list) > 0 {
				*a = list[0]
			}
		}
	case KindNull:
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (a *Address) UnmarshalJSON(b []byte) error { a.flex(b, "", nil); return nil }

// Addresses is a list of addresses. Besides the documented array of objects it accepts one
// object, a string with one or more addresses, and null.
type Addresses []Address

func (l *Addresses) flex(raw []byte, path string, s *shapes) {
	*l = nil
	switch k := KindOf(raw); k {
	case KindArray:
		var buf [16][]byte
		items, ok := arrayItems(raw, buf[:0])
		if !ok {
			return
		}
		out := make(Addresses, 0, len(items))
		for _, it := range items {
			if KindOf(it) == KindNull {
				continue
			}
			var a Address
			a.flex(it, path+"[]", s)
			out = append(out, a)
		}
		*l = out
	case KindObject:
		s.add(path, k)
		var a Address
		a.flex(raw, path, s)
		*l = Addresses{a}
	case KindString:
		s.add(path, k)
		if v, ok := unquote(raw); ok {
			*l = parseAddresses(v)
		}
	case KindNull:
	default:
		s.add(path, k)
	}
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (l *Addresses) UnmarshalJSON(b []byte) error { l.flex(b, "", nil); return nil }

// parseAddresses reads "a@b", "Name <a@b>" or a comma-separated list of them. Text that is
// not an RFC 5322 address list is kept whole as one address (inferred: better an odd
// address in the index than none).
func parseAddresses(v string) Addresses {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make(Addresses, len(list))
		for i, m := range list {
			out[i] = Address{EmailAddress: m.Address, DisplayableName: m.Name}
		}
		return out
	}
	if i := strings.LastIndexByte(v, '<'); i >= 0 && strings.HasSuffix(v, ">") {
		name := strings.Trim(strings.TrimSpace(v[:i]), `"`)
		return Addresses{{EmailAddress: strings.TrimSpace(v[i+1 : len(v)-1]), DisplayableName: name}}
	}
	return Addresses{{EmailAddress: v}}
}

// list decodes a JSON array of records with one; elements that are not objects are skipped
// and reported. null and other kinds give nil.
func list[T any](raw []byte, path string, s *shapes, one func(raw []byte, path string, s *shapes, v *T) error) []T {
	switch k := KindOf(raw); k {
	case KindArray:
	case KindNull:
		return nil
	default:
		s.add(path, k)
		return nil
	}
	var buf [16][]byte
	items, ok := arrayItems(raw, buf[:0])
	if !ok {
		return nil
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		var v T
		if err := one(it, path+"[]", s, &v); err != nil {
			s.add(path+"[]", KindOf(it))
			continue
		}
		out = append(out, v)
	}
	return out
}

// flexFunc adapts a function to flexer.
type flexFunc func(raw []byte, path string, s *shapes)

func (f flexFunc) flex(raw []byte, path string, s *shapes) { f(raw, path, s) }
