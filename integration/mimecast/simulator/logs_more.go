package simulator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// More log sources: the archive access audit (get-archive-search-logs, get-search-logs,
// get-view-logs), held-message release logs (get-held-release-logs), the threat-intel
// feed (get-feed, both feed types) and the Cloud Integrated SIEM (batch and stream). Their
// records live in the alert store beside the other sources (legacy ones in logs/byTime, CI
// events in ci with batch files among the SIEM files), are seeded from
// Options.Seed and AlertOptions.Logs, and can be added and listed through AddAlerts,
// AlertTruth and /_sim/alerts under the source names below: each is a spec of the source
// table (sources.go). They are not part of Truth().Alerts, which keeps listing the original
// sources only.
//
// Shapes and where they come from are written down beside the client's methods
// (integration/mimecast/logs_archive.go, threatintel.go, siem_ci.go); the variants the
// public sources leave open are switches of LogOptions.

// Source names of the more logs (AddAlerts, AlertTruth, /_sim/alerts).
const (
	SourceArchiveSearchLogs   = "archive_search_logs"
	SourceSearchLogs          = "archive_searches"
	SourceViewLogs            = "archive_view_logs"
	SourceHeldRelease         = "held_release_logs"
	SourceThreatIntelCustomer = "threat_intel_malware_customer"
	SourceThreatIntelGrid     = "threat_intel_malware_grid"
	SourceSIEMCI              = "siem_ci"
)

// The more logs' specs (sources.go). Their records are drawn from one generator
// (logs_more_seed.go), in table order, after the original alert sources'.
var (
	archiveSearchLogsSim = simSource{name: SourceArchiveSearchLogs, timeField: "createTime",
		format: layoutTime(""), parseTime: moreEventTime,
		api:   map[string]func(*Server) endpoint{pathArchiveSearchLogs: windowLog(SourceArchiveSearchLogs, "logs", archiveSearchQueryFields)},
		count: func(a AlertOptions) int { return a.Logs.ArchiveSearch },
		gen:   fromLogGen((*moreGen).archiveSearch),
	}
	searchLogsSim = simSource{name: SourceSearchLogs, timeField: "createTime", format: layoutTime(""), parseTime: moreEventTime,
		api:   map[string]func(*Server) endpoint{pathSearchLogs: windowLog(SourceSearchLogs, "logs", archiveSearchQueryFields)},
		count: func(a AlertOptions) int { return a.Logs.Search },
		gen:   fromLogGen((*moreGen).archiveSearch),
	}
	viewLogsSim = simSource{name: SourceViewLogs, timeField: "viewed", format: layoutTime(""), parseTime: moreEventTime,
		api:   map[string]func(*Server) endpoint{pathViewLogs: windowLog(SourceViewLogs, "logs", []string{"viewer", "subject", "from", "to"})},
		count: func(a AlertOptions) int { return a.Logs.View },
		gen:   fromLogGen((*moreGen).view),
	}
	heldReleaseSim = simSource{name: SourceHeldRelease, timeField: "released", format: layoutTime("offset"), parseTime: moreEventTime,
		api:   map[string]func(*Server) endpoint{pathHeldReleaseLogs: windowLog(SourceHeldRelease, "heldReleaseLogs", nil)},
		count: func(a AlertOptions) int { return a.Logs.HeldRelease },
		gen:   fromLogGen((*moreGen).heldRelease),
	}
	// One endpoint serves both threat-intel feeds (by feedType); the customer feed's spec
	// registers it.
	threatIntelCustomerSim = simSource{name: SourceThreatIntelCustomer, timeField: "modified", millis: true,
		format: formatMillisZ, parseTime: moreEventTime,
		api:   map[string]func(*Server) endpoint{pathThreatIntelFeed: func(s *Server) endpoint { return s.threatIntelFeed }},
		count: func(a AlertOptions) int { return a.Logs.ThreatIntelCustomer },
		gen:   indicatorGen,
	}
	threatIntelGridSim = simSource{name: SourceThreatIntelGrid, timeField: "modified", millis: true,
		format: formatMillisZ, parseTime: moreEventTime,
		count: func(a AlertOptions) int { return a.Logs.ThreatIntelGrid },
		gen:   indicatorGen,
	}
	siemCISim = simSource{name: SourceSIEMCI, timeField: "timestamp", format: formatEpochMillis, parseTime: moreEventTime, millis: true,
		check: func(fields map[string]any) error {
			if typ, _ := fields["type"].(string); !slices.Contains(SIEMTypesCI, typ) {
				return fmt.Errorf("a CI SIEM event needs a \"type\" of %s", strings.Join(SIEMTypesCI, ", "))
			}
			return nil
		},
		rest: map[string]restRoute{
			pathSIEMBatchCI:  {serve: siemBatchOf(productCI), budget: func(a AlertOptions) RateWindow { return a.SIEMBatchLimit }},
			pathSIEMEventsCI: {serve: siemEventsOf(productCI), budget: func(a AlertOptions) RateWindow { return a.SIEMStreamLimit }},
		},
		count: func(a AlertOptions) int { return a.Logs.SIEMCI },
		gen:   fromLogGen((*moreGen).ciEvent),
		store: (*Server).storeCI,
		list:  func(s *Server) []*alertRec { return s.alerts.ci },
	}
)

