package mimecast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// The decoders below turn answers into wire types. They never panic on hostile input (see
// FuzzDecodeResponse) and name the op in every error, so that "malformed response from
// POST /api/..." tells the operator which endpoint broke its contract.

// decodeResponse parses a legacy envelope. The top level must be a JSON object.
func decodeResponse(op string, body []byte) (*api.Response, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed(op, errors.New("empty body"))
	}
	if trimmed[0] != '{' {
		return nil, malformed(op, fmt.Errorf("want a JSON object, got %q", excerpt(trimmed)))
	}
	var env api.Response
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return nil, malformed(op, err)
	}
	return &env, nil
}

// shapeLog warns once per endpoint and field about a JSON kind the decoders did not expect,
// so that a new shape of the API is noticed without a log line per record. It lives on the
// Client, not in a package variable, so two clients (and two tests) do not share it. A nil
// *shapeLog logs nothing.
type shapeLog struct {
	log  zerolog.Logger
	mu   sync.Mutex
	seen map[string]bool // op + "\x00" + field
}

// maxShapeKeys bounds the registry: hostile answers could otherwise invent field paths
// (only documented fields are reported, so real answers stay far below this).
const maxShapeKeys = 1024

func newShapeLog(log zerolog.Logger) *shapeLog {
	return &shapeLog{log: log, seen: map[string]bool{}}
}

// note logs each shape not seen before for op. It never logs values.
func (l *shapeLog) note(op string, shapes []api.Shape) {
	if l == nil || len(shapes) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sh := range shapes {
		k := op + "\x00" + sh.Field
		if l.seen[k] || len(l.seen) >= maxShapeKeys {
			continue
		}
		l.seen[k] = true
		l.log.Warn().Str("op", op).Str("field", sh.Field).Str("kind", string(sh.Kind)).
			Msg("unexpected shape in an answer; read tolerantly")
	}
}

// badRecord warns once per op and reason that a record could not be used; the caller fails
// that record alone. The reason is a fixed phrase, never content.
func (l *shapeLog) badRecord(op, reason string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := op + "\x00record\x00" + reason
	if l.seen[k] || len(l.seen) >= maxShapeKeys {
		return
	}
	l.seen[k] = true
	l.log.Warn().Str("op", op).Str("reason", reason).Msg("unusable record in an answer; it fails alone")
}

// decodeMessages reads a get-message-list page: a flat data[] of summaries. Records are
// decoded one by one, so one bad record never fails the page: a record that is not an
// object, has no id, or has no readable received time comes back with Problem set (and, by
// construction, with ID == "" or a Received that api.ParseTime rejects) for the crawler to
// fail that one message. The error is reserved for pages that are not pages.
func decodeMessages(op string, env *api.Response, sl *shapeLog) ([]api.MessageSummary, error) {
	out := make([]api.MessageSummary, len(env.Data))
	for i, raw := range env.Data {
		m := &out[i]
		shapes, err := api.Decode(raw, m)
		sl.note(op, shapes)
		reason := ""
		switch {
		case err != nil:
			reason = "not an object"
			*m = api.MessageSummary{Problem: fmt.Errorf("data[%d]: %w (got %s)", i, err, api.KindOf(raw))}
		case m.ID == "":
			reason = "no id"
			m.Received = "" // whatever it was, the record is unusable
			m.Problem = fmt.Errorf("data[%d]: message without id", i)
		case m.Received == "":
			reason = "no received time"
			m.Problem = fmt.Errorf("data[%d]: message %s without received time", i, m.ID)
		default:
			if _, perr := api.ParseTime(m.Received); perr != nil {
				reason = "unreadable received time"
				m.Problem = fmt.Errorf("data[%d]: message %s: received time is not a date-time of a known layout", i, m.ID)
			}
		}
		if reason != "" {
			sl.badRecord(op, reason)
		}
	}
	return out, nil
}

