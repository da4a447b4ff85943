package crawler

import (
	"crypto/sha256"
	"encoding/hex"
	"net/textproto"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// MessageDocID is the document id of a message: a hash of (mailbox, view, Mimecast id), so that
// every crawl of the same message writes the same document. Mimecast ids run to 300+ characters
// and Elasticsearch caps ids at 512 bytes, hence the hash.
func MessageDocID(mailbox, view, messageID string) string {
	return hashID(mailbox, view, messageID)
}

// AttachmentDocID is the document id of an attachment of a message.
func AttachmentDocID(mailbox, view, messageID, attachmentID string) string {
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

func address(a api.Address) index.Address {
	return index.Address{Address: strings.ToLower(strings.TrimSpace(a.EmailAddress)), Name: a.DisplayableName}
}

func addresses(as []api.Address) []index.Address {
	out := make([]index.Address, 0, len(as))
	for _, a := range as {
		if a.EmailAddress != "" {
			out = append(out, address(a))
		}
	}
	return out
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