// archiveSearchQueryFields are the fields the archive search logs' query matches.
var archiveSearchQueryFields = []string{"searchText", "emailAddr", "description", "searchReason"}

// layoutTime writes a time as the archive and release logs do: under LogOptions.TimeLayout,
// or def when it is "" (the source's own layout in the public samples).
func layoutTime(def string) func(AlertOptions, time.Time) any {
	return func(o AlertOptions, t time.Time) any {
		t = t.UTC()
		switch cmp.Or(o.Logs.TimeLayout, def) {
		case "rfc3339":
			return t.Format(time.RFC3339)
		case "offset":
			return t.Format("2006-01-02T15:04:05-07:00")
		}
		return api.FormatTime(t)
	}
}

// windowLog is the endpoint of an archive or release log.
func windowLog(source, wrapper string, queryFields []string) func(*Server) endpoint {
	return func(s *Server) endpoint { return s.windowLogs(source, wrapper, queryFields) }
}

// fromLogGen makes a generator of the more logs' shared generator a source's gen.
func fromLogGen(f func(g *moreGen, i int) map[string]any) seedGen {
	return func(r *seedRun, i, _ int, _ time.Time) map[string]any { return f(r.logGen(), i) }
}

// indicatorGen builds a feed's seeded indicators: created and valid_from are its modified.
func indicatorGen(r *seedRun, i, _ int, at time.Time) map[string]any {
	fields := r.logGen().indicator(i)
	t := formatMillisZ(r.o, at)
	fields["created"], fields["valid_from"] = t, t
	return fields
}

// SIEMTypesCI are the Cloud Integrated SIEM event types, in the order seeded events cycle.
var SIEMTypesCI = []string{"entities", "mailflow", "urlclick"}

// Paths of the more log endpoints.
const (
	pathArchiveSearchLogs = "/api/archive/get-archive-search-logs"
	pathSearchLogs        = "/api/archive/get-search-logs"
	pathViewLogs          = "/api/archive/get-view-logs"
	pathHeldReleaseLogs   = "/api/gateway/get-held-release-logs"
	pathThreatIntelFeed   = "/api/ttp/threat-intel/get-feed"
	pathSIEMBatchCI       = "/siem/v1/batch/events/ci"
	pathSIEMEventsCI      = "/siem/v1/events/ci"

	codeNoResult = "err_threat_intel_feed_no_result_found"
)

