package simulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Security alert sources. The simulator holds, per source, records exactly as it serves
// them (json.RawMessage), seeded deterministically from Options.Seed and Options.Alerts, or
// added through POST /_sim/alerts. The endpoints stay off (404, as before they existed)
// unless Options.Alerts asks for events or a record is added, so that archive-only tests see
// the same simulator as before.

// Alert source names: the names of alerts.sources, and the "source" of /_sim/alerts and of
// the truth's alerts list.
const (
	SourceAttachment    = "attachment_protection"
	SourceURL           = "url_protection"
	SourceImpersonation = "impersonation"
	SourceDLP           = "dlp"
	SourceThreats       = "threats"
	SourceSIEM          = "siem"
)

// The original alert sources' specs (sources.go). Their generators are in alerts_seed.go.
var (
	attachmentSim = simSource{name: SourceAttachment, timeField: "date", format: formatAPITime, inTruth: true,
		api:       map[string]func(*Server) endpoint{"/api/ttp/attachment/get-logs": securityLog(SourceAttachment)},
		count:     func(a AlertOptions) int { return a.Attachment },
		gen:       fromAlertGen((*alertGen).attachment),
		seedIndex: attachmentSeedIndex,
	}
	urlSim = simSource{name: SourceURL, timeField: "date", format: formatAPITime, inTruth: true,
		api:   map[string]func(*Server) endpoint{"/api/ttp/url/get-logs": securityLog(SourceURL)},
		count: func(a AlertOptions) int { return a.URL },
		gen:   fromAlertGen((*alertGen).urlClick),
	}
	impersonationSim = simSource{name: SourceImpersonation, timeField: "eventTime", format: formatAPITime, inTruth: true,
		api:   map[string]func(*Server) endpoint{"/api/ttp/impersonation/get-logs": securityLog(SourceImpersonation)},
		count: func(a AlertOptions) int { return a.Impersonation },
		gen:   fromAlertGen((*alertGen).impersonation),
	}
	dlpSim = simSource{name: SourceDLP, timeField: "eventTime", format: formatAPITime, inTruth: true,
		api:   map[string]func(*Server) endpoint{"/api/dlp/get-logs": securityLog(SourceDLP)},
		count: func(a AlertOptions) int { return a.DLP },
		gen:   fromAlertGen((*alertGen).dlp),
	}
	threatsSim = simSource{name: SourceThreats, timeField: "timestamp", format: formatMillisZ, millis: true, inTruth: true,
		rest:  map[string]restRoute{pathThreatEvents: {serve: (*Server).threatEvents}},
		count: func(a AlertOptions) int { return a.Threats },
		gen:   fromAlertGen((*alertGen).threat),
		store: func(s *Server, recs []*alertRec) {
			s.alerts.addLog(SourceThreats, recs, func(r *alertRec) {
				if id, _ := r.fields["id"].(string); id != "" {
					s.alerts.threatIDs[id] = r
				}
			})
		},
	}
	siemSim = simSource{name: SourceSIEM, timeField: "timestamp", format: formatEpochMillis, millis: true, inTruth: true,
		check: func(fields map[string]any) error {
			if s, _ := fields["type"].(string); s == "" {
				return errors.New(`a SIEM event needs a "type"`)
			}
			return nil
		},
		rest: map[string]restRoute{
			pathSIEMBatch:  {serve: siemBatchOf(productCG), budget: func(a AlertOptions) RateWindow { return a.SIEMBatchLimit }},
			pathSIEMEvents: {serve: siemEventsOf(productCG), budget: func(a AlertOptions) RateWindow { return a.SIEMStreamLimit }},
		},
		count:  func(a AlertOptions) int { return a.SIEM },
		gen:    fromAlertGen((*alertGen).siemEvent),
		store:  func(s *Server, recs []*alertRec) { s.alerts.addSIEM(recs, s.keys) },
		seeded: func(r *seedRun, recs []*alertRec) { r.alertGen().seedSIEM(recs) },
		list:   func(s *Server) []*alertRec { return s.alerts.siem },
	}
)

// attachmentSeedIndex gives seeded attachment records 0 and 1 one date: two files of one
// message.
func attachmentSeedIndex(i int) int {
	if i == 1 {
		return 0
	}
	return i
}

// securityLog is the endpoint of a legacy security log (alerts_logs.go).
func securityLog(source string) func(*Server) endpoint {
	return func(s *Server) endpoint { return s.alertLogs(source) }
}

