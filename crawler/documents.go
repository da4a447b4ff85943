package crawler

import (
	"crypto/sha256"
	"encoding/hex"
	"mime"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// MessageDocID is the document id of a message: a hash of (mailbox, view, Mimecast id), so that
// every crawl of the same message writes the same document. Mimecast ids run to 300+ characters
// and Elasticsearch caps ids at 512 bytes, hence the hash.
func MessageDocID(mailbox, view, messageID string) string {
	return hashID(mailbox, view, messageID)
}

// AttachmentDocID is the document id of an attachment of a message: a hash of (mailbox, view,
// Mimecast id of the message, the attachment's position among the attachment-like parts of the
// RFC 822 message (body.Text.Parts, from 0), the lowercase hex SHA-256 of its decoded bytes).
// All of it comes from the message itself, so the id is the same whether or not the message
// detail was fetched, and two attachments with identical bytes at different positions keep
// two documents. This is the one rule for attachments found in the RFC 822 message.
func AttachmentDocID(mailbox, view, messageID string, position int, sha256 string) string {
	return hashID(mailbox, view, messageID, "part", strconv.Itoa(position), strings.ToLower(sha256))
}

// DetailAttachmentDocID is the document id of an attachment that the message detail lists but
// the RFC 822 message does not hold, known only by its Mimecast attachment id. It is the rule
// every attachment document followed before ids came from the message itself, so such a
// document keeps its id; its four parts never collide with AttachmentDocID's six.
func DetailAttachmentDocID(mailbox, view, messageID, attachmentID string) string {
	return hashID(mailbox, view, messageID, attachmentID)
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// addressGroup is the ECS address group of as (lowercased; empty addresses left out).
func addressGroup(as ...api.Address) *index.Addresses {
	addrs := make([]string, 0, len(as))
	for _, a := range as {
		addrs = append(addrs, a.EmailAddress)
	}
	return index.AddressGroup(addrs...)
}

// nameGroup is the display names of as.
func nameGroup(as ...api.Address) *index.Names {
	names := make([]string, 0, len(as))
	for _, a := range as {
		if strings.TrimSpace(a.EmailAddress) != "" {
			names = append(names, a.DisplayableName)
		}
	}
	return index.NameGroup(names...)
}

// headerMap turns Mimecast's header list into the flattened headers field, keyed by canonical
// header name. Received chains are long and repeat on every message; they are kept because
// security teams trace paths with them.
func headerMap(hs []api.Header) map[string][]string {
	if len(hs) == 0 {
		return nil
	}
	m := make(map[string][]string, len(hs))
	for _, h := range hs {
		name := mailCanonical(h.Name)
		if name == "" {
			continue
		}
		m[name] = append(m[name], h.Values...)
	}
	return m
}

func mailCanonical(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// receivedTime parses a Mimecast date; a bad value falls back to the listing's value and then
// to the zero time, which the caller reports.
func receivedTime(values ...string) (time.Time, bool) {
	for _, v := range values {
		if v == "" {
			continue
		}
		if t, err := api.ParseTime(v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// header is what a message document takes from a message's header: from the RFC 822 message
// (rfc822Header) or, when none of that could be read, from the message detail (detailHeader).
type header struct {
	subject    string
	messageID  string
	from       api.Address
	to, cc     []api.Address
	replyTo    []api.Address
	returnPath api.Address // the envelope sender a delivering server recorded; may be empty
	headers    map[string][]string
	date       *time.Time
}

// addressParser reads address lists, decoding RFC 2047 words in display names in any charset
// the body decoder knows.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}

// rfc822Header reads the header of a parsed RFC 822 message. Address fields that do not parse
// are read as far as they can be (see parseAddresses); nothing here fails the message.
func rfc822Header(t *body.Text) header {
	h := header{subject: t.Subject, headers: t.Headers}
	if len(h.headers) == 0 {
		h.headers = nil
	}
	if v := t.Headers["Message-Id"]; len(v) > 0 {
		h.messageID = strings.TrimSpace(v[0])
	}
	addrs := t.AddressHeaders
	if from := parseAddresses(addrs["From"]); len(from) > 0 {
		h.from = from[0]
	} else if sender := parseAddresses(addrs["Sender"]); len(sender) > 0 {
		// RFC 5322 requires From; a message without one is attributed to its Sender.
		h.from = sender[0]
	}
	h.to = parseAddresses(addrs["To"])
	h.cc = parseAddresses(addrs["Cc"])
	h.replyTo = parseAddresses(addrs["Reply-To"])
	// Return-Path holds one address in angle brackets, "<>" for a bounce; a message delivered
	// more than once may carry several, the first (topmost) from the latest delivery.
	if rp := parseAddresses(addrs["Return-Path"]); len(rp) > 0 {
		h.returnPath = rp[0]
	}
	h.date = index.OriginationTime(t.Headers["Date"])
	return h
}

// detailHeader is the header as the message detail gives it.
func detailHeader(d *api.MessageDetail) header {
	h := header{subject: d.Subject, messageID: d.MimeMessageID, from: d.From, to: d.To, cc: d.Cc,
		headers: headerMap(d.Headers), returnPath: d.EnvelopeFrom}
	if strings.TrimSpace(d.ReplyTo.EmailAddress) != "" {
		h.replyTo = []api.Address{d.ReplyTo}
	}
	h.date = index.OriginationTime(h.headers["Date"])
	if h.date == nil && d.HeaderDate != "" {
		h.date = index.OriginationTime([]string{d.HeaderDate})
	}
	if h.date == nil && d.HeaderDate != "" {
		if t, ok := receivedTime(d.HeaderDate); ok {
			h.date = &t
		}
	}
	return h
}

// maxAddresses bounds the addresses read from one header field, whatever a hostile list holds.
const maxAddresses = 1000

// parseAddresses reads the address lists of the values of one header field. A list that
// net/mail rejects is split at top-level commas and each entry read on its own; an entry that
// still does not parse keeps its <address> or its word with an "@", if any, and is dropped
// otherwise. Display names have their RFC 2047 words decoded.
func parseAddresses(values []string) []api.Address {
	var out []api.Address
	add := func(a *mail.Address) {
		if len(out) < maxAddresses && strings.TrimSpace(a.Address) != "" {
			out = append(out, api.Address{EmailAddress: a.Address, DisplayableName: strings.TrimSpace(a.Name)})
		}
	}
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if list, err := addressParser.ParseList(v); err == nil {
			for _, a := range list {
				add(a)
			}
			continue
		}
		for _, entry := range splitAddressList(v) {
			if a, err := addressParser.Parse(entry); err == nil {
				add(a)
			} else if a, ok := salvageAddress(entry); ok {
				add(a)
			}
		}
	}
	return out
}

// splitAddressList splits an address list at the commas outside quotes, comments and angle
// brackets; a group's "name:" and ";" are dropped, leaving its members.
func splitAddressList(v string) []string {
	var (
		out     []string
		start   int
		quoted  bool
		escaped bool
		depth   int // comments
		angle   bool
	)
	cut := func(end int) {
		if s := strings.TrimSpace(v[start:end]); s != "" {
			out = append(out, s)
		}
		start = end + 1
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\' && (quoted || depth > 0):
			escaped = true
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle:
		case c == ',' || c == ';':
			cut(i)
		case c == ':':
			start = i + 1 // a group's display name
		}
	}
	cut(len(v))
	return out
}

// salvageAddress finds the address in an entry net/mail rejects: what stands in angle brackets,
// else the first word with an "@"; the text before the brackets is the name.
func salvageAddress(entry string) (*mail.Address, bool) {
	if i := strings.LastIndexByte(entry, '<'); i >= 0 {
		if j := strings.IndexByte(entry[i:], '>'); j > 0 {
			addr := strings.TrimSpace(entry[i+1 : i+j])
			if strings.Contains(addr, "@") && !strings.ContainsAny(addr, " \t") {
				return &mail.Address{Name: decodeName(entry[:i]), Address: addr}, true
			}
		}
	}
	for _, w := range strings.Fields(entry) {
		w = strings.Trim(w, "<>\"'(),;")
		if strings.Count(w, "@") == 1 && !strings.HasPrefix(w, "@") && !strings.HasSuffix(w, "@") {
			return &mail.Address{Address: w}, true
		}
	}
	return nil, false
}

// decodeName is a display name without its quotes, RFC 2047 words decoded.
func decodeName(s string) string {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if d, err := addressParser.WordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	return strings.TrimSpace(s)
}
