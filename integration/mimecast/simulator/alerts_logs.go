package simulator

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Legacy security-log endpoints: POST /api/ttp/{attachment,url,impersonation}/get-logs and
// /api/dlp/get-logs. One data item {from, to, oldestFirst, filters...}; records under
// data[0].<wrapper>[], newest first unless oldestFirst; from/to inclusive at second
// precision, defaults start of today .. now (simulator clock); meta.pagination next and
// totalCount. A page token carries the resolved window and the position, so later pages do
// not depend on the clock; records recorded late inside the window before the position are
// not seen by later pages (they are for the next poll's overlap).

// logWrappers is the key of the records in data[0], per source.
var logWrappers = map[string]string{
	SourceAttachment:    "attachmentLogs",
	SourceURL:           "clickLogs",
	SourceImpersonation: "impersonationLogs",
	SourceDLP:           "dlpLogs",
}

// Filter vocabularies (reference §4.4). "unknown" is accepted for attachment results because
// the 1.0 docs list it and records carry it.
var (
	logRoutes        = []string{"all", "inbound", "outbound", "internal"}
	logResults       = []string{"all", "safe", "malicious", "timeout", "error", "unsafe", "unknown"}
	logScanResults   = []string{"all", "clean", "malicious", "suspicious"}
	logImpActions    = []string{"hold", "bounce", "none"}
	logSearchFields  = []string{"senderAddress", "recipientAddress", "subject", "policy", "all"}
	maxLogFilterList = 50
)

// alertLogItem is the data item of a log request. Unknown keys are ignored.
type alertLogItem struct {
	From            string   `json:"from"`
	To              string   `json:"to"`
	OldestFirst     bool     `json:"oldestFirst"`
	Route           string   `json:"route"`
	Result          string   `json:"result"`
	ScanResult      string   `json:"scanResult"`
	TaggedMalicious *bool    `json:"taggedMalicious"`
	Identifiers     []string `json:"identifiers"`
	Actions         []string `json:"actions"`
	Routes          []string `json:"routes"`
	SearchField     string   `json:"searchField"`
	Query           string   `json:"query"`
}

// alertLogToken is the sealed content of a log page token.
type alertLogToken struct {
	Endpoint string `json:"p"`
	Client   string `json:"c"`
	Filter   string `json:"f"`
	Start    int64  `json:"s"` // Unix seconds, inclusive
	End      int64  `json:"e"` // Unix seconds, inclusive
	AfterAt  int64  `json:"a"` // position: event time (ms) and seq of the last record served
	AfterSeq int64  `json:"q"`
	Done     bool   `json:"d,omitempty"` // the empty page after the last (EmptyLastPage)
	// Paging variants (AlertPaging): Empty serves an empty page leading on to the same
	// position; Depth counts the pages behind the token and First is where the first page
	// ended, so that Loop can hand out the first page's token again, byte for byte.
	Empty    bool  `json:"m,omitempty"`
	Depth    int   `json:"n,omitempty"`
	FirstAt  int64 `json:"fa,omitempty"`
	FirstSeq int64 `json:"fq,omitempty"`
}

// passed moves t past page, when it has records: to its last record's position, one page
// deeper, remembering where the first page ended (for AlertPaging.Loop).
func (t *alertLogToken) passed(page []*alertRec) {
	if len(page) == 0 {
		return
	}
	last := page[len(page)-1]
	t.AfterAt, t.AfterSeq = last.at, last.seq
	t.Depth++
	if t.Depth == 1 {
		t.FirstAt, t.FirstSeq = last.at, last.seq
	}
}

// vary applies the paging variants to next, the token of a page with more records behind
// it: Loop hands out the first page's token again from the third page on, EmptyPages puts
// an empty page before the rest unless askedEmpty (the page next follows was that empty
// page). AlertPaging.advance does the same for the REST tokens.
func (p AlertPaging) vary(next *alertLogToken, askedEmpty bool) {
	switch {
	case p.Loop && next.Depth >= 3:
		// A → B → A: the token the first page gave, again.
		next.AfterAt, next.AfterSeq, next.Depth = next.FirstAt, next.FirstSeq, 1
	case p.EmptyPages && !askedEmpty:
		next.Empty = true
	}
}

// alertsOff is the answer of an alerts endpoint while the simulator holds no alert data
// (404), or nil.
func (s *Server) alertsOff() *reply {
	if s.alerts.on.Load() {
		return nil
	}
	return &reply{status: 404, fail: []api.Fail{{Code: "not_found", Message: "The requested resource does not exist"}}}
}