// decodeUsers reads a get-internal-users page: data[0].users[]. The reference shows one
// element; should several come, their users are concatenated (inferred). An empty data[] is
// an empty page. It also returns how many rows the page held, usable or not, so that the
// walk does not stop early on a page of unusable rows. Rows without an address are not
// mailboxes and are dropped (with a warning, once).
func decodeUsers(op string, env *api.Response, sl *shapeLog) ([]api.User, int, error) {
	var out []api.User
	rows := 0
	for i, raw := range env.Data {
		var page api.UsersPage
		shapes, err := api.Decode(raw, &page)
		sl.note(op, shapes)
		if err != nil {
			return nil, 0, malformed(op, fmt.Errorf("data[%d]: %w (got %s)", i, err, api.KindOf(raw)))
		}
		rows += len(page.Users)
		for _, u := range page.Users {
			if strings.TrimSpace(u.EmailAddress) == "" {
				sl.badRecord(op, "user without address")
				continue
			}
			out = append(out, u)
		}
	}
	return out, rows, nil
}

// decodeDomains reads get-internal-domain: a flat data[]. Entries that are not objects or
// have no domain name are dropped with a warning (once): they name no mailboxes.
func decodeDomains(op string, env *api.Response, sl *shapeLog) ([]api.Domain, error) {
	out := make([]api.Domain, 0, len(env.Data))
	for _, raw := range env.Data {
		var d api.Domain
		shapes, err := api.Decode(raw, &d)
		sl.note(op, shapes)
		if err != nil || strings.TrimSpace(d.Domain) == "" {
			sl.badRecord(op, "domain without name")
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// decodeDetail reads get-message-detail: data[0]. Only what the documents cannot do without
// is required: data[0] must be an object and every attachment must have an id (attachment
// documents and downloads are keyed by it). The error fails that one message.
func decodeDetail(op string, env *api.Response, sl *shapeLog) (*api.MessageDetail, error) {
	if len(env.Data) == 0 {
		return nil, malformed(op, errors.New("no data[0] and no fail[]"))
	}
	var d api.MessageDetail
	shapes, err := api.Decode(env.Data[0], &d)
	sl.note(op, shapes)
	if err != nil {
		return nil, malformed(op, fmt.Errorf("data[0]: %w (got %s)", err, api.KindOf(env.Data[0])))
	}
	for i, a := range d.Attachments {
		if a.ID == "" {
			return nil, malformed(op, fmt.Errorf("data[0].attachments[%d]: attachment without id", i))
		}
	}
	return &d, nil
}

// decodeFileURLs reads the pre-signed download URLs of get-file (data[0].urls[]) or
// get-message-part (data[0].url). Relative URLs are resolved against base (inferred; not
// seen); only http(s) URLs are accepted.
func decodeFileURLs(op string, env *api.Response, base *url.URL) ([]*url.URL, error) {
	if len(env.Data) == 0 {
		return nil, malformed(op, errors.New("no data[0] and no fail[]"))
	}
	var f api.FileURLs
	if err := json.Unmarshal(env.Data[0], &f); err != nil {
		return nil, malformed(op, fmt.Errorf("data[0]: %w", err))
	}
	raws := f.URLs
	if f.URL != "" {
		raws = append(raws, f.URL)
	}
	var out []*url.URL
	for _, raw := range raws {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, malformed(op, fmt.Errorf("download url: %w", err))
		}
		// An absolute URL is used as given: resolving would also rewrite dot segments of
		// its path, which is part of what a pre-signed URL signs.
		if base != nil && !u.IsAbs() {
			u = base.ResolveReference(u)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, malformed(op, fmt.Errorf("download url %s: want an absolute http(s) URL", hostOnly(u)))
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, malformed(op, errors.New("data[0] has neither urls[] nor url"))
	}
	return out, nil
}

// isEnvelope reports whether a JSON body is a legacy envelope (has meta, data or fail) rather
// than a file that happens to be JSON.
func isEnvelope(body []byte) bool {
	var probe struct {
		Meta *json.RawMessage `json:"meta"`
		Data *json.RawMessage `json:"data"`
		Fail *json.RawMessage `json:"fail"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return false
	}
	return probe.Meta != nil || probe.Data != nil || probe.Fail != nil
}

func malformed(op string, err error) error {
	return fmt.Errorf("malformed response from %s: %w", op, err)
}

func excerpt(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
