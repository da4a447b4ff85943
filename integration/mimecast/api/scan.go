package api

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Splitting JSON without encoding/json. The tolerant decoders walk a record level by level;
// with json.Unmarshal each level validated its bytes again and copied every member into a
// map of json.RawMessage, which made decoding a list page cost several times its parsing.
// These helpers slice a value that is known to be valid JSON (encoding/json validated what
// reaches an UnmarshalJSON method, and Decode validates its record) into members and items
// in one pass, without copying. On bytes that are not valid JSON they never panic or loop:
// they report ok=false, which the decoders treat like json.Unmarshal's error.

// member is one "key": value of an object; key is unescaped, val the value's bytes.
type member struct {
	key, val []byte
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts with the quote at b[i].
func stringEnd(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return 0, false
		}
		i += q
		// The quote is escaped when an odd number of backslashes precedes it.
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i + 1, true
		}
	}
	return 0, false
}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := stringEnd(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j, j > i
		}
		j++
	}
	return j, true
}

// objectMembers appends the members of the object raw to ms, in order, duplicates included.
func objectMembers(raw []byte, ms []member) ([]member, bool) {
	i, empty, ok := openContainer(raw, '{', '}')
	if empty || !ok {
		return ms, ok
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return ms, false
		}
		end, ok := stringEnd(raw, i)
		if !ok {
			return ms, false
		}
		key := raw[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal(raw[i:end], &k) != nil {
				return ms, false
			}
			key = []byte(k)
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return ms, false
		}
		i = skipSpace(raw, i+1)
		vend, ok := valueEnd(raw, i)
		if !ok {
			return ms, false
		}
		ms = append(ms, member{key: key, val: raw[i:vend]})
		var closed bool
		if i, closed, ok = afterValue(raw, vend, '}'); closed || !ok {
			return ms, ok
		}
	}
	return ms, false
}

// lookup finds the member for a documented field name as json.Unmarshal into a map and then
// fields did: the key spelled exactly (the last one when repeated), else the smallest key
// equal to it under case folding (again the last when repeated).
func lookup(ms []member, name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if string(ms[i].key) == name {
			return ms[i].val, true
		}
	}
	var best, v []byte
	ok := false
	for _, m := range ms {
		if bytes.EqualFold(m.key, []byte(name)) && (!ok || bytes.Compare(m.key, best) <= 0) {
			best, v, ok = m.key, m.val, true
		}
	}
	return v, ok
}

// arrayItems appends the elements of the array raw to items.
func arrayItems(raw []byte, items [][]byte) ([][]byte, bool) {
	i, empty, ok := openContainer(raw, '[', ']')
	if empty || !ok {
		return items, ok
	}
	for i < len(raw) {
		end, ok := valueEnd(raw, i)
		if !ok {
			return items, false
		}
		items = append(items, raw[i:end])
		var closed bool
		if i, closed, ok = afterValue(raw, end, ']'); closed || !ok {
			return items, ok
		}
	}
	return items, false
}

// openContainer reads the start of an object or array that open starts and close ends: next
// is where its first value starts, and empty says that close follows at once. ok is false when
// raw does not start with open.
func openContainer(raw []byte, open, close byte) (next int, empty, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != open {
		return i, false, false
	}
	i = skipSpace(raw, i+1)
	return i, i < len(raw) && raw[i] == close, true
}

// afterValue reads what follows a member or element that ends at end, in an object or array
// that close ends: closed when close follows, else next is where the next value starts after
// the comma. ok is false when neither follows.
func afterValue(raw []byte, end int, close byte) (next int, closed, ok bool) {
	i := skipSpace(raw, end)
	switch {
	case i >= len(raw):
		return i, false, false
	case raw[i] == close:
		return i, true, true
	case raw[i] == ',':
		return skipSpace(raw, i+1), false, true
	}
	return i, false, false
}

// unquote decodes a JSON string as json.Unmarshal into a string does: the plain case (no
// escapes, valid UTF-8) by slicing, anything else by json.Unmarshal itself.
func unquote(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) && !hasControl(inner) {
			return string(inner), true
		}
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// hasControl reports a byte below 0x20, which JSON allows in a string only escaped.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}