// fromAlertGen makes a generator of the shared alert generator a source's gen.
func fromAlertGen(f func(g *alertGen, i, n int, at time.Time) map[string]any) seedGen {
	return func(r *seedRun, i, n int, at time.Time) map[string]any { return f(r.alertGen(), i, n, at) }
}

// RateWindow is a per-endpoint call budget: Calls per Per, per client. Zero takes the
// endpoint's published default; Calls < 0 means unlimited.
type RateWindow struct {
	Calls int
	Per   time.Duration
}

// AlertOptions configures the security alert sources (Options.Alerts).
type AlertOptions struct {
	// Enabled serves the alert endpoints even with no seeded events (records can then be
	// added through /_sim/alerts). Any count > 0 also enables them.
	Enabled bool
	// Counts is the number of seeded records per source, by source name (the simulator's
	// source table, sources.go); every source takes its count here. The named fields below
	// (and LogOptions') are the same counts for the older sources; a name in Counts wins over
	// its field.
	Counts map[string]int
	// Seeded records per source. SIEM events are spread round-robin over the event types;
	// one extra malformed batch file is added whenever SIEM > 0.
	Attachment, URL, Impersonation, DLP, Threats, SIEM int
	// Audit is the number of seeded audit events (audit.go).
	Audit int
	// End and Span: seeded events happen in (End-Span, End]. Defaults: Options.Now() when
	// the server is built (to the second) and 12 hours; at most 7 days.
	End  time.Time
	Span time.Duration
	// ThreatsWrapper is the key of the records in GET /threats/v1/events answers: "value"
	// (default), "data" or "events" — all three are plausible — or any other key, to test
	// a client against an unknown shape.
	ThreatsWrapper string
	// SIEMFileEvents is the number of distinct events per SIEM batch file (default 20).
	SIEMFileEvents int
	// SIEMPlainFiles serves batch files as plain NDJSON, not gzip, with no newline after
	// the last line: nothing documents the encoding as guaranteed.
	SIEMPlainFiles bool
	// Paging variants the public sources and independent stand-ins disagree on; see
	// AlertPaging. The zero value serves the documented behaviour.
	Paging AlertPaging
	// Per-client budgets of the SIEM endpoints: defaults 50 calls / 15 min (batch) and
	// 300 calls / hour (stream), measured with Options.Now.
	SIEMBatchLimit  RateWindow
	SIEMStreamLimit RateWindow
	// Logs seeds and shapes the archive access, release, threat-intel and Cloud Integrated
	// SIEM logs (logs_more.go).
	Logs LogOptions
}

// AlertPaging switches the paging variants of the alert endpoints.
type AlertPaging struct {
	// EmptyPages follows every page that has more records after it with an empty page that
	// carries a next token to the rest (legacy logs, the threat feed, SIEM batch and
	// stream): a client that stops at an empty page loses the rest of the window.
	EmptyPages bool
	// Loop makes page tokens cycle: from the third page of a window (legacy logs, the
	// threat feed) or of a read (SIEM batch and stream) on, the next token is the one the
	// first page gave (A → B → A, byte for byte), so the window never ends by itself.
	Loop bool
	// TokenKey is where the threat feed puts its next page token: "@nextPage" (default),
	// "nextPage", "nextPageToken", "next" (a link whose pageToken parameter is the token) or
	// "header" (X-Mc-Threat-Feed-Next-Token, as the threat-intel feed does).
	TokenKey string
	// TotalKey makes the threat feed state the window's record count under this key
	// ("total", "totalCount" or "resultCount"); "" states none. Legacy logs always state
	// meta.pagination.totalCount (impersonation also data[0].resultCount).
	TotalKey string
	// HideEvery > 0 never lists every HideEvery-th record (by recording order) of the legacy
	// logs and the threat feed, yet counts it in the stated totals, as a server that loses
	// records between pages would. Truth still lists them.
	HideEvery int
}

// hidden reports whether p hides r from listings (not from totals).
func (p AlertPaging) hidden(r *alertRec) bool {
	return p.HideEvery > 0 && r.seq%int64(p.HideEvery) == 0
}

// threatTokenKeys are the values AlertPaging.TokenKey allows.
var threatTokenKeys = []string{"@nextPage", "nextPage", "nextPageToken", "next", "header"}

const (
	defaultAlertSpan      = 12 * time.Hour
	maxAlertSpan          = 7 * 24 * time.Hour
	defaultSIEMFileEvents = 20
	maxSeededAlerts       = 1_000_000
	siemBatchRetention    = 7 * 24 * time.Hour
	siemStreamRetention   = 24 * time.Hour
)