// alertItem is the one data item of an alerts endpoint's request, decoded as T; r is the
// answer instead when alerts are off, data does not hold exactly one item or it does not
// decode.
func alertItem[T any](s *Server, c *call) (item json.RawMessage, f T, r *reply) {
	if r := s.alertsOff(); r != nil {
		return nil, f, r
	}
	if item, r = one(c); r != nil {
		return nil, f, r
	}
	if r := decodeItem(item, &f); r != nil {
		return nil, f, r
	}
	return item, f, nil
}

func (s *Server) alertLogs(source string) endpoint {
	return func(c *call) reply {
		item, f, r := alertItem[alertLogItem](s, c)
		if r != nil {
			return *r
		}
		if r := checkLogFilter(source, item, f); r != nil {
			return *r
		}
		// Resolve the window: inclusive, second precision, default start of today .. now.
		now := s.opts.Now().UTC()
		start := now.Truncate(24 * time.Hour).Unix()
		end := now.Unix()
		if r := parseBounds(item, time.Time.Unix, windowBound{"from", f.From, &start}, windowBound{"to", f.To, &end}); r != nil {
			return *r
		}
		norm := f
		norm.From, norm.To = "", ""
		js, _ := json.Marshal(norm)
		filter := s.digest("alertlogs", source, string(js))

		var match func(*alertRec) bool
		if !f.unfiltered() {
			match = func(r *alertRec) bool { return matchLog(source, f, r.fields) }
		}
		recs, pg, total, r := s.legacyPage(c, legacyWindow{source: source, start: start, end: end, filter: filter, asc: f.OldestFirst, match: match})
		if r != nil {
			return *r
		}
		body := map[string]any{logWrappers[source]: recs}
		if source == SourceImpersonation {
			body["resultCount"] = total
		}
		return reply{data: []any{body}, pagination: pg}
	}
}

// legacyWindow is one page request of a legacy time-window log: its resolved window, the
// digest of its filter (which binds its page tokens), the listing order and the selection.
type legacyWindow struct {
	source     string
	start, end int64 // Unix seconds, inclusive; a page token's window replaces them
	filter     string
	asc        bool
	match      func(*alertRec) bool // nil: every record
}

// legacyPage serves one page of a legacy time-window log (the security logs, the audit log):
// the page token checked and followed, the records of the page and meta.pagination with its
// next token and totalCount, and the paging variants of AlertPaging and EmptyLastPage. A bad
// token is a failure reply.
func (s *Server) legacyPage(c *call, w legacyWindow) (recs []json.RawMessage, pg *api.Pagination, total int, bad *reply) {
	start, end := w.start, w.end
	var tok alertLogToken
	if c.pageToken != "" {
		if !s.keys.open("alertpage", c.pageToken, &tok) || tok.Endpoint != c.r.URL.Path {
			return nil, nil, 0, &reply{status: 400, fail: []api.Fail{{Code: codeBadToken, Message: "The page token is invalid"}}}
		}
		if tok.Client != s.digest("client", c.client) {
			return nil, nil, 0, &reply{status: 400, fail: []api.Fail{{Code: codeBadToken, Message: "The page token was issued to another application"}}}
		}
		if tok.Filter != w.filter {
			return nil, nil, 0, &reply{status: 400, fail: []api.Fail{{Code: codeBadToken, Message: "The page token does not match the request data"}}}
		}
		start, end = tok.Start, tok.End
	}

	size := s.effectivePageSize(c.pageSize)
	q := timeQuery{from: start * 1000, to: end*1000 + 999, asc: w.asc, size: size, countTotal: true, match: w.match,
		hasAfter: c.pageToken != "", afterAt: tok.AfterAt, afterSeq: tok.AfterSeq}
	paging := s.opts.Alerts.Paging
	if tok.Done {
		q.size = 0
	}
	page, more, total := s.pageWithVariants(w.source, q, tok.Empty)
	if tok.Done {
		page, more = nil, false
	}
	recs = make([]json.RawMessage, len(page))
	for i, r := range page {
		recs[i] = r.raw
	}
	pg = &api.Pagination{PageSize: size, TotalCount: intPtr(total)}
	next := alertLogToken{Endpoint: c.r.URL.Path, Client: s.digest("client", c.client), Filter: w.filter, Start: start, End: end,
		AfterAt: tok.AfterAt, AfterSeq: tok.AfterSeq, Depth: tok.Depth, FirstAt: tok.FirstAt, FirstSeq: tok.FirstSeq}
	next.passed(page)
	switch {
	case more:
		paging.vary(&next, tok.Empty)
	case s.opts.EmptyLastPage && !tok.Done:
		// The fixtures' variant: the last page still carries next; it leads to an empty
		// page that carries yet another next.
		next.Done = len(page) == 0
	default:
		next.Endpoint = ""
	}
	if next.Endpoint != "" {
		pg.Next, _ = s.keys.seal("alertpage", next)
	}
	return recs, pg, total, nil
}

