package simulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// REST-style alert endpoints: GET with query parameters, bare JSON bodies
// {"value":[...],"@nextPage":"...","isCaughtUp":bool}, endpoint errors as
// {"error":{"code","message"}} (gateway errors — 401, 403, 429 — keep the flat fail shape,
// as they come from the same gateway as the legacy ones).

const (
	pathThreatEvents = "/threats/v1/events"
	pathSIEMBatch    = "/siem/v1/batch/events/cg"
	pathSIEMEvents   = "/siem/v1/events/cg"
	// threatDetailsTemplate names the details endpoint for SetForbidden.
	threatDetailsTemplate = "/threats/v1/events/{id}/details"
	maxRESTPageSize       = 100
)

// isRESTAlertPath reports whether path is one of the REST alert endpoints: a route of a
// source (sources.go) or a threat's details.
func (s *Server) isRESTAlertPath(path string) bool {
	_, ok := s.rest[path]
	return ok || threatDetailsID(path) != ""
}

// siemBatchOf and siemEventsOf are the SIEM routes of a product.
func siemBatchOf(p siemProduct) func(*Server, http.ResponseWriter, *http.Request, string) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, client string) { s.siemBatch(w, r, client, p) }
}

func siemEventsOf(p siemProduct) func(*Server, http.ResponseWriter, *http.Request, string) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, client string) { s.siemEvents(w, r, client, p) }
}

// threatDetailsID extracts {id} from /threats/v1/events/{id}/details; "" if path is not that.
func threatDetailsID(path string) string {
	rest, ok := strings.CutPrefix(path, pathThreatEvents+"/")
	if !ok {
		return ""
	}
	id, ok := strings.CutSuffix(rest, "/details")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

func writeRESTError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// serveREST runs the gateway checks (method, token, the client's bucket, the endpoint's
// budget, 403, faults), then the endpoint.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	if !s.alerts.on.Load() {
		writeFlatFail(w, http.StatusNotFound, "not_found", "The requested resource does not exist")
		return
	}
	client, now, _, ok := s.gate(w, r, http.MethodGet)
	if !ok {
		return
	}
	path := r.URL.Path
	route, routed := s.rest[path]
	var budget RateWindow
	if route.budget != nil {
		budget = route.budget(s.opts.Alerts)
	}
	if ok, wait := s.alerts.takeBudget(client, path, budget, now); !ok {
		s.setRateHeaders(w.Header(), 0, wait, true)
		writeFlatFail(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests for this endpoint; the request was not executed")
		return
	}
	s.forbiddenMu.RLock()
	forbidden := s.forbidden[path] || (threatDetailsID(path) != "" && s.forbidden[threatDetailsTemplate])
	s.forbiddenMu.RUnlock()
	if forbidden {
		writeFlatFail(w, http.StatusForbidden, "app_forbidden", "Resource or method requested does not exist in any product assigned to the application")
		return
	}
	if s.ciNotLicensed(w, path) {
		return
	}
	if s.applyFaults(w, r, nil) {
		return
	}
	if routed {
		route.serve(s, w, r, client)
		return
	}
	s.threatDetails(w, r, threatDetailsID(path))
}

