package index

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The archive's two document types encode themselves: encoding/json spends most of its time on
// reflection and on escaping one byte at a time, and these documents are most of what the
// crawler sends. Every method here produces exactly what json.Marshal produces for the same
// value; TestAppendJSONIsMarshal fills every field by reflection and holds them to it, so a
// field added to a struct without being added here fails that test.

func (d *MessageDoc) appendJSON(dst []byte) ([]byte, error) {
	if d == nil {
		return append(dst, "null"...), nil
	}
	return appendDoc(dst, d.Timestamp, &d.ECS, &d.Event, &d.Email, nil, &d.User, &d.Related, &d.Mimecast)
}

func (d *AttachmentDoc) appendJSON(dst []byte) ([]byte, error) {
	if d == nil {
		return append(dst, "null"...), nil
	}
	return appendDoc(dst, d.Timestamp, &d.ECS, &d.Event, &d.Email, d.File, &d.User, &d.Related, &d.Mimecast)
}

// metaAppender is the mimecast object of a document (MessageMeta, AttachmentMeta).
type metaAppender interface {
	appendJSON(dst []byte) []byte
}

// appendDoc writes a document: the fields both document types have, in their order of
// declaration, the top-level file of an attachment (nil: none, as omitempty leaves it out),
// then its own mimecast object.
func appendDoc(dst []byte, ts time.Time, ecs *ECS, ev *Event, em *Email, file *File, u *User, rel *Related, meta metaAppender) ([]byte, error) {
	dst = append(dst, '{')
	dst, err := appendTimeField(dst, "@timestamp", ts)
	if err != nil {
		return nil, err
	}
	dst = appendKey(dst, "ecs")
	dst = append(dst, '{')
	dst = appendStringField(dst, "version", ecs.Version)
	dst = append(dst, '}')
	dst = appendKey(dst, "event")
	if dst, err = ev.appendJSON(dst); err != nil {
		return nil, err
	}
	dst = appendKey(dst, "email")
	if dst, err = em.appendJSON(dst); err != nil {
		return nil, err
	}
	if file != nil {
		dst = appendKey(dst, "file")
		dst = file.appendJSON(dst)
	}
	dst = appendKey(dst, "user")
	dst = append(dst, '{')
	dst = appendStringField(dst, "email", u.Email)
	dst = append(dst, '}')
	dst = appendKey(dst, "related")
	dst = append(dst, '{')
	dst = appendNonEmptyStringsField(dst, "hash", rel.Hash)
	dst = appendNonEmptyStringsField(dst, "user", rel.User)
	dst = append(dst, '}')
	dst = appendKey(dst, "mimecast")
	return append(meta.appendJSON(dst), '}'), nil
}

func (e *Event) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	dst = appendStringField(dst, "kind", e.Kind)
	dst = appendStringsField(dst, "category", e.Category)
	dst = appendStringsField(dst, "type", e.Type)
	dst = appendStringField(dst, "module", e.Module)
	dst = appendStringField(dst, "dataset", e.Dataset)
	dst, err := appendTimeField(dst, "ingested", e.Ingested)
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