// LogOptions seeds the more log sources and picks the shape variants they are served in
// (AlertOptions.Logs). The zero value serves nothing and the documented shapes. Paging
// variants (EmptyPages, Loop, HideEvery) come from AlertOptions.Paging, as for the other
// legacy logs; the threat-intel feed honours EmptyPages and Loop.
type LogOptions struct {
	// Seeded records per source, spread over AlertOptions' (End-Span, End]: the same as
	// AlertOptions.Counts of the sources' names.
	ArchiveSearch, Search, View, HeldRelease, ThreatIntelCustomer, ThreatIntelGrid, SIEMCI int
	// FlatData serves the archive and release logs flat in data[] instead of under their
	// wrapper in data[0] (the reference documents both shapes for different endpoints).
	FlatData bool
	// TimeLayout is how the legacy logs write their times: "" (per source as in the
	// public samples: +0000 for archive logs, +00:00 for release logs), "legacy" (+0000),
	// "rfc3339" (Z) or "offset" (+00:00).
	TimeLayout string
	// ThreatIntelShape is the form of a feed answer: "bundle" (default, a STIX bundle as a
	// file), "envelope" (the bundle in data[0] of a legacy envelope) or "array" (a bare
	// JSON array of the objects).
	ThreatIntelShape string
	// ThreatIntelPageSize is the number of indicators per feed answer (default 50).
	ThreatIntelPageSize int
	// ThreatIntelTokenInBody puts the next token in the body (meta.pagination.next of the
	// envelope, "next" of a bundle) instead of the X-Mc-Threat-Feed-Next-Token header.
	ThreatIntelTokenInBody bool
	// NoResultStatus is the HTTP status of the answer to a window without indicators:
	// 0 = 200 with fail[] err_threat_intel_feed_no_result_found; else that status with the
	// same body.
	NoResultStatus int
	// CINotLicensed makes the CI SIEM endpoints refuse the account: "forbidden" (403
	// app_forbidden, as any unlicensed endpoint) or "bad_request" (400 with a REST error
	// saying the product is not enabled). "" serves them.
	CINotLicensed string
}

const defaultThreatIntelPage = 50

func (o LogOptions) validate() error {
	switch {
	case !slices.Contains([]string{"", "legacy", "rfc3339", "offset"}, o.TimeLayout):
		return fmt.Errorf("options: alerts: logs: time layout %q: want legacy, rfc3339 or offset", o.TimeLayout)
	case !slices.Contains([]string{"", "bundle", "envelope", "array"}, o.ThreatIntelShape):
		return fmt.Errorf("options: alerts: logs: threat intel shape %q: want bundle, envelope or array", o.ThreatIntelShape)
	case o.ThreatIntelShape == "array" && o.ThreatIntelTokenInBody:
		return fmt.Errorf("options: alerts: logs: a bare array has no body to hold a token")
	case !slices.Contains([]string{"", "forbidden", "bad_request"}, o.CINotLicensed):
		return fmt.Errorf("options: alerts: logs: ci not licensed %q: want forbidden or bad_request", o.CINotLicensed)
	case o.ThreatIntelPageSize < 0, o.NoResultStatus != 0 && (o.NoResultStatus < 200 || o.NoResultStatus > 599):
		return fmt.Errorf("options: alerts: logs: bad threat intel page size or no-result status")
	}
	return nil
}

// moreEventTime reads the event time of a more log's record: Unix milliseconds (a number) or
// a time the API writes.
func moreEventTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return time.UnixMilli(n).UTC(), true
		}
	case string:
		if t, err := api.ParseTime(x); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// storeCI adds built CI events to the stream and to new batch files (one per type and UTC
// day).
func (s *Server) storeCI(recs []*alertRec) {
	st := s.alerts
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range recs {
		st.seq++
		r.seq = st.seq
	}
	st.ci = append(st.ci, recs...)
	per := max(s.opts.Alerts.SIEMFileEvents, 1)
	for _, typ := range SIEMTypesCI {
		var evs []*alertRec
		for _, r := range recs {
			if r.fields["type"] == typ {
				evs = append(evs, r)
			}
		}
		for len(evs) > 0 {
			take, day := fileTake(evs, per)
			st.addFile(productCI.filePrefix+typ, day, evs[:take:take], nil, s.keys)
			evs = evs[take:]
		}
	}
	if len(recs) > 0 {
		st.on.Store(true)
	}
}

// siemProduct is what differs between the cg and ci SIEM endpoints.
type siemProduct struct {
	batchPath, streamPath string
	known                 func(string) bool
	filePrefix            string // batch files of the product are stored with this type prefix
	events                func(s *Server) []*alertRec
}

var (
	productCG = siemProduct{batchPath: pathSIEMBatch, streamPath: pathSIEMEvents, known: siemKnownType,
		events: func(s *Server) []*alertRec { return s.alerts.siem }}
	productCI = siemProduct{batchPath: pathSIEMBatchCI, streamPath: pathSIEMEventsCI, filePrefix: "ci/",
		known:  func(t string) bool { return slices.Contains(SIEMTypesCI, t) },
		events: func(s *Server) []*alertRec { return s.alerts.ci }}
)

