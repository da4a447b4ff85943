package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The REST-style endpoints (/siem/v1/..., /threats/v1/...) are GET with query parameters and
// answer bare JSON: {"value":[...],"@nextPage":"...","isCaughtUp":bool} on success and
// {"error":{"code","message"}} on failure (reference §2.2). They share the legacy call path's
// token, 401 refresh, retries, error classification, trace and statistics through retrying;
// only the HTTP exchange differs.

// restReply is a REST answer: its body (bounded) and the page token a header carried, if any.
type restReply struct {
	body []byte
	// headerNext is X-Mc-Threat-Feed-Next-Token: the threat-intel feed sends its continuation
	// token in this header rather than in the body (reference §4.4, §4.6).
	headerNext string
}

// threatFeedNextHeader carries the threat-intel feed's next page token.
const threatFeedNextHeader = "X-Mc-Threat-Feed-Next-Token"

// getREST GETs path with query and returns the answer. permPath is the path template that
// names the endpoint in the permission table (path itself for fixed paths).
func (c *Client) getREST(ctx context.Context, path, permPath string, query url.Values) (restReply, error) {
	op := "GET " + permPath
	// op, the method and the path template, names the endpoint in the statistics: a small
	// fixed set (the path itself may carry ids).
	ctx = withEndpoint(ctx, op)
	endpoint := c.base + path
	if len(query) > 0 {
		endpoint += "?" + query.Encode()
	}
	// The REST groups take no concurrency slot (sl is nil); retrying releases it regardless.
	return retrying(ctx, c, op, quotaGroup(path), func(tok string, attempt int, sl *slot) (restReply, error) {
		defer sl.release()
		return c.bearerAttempt(ctx, op, http.MethodGet, endpoint, permPath, nil, tok, attempt, nil)
	})
}

// bearerAttempt makes one exchange, attempt n, authorised by the bearer token tok: method to
// target, with body as JSON when it is not nil. A status outside 2xx is an error naming
// statusPath; sl (nil-safe) is told the status. The answer is read within maxJSONBody and
// returned with the next token of its header.
func (c *Client) bearerAttempt(ctx context.Context, op, method, target, statusPath string, body []byte, tok string, n int, sl *slot) (restReply, error) {
	actx, cancel := context.WithCancelCause(withAttempt(ctx, n))
	timer := time.AfterFunc(c.timeout, func() { cancel(errAttemptTimeout) })
	defer func() {
		timer.Stop()
		cancel(nil)
	}()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return restReply{}, fmt.Errorf("%s: build request: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http.Do(req)
	if err != nil {
		return restReply{}, c.networkError(ctx, actx, op, err)
	}
	sl.answered(resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return restReply{}, c.statusError(op, statusPath, resp)
	}
	data, err := readBounded(resp.Body, maxJSONBody)
	resp.Body.Close()
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return restReply{}, fmt.Errorf("malformed response from %s: %w", op, err)
		}
		return restReply{}, c.networkError(ctx, actx, op, err)
	}
	return restReply{body: data, headerNext: strings.TrimSpace(resp.Header.Get(threatFeedNextHeader))}, nil
}

// restPage is a decoded REST list answer.
type restPage struct {
	Records  []json.RawMessage
	Next     string // @nextPage (or the wrapper's equivalent); "" if absent
	CaughtUp *bool  // isCaughtUp, if the answer had it
	Wrapper  string // the key the records were under: value, data or events
	Total    int    // the number of records the answer says the query has; -1 if it says none
}

// restWrappers are the keys a REST list answer may hold its records under: SIEM uses value;
// for the threat feed value, data and events have all been seen in clients (inferred).
var restWrappers = []string{"value", "data", "events"}

// errUnknownShape marks a REST answer that is a JSON object holding an array under none of
// the known wrapper keys.
var errUnknownShape = errors.New("unknown page shape")

// decodeRESTPage parses a REST list answer. The top level must be a JSON object; its records
// are under value, data or events (the first present, in that order), each kept as served.
// An object with none of them and no other array is an empty page (a caught-up answer may
// omit the list, inferred); one with an array under another key is errUnknownShape, so that
// a changed wrapper is an error instead of a silently empty feed. The next token is the
// first of restTokenKeys present (see nextToken). The stated total is the first of total,
// totalCount, resultCount, meta.total and meta.pagination.totalCount. It never panics (see
// FuzzDecodeRESTPage).
func decodeRESTPage(op string, body []byte) (restPage, error) {
	page := restPage{Total: -1}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return page, malformed(op, errors.New("empty body"))
	}
	if trimmed[0] != '{' {
		return page, malformed(op, fmt.Errorf("want a JSON object, got %q", excerpt(trimmed)))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return page, malformed(op, err)
	}
	for _, w := range restWrappers {
		raw, ok := top[w]
		if !ok || isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, &page.Records); err != nil {
			return restPage{}, malformed(op, fmt.Errorf("%s: want an array of records: %w", w, err))
		}
		page.Wrapper = w
		break
	}
	if page.Wrapper == "" {
		var arrays []string
		for k, raw := range top {
			if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
				arrays = append(arrays, k)
			}
		}
		if len(arrays) > 0 {
			sort.Strings(arrays)
			return restPage{}, malformed(op, fmt.Errorf("%w: records under %s, want one of %s",
				errUnknownShape, truncate(strings.Join(arrays, ","), 100), strings.Join(restWrappers, ",")))
		}
	}
	next, err := nextToken(top)
	if err != nil {
		return restPage{}, malformed(op, err)
	}
	page.Next = next
	page.Total = statedTotal(top)
	if raw, ok := top["isCaughtUp"]; ok && !isNull(raw) {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return restPage{}, malformed(op, fmt.Errorf("isCaughtUp: %w", err))
		}
		page.CaughtUp = &b
	}
	return page, nil
}