// listParam reads a list parameter sent repeated and/or comma separated.
func listParam(q map[string][]string, key string) []string {
	var out []string
	for _, v := range q[key] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// pageSizeParam reads pageSize: 1..100, default def.
func pageSizeParam(w http.ResponseWriter, q map[string][]string, def int) (int, bool) {
	v := ""
	if len(q["pageSize"]) > 0 {
		v = q["pageSize"][0]
	}
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxRESTPageSize {
		writeRESTError(w, http.StatusBadRequest, "err_validation_page_size", "pageSize must be a number from 1 to 100")
		return 0, false
	}
	return n, true
}

// restToken is the sealed content of a REST page token (@nextPage or pageToken).
type restToken struct {
	Endpoint string `json:"p"`
	Client   string `json:"c"`
	Filter   string `json:"f"`
	Start    int64  `json:"s"` // Unix ms (batch: Unix seconds of the first day)
	End      int64  `json:"e"` // Unix ms, 0 = open (batch: Unix seconds of the last day)
	AfterAt  int64  `json:"a,omitempty"`
	AfterSeq int64  `json:"q,omitempty"`
	Asc      bool   `json:"o,omitempty"`
	// Paging variants (AlertPaging), as in alertLogToken.
	Empty    bool  `json:"m,omitempty"`
	Depth    int   `json:"n,omitempty"`
	FirstAt  int64 `json:"fa,omitempty"`
	FirstSeq int64 `json:"fq,omitempty"`
}

// advance returns the token after a page of n records that ended at (at, seq), applying
// the paging variants: Loop hands out the first page's token again from the third page on,
// EmptyPages puts an empty page before the rest. t is the token that asked for the page.
func (p AlertPaging) advance(t restToken, n int, at, seq int64) restToken {
	next := t
	next.Empty = false
	if n > 0 {
		next.AfterAt, next.AfterSeq = at, seq
		next.Depth++
		if next.Depth == 1 {
			next.FirstAt, next.FirstSeq = at, seq
		}
	}
	switch {
	case p.Loop && next.Depth >= 3:
		next.AfterAt, next.AfterSeq, next.Depth = next.FirstAt, next.FirstSeq, 1
	case p.EmptyPages && !t.Empty:
		next.Empty = true
	}
	return next
}

func (s *Server) openRESTToken(w http.ResponseWriter, raw, path, client, filter string) (restToken, bool) {
	var t restToken
	switch {
	case !s.keys.open("restpage", raw, &t) || t.Endpoint != path:
		writeRESTError(w, http.StatusBadRequest, "err_invalid_page_token", "The page token is invalid")
	case t.Client != s.digest("client", client):
		writeRESTError(w, http.StatusBadRequest, "err_invalid_page_token", "The page token was issued to another application")
	case t.Filter != filter:
		writeRESTError(w, http.StatusBadRequest, "err_invalid_page_token", "The page token does not match the request")
	default:
		return t, true
	}
	return t, false
}

func (s *Server) sealREST(t restToken) string {
	tok, _ := s.keys.seal("restpage", t)
	return tok
}

// parseRESTTime accepts ISO 8601 date-times with a zone, optionally followed by a zone id in
// brackets (…+05:30[Asia/Kolkata], as the threats reference shows).
func parseRESTTime(v string) (time.Time, bool) {
	if i := strings.IndexByte(v, '['); i > 0 && strings.HasSuffix(v, "]") {
		v = v[:i]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// GET /threats/v1/events: timestampRangeStartsAt (required), timestampRangeEndsAt,
// analysis/status/direction/source lists, pageSize, pageToken, orderBy timestamp:desc|asc.
func (s *Server) threatEvents(w http.ResponseWriter, r *http.Request, client string) {
	q := r.URL.Query()
	var start, end int64
	if v := q.Get("timestampRangeStartsAt"); v == "" {
		writeRESTError(w, http.StatusBadRequest, "err_validation_null", "timestampRangeStartsAt is required")
		return
	} else if t, ok := parseRESTTime(v); !ok {
		writeRESTError(w, http.StatusBadRequest, "err_validation_date", "timestampRangeStartsAt: want an ISO 8601 date-time with zone")
		return
	} else {
		start = t.UnixMilli()
	}
	if v := q.Get("timestampRangeEndsAt"); v != "" {
		t, ok := parseRESTTime(v)
		if !ok {
			writeRESTError(w, http.StatusBadRequest, "err_validation_date", "timestampRangeEndsAt: want an ISO 8601 date-time with zone")
			return
		}
		end = t.UnixMilli()
	}
	sel := map[string][]string{}
	for key, allowed := range map[string][]string{"analysis": threatKinds, "status": threatStatus,
		"direction": {"inbound", "outbound", "internal"}, "source": {"email", "url"}} {
		for _, v := range listParam(q, key) {
			if !slices.Contains(allowed, strings.ToLower(v)) {
				writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", key+" "+v+" is not one of "+strings.Join(allowed, ", "))
				return
			}
			sel[key] = append(sel[key], strings.ToLower(v))
		}
	}
	asc := false
	switch q.Get("orderBy") {
	case "", "timestamp:desc":
	case "timestamp:asc":
		asc = true
	default:
		writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", "orderBy must be timestamp:asc or timestamp:desc")
		return
	}
	size, ok := pageSizeParam(w, q, 25)
	if !ok {
		return
	}
	js, _ := json.Marshal(sel)
	filter := s.digest("threats", string(js), strconv.FormatBool(asc))
	var tok restToken
	if raw := q.Get("pageToken"); raw != "" {
		if tok, ok = s.openRESTToken(w, raw, pathThreatEvents, client, filter); !ok {
			return
		}
		start, end = tok.Start, tok.End
	}
	paging := s.opts.Alerts.Paging
	tq := timeQuery{from: start, to: -1, asc: asc, size: size, hasAfter: tok.Endpoint != "", afterAt: tok.AfterAt, afterSeq: tok.AfterSeq,
		countTotal: paging.TotalKey != ""}
	if end != 0 {
		tq.to = end
	}
	if len(sel) > 0 {
		tq.match = func(rec *alertRec) bool {
			for key, vals := range sel {
				if !slices.Contains(vals, strings.ToLower(str(rec.fields, key))) {
					return false
				}
			}
			return true
		}
	}
	page, more, total := s.pageWithVariants(SourceThreats, tq, tok.Empty)
	recs := make([]json.RawMessage, len(page))
	for i, rec := range page {
		recs[i] = rec.raw
	}
	body := map[string]any{s.opts.Alerts.ThreatsWrapper: recs}
	if paging.TotalKey != "" {
		body[paging.TotalKey] = total
	}
	if more {
		base := tok
		if base.Endpoint == "" {
			base = restToken{Endpoint: pathThreatEvents, Client: s.digest("client", client), Filter: filter, Start: start, End: end, Asc: asc}
		}
		var at, seq int64
		if len(page) > 0 {
			at, seq = page[len(page)-1].at, page[len(page)-1].seq
		}
		next := s.sealREST(paging.advance(base, len(page), at, seq))
		switch paging.TokenKey {
		case "header":
			w.Header().Set("X-Mc-Threat-Feed-Next-Token", next)
		case "next":
			body["next"] = "https://" + r.Host + pathThreatEvents + "?" + url.Values{"pageToken": {next}}.Encode()
		default:
			body[paging.TokenKey] = next
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// GET /threats/v1/events/{id}/details?source=EMAIL: sender, recipients, subject, threats,
// files and URLs of one threat event (shape inferred from the reference's prose).
func (s *Server) threatDetails(w http.ResponseWriter, r *http.Request, id string) {
	if src := r.URL.Query().Get("source"); src != "" && !strings.EqualFold(src, "email") && !strings.EqualFold(src, "url") {
		writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", "source must be EMAIL or URL")
		return
	}
	s.alerts.mu.RLock()
	rec := s.alerts.threatIDs[id]
	s.alerts.mu.RUnlock()
	if rec == nil {
		writeRESTError(w, http.StatusNotFound, "err_threat_not_found", "No threat event with this id")
		return
	}
	f := rec.fields
	d := map[string]any{
		"id": id, "subject": str(f, "subject"), "messageId": str(f, "messageId"),
		"sender":     map[string]any{"emailAddress": str(f, "senderAddress")},
		"recipients": []map[string]any{{"emailAddress": str(f, "recipientAddress")}},
		"threats":    []map[string]any{{"analysis": str(f, "analysis"), "status": str(f, "status")}},
		"files":      []map[string]any{},
		"urls":       []map[string]any{},
	}
	if n := str(f, "fileName"); n != "" {
		d["files"] = []map[string]any{{"fileName": n, "sha256": str(f, "sha256")}}
	}
	if u := str(f, "url"); u != "" {
		d["urls"] = []map[string]any{{"url": u, "clicked": true}}
	}
	writeJSON(w, http.StatusOK, d)
}

// GET /siem/v1/batch/events/cg: type (one per call), dateRangeStartsAt/EndsAt (YYYY-MM-DD,
// inclusive, at most 7 days back), pageSize (files), nextPage. @nextPage is always present:
// a durable cursor over the files of that type created so far; isCaughtUp says whether more
// files remain now. With nextPage the dates are those the token was issued for.
func (s *Server) siemBatch(w http.ResponseWriter, r *http.Request, client string, p siemProduct) {
	q := r.URL.Query()
	typ := q.Get("type")
	switch {
	case typ == "":
		writeRESTError(w, http.StatusBadRequest, "err_validation_null", "type is required")
		return
	case strings.Contains(typ, ",") || len(q["type"]) > 1:
		writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", "one event type per call")
		return
	case !p.known(typ):
		writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", "unknown event type "+typ)
		return
	}
	size, ok := pageSizeParam(w, q, 10)
	if !ok {
		return
	}
	now := s.opts.Now().UTC()
	oldest := now.Add(-siemBatchRetention).Truncate(24 * time.Hour).Unix()
	start, end := oldest, now.Truncate(24*time.Hour).Unix()
	for _, p := range []struct {
		key string
		dst *int64
	}{{"dateRangeStartsAt", &start}, {"dateRangeEndsAt", &end}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeRESTError(w, http.StatusBadRequest, "err_validation_date", p.key+": want a date YYYY-MM-DD")
			return
		}
		*p.dst = t.Unix()
	}
	filter := s.digest("siembatch", p.filePrefix+typ)
	var tok restToken
	if raw := q.Get("nextPage"); raw != "" {
		if tok, ok = s.openRESTToken(w, raw, p.batchPath, client, filter); !ok {
			return
		}
		start, end = tok.Start, tok.End
	} else if start < oldest {
		writeRESTError(w, http.StatusBadRequest, "err_validation_date", "dateRangeStartsAt is older than the 7 days retained")
		return
	}
	s.alerts.mu.RLock()
	var files []*siemFile
	for _, f := range s.alerts.files {
		if f.typ == p.filePrefix+typ && f.seq > tok.AfterSeq && f.day >= max(start, oldest) && f.day <= end {
			files = append(files, f)
		}
	}
	s.alerts.mu.RUnlock()
	paging := s.opts.Alerts.Paging
	page := files[:min(size, len(files))]
	if tok.Empty {
		page = nil // AlertPaging.EmptyPages
	}
	caughtUp := !tok.Empty && len(page) == len(files)
	value := make([]map[string]any, len(page))
	expiry := now.Add(s.opts.DownloadTTL)
	for i, f := range page {
		value[i] = map[string]any{
			"url":    s.presign(r, download{Kind: "siem", ID: f.id}),
			"expiry": expiry.Format("2006-01-02T15:04:05.000Z"),
			"size":   len(s.siemFileBody(f)),
		}
	}
	base := tok
	if base.Endpoint == "" {
		base = restToken{Endpoint: p.batchPath, Client: s.digest("client", client), Filter: filter, Start: start, End: end}
	}
	var seq int64
	if len(page) > 0 {
		seq = page[len(page)-1].seq
	}
	next := base
	if caughtUp {
		next.Empty = false
		if len(page) > 0 {
			next.AfterSeq = seq
		}
	} else {
		next = paging.advance(base, len(page), 0, seq)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": value, "@nextPage": s.sealREST(next), "isCaughtUp": caughtUp})
}

// gzip renders the file: one compact JSON event per line, then the malformed tail if any.
func (f *siemFile) gzip() []byte {
	f.gzOnce.Do(func() {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		for _, e := range f.events {
			_, _ = zw.Write(e.raw)
			_, _ = zw.Write([]byte{'\n'})
		}
		_, _ = zw.Write(f.tail)
		_ = zw.Close()
		f.gz = b.Bytes()
	})
	return f.gz
}

// WarmSIEMFiles builds the served bytes of every SIEM batch file now rather than on first
// download: a benchmark that measures a client's heap in the same process calls it before
// its baseline, so that the files' gzip bodies (kept, as files never change) are not
// counted as the client's.
func (s *Server) WarmSIEMFiles() {
	s.alerts.mu.RLock()
	files := slices.Clone(s.alerts.files)
	s.alerts.mu.RUnlock()
	if s.opts.Alerts.SIEMPlainFiles {
		return // built per download, never kept
	}
	for _, f := range files {
		f.gzip()
	}
}

// siemFileBody is what a batch file is served as: gzip, or with SIEMPlainFiles plain
// NDJSON whose last line has no newline.
func (s *Server) siemFileBody(f *siemFile) []byte {
	if !s.opts.Alerts.SIEMPlainFiles {
		return f.gzip()
	}
	var b bytes.Buffer
	for i, e := range f.events {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.Write(e.raw)
	}
	if len(f.tail) > 0 {
		b.WriteByte('\n')
		b.Write(f.tail)
	}
	return b.Bytes()
}

// resolveSIEMFile serves a batch file for a pre-signed download.
func (s *Server) resolveSIEMFile(id string) (*rawFile, bool) {
	s.alerts.mu.RLock()
	f := s.alerts.fileID[id]
	s.alerts.mu.RUnlock()
	if f == nil {
		return nil, false
	}
	if s.opts.Alerts.SIEMPlainFiles {
		return &rawFile{contentType: "application/x-ndjson", body: s.siemFileBody(f)}, true
	}
	return &rawFile{contentType: "application/gzip", body: f.gzip()}, true
}

// GET /siem/v1/events/cg: types (list), dateRangeStartsAt/EndsAt (ISO 8601 with zone; a
// start older than 24 h or a bad format answers 400), pageSize 1..100 (default 100),
// nextPage. Events come in recording order. As observed in the wild, a page's @nextPage
// points before its last events, so the next page repeats them; once caught up the token
// points after the last event served, and @nextPage is always present.
func (s *Server) siemEvents(w http.ResponseWriter, r *http.Request, client string, p siemProduct) {
	q := r.URL.Query()
	types := listParam(q, "types")
	for _, t := range types {
		if !p.known(strings.SplitN(t, ":", 2)[0]) {
			writeRESTError(w, http.StatusBadRequest, "err_validation_value_not_allowed", "unknown event type "+t)
			return
		}
	}
	size, ok := pageSizeParam(w, q, maxRESTPageSize)
	if !ok {
		return
	}
	now := s.opts.Now().UTC()
	oldest := now.Add(-siemStreamRetention).UnixMilli()
	start, end := oldest, int64(0)
	for _, p := range []struct {
		key string
		dst *int64
	}{{"dateRangeStartsAt", &start}, {"dateRangeEndsAt", &end}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeRESTError(w, http.StatusBadRequest, "err_validation_date", p.key+": want an ISO 8601 date-time such as 2025-01-01T12:30:45.000Z")
			return
		}
		*p.dst = t.UnixMilli()
	}
	slices.Sort(types)
	filter := s.digest("siemstream", strings.Join(types, "\x00"))
	var tok restToken
	if raw := q.Get("nextPage"); raw != "" {
		if tok, ok = s.openRESTToken(w, raw, p.streamPath, client, filter); !ok {
			return
		}
		start, end = tok.Start, tok.End
	} else if start < oldest {
		writeRESTError(w, http.StatusBadRequest, "err_validation_date", "dateRangeStartsAt is older than the 24 hours retained")
		return
	}
	want := func(rec *alertRec) bool {
		if rec.seq <= tok.AfterSeq || rec.at < max(start, oldest) || (end != 0 && rec.at > end) {
			return false
		}
		if len(types) == 0 {
			return true
		}
		t := str(rec.fields, "type")
		return slices.ContainsFunc(types, func(x string) bool { return strings.SplitN(x, ":", 2)[0] == t })
	}
	s.alerts.mu.RLock()
	var page []*alertRec
	more := false
	// The stream is in recording order: start right after the cursor.
	events := p.events(s)
	from := sort.Search(len(events), func(i int) bool { return events[i].seq > tok.AfterSeq })
	for _, rec := range events[from:] {
		if !want(rec) {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, rec)
	}
	s.alerts.mu.RUnlock()
	if tok.Empty {
		page, more = nil, true // AlertPaging.EmptyPages
	}
	recs := make([]json.RawMessage, len(page))
	for i, rec := range page {
		recs[i] = rec.raw
	}
	base := tok
	if base.Endpoint == "" {
		base = restToken{Endpoint: p.streamPath, Client: s.digest("client", client), Filter: filter, Start: start, End: end}
	}
	seq := tok.AfterSeq
	if len(page) > 0 {
		last := len(page) - 1
		if more {
			// Repeat up to two events, always moving forward.
			last -= min(2, (len(page)-1)/2)
		}
		seq = page[last].seq
	}
	next := base
	next.Empty = false
	next.AfterSeq = seq
	if more {
		next = s.opts.Alerts.Paging.advance(base, len(page), 0, seq)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": recs, "@nextPage": s.sealREST(next), "isCaughtUp": !more})
}
