package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// The threat-intelligence feed: POST /api/ttp/threat-intel/get-feed with one data item
// {feedType, fileType: "stix", start, end} or, when continuing, {feedType, fileType, token}.
// Unlike the other legacy endpoints it answers a file, a STIX 2.x bundle
// {"type":"bundle","objects":[...]}, and carries its continuation token in the
// X-Mc-Threat-Feed-Next-Token response header. An empty window is answered with the failure
// code err_threat_intel_feed_no_result_found, which is an empty page, not an error (an
// integration that took it for an error reported a failure every quiet interval). A 429
// means "keep the cursor and back off": the shared pacer does that (retrying), and a call
// that still ends in a 429 returns a retryable error, so the caller keeps its cursor.
//
// Shapes (restated): Elastic's integration (threat_intel_malware_customer and
// threat_intel_malware_grid data streams: their CEL program and test samples) sends RFC 3339
// start/end, reads objects[] of a bundle keeping type "indicator", takes the token from the
// header and stops when it is absent; its samples hold indicators whose pattern is
// [file:hashes.'SHA-256' = '...'], malware and relationship objects, and an empty bundle.
// The reference (§4.4, §4.6) adds csv as another fileType and the no-result code.
//
// Variants accepted, since nothing guarantees the file form: the bundle itself, the bundle
// inside a legacy envelope (data[0]), the objects flat in data[], or a bare JSON array of
// objects; the token in the header, else under any key nextToken knows (meta.pagination.next
// included); the no-result code on HTTP 200 in fail[] or with any 4xx status.

// Threat-intel feed types.
const (
	FeedMalwareCustomer = "malware_customer" // indicators seen in this account's mail
	FeedMalwareGrid     = "malware_grid"     // indicators seen across Mimecast's customers
)

// pathThreatIntelFeed is the feed's path, with the role permission it needs (inferred from
// its neighbours' naming, as the archive logs' are: not in the scraped 2.0 reference).
var pathThreatIntelFeed = needs("/api/ttp/threat-intel/get-feed", "Services | Threat Intelligence | Read")

// codeNoResult is the failure code of a window with no indicators.
const codeNoResult = "err_threat_intel_feed_no_result_found"

// ThreatIntelQuery selects one page of a threat-intel feed.
type ThreatIntelQuery struct {
	FeedType   string    // FeedMalwareCustomer or FeedMalwareGrid
	Start, End time.Time // the window of a first page (legacy layout); zero = omitted
	Token      string    // the continuation token of the previous page; when set, Start and End are not sent
}

// ThreatIntelFeed reads one page of a threat-intel feed. Records are the bundle's objects
// of type "indicator", each exactly as served. The bundle's other objects (malware,
// relationship, identity, marking-definition, ...) describe the indicators and are not
// records: they are neither returned nor counted as unread (ThreatIntelOthers counts them
// for a page's answer). Next is the continuation token ("" at the end); CaughtUp is
// Next == ""; Total is -1 (the feed states none). A window without indicators is an empty
// page, never an error.
func (c *Client) ThreatIntelFeed(ctx context.Context, q ThreatIntelQuery) (Page, error) {
	p, _, err := c.ThreatIntelOthers(ctx, q)
	return p, err
}