// unfiltered reports whether f selects every record of its window.
func (f alertLogItem) unfiltered() bool {
	all := func(v string) bool { return v == "" || v == "all" }
	return all(f.Route) && all(f.Result) && all(f.ScanResult) && f.TaggedMalicious == nil &&
		len(f.Identifiers) == 0 && len(f.Actions) == 0 && (len(f.Routes) == 0 || slices.Contains(f.Routes, "all")) && f.Query == ""
}

// checkLogFilter validates the enums a source takes; other keys are ignored, as unknown
// keys are (inferred).
func checkLogFilter(source string, item json.RawMessage, f alertLogItem) *reply {
	bad := func(field, val string, allowed []string) *reply {
		r := failReply(itemFail(item, codeNotAllowed, field+" "+val+" is not one of "+strings.Join(allowed, ", ")))
		return &r
	}
	in := func(v string, allowed []string) bool { return v == "" || slices.Contains(allowed, v) }
	switch source {
	case SourceAttachment, SourceURL:
		if !in(f.Route, logRoutes) {
			return bad("route", f.Route, logRoutes)
		}
	}
	if source == SourceAttachment && !in(f.Result, logResults) {
		return bad("result", f.Result, logResults)
	}
	if source == SourceURL && !in(f.ScanResult, logScanResults) {
		return bad("scanResult", f.ScanResult, logScanResults)
	}
	if len(f.Actions) > maxLogFilterList || len(f.Identifiers) > maxLogFilterList || len(f.Routes) > maxLogFilterList {
		r := failReply(itemFail(item, codeTooMany, "too many values in a filter list"))
		return &r
	}
	if source == SourceImpersonation {
		for _, a := range f.Actions {
			if !slices.Contains(logImpActions, a) {
				return bad("actions", a, logImpActions)
			}
		}
	}
	if source == SourceDLP {
		for _, rt := range f.Routes {
			if !slices.Contains(logRoutes, rt) {
				return bad("routes", rt, logRoutes)
			}
		}
	}
	if (source == SourceImpersonation || source == SourceDLP) && !in(f.SearchField, logSearchFields) {
		return bad("searchField", f.SearchField, logSearchFields)
	}
	return nil
}

// matchLog applies the filters a source takes to one record.
func matchLog(source string, f alertLogItem, rec map[string]any) bool {
	eq := func(filter, field string) bool {
		return filter == "" || filter == "all" || strings.EqualFold(str(rec, field), filter)
	}
	switch source {
	case SourceAttachment:
		return eq(f.Route, "route") && eq(f.Result, "result")
	case SourceURL:
		return eq(f.Route, "route") && eq(f.ScanResult, "scanResult")
	case SourceImpersonation:
		if f.TaggedMalicious != nil {
			if b, _ := rec["taggedMalicious"].(bool); b != *f.TaggedMalicious {
				return false
			}
		}
		if len(f.Identifiers) > 0 {
			ids, _ := rec["identifiers"].([]any)
			if !slices.ContainsFunc(ids, func(v any) bool { s, _ := v.(string); return slices.Contains(f.Identifiers, s) }) {
				return false
			}
		}
		if len(f.Actions) > 0 && !slices.Contains(f.Actions, str(rec, "action")) {
			return false
		}
		return matchQuery(f, rec, []string{"senderAddress", "recipientAddress", "subject", "definition"})
	case SourceDLP:
		if len(f.Routes) > 0 && !slices.Contains(f.Routes, "all") && !slices.Contains(f.Routes, str(rec, "route")) {
			return false
		}
		if len(f.Actions) > 0 && !slices.Contains(f.Actions, str(rec, "action")) {
			return false
		}
		return matchQuery(f, rec, []string{"senderAddress", "recipientAddress", "subject", "policy"})
	}
	return true
}

// matchQuery is searchField/query: a case-insensitive substring of the named field, or of
// any of fields for "all" (inferred: the docs name the parameters, not their matching).
func matchQuery(f alertLogItem, rec map[string]any, fields []string) bool {
	if f.Query == "" {
		return true
	}
	if f.SearchField != "" && f.SearchField != "all" {
		fields = []string{f.SearchField}
		if f.SearchField == "policy" {
			fields = []string{"policy", "definition"}
		}
	}
	q := strings.ToLower(f.Query)
	for _, k := range fields {
		if strings.Contains(strings.ToLower(str(rec, k)), q) {
			return true
		}
	}
	return false
}