// withDefaults fills a's zero values; now is the server's clock at New.
func (a AlertOptions) withDefaults(now time.Time) (AlertOptions, error) {
	if a.End.IsZero() {
		a.End = now
	}
	a.End = a.End.UTC().Truncate(time.Second)
	if a.Span == 0 {
		a.Span = defaultAlertSpan
	}
	if a.ThreatsWrapper == "" {
		a.ThreatsWrapper = "value"
	}
	if a.SIEMFileEvents == 0 {
		a.SIEMFileEvents = defaultSIEMFileEvents
	}
	if a.Paging.TokenKey == "" {
		a.Paging.TokenKey = "@nextPage"
	}
	if !slices.Contains(threatTokenKeys, a.Paging.TokenKey) {
		return a, fmt.Errorf("options: alerts: paging token key %q: want one of %s", a.Paging.TokenKey, strings.Join(threatTokenKeys, ", "))
	}
	if k := a.Paging.TotalKey; k != "" && k != "total" && k != "totalCount" && k != "resultCount" {
		return a, fmt.Errorf("options: alerts: paging total key %q: want total, totalCount or resultCount", k)
	}
	if a.Paging.HideEvery < 0 {
		return a, fmt.Errorf("options: alerts: paging hide every %d: want >= 0", a.Paging.HideEvery)
	}
	if a.SIEMBatchLimit == (RateWindow{}) {
		a.SIEMBatchLimit = RateWindow{Calls: 50, Per: 15 * time.Minute}
	}
	if a.SIEMStreamLimit == (RateWindow{}) {
		a.SIEMStreamLimit = RateWindow{Calls: 300, Per: time.Hour}
	}
	if err := a.checkCounts(); err != nil {
		return a, err
	}
	switch {
	case a.Span < time.Second || a.Span > maxAlertSpan:
		return a, fmt.Errorf("options: alerts: span %s: want 1s..%s", a.Span, maxAlertSpan)
	case a.SIEMFileEvents < 1:
		return a, fmt.Errorf("options: alerts: siem file events %d: want >= 1", a.SIEMFileEvents)
	case a.SIEMBatchLimit.Calls > 0 && a.SIEMBatchLimit.Per <= 0, a.SIEMStreamLimit.Calls > 0 && a.SIEMStreamLimit.Per <= 0:
		return a, errors.New("options: alerts: a SIEM limit with calls needs a positive period")
	}
	return a, nil
}

// alertRec is one stored record.
type alertRec struct {
	seq    int64           // recording order, over all sources
	at     int64           // event time, Unix milliseconds
	raw    json.RawMessage // exactly as served
	fields map[string]any  // raw decoded, for filters
}

// siemFile is one SIEM batch file: the events it holds (some also in the previous file of
// its type, as real batches overlap), plus, for the malformed file, a tail that is not JSON.
type siemFile struct {
	id     string
	seq    int64
	typ    string
	day    int64 // Unix seconds of the UTC day it belongs to
	events []*alertRec
	tail   []byte

	gzOnce sync.Once
	gz     []byte // the served bytes, built on first use (files never change)
}

// alertStore holds every alert record. Records are never removed.
type alertStore struct {
	on atomic.Bool

	mu     sync.RWMutex
	seq    int64
	logs   map[string][]*alertRec // legacy sources and threats, in recording order
	byTime map[string][]*alertRec // the same, by event time then recording order
	siem   []*alertRec            // SIEM events, in recording order (the stream's order)
	ci     []*alertRec            // Cloud Integrated SIEM events, the same (logs_more.go)
	files  []*siemFile            // batch files in creation order
	fileID map[string]*siemFile
	// threatIDs indexes threat events by id for the details endpoint.
	threatIDs map[string]*alertRec
	// budgets: client|endpoint -> call times within the window.
	budgetMu sync.Mutex
	budgets  map[string][]time.Time
}

func newAlertStore() *alertStore {
	return &alertStore{logs: map[string][]*alertRec{}, byTime: map[string][]*alertRec{}, fileID: map[string]*siemFile{}, threatIDs: map[string]*alertRec{}, budgets: map[string][]time.Time{}}
}

// formatAPITime writes a time as the legacy endpoints do (yyyy-MM-ddTHH:mm:ss+0000).
func formatAPITime(_ AlertOptions, t time.Time) any { return api.FormatTime(t) }