// restTokenKeys are the body keys a REST list answer may carry its next page token under,
// in the order they are looked for: SIEM's @nextPage (reference §2.2), nextPage, and
// nextPageToken (seen in generated clients for the threat feed, unconfirmed); then a next
// that may be a link (next, links.next, _links.next.href) and the legacy-like
// meta.pagination.next (both inferred).
var restTokenKeys = []string{"@nextPage", "nextPage", "nextPageToken"}

// nextToken finds the next page token of a decoded REST answer; "" when it has none. A
// next that is a link (an absolute URL) yields its pageToken, nextPage or nextPageToken
// parameter, or, having none of them, the link itself as an opaque token.
func nextToken(top map[string]json.RawMessage) (string, error) {
	for _, k := range restTokenKeys {
		if raw, ok := top[k]; ok && !isNull(raw) {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("%s: %w", k, err)
			}
			if s != "" {
				return s, nil
			}
		}
	}
	var links []string
	if raw, ok := top["next"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			links = append(links, s)
		}
	}
	for _, k := range []string{"links", "_links"} {
		var l struct {
			Next json.RawMessage `json:"next"`
		}
		if raw, ok := top[k]; ok && json.Unmarshal(raw, &l) == nil && len(l.Next) > 0 {
			var s string
			var href struct {
				Href string `json:"href"`
			}
			switch {
			case json.Unmarshal(l.Next, &s) == nil:
				links = append(links, s)
			case json.Unmarshal(l.Next, &href) == nil:
				links = append(links, href.Href)
			}
		}
	}
	if raw, ok := top["meta"]; ok {
		var meta struct {
			Pagination struct {
				Next string `json:"next"`
			} `json:"pagination"`
		}
		if json.Unmarshal(raw, &meta) == nil {
			links = append(links, meta.Pagination.Next)
		}
	}
	for _, l := range links {
		if l = strings.TrimSpace(l); l != "" {
			return tokenOfLink(l), nil
		}
	}
	return "", nil
}

// tokenOfLink returns the page token a next link carries, or the link itself.
func tokenOfLink(l string) string {
	u, err := url.Parse(l)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return l
	}
	q := u.Query()
	for _, k := range []string{"pageToken", "nextPage", "nextPageToken"} {
		if v := q.Get(k); v != "" {
			return v
		}
	}
	return l
}

// statedTotal returns the number of records a REST answer says its query has, or -1.
// Numbers may come as text.
func statedTotal(top map[string]json.RawMessage) int {
	num := func(raw json.RawMessage) int {
		s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	for _, k := range []string{"total", "totalCount", "resultCount"} {
		if raw, ok := top[k]; ok {
			if n := num(raw); n >= 0 {
				return n
			}
		}
	}
	if raw, ok := top["meta"]; ok {
		var meta struct {
			Total      json.RawMessage `json:"total"`
			Pagination struct {
				TotalCount json.RawMessage `json:"totalCount"`
			} `json:"pagination"`
		}
		if json.Unmarshal(raw, &meta) == nil {
			for _, r := range []json.RawMessage{meta.Total, meta.Pagination.TotalCount} {
				if len(r) > 0 {
					if n := num(r); n >= 0 {
						return n
					}
				}
			}
		}
	}
	return -1
}

// getRESTPage GETs one REST list page. The first answer of an unknown shape is logged once
// at warn with its top-level keys (never its values), so that a changed feed is noticed.
func (c *Client) getRESTPage(ctx context.Context, path string, query url.Values) (restPage, error) {
	rep, err := c.getREST(ctx, path, path, query)
	if err != nil {
		return restPage{}, err
	}
	page, err := decodeRESTPage("GET "+path, rep.body)
	if errors.Is(err, errUnknownShape) && c.shapeWarned.CompareAndSwap(false, true) {
		c.log.Warn().Str("op", "GET "+path).Strs("keys", topKeys(rep.body)).Msg("unknown page shape")
	}
	if err == nil && page.Next == "" {
		page.Next = rep.headerNext
	}
	return page, err
}

// topKeys lists the top-level keys of a JSON object, sorted, at most 20.
func topKeys(body []byte) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, truncate(k, 40))
	}
	slices.Sort(keys)
	if len(keys) > 20 {
		keys = keys[:20]
	}
	return keys
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// restTime renders t for the REST date-time parameters: ISO 8601 UTC with milliseconds, e.g.
// 2024-01-25T10:30:45.642Z (reference §5.1).
func restTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// restDate renders t as a full date, e.g. 2023-05-23, for the SIEM batch parameters.
func restDate(t time.Time) string { return t.UTC().Format(time.DateOnly) }