// ciNotLicensed answers a CI SIEM request of an account without the product
// (LogOptions.CINotLicensed); false when it did not answer.
func (s *Server) ciNotLicensed(w http.ResponseWriter, path string) bool {
	if path != pathSIEMBatchCI && path != pathSIEMEventsCI {
		return false
	}
	switch s.opts.Alerts.Logs.CINotLicensed {
	case "forbidden":
		writeFlatFail(w, http.StatusForbidden, "app_forbidden", "Resource or method requested does not exist in any product assigned to the application")
		return true
	case "bad_request":
		writeRESTError(w, http.StatusBadRequest, "err_product_not_licensed", "Cloud Integrated is not enabled for this account")
		return true
	}
	return false
}

// windowItem is the data item of an archive or release log request. from/to are taken
// for start/end too (inferred: the other logs name their window so).
type windowItem struct {
	Start string `json:"start"`
	End   string `json:"end"`
	From  string `json:"from"`
	To    string `json:"to"`
	Query string `json:"query"`
}

// windowLogs serves an archive or release log: data [] or [{start, end, query}] (at most
// one item); records newest first under data[0].<wrapper>[] (or flat, FlatData); the
// window inclusive at second precision, default start of today .. now; pages, tokens,
// meta.pagination and the paging variants by legacyPage, as for the security logs.
// query, where the log takes one, is a case-insensitive substring of any of queryFields.
func (s *Server) windowLogs(source, wrapper string, queryFields []string) endpoint {
	return func(c *call) reply {
		if r := s.alertsOff(); r != nil {
			return *r
		}
		item := emptyKey()
		switch len(c.data) {
		case 0:
		case 1:
			item = c.data[0]
		default:
			return failReply(itemFail(c.data[1], codeTooMany, "data must hold at most one item"))
		}
		var f windowItem
		if r := decodeItem(item, &f); r != nil {
			return *r
		}
		if queryFields == nil && f.Query != "" {
			return failReply(itemFail(item, codeNotAllowed, "query is not a field of this request"))
		}
		now := s.opts.Now().UTC()
		start, end := now.Truncate(24*time.Hour).Unix(), now.Unix()
		if r := parseBounds(item, time.Time.Unix, windowBound{"start", cmp.Or(f.Start, f.From), &start}, windowBound{"end", cmp.Or(f.End, f.To), &end}); r != nil {
			return *r
		}
		filter := s.digest("morelogs", source, f.Query)
		var match func(*alertRec) bool
		if f.Query != "" {
			needle := strings.ToLower(f.Query)
			match = func(r *alertRec) bool {
				return slices.ContainsFunc(queryFields, func(k string) bool { return strings.Contains(strings.ToLower(str(r.fields, k)), needle) })
			}
		}
		page, pg, _, bad := s.legacyPage(c, legacyWindow{source: source, start: start, end: end, filter: filter, match: match})
		if bad != nil {
			return *bad
		}
		recs := make([]any, len(page))
		for i, r := range page {
			recs[i] = r
		}
		if s.opts.Alerts.Logs.FlatData {
			return reply{data: recs, pagination: pg}
		}
		return reply{data: []any{map[string]any{wrapper: recs}}, pagination: pg}
	}
}