// formatMillisZ writes a time as the REST endpoints do (RFC 3339, UTC, milliseconds).
func formatMillisZ(_ AlertOptions, t time.Time) any {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// formatEpochMillis writes a time as the SIEM events do (Unix milliseconds).
func formatEpochMillis(_ AlertOptions, t time.Time) any { return t.UnixMilli() }

// eventTimeValue reads an event time: Unix milliseconds (a number or a string of digits) or
// a time the API writes.
func eventTimeValue(v any) (time.Time, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return time.UnixMilli(n).UTC(), true
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return time.UnixMilli(n).UTC(), true
		}
		if t, err := api.ParseTime(x); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func decodeFields(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, fmt.Errorf("a record must be a JSON object")
	}
	return fields, nil
}

func marshalCompact(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes())), nil
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return json.RawMessage(b.Bytes())
}

// addLog stores built records of a time-window log (legacy logs, threats, audit, ...),
// assigning recording order; each (if set) sees every record under the lock, to index it.
func (st *alertStore) addLog(source string, recs []*alertRec, each func(*alertRec)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range recs {
		st.seq++
		r.seq = st.seq
		if each != nil {
			each(r)
		}
	}
	st.logs[source] = append(st.logs[source], recs...)
	sorted := append(st.byTime[source], recs...)
	// Seeded records come in time order; only late ones need a sort.
	if !slices.IsSortedFunc(sorted, cmpTimeSeq) {
		slices.SortStableFunc(sorted, cmpTimeSeq)
	}
	st.byTime[source] = sorted
	if len(recs) > 0 {
		st.on.Store(true)
	}
}

// addSIEM stores built SIEM events in the stream and in new batch files, one per type and UTC
// day, created now.
func (st *alertStore) addSIEM(recs []*alertRec, keys keyring) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range recs {
		st.seq++
		r.seq = st.seq
	}
	st.siem = append(st.siem, recs...)
	type key struct {
		typ string
		day int64
	}
	byKey := map[key][]*alertRec{}
	var order []key
	for _, r := range recs {
		k := key{r.fields["type"].(string), dayOf(r.at)}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	for _, k := range order {
		st.addFile(k.typ, k.day, byKey[k], nil, keys)
	}
	if len(recs) > 0 {
		st.on.Store(true)
	}
}

// addFile appends a batch file; the caller holds mu.
func (st *alertStore) addFile(typ string, day int64, events []*alertRec, tail []byte, keys keyring) *siemFile {
	st.seq++
	f := &siemFile{seq: st.seq, typ: typ, day: day, events: events, tail: tail}
	f.id = keys.secureID(kindSIEMFile, uint32(f.seq), 0)
	st.files = append(st.files, f)
	st.fileID[f.id] = f
	return f
}

// kindSIEMFile is the id kind of SIEM batch files (outside the archive's kinds).
const kindSIEMFile = 0x51

func dayOf(ms int64) int64 {
	return time.UnixMilli(ms).UTC().Truncate(24 * time.Hour).Unix()
}

// fileTake is how many of evs (in time order) make the next batch file, and the file's day:
// up to per, and never two UTC days, since the batch listing selects by day.
func fileTake(evs []*alertRec, per int) (take int, day int64) {
	take = min(per, len(evs))
	day = dayOf(evs[0].at)
	for k := 1; k < take; k++ {
		if dayOf(evs[k].at) != day {
			return k, day
		}
	}
	return take, day
}

// TruthAlert is one alert record the simulator holds, exactly as served.
type TruthAlert struct {
	Source string          `json:"source"`
	Record json.RawMessage `json:"record"`
}

// takeBudget counts one call of client to a budgeted endpoint; false and the wait until a
// slot frees when the budget is spent (the call is then not executed).
func (st *alertStore) takeBudget(client, endpoint string, w RateWindow, now time.Time) (bool, time.Duration) {
	if w.Calls <= 0 {
		return true, 0
	}
	st.budgetMu.Lock()
	defer st.budgetMu.Unlock()
	k := client + "|" + endpoint
	calls := st.budgets[k]
	for len(calls) > 0 && now.Sub(calls[0]) >= w.Per {
		calls = calls[1:]
	}
	if len(calls) >= w.Calls {
		st.budgets[k] = calls
		return false, calls[0].Add(w.Per).Sub(now)
	}
	st.budgets[k] = append(calls, now)
	return true, 0
}

// cmpTimeSeq orders records by event time, then recording order.
func cmpTimeSeq(a, b *alertRec) int {
	if a.at != b.at {
		return cmp.Compare(a.at, b.at)
	}
	return cmp.Compare(a.seq, b.seq)
}

// timeQuery selects one page of records sorted by cmpTimeSeq.
type timeQuery struct {
	from, to   int64 // inclusive event-time bounds, Unix ms; to < 0 = open
	asc        bool
	hasAfter   bool // continue after position (afterAt, afterSeq) in the listing order
	afterAt    int64
	afterSeq   int64
	size       int
	match      func(*alertRec) bool // nil = every record
	countTotal bool                 // also count every match in the window
	hide       func(*alertRec) bool // nil = none; hidden records are counted, never listed
}