// ThreatIntelOthers is ThreatIntelFeed that also returns how many non-indicator objects the
// answer held, for a caller that reports them.
func (c *Client) ThreatIntelOthers(ctx context.Context, q ThreatIntelQuery) (Page, int, error) {
	if q.FeedType == "" {
		return Page{}, 0, errors.New("threat intel feed: empty feed type")
	}
	what := "read threat intel feed " + q.FeedType
	item := map[string]any{"feedType": q.FeedType, "fileType": "stix"}
	if q.Token != "" {
		item["token"] = q.Token
	} else {
		if !q.Start.IsZero() {
			item["start"] = api.FormatTime(q.Start)
		}
		if !q.End.IsZero() {
			item["end"] = api.FormatTime(q.End)
		}
	}
	raw, err := json.Marshal(item)
	if err != nil {
		return Page{}, 0, fmt.Errorf("%s: encode request: %w", what, err)
	}
	body, err := json.Marshal(&api.Request{Data: []json.RawMessage{raw}})
	if err != nil {
		return Page{}, 0, fmt.Errorf("%s: encode request: %w", what, err)
	}
	op := "POST " + pathThreatIntelFeed
	ctx = withEndpoint(ctx, op)
	rep, err := retrying(ctx, c, op, quotaGroup(pathThreatIntelFeed), func(tok string, attempt int, sl *slot) (restReply, error) {
		// On failure the slot stays held: retrying releases it once it knows whether a 429
		// was the quota's (as for every legacy call).
		rep, err := c.postRawAttempt(ctx, op, pathThreatIntelFeed, body, tok, attempt, sl)
		if err == nil {
			sl.release()
		}
		return rep, err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == codeNoResult && (e.Status == http.StatusOK || (e.Status >= 400 && e.Status < 500)) {
			return Page{Total: -1, CaughtUp: true}, 0, nil
		}
		return Page{}, 0, fmt.Errorf("%s: %w", what, err)
	}
	page, others, err := decodeSTIXPage(op, rep.body)
	if err != nil {
		return Page{}, 0, fmt.Errorf("%s: %w", what, err)
	}
	if rep.headerNext != "" {
		page.Next = rep.headerNext
	}
	page.CaughtUp = page.Next == ""
	return page, others, nil
}

// postRawAttempt POSTs body once and returns the raw answer with its header token: the
// threat-intel feed answers a file, not an envelope. fail[] on HTTP 200 is an error, as
// everywhere.
func (c *Client) postRawAttempt(ctx context.Context, op, path string, body []byte, tok string, n int, sl *slot) (restReply, error) {
	rep, err := c.bearerAttempt(ctx, op, http.MethodPost, c.base+path, path, body, tok, n, sl)
	if err != nil {
		return restReply{}, err
	}
	var probe struct {
		Fail []api.Fail `json:"fail"`
	}
	if json.Unmarshal(rep.body, &probe) == nil && len(probe.Fail) > 0 {
		e := failError(op, probe.Fail)
		e.Message = c.tokens.scrub(e.Message)
		return restReply{}, e
	}
	return rep, nil
}

// decodeSTIXPage reads the indicators of a feed answer (see the variants above) and counts
// the other objects. An object without a type is counted with the others: nothing marks it
// as an indicator. An item that is not a JSON object fails the page (a broken file).
func decodeSTIXPage(op string, body []byte) (Page, int, error) {
	page := Page{Total: -1}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return page, 0, malformed(op, errors.New("empty body"))
	}
	var objects []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &objects); err != nil {
			return Page{}, 0, malformed(op, err)
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &top); err != nil {
			return Page{}, 0, malformed(op, err)
		}
		next, err := nextToken(top)
		if err != nil {
			return Page{}, 0, malformed(op, err)
		}
		page.Next = next
		switch {
		case top["objects"] != nil:
			if err := unmarshalList(top["objects"], &objects); err != nil {
				return Page{}, 0, malformed(op, fmt.Errorf("objects: %w", err))
			}
		case top["data"] != nil:
			var data []json.RawMessage
			if err := unmarshalList(top["data"], &data); err != nil {
				return Page{}, 0, malformed(op, fmt.Errorf("data: %w", err))
			}
			for i, d := range data {
				var inner struct {
					Objects json.RawMessage `json:"objects"`
				}
				if json.Unmarshal(d, &inner) == nil && len(inner.Objects) > 0 {
					var objs []json.RawMessage
					if err := unmarshalList(inner.Objects, &objs); err != nil {
						return Page{}, 0, malformed(op, fmt.Errorf("data[%d].objects: %w", i, err))
					}
					objects = append(objects, objs...)
					continue
				}
				objects = append(objects, d)
			}
		}
	default:
		return Page{}, 0, malformed(op, fmt.Errorf("want a STIX bundle, got %q", excerpt(trimmed)))
	}
	others := 0
	for i, o := range objects {
		var head struct {
			Type string `json:"type"`
		}
		if t := bytes.TrimSpace(o); len(t) == 0 || t[0] != '{' {
			return Page{}, 0, malformed(op, fmt.Errorf("object %d: not a JSON object", i))
		}
		if json.Unmarshal(o, &head) != nil || head.Type != "indicator" {
			others++
			continue
		}
		page.Records = append(page.Records, o)
	}
	return page, others, nil
}

func unmarshalList(raw json.RawMessage, v *[]json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	return json.Unmarshal(raw, v)
}
