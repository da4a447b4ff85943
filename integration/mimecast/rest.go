package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// The REST-style endpoints (/siem/v1/..., /threats/v1/...) are GET with query parameters and
// answer bare JSON: {"value":[...],"@nextPage":"...","isCaughtUp":bool} on success and
// {"error":{"code","message"}} on failure (reference §2.2). They share the legacy call path's
// token, 401 refresh, retries, error classification, trace and statistics through retrying;
// only the HTTP exchange differs.

// getREST GETs path with query and returns the answer's body (bounded). permPath is the path
// template that names the endpoint in the permission table (path itself for fixed paths).
func (c *Client) getREST(ctx context.Context, path, permPath string, query url.Values) ([]byte, error) {
	op := "GET " + permPath
	// op, the method and the path template, names the endpoint in the statistics: a small
	// fixed set (the path itself may carry ids).
	ctx = withEndpoint(ctx, op)
	endpoint := c.base + path
	if len(query) > 0 {
		endpoint += "?" + query.Encode()
	}
	// The REST groups take no concurrency slot (sl is nil); retrying releases it regardless.
	return retrying(ctx, c, op, quotaGroup(path), func(tok string, attempt int, sl *slot) ([]byte, error) {
		defer sl.release()
		return c.restAttempt(ctx, op, permPath, endpoint, tok, attempt)
	})
}

// restAttempt makes one GET exchange and classifies its outcome.
func (c *Client) restAttempt(ctx context.Context, op, permPath, endpoint, tok string, n int) ([]byte, error) {
	actx, cancel := context.WithCancelCause(withAttempt(ctx, n))
	timer := time.AfterFunc(c.timeout, func() { cancel(errAttemptTimeout) })
	defer func() {
		timer.Stop()
		cancel(nil)
	}()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.networkError(ctx, actx, op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(op, permPath, resp)
	}
	data, err := readBounded(resp.Body, maxJSONBody)
	resp.Body.Close()
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("malformed response from %s: %w", op, err)
		}
		return nil, c.networkError(ctx, actx, op, err)
	}
	return data, nil
}

// restPage is a decoded REST list answer.
type restPage struct {
	Records  []json.RawMessage
	Next     string // @nextPage (or the wrapper's equivalent); "" if absent
	CaughtUp *bool  // isCaughtUp, if the answer had it
	Wrapper  string // the key the records were under: value, data or events
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
// a changed wrapper is an error instead of a silently empty feed. The next token is
// @nextPage, else nextPage, else meta.pagination.next (legacy-like wrappers, inferred).
// It never panics (see FuzzDecodeRESTPage).
func decodeRESTPage(op string, body []byte) (restPage, error) {
	var page restPage
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
	for _, k := range []string{"@nextPage", "nextPage"} {
		if raw, ok := top[k]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &page.Next); err != nil {
				return restPage{}, malformed(op, fmt.Errorf("%s: %w", k, err))
			}
			break
		}
	}
	if page.Next == "" {
		if raw, ok := top["meta"]; ok {
			var meta struct {
				Pagination struct {
					Next string `json:"next"`
				} `json:"pagination"`
			}
			if json.Unmarshal(raw, &meta) == nil {
				page.Next = meta.Pagination.Next
			}
		}
	}
	if raw, ok := top["isCaughtUp"]; ok && !isNull(raw) {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return restPage{}, malformed(op, fmt.Errorf("isCaughtUp: %w", err))
		}
		page.CaughtUp = &b
	}
	return page, nil
}

// getRESTPage GETs one REST list page. The first answer of an unknown shape is logged once
// at warn with its top-level keys (never its values), so that a changed feed is noticed.
func (c *Client) getRESTPage(ctx context.Context, path string, query url.Values) (restPage, error) {
	body, err := c.getREST(ctx, path, path, query)
	if err != nil {
		return restPage{}, err
	}
	page, err := decodeRESTPage("GET "+path, body)
	if errors.Is(err, errUnknownShape) && c.shapeWarned.CompareAndSwap(false, true) {
		c.log.Warn().Str("op", "GET "+path).Strs("keys", topKeys(body)).Msg("unknown page shape")
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