// pageWithVariants reads one page of source's records with pageByTime, applying the paging
// variants of AlertPaging: HideEvery's records are left out of the listing, and empty (a
// token that asks for EmptyPages' empty page) serves no records with more behind them.
func (s *Server) pageWithVariants(source string, q timeQuery, empty bool) (page []*alertRec, more bool, total int) {
	if paging := s.opts.Alerts.Paging; paging.HideEvery > 0 {
		q.hide = paging.hidden
	}
	if empty {
		q.size = 0
	}
	s.alerts.mu.RLock()
	page, more, total = pageByTime(s.alerts.byTime[source], q)
	s.alerts.mu.RUnlock()
	if empty {
		page, more = nil, true
	}
	return page, more, total
}

// pageByTime reads one page of sorted (by cmpTimeSeq): the records in the window that
// match, in the listing order, after the position; more says whether another one follows,
// total counts every match in the window (with countTotal). The window is found by binary
// search, so a page of a large log costs the page, not the log (plus the count when a
// filter is set).
func pageByTime(sorted []*alertRec, q timeQuery) (page []*alertRec, more bool, total int) {
	lo := sort.Search(len(sorted), func(i int) bool { return sorted[i].at >= q.from })
	hi := len(sorted)
	if q.to >= 0 {
		hi = sort.Search(len(sorted), func(i int) bool { return sorted[i].at > q.to })
	}
	if hi < lo {
		hi = lo
	}
	win := sorted[lo:hi]
	matches := func(r *alertRec) bool { return q.match == nil || q.match(r) }
	ok := func(r *alertRec) bool { return matches(r) && (q.hide == nil || !q.hide(r)) }
	if q.countTotal {
		if q.match == nil {
			total = len(win)
		} else {
			for _, r := range win {
				if matches(r) {
					total++
				}
			}
		}
	}
	pos := &alertRec{at: q.afterAt, seq: q.afterSeq}
	if q.asc {
		i := 0
		if q.hasAfter {
			i = sort.Search(len(win), func(i int) bool { return cmpTimeSeq(win[i], pos) > 0 })
		}
		for ; i < len(win); i++ {
			if !ok(win[i]) {
				continue
			}
			if len(page) == q.size {
				return page, true, total
			}
			page = append(page, win[i])
		}
		return page, false, total
	}
	i := len(win) - 1
	if q.hasAfter {
		i = sort.Search(len(win), func(i int) bool { return cmpTimeSeq(win[i], pos) >= 0 }) - 1
	}
	for ; i >= 0; i-- {
		if !ok(win[i]) {
			continue
		}
		if len(page) == q.size {
			return page, true, total
		}
		page = append(page, win[i])
	}
	return page, false, total
}

// str reads a string field of a decoded record.
func str(fields map[string]any, k string) string {
	s, _ := fields[k].(string)
	return s
}

// alertControl adds the control endpoints of the alert sources:
//
//	POST /_sim/alerts {"source": name, "records": [{...}], "recorded_at": RFC 3339 (optional)}
//	     -> {"records": [...as served]}
//	GET  /_sim/alerts[?source=name] -> [{"source": name, "record": {...}}, ...]
func (s *Server) alertControl(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}) {
	mux.HandleFunc("POST /_sim/alerts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Source     string            `json:"source"`
			Records    []json.RawMessage `json:"records"`
			RecordedAt string            `json:"recorded_at"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		var at time.Time
		if req.RecordedAt != "" {
			t, err := api.ParseTime(req.RecordedAt)
			if err != nil {
				controlError(w, http.StatusBadRequest, fmt.Errorf("recorded_at: %w", err))
				return
			}
			at = t
		}
		if len(req.Records) == 0 {
			controlError(w, http.StatusBadRequest, errors.New(`want {"source": "<name>", "records": [{...}, ...]}`))
			return
		}
		out, err := s.AddAlerts(req.Source, req.Records, at)
		if err != nil {
			controlError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]json.RawMessage{"records": out})
	})
	mux.HandleFunc("GET /_sim/alerts", func(w http.ResponseWriter, r *http.Request) {
		src := r.URL.Query().Get("source")
		if src != "" && simSourceByName[src] == nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("unknown source %q: want one of %s", src, simSourceNames()))
			return
		}
		writeJSON(w, http.StatusOK, s.AlertTruth(src))
	})
}
