package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Alert ids are the lower-case hex SHA-256 of the source name and the fields that make a
// record unique, each length-prefixed so that no two different field lists hash the same
// input. Which fields, per source (documented in docs/alerts.md):
//
//   - attachment_protection: messageId, date, recipient, file hash, file name. Two
//     attachments of one message share messageId and date, so those alone would merge them.
//   - url_protection: messageId, user, URL, date, creationMethod (a scan and a click of
//     the same URL at the same second are two events).
//   - impersonation: id (when present), messageId, recipient, eventTime: the id is "a token
//     to retrieve this log again" and a fixture repeats one id on two records, so it is
//     not trusted alone.
//   - dlp: messageId, recipient, eventTime, policy.
//   - threats: the event id when the record has one, else the record's canonical content.
//   - siem: the record's canonical content without _offset and _partition, which say where
//     the event sat in Mimecast's stream rather than what it is: the same event repeated on
//     a later page, or in an overlapping batch file, gets the same id.
//   - audit (events): id, eventTime, auditType, user, eventInfo, category: the public samples
//     repeat one id on records whose text differs (source_audit.go).
//
// Times enter an id in one canonical form (RFC 3339, UTC, nanoseconds), so a record served
// once with "+0000" and once with "Z" keeps its id.

// hashID returns the id of the given parts.
func hashID(src Source, parts ...string) string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	write(string(src))
	for _, p := range parts {
		write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// idTime is the canonical form of a time inside an id.
func idTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// contentID hashes a record's canonical JSON without the keys in drop. encoding/json
// writes object keys sorted and json.Number values as their original text, so the same
// record always yields the same bytes whatever order its keys were sent in.
func contentID(src Source, r record, drop ...string) string {
	m := make(map[string]any, len(r))
	for k, v := range r {
		m[k] = v
	}
	for _, k := range drop {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Not reachable: the values came from encoding/json.
		b = []byte(err.Error())
	}
	return hashID(src, string(b))
}
