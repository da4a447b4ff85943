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