func (e *Email) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	dst = appendNonEmptyField(dst, "message_id", e.MessageID)
	dst = appendNonEmptyField(dst, "local_id", e.LocalID)
	dst = appendStringField(dst, "subject", e.Subject)
	dst = appendAddresses(dst, "from", e.From)
	dst = appendAddresses(dst, "sender", e.Sender)
	dst = appendAddresses(dst, "to", e.To)
	dst = appendAddresses(dst, "cc", e.Cc)
	dst = appendAddresses(dst, "reply_to", e.ReplyTo)
	dst = appendNonEmptyField(dst, "direction", e.Direction)
	var err error
	if e.OriginationTimestamp != nil {
		if dst, err = appendTimeField(dst, "origination_timestamp", *e.OriginationTimestamp); err != nil {
			return nil, err
		}
	}
	if dst, err = appendTimeField(dst, "delivery_timestamp", e.DeliveryTimestamp); err != nil {
		return nil, err
	}
	if len(e.Attachments) > 0 {
		dst = appendKey(dst, "attachments")
		dst = append(dst, '[')
		for i := range e.Attachments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			dst = appendKey(dst, "file")
			dst = e.Attachments[i].File.appendJSON(dst)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

func (f *File) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	dst = appendStringField(dst, "name", f.Name)
	dst = appendNonEmptyField(dst, "mime_type", f.MimeType)
	dst = appendNonEmptyField(dst, "extension", f.Extension)
	dst = appendIntField(dst, "size", f.Size)
	if f.Hash != nil {
		dst = appendKey(dst, "hash")
		dst = append(dst, '{')
		dst = appendNonEmptyField(dst, "sha256", f.Hash.SHA256)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (m *MessageMeta) appendJSON(dst []byte) []byte {
	dst = appendWhere(dst, m.ID, m.Mailbox, m.Domain, m.View)
	dst = appendNames(dst, "from", m.From)
	dst = appendNames(dst, "to", m.To)
	dst = appendNames(dst, "cc", m.Cc)
	dst = appendNames(dst, "reply_to", m.ReplyTo)
	if len(m.Headers) > 0 {
		dst = appendKey(dst, "headers")
		dst = appendStringsMap(dst, m.Headers)
	}
	if m.Auth != nil {
		dst = appendKey(dst, "auth")
		dst = append(dst, '{')
		dst = appendNonEmptyStringsField(dst, "spf", m.Auth.SPF)
		dst = appendNonEmptyStringsField(dst, "dkim", m.Auth.DKIM)
		dst = appendNonEmptyStringsField(dst, "dmarc", m.Auth.DMARC)
		dst = append(dst, '}')
	}
	dst = appendStringField(dst, "body", m.Body)
	dst = appendBoolField(dst, "body_from_html", m.BodyHTML)
	dst = appendBoolField(dst, "oversize", m.Oversize)
	dst = appendIntField(dst, "size", m.Size)
	dst = appendIntField(dst, "attachment_count", int64(m.AttachmentCount))
	dst = appendNonEmptyField(dst, "attachment_text", m.AttachmentText)
	dst = appendNonEmptyField(dst, "smash", m.Smash)
	dst = appendIntField(dst, "generation", m.Generation)
	return append(dst, '}')
}

func (m *AttachmentMeta) appendJSON(dst []byte) []byte {
	dst = appendWhere(dst, m.ID, m.Mailbox, m.Domain, m.View)
	dst = appendStringField(dst, "message_doc_id", m.MessageDocID)
	dst = appendStringField(dst, "attachment_id", m.AttachmentID)
	dst = appendBoolField(dst, "oversize", m.Oversize)
	dst = appendNonEmptyField(dst, "content", m.Content)
	dst = appendNonEmptyField(dst, "attachment_error", m.TextError)
	dst = appendNonEmptyField(dst, "data", m.Data)
	dst = appendIntField(dst, "generation", m.Generation)
	return append(dst, '}')
}

// appendWhere opens a mimecast object with the fields both kinds have first: the message's
// archive id and where it is archived.
func appendWhere(dst []byte, id, mailbox, domain, view string) []byte {
	dst = append(dst, '{')
	dst = appendStringField(dst, "id", id)
	dst = appendStringField(dst, "mailbox", mailbox)
	dst = appendStringField(dst, "domain", domain)
	return appendStringField(dst, "view", view)
}

// appendAddresses writes an omitempty *Addresses field.
func appendAddresses(dst []byte, name string, a *Addresses) []byte {
	if a == nil {
		return dst
	}
	return appendGroup(dst, name, "address", a.Address)
}

// appendNames writes an omitempty *Names field.
func appendNames(dst []byte, name string, n *Names) []byte {
	if n == nil {
		return dst
	}
	return appendGroup(dst, name, "name", n.Name)
}

// appendGroup writes an object of one omitempty []string field, as Addresses and Names are.
func appendGroup(dst []byte, name, field string, list []string) []byte {
	dst = appendKey(dst, name)
	dst = append(dst, '{')
	dst = appendNonEmptyStringsField(dst, field, list)
	return append(dst, '}')
}

// appendKey starts a member of the object being written: a comma unless it is the object's
// first member, then the name. Names are the constant JSON names of struct fields, which need
// no escaping; map keys go through appendString instead.
func appendKey(dst []byte, name string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendStringField(dst []byte, name, s string) []byte {
	return appendString(appendKey(dst, name), s)
}

// appendNonEmptyField writes an omitempty string field.
func appendNonEmptyField(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	return appendStringField(dst, name, s)
}

func appendStringsField(dst []byte, name string, ss []string) []byte {
	return appendStrings(appendKey(dst, name), ss)
}

// appendNonEmptyStringsField writes an omitempty []string field: json.Marshal omits an empty
// slice as well as a nil one.
func appendNonEmptyStringsField(dst []byte, name string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	return appendStringsField(dst, name, ss)
}

func appendIntField(dst []byte, name string, n int64) []byte {
	return strconv.AppendInt(appendKey(dst, name), n, 10)
}

func appendBoolField(dst []byte, name string, b bool) []byte {
	return strconv.AppendBool(appendKey(dst, name), b)
}

// appendTimeField writes t as time.Time.MarshalJSON does: AppendText formats the same strict
// RFC 3339 and refuses the same times (years outside 0-9999, zone offsets of 24 hours or
// more), which json.Marshal refuses too.
func appendTimeField(dst []byte, name string, t time.Time) ([]byte, error) {
	dst = append(appendKey(dst, name), '"')
	dst, err := t.AppendText(dst)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return append(dst, '"'), nil
}

// appendStrings writes a []string; nil is null, as json.Marshal writes it.
func appendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendStringsMap writes a map[string][]string with its keys sorted byte-wise, as
// json.Marshal does, so equal maps encode to equal bytes.
func appendStringsMap(dst []byte, m map[string][]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var small [32]string // a message's header names usually fit, sparing an allocation
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendStrings(dst, m[k])
	}
	return append(dst, '}')
}

// SWAR constants: one in every byte, and the high bit of every byte.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// escapeBytes returns w (8 bytes of a string, the first in the lowest byte) with the high bit
// set in the lowest byte that needs more than a copy: a control character, a byte of a
// multi-byte or invalid UTF-8 sequence, or one of " & < > \. Bytes above the lowest marked
// one may be marked falsely (a borrow carries into them), so only the lowest mark is exact;
// any mark means the word needs a closer look.
func escapeBytes(w uint64) uint64 {
	m := w & msb                   // bytes >= 0x80
	m |= (w - 0x20*lsb) &^ w & msb // bytes < 0x20
	// " (0x22) and & (0x26) differ only in bit 2, < (0x3c) and > (0x3e) only in bit 1: setting
	// that bit maps each pair, and no other byte, onto one value to compare with.
	m |= zeroBytes((w | 0x04*lsb) ^ '&'*lsb)
	m |= zeroBytes((w | 0x02*lsb) ^ '>'*lsb)
	m |= zeroBytes(w ^ '\\'*lsb)
	return m
}

// zeroBytes marks the zero bytes of v in the way escapeBytes describes.
func zeroBytes(v uint64) uint64 { return (v - lsb) &^ v & msb }

// word reads s[i:i+8] little-endian; the compiler merges the byte loads into one.
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does with HTML escaping on,
// for keys and values alike. Runs of bytes that need no escaping are found eight at a time and
// copied in one append; the text of bodies and attachments is almost all such runs.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is copied as is
	for i := 0; i < len(s); {
		for i+8 <= len(s) {
			m := escapeBytes(word(s, i))
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control characters, and < > & for HTML
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		if b >= 0xc2 && b < 0xe0 && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
			i += 2 // a valid two-byte sequence (Latin letters with accents), the commonest case
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but line ends in JavaScript
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