// threatIntelItem is the data item of a feed request.
type threatIntelItem struct {
	FeedType string `json:"feedType"`
	FileType string `json:"fileType"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Token    string `json:"token"`
}

// threatIntelFeed serves POST /api/ttp/threat-intel/get-feed: one data item {feedType,
// fileType: stix, start, end} or {feedType, fileType, token}; indicators oldest first by
// modified, ThreatIntelPageSize per answer, each with its malware and relationship objects
// as in the public samples; the next token in the X-Mc-Threat-Feed-Next-Token header (or
// the body, ThreatIntelTokenInBody); a first page with nothing in its window answers
// err_threat_intel_feed_no_result_found. A token is bound to the client and the feed type.
func (s *Server) threatIntelFeed(c *call) reply {
	item, f, r := alertItem[threatIntelItem](s, c)
	if r != nil {
		return *r
	}
	var source string
	switch f.FeedType {
	case "malware_customer":
		source = SourceThreatIntelCustomer
	case "malware_grid":
		source = SourceThreatIntelGrid
	case "":
		return failReply(itemFail(item, codeNull, "feedType is required"))
	default:
		return failReply(itemFail(item, codeNotAllowed, "feedType must be malware_customer or malware_grid"))
	}
	switch f.FileType {
	case "stix", "":
	case "csv":
		return failReply(itemFail(item, codeNotAllowed, "fileType csv is not served by this simulator"))
	default:
		return failReply(itemFail(item, codeNotAllowed, "fileType must be stix or csv"))
	}
	o := s.opts.Alerts.Logs
	now := s.opts.Now().UTC()
	start, end := now.Truncate(24*time.Hour).UnixMilli(), now.UnixMilli()
	filter := s.digest("threatintel", f.FeedType)
	var tok alertLogToken
	if f.Token != "" {
		if !s.keys.open("threatintel", f.Token, &tok) || tok.Client != s.digest("client", c.client) || tok.Filter != filter {
			return failReply(itemFail(item, codeBadToken, "The token is invalid"))
		}
		start, end = tok.Start, tok.End
	} else {
		if r := parseBounds(item, time.Time.UnixMilli, windowBound{"start", f.Start, &start}, windowBound{"end", f.End, &end}); r != nil {
			return *r
		}
	}
	size := o.ThreatIntelPageSize
	if size == 0 {
		size = defaultThreatIntelPage
	}
	q := timeQuery{from: start, to: end, asc: true, size: size, hasAfter: f.Token != "", afterAt: tok.AfterAt, afterSeq: tok.AfterSeq}
	page, more, _ := s.pageWithVariants(source, q, tok.Empty)
	if f.Token == "" && len(page) == 0 && !more {
		return reply{status: o.NoResultStatus, metaStatus: 200, fail: []api.Fail{{Code: codeNoResult, Message: "No results found for the threat intel feed"}}}
	}
	next := tok
	next.Endpoint, next.Client, next.Filter, next.Start, next.End = pathThreatIntelFeed, s.digest("client", c.client), filter, start, end
	next.Empty = false
	next.passed(page)
	var token string
	if more {
		s.opts.Alerts.Paging.vary(&next, tok.Empty)
		token, _ = s.keys.seal("threatintel", next)
	}
	objects := make([]json.RawMessage, 0, 3*len(page))
	for _, r := range page {
		objects = append(objects, r.raw)
		objects = append(objects, s.indicatorContext(r)...)
	}
	bundle := map[string]any{"type": "bundle", "id": "bundle--" + s.uuid("bundle", f.FeedType, strconv.FormatInt(next.AfterSeq, 10)),
		"spec_version": "2.0", "objects": objects}
	var rp reply
	switch o.ThreatIntelShape {
	case "envelope":
		rp = reply{data: []any{bundle}}
		if token != "" && o.ThreatIntelTokenInBody {
			rp.pagination = &api.Pagination{Next: token}
		}
	case "array":
		body, _ := marshalCompact(objects)
		rp = reply{raw: &rawFile{contentType: "application/json", body: body}}
	default:
		if token != "" && o.ThreatIntelTokenInBody {
			bundle["next"] = token
		}
		body, _ := marshalCompact(bundle)
		rp = reply{raw: &rawFile{contentType: "application/octet-stream",
			filename: f.FeedType + "_stix_" + now.Format("20060102150405") + ".stix", body: body}}
	}
	if token != "" && !o.ThreatIntelTokenInBody {
		rp.header = http.Header{"X-Mc-Threat-Feed-Next-Token": {token}}
	}
	return rp
}

// indicatorContext returns the malware and relationship objects served beside an
// indicator (derived from it, so that every answer carries the same ones).
func (s *Server) indicatorContext(r *alertRec) []json.RawMessage {
	id := str(r.fields, "id")
	at := str(r.fields, "modified")
	mal := "malware--" + s.uuid("malware", id)
	m, _ := marshalCompact(map[string]any{"type": "malware", "id": mal, "created": at, "modified": at,
		"name": malwareNames[int(s.keys.mac("malware name", id)[0])%len(malwareNames)], "labels": []string{"virus"}})
	rel, _ := marshalCompact(map[string]any{"type": "relationship", "id": "relationship--" + s.uuid("relationship", id),
		"created": at, "modified": at, "relationship_type": "indicates", "source_ref": id, "target_ref": mal})
	return []json.RawMessage{m, rel}
}

// uuid renders a UUID-shaped id derived from the seed and parts.
func (s *Server) uuid(parts ...string) string {
	b := s.keys.mac(append([]string{"uuid"}, parts...)...)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
