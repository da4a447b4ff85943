package simulator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// alertHarness is a simulator with every alert source seeded over the 10 hours before its
// fake clock (12:00 UTC), so every event is inside "today".
func alertHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	o := Options{Seed: 7, Alerts: AlertOptions{Attachment: 40, URL: 30, Impersonation: 20, DLP: 15, Threats: 30, SIEM: 120, Span: 10 * time.Hour, SIEMFileEvents: 8}}
	if mod != nil {
		mod(&o)
	}
	return newHarness(t, o)
}

func (h *harness) get(token, path string, q url.Values) result {
	h.t.Helper()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return h.do(http.MethodGet, path, token, "", nil)
}

type restBody struct {
	Value      []json.RawMessage `json:"value"`
	NextPage   *string           `json:"@nextPage"`
	IsCaughtUp *bool             `json:"isCaughtUp"`
	Error      *struct{ Code, Message string }
}

func decodeREST(t *testing.T, r result) restBody {
	t.Helper()
	var b restBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("decode %d %s: %v", r.status, r.body, err)
	}
	return b
}

// logPage reads data[0].<wrapper> of a log answer.
func logPage(t *testing.T, r result, wrapper string) []json.RawMessage {
	t.Helper()
	if r.status != http.StatusOK || len(r.env.Fail) > 0 || len(r.env.Data) != 1 {
		t.Fatalf("want one data item, got %d %s", r.status, r.body)
	}
	var item map[string][]json.RawMessage
	if err := json.Unmarshal(r.env.Data[0], &item); err != nil {
		// impersonation has resultCount next to the list
		var loose map[string]json.RawMessage
		if err := json.Unmarshal(r.env.Data[0], &loose); err != nil {
			t.Fatalf("decode data[0]: %v", err)
		}
		var recs []json.RawMessage
		_ = json.Unmarshal(loose[wrapper], &recs)
		return recs
	}
	return item[wrapper]
}

func truthOf(h *harness, source string) []string {
	var out []string
	for _, a := range h.sim.Truth().Alerts {
		if a.Source == source {
			out = append(out, string(a.Record))
		}
	}
	return out
}

func fieldOf(t *testing.T, raw json.RawMessage, k string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("record %s: %v", raw, err)
	}
	return m[k]
}

func TestAlertEndpointsOffByDefault(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tok := h.token()
	if r := h.call(tok, "/api/ttp/attachment/get-logs", 0, "", map[string]any{}); r.status != http.StatusNotFound {
		t.Errorf("attachment logs without alerts: %d %s", r.status, r.body)
	}
	if r := h.get(tok, "/siem/v1/events/cg", nil); r.status != http.StatusNotFound {
		t.Errorf("siem events without alerts: %d %s", r.status, r.body)
	}
	if n := len(h.sim.Truth().Alerts); n != 0 {
		t.Errorf("truth holds %d alerts", n)
	}
}

func TestAlertSeedsDeterministicAndShaped(t *testing.T) {
	a, b := alertHarness(t, nil), alertHarness(t, nil)
	if !reflect.DeepEqual(a.sim.Truth().Alerts, b.sim.Truth().Alerts) {
		t.Fatal("same options gave different alert records")
	}
	att := truthOf(a, SourceAttachment)
	if len(att) != 40 {
		t.Fatalf("%d attachment records, want 40", len(att))
	}
	r0, r1 := json.RawMessage(att[0]), json.RawMessage(att[1])
	if fieldOf(t, r0, "messageId") != fieldOf(t, r1, "messageId") || fieldOf(t, r0, "date") != fieldOf(t, r1, "date") ||
		fieldOf(t, r0, "fileHash") == fieldOf(t, r1, "fileHash") {
		t.Errorf("records 0 and 1 should share messageId and date with different files:\n%s\n%s", r0, r1)
	}
	recipients := map[any]bool{}
	for _, rec := range att {
		if fieldOf(t, json.RawMessage(rec), "id") != nil {
			t.Errorf("attachment record with an id: %s", rec)
		}
		if fieldOf(t, json.RawMessage(rec), "fileName") == campaignFile {
			recipients[fieldOf(t, json.RawMessage(rec), "recipientAddress")] = true
		}
	}
	if len(recipients) < 5 {
		t.Errorf("the malicious campaign file reached %d recipients, want >= 5", len(recipients))
	}
	internalIP := false
	for _, rec := range truthOf(a, SourceURL) {
		internalIP = internalIP || fieldOf(t, json.RawMessage(rec), "sendingIp") == "Internal IP"
	}
	if !internalIP {
		t.Error(`no URL record with sendingIp "Internal IP"`)
	}
	for _, rec := range truthOf(a, SourceImpersonation) {
		if id, _ := fieldOf(t, json.RawMessage(rec), "id").(string); !strings.HasPrefix(id, "MTOKEN:") {
			t.Errorf("impersonation id %q", id)
		}
	}
	for _, rec := range truthOf(a, SourceSIEM) {
		if _, ok := fieldOf(t, json.RawMessage(rec), "timestamp").(float64); !ok {
			t.Errorf("siem timestamp not a number: %s", rec)
		}
	}
}

func TestAlertLogsOrderWindowAndPaging(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	const path = "/api/ttp/attachment/get-logs"
	want := truthOf(h, SourceAttachment)
	for _, oldest := range []bool{false, true} {
		var got []string
		var dates []time.Time
		next := ""
		for page := 0; ; page++ {
			if page > 20 {
				t.Fatal("paging does not end")
			}
			r := h.call(tok, path, 7, next, map[string]any{"oldestFirst": oldest})
			for _, rec := range logPage(t, r, "attachmentLogs") {
				got = append(got, string(rec))
				d, err := api.ParseTime(fieldOf(t, rec, "date").(string))
				if err != nil {
					t.Fatal(err)
				}
				dates = append(dates, d)
			}
			if *r.env.Meta.Pagination.TotalCount != len(want) {
				t.Errorf("totalCount %d, want %d", *r.env.Meta.Pagination.TotalCount, len(want))
			}
			next = r.env.Meta.Pagination.Next
			if next == "" {
				break
			}
		}
		if !sameSet(got, want) {
			t.Errorf("oldestFirst=%v: %d records, want the %d of the truth, each once", oldest, len(got), len(want))
		}
		sorted := slices.IsSortedFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
		if oldest != sorted {
			t.Errorf("oldestFirst=%v: dates in the wrong order", oldest)
		}
	}
	// Inclusive bounds at second precision, in every accepted layout.
	d := fieldOf(t, json.RawMessage(want[0]), "date").(string)
	at, _ := api.ParseTime(d)
	for _, layout := range []string{api.TimeLayout, time.RFC3339, "2006-01-02T15:04:05-07:00"} {
		from := at.In(time.FixedZone("", 2*3600)).Format(layout)
		r := h.call(tok, path, 0, "", map[string]any{"from": from, "to": from})
		if n := len(logPage(t, r, "attachmentLogs")); n != 2 {
			t.Errorf("from=to=%s: %d records, want the 2 sharing that date", from, n)
		}
	}
	r := h.call(tok, path, 0, "", map[string]any{"from": "yesterday"})
	if itemCode(t, r) != codeBadDate {
		t.Errorf("bad date: %s", r.body)
	}
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestAlertLogsFilters(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	r := h.call(tok, "/api/ttp/attachment/get-logs", 500, "", map[string]any{"result": "malicious", "route": "inbound"})
	recs := logPage(t, r, "attachmentLogs")
	if len(recs) == 0 {
		t.Fatal("no malicious inbound attachment")
	}
	for _, rec := range recs {
		if fieldOf(t, rec, "result") != "malicious" || fieldOf(t, rec, "route") != "inbound" {
			t.Errorf("filter let through %s", rec)
		}
	}
	if r := h.call(tok, "/api/ttp/attachment/get-logs", 0, "", map[string]any{"result": "evil"}); itemCode(t, r) != codeNotAllowed {
		t.Errorf("bad result enum: %s", r.body)
	}
	r = h.call(tok, "/api/ttp/url/get-logs", 500, "", map[string]any{"scanResult": "malicious"})
	for _, rec := range logPage(t, r, "clickLogs") {
		if fieldOf(t, rec, "scanResult") != "malicious" {
			t.Errorf("scanResult filter let through %s", rec)
		}
	}
	r = h.call(tok, "/api/ttp/impersonation/get-logs", 500, "", map[string]any{"taggedMalicious": true, "actions": []string{"hold", "bounce"}})
	var item struct {
		Logs        []json.RawMessage `json:"impersonationLogs"`
		ResultCount int               `json:"resultCount"`
	}
	if err := json.Unmarshal(r.env.Data[0], &item); err != nil {
		t.Fatal(err)
	}
	if item.ResultCount != len(item.Logs) || len(item.Logs) == 0 {
		t.Errorf("impersonation: resultCount %d, %d logs", item.ResultCount, len(item.Logs))
	}
	for _, rec := range item.Logs {
		if fieldOf(t, rec, "taggedMalicious") != true || fieldOf(t, rec, "action") == "none" {
			t.Errorf("impersonation filter let through %s", rec)
		}
	}
	r = h.call(tok, "/api/dlp/get-logs", 500, "", map[string]any{"routes": []string{"internal"}})
	for _, rec := range logPage(t, r, "dlpLogs") {
		if fieldOf(t, rec, "route") != "internal" {
			t.Errorf("dlp routes filter let through %s", rec)
		}
	}
}

func TestAlertLogsEmptyLastPage(t *testing.T) {
	h := alertHarness(t, func(o *Options) { o.EmptyLastPage = true })
	tok := h.token()
	r := h.call(tok, "/api/dlp/get-logs", 500, "", map[string]any{})
	if n := len(logPage(t, r, "dlpLogs")); n != 15 || r.env.Meta.Pagination.Next == "" {
		t.Fatalf("first page: %d records, next %q", n, r.env.Meta.Pagination.Next)
	}
	r = h.call(tok, "/api/dlp/get-logs", 500, r.env.Meta.Pagination.Next, map[string]any{})
	if n := len(logPage(t, r, "dlpLogs")); n != 0 || r.env.Meta.Pagination.Next == "" {
		t.Fatalf("final page: %d records, next %q; want none and a next", n, r.env.Meta.Pagination.Next)
	}
}

func TestAlertLogsPageTokenBinding(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	r := h.call(tok, "/api/ttp/url/get-logs", 5, "", map[string]any{"scanResult": "all"})
	next := r.env.Meta.Pagination.Next
	if r := h.call(tok, "/api/ttp/url/get-logs", 5, next, map[string]any{"scanResult": "clean"}); r.status != http.StatusBadRequest {
		t.Errorf("token with another filter: %d", r.status)
	}
	if r := h.call(tok, "/api/ttp/attachment/get-logs", 5, next, map[string]any{"scanResult": "all"}); r.status != http.StatusBadRequest {
		t.Errorf("token on another endpoint: %d", r.status)
	}
}

func TestAlertControlLateRecord(t *testing.T) {
	h := alertHarness(t, nil)
	body := `{"source":"attachment_protection","recorded_at":"2026-03-15T03:07:11Z","records":[{"fileName":"late.pdf","result":"malicious","messageId":"<late@x>"}]}`
	r := h.do(http.MethodPost, "/_sim/alerts", "", "application/json", []byte(body))
	var added struct{ Records []json.RawMessage }
	if err := json.Unmarshal(r.body, &added); err != nil || r.status != http.StatusOK || len(added.Records) != 1 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	if got := fieldOf(t, added.Records[0], "date"); got != "2026-03-15T03:07:11+0000" {
		t.Errorf("late record date %v", got)
	}
	tok := h.token()
	r = h.call(tok, "/api/ttp/attachment/get-logs", 500, "", map[string]any{"from": "2026-03-15T03:07:11+0000", "to": "2026-03-15T03:07:11+0000"})
	recs := logPage(t, r, "attachmentLogs")
	if len(recs) != 1 || string(recs[0]) != string(added.Records[0]) {
		t.Errorf("window of the late record: %s", r.body)
	}
	if !slices.Contains(truthOf(h, SourceAttachment), string(added.Records[0])) {
		t.Error("the added record is not in the truth as served")
	}
	r = h.do(http.MethodGet, "/_sim/alerts?source=attachment_protection", "", "", nil)
	var list []TruthAlert
	if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 41 {
		t.Errorf("GET /_sim/alerts: %d entries (%v)", len(list), err)
	}
	for _, bad := range []string{`{"source":"nope","records":[{}]}`, `{"source":"dlp","records":[1]}`, `{"source":"siem","records":[{"x":1}]}`} {
		if r := h.do(http.MethodPost, "/_sim/alerts", "", "application/json", []byte(bad)); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
}

func TestAlertControlTurnsEndpointsOn(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	if _, err := h.sim.AddAlerts(SourceThreats, []json.RawMessage{json.RawMessage(`{"id":"t1","analysis":"phishing"}`)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tok := h.token()
	r := h.get(tok, "/threats/v1/events", url.Values{"timestampRangeStartsAt": {"2026-03-15T00:00:00Z"}})
	if b := decodeREST(t, r); r.status != http.StatusOK || len(b.Value) != 1 {
		t.Errorf("threats after adding one: %d %s", r.status, r.body)
	}
}

// siemFiles lists every batch file of typ, following @nextPage until caught up.
func siemFiles(t *testing.T, h *harness, tok, typ string, pageSize int) (urls []string, cursor string) {
	t.Helper()
	q := url.Values{"type": {typ}, "pageSize": {itoa(pageSize)}}
	for range 50 {
		r := h.get(tok, "/siem/v1/batch/events/cg", q)
		b := decodeREST(t, r)
		if r.status != http.StatusOK || b.NextPage == nil || b.IsCaughtUp == nil {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		for _, v := range b.Value {
			var f struct {
				URL    string
				Expiry string
				Size   int
			}
			_ = json.Unmarshal(v, &f)
			urls = append(urls, f.URL)
		}
		q = url.Values{"type": {typ}, "pageSize": {itoa(pageSize)}, "nextPage": {*b.NextPage}}
		if *b.IsCaughtUp {
			return urls, *b.NextPage
		}
	}
	t.Fatal("batch listing never caught up")
	return nil, ""
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// fetchFile downloads a batch file without a bearer and returns its lines.
func fetchFile(t *testing.T, h *harness, u string) (int, []string) {
	t.Helper()
	resp, err := h.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return resp.StatusCode, lines
}

func TestSIEMBatchFiles(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	seen := map[string]int{}
	malformed := 0
	for _, typ := range SIEMTypes {
		urls, cursor := siemFiles(t, h, tok, typ, 3)
		for _, u := range urls {
			status, lines := fetchFile(t, h, u)
			if status != http.StatusOK {
				t.Fatalf("download: %d", status)
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					malformed++
					continue
				}
				if got := fieldOf(t, json.RawMessage(l), "type"); got != typ {
					t.Errorf("file of type %s holds a %v event", typ, got)
				}
				seen[l]++
			}
		}
		// Caught up: value [] and still a @nextPage.
		r := h.get(tok, "/siem/v1/batch/events/cg", url.Values{"type": {typ}, "nextPage": {cursor}})
		if b := decodeREST(t, r); len(b.Value) != 0 || b.NextPage == nil || !*b.IsCaughtUp {
			t.Errorf("caught-up page of %s: %s", typ, r.body)
		}
	}
	if malformed != 1 {
		t.Errorf("%d malformed lines, want the one malformed file's tail", malformed)
	}
	var keys []string
	repeated := false
	for k, n := range seen {
		keys = append(keys, k)
		repeated = repeated || n > 1
	}
	if !repeated {
		t.Error("no event in two files; batches should overlap")
	}
	if want := truthOf(h, SourceSIEM); !sameSet(keys, want) {
		t.Errorf("files hold %d distinct events, truth %d", len(keys), len(want))
	}
	if h.sim.Stats().BearerOnDownload != 0 {
		t.Error("test sent a bearer to the download host")
	}
}

func TestSIEMBatchRetentionExpiryAndValidation(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	for name, q := range map[string]url.Values{
		"older than 7 days": {"type": {"receipt"}, "dateRangeStartsAt": {"2026-03-07"}},
		"bad date":          {"type": {"receipt"}, "dateRangeStartsAt": {"15/03/2026"}},
		"two types":         {"type": {"receipt,process"}},
		"no type":           {},
		"page size":         {"type": {"receipt"}, "pageSize": {"101"}},
	} {
		r := h.get(tok, "/siem/v1/batch/events/cg", q)
		if b := decodeREST(t, r); r.status != http.StatusBadRequest || b.Error == nil || b.Error.Code == "" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := h.get(tok, "/siem/v1/batch/events/cg", url.Values{"type": {"receipt"}, "dateRangeStartsAt": {"2026-03-08"}}); r.status != http.StatusOK {
		t.Errorf("7 days back: %d %s", r.status, r.body)
	}
	urls, _ := siemFiles(t, h, tok, "receipt", 100)
	h.clock.Advance(2 * time.Minute)
	if status, _ := fetchFile(t, h, urls[0]); status != http.StatusForbidden {
		t.Errorf("expired url: %d", status)
	}
}

func TestSIEMStreamRepeatsAndCatchesUp(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	seen := map[string]bool{}
	repeats := 0
	q := url.Values{"pageSize": {"10"}, "dateRangeStartsAt": {"2026-03-14T12:30:00.000Z"}}
	var cursor string
	for range 100 {
		r := h.get(tok, "/siem/v1/events/cg", q)
		b := decodeREST(t, r)
		if r.status != http.StatusOK || b.NextPage == nil {
			t.Fatalf("stream: %d %s", r.status, r.body)
		}
		for _, v := range b.Value {
			if seen[string(v)] {
				repeats++
			}
			seen[string(v)] = true
		}
		cursor = *b.NextPage
		q = url.Values{"pageSize": {"10"}, "nextPage": {cursor}}
		if *b.IsCaughtUp {
			break
		}
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	if !sameSet(keys, truthOf(h, SourceSIEM)) {
		t.Errorf("stream served %d distinct events, truth holds %d", len(keys), len(truthOf(h, SourceSIEM)))
	}
	if repeats == 0 {
		t.Error("later pages never repeated events of the page before")
	}
	// Caught up: empty value, a cursor still, and a new event shows up after it.
	r := h.get(tok, "/siem/v1/events/cg", q)
	if b := decodeREST(t, r); len(b.Value) != 0 || b.NextPage == nil || !*b.IsCaughtUp {
		t.Errorf("caught-up page: %s", r.body)
	}
	added, err := h.sim.AddAlerts(SourceSIEM, []json.RawMessage{json.RawMessage(`{"type":"delivery","subtype":"Delivery"}`)}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	r = h.get(tok, "/siem/v1/events/cg", q)
	if b := decodeREST(t, r); len(b.Value) != 1 || string(b.Value[0]) != string(added[0]) {
		t.Errorf("after adding one event: %s", r.body)
	}
	for name, q := range map[string]url.Values{
		"older than 24 h": {"dateRangeStartsAt": {"2026-03-14T11:59:00.000Z"}},
		"bad format":      {"dateRangeStartsAt": {"2026-03-15"}},
		"unknown type":    {"types": {"mta"}},
	} {
		if r := h.get(tok, "/siem/v1/events/cg", q); r.status != http.StatusBadRequest || decodeREST(t, r).Error == nil {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

func TestSIEMBudgetIsPerEndpoint(t *testing.T) {
	h := alertHarness(t, func(o *Options) { o.Alerts.SIEMBatchLimit = RateWindow{Calls: 2, Per: time.Minute} })
	tok := h.token()
	q := url.Values{"type": {"receipt"}}
	for i := range 2 {
		if r := h.get(tok, "/siem/v1/batch/events/cg", q); r.status != http.StatusOK {
			t.Fatalf("call %d: %d", i, r.status)
		}
	}
	r := h.get(tok, "/siem/v1/batch/events/cg", q)
	if r.status != http.StatusTooManyRequests || r.header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("third batch call: %d headers %v", r.status, r.header)
	}
	if r := h.get(tok, "/siem/v1/events/cg", nil); r.status != http.StatusOK {
		t.Errorf("stream while batch is spent: %d", r.status)
	}
	if r := h.call(tok, "/api/dlp/get-logs", 0, "", map[string]any{}); r.status != http.StatusOK {
		t.Errorf("legacy log while batch is spent: %d", r.status)
	}
	h.clock.Advance(time.Minute)
	if r := h.get(tok, "/siem/v1/batch/events/cg", q); r.status != http.StatusOK {
		t.Errorf("after the window: %d", r.status)
	}
}

func TestThreatEvents(t *testing.T) {
	h := alertHarness(t, nil)
	tok := h.token()
	start := url.Values{"timestampRangeStartsAt": {"2026-03-15T00:00:00.000+05:30[Asia/Kolkata]"}}
	var got []string
	var times []string
	q := url.Values{"timestampRangeStartsAt": start["timestampRangeStartsAt"], "orderBy": {"timestamp:asc"}, "pageSize": {"7"}}
	for range 20 {
		r := h.get(tok, "/threats/v1/events", q)
		b := decodeREST(t, r)
		if r.status != http.StatusOK {
			t.Fatalf("threats: %d %s", r.status, r.body)
		}
		for _, v := range b.Value {
			got = append(got, string(v))
			times = append(times, fieldOf(t, v, "timestamp").(string))
		}
		if b.NextPage == nil {
			break
		}
		q.Set("pageToken", *b.NextPage)
	}
	if !sameSet(got, truthOf(h, SourceThreats)) || !slices.IsSorted(times) {
		t.Errorf("threats oldest first: %d records, sorted %v", len(got), slices.IsSorted(times))
	}
	q = url.Values{"timestampRangeStartsAt": start["timestampRangeStartsAt"], "analysis": {"phishing"}, "status": {"blocked", "delivered"}, "pageSize": {"100"}}
	b := decodeREST(t, h.get(tok, "/threats/v1/events", q))
	for _, v := range b.Value {
		if fieldOf(t, v, "analysis") != "phishing" || !slices.Contains([]any{"blocked", "delivered"}, fieldOf(t, v, "status")) {
			t.Errorf("selection let through %s", v)
		}
	}
	if r := h.get(tok, "/threats/v1/events", nil); r.status != http.StatusBadRequest || decodeREST(t, r).Error == nil {
		t.Errorf("without a start: %d %s", r.status, r.body)
	}
	id := fieldOf(t, json.RawMessage(got[0]), "id").(string)
	r := h.get(tok, "/threats/v1/events/"+id+"/details", url.Values{"source": {"EMAIL"}})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"recipients"`) {
		t.Errorf("details: %d %s", r.status, r.body)
	}
	if r := h.get(tok, "/threats/v1/events/nope/details", nil); r.status != http.StatusNotFound {
		t.Errorf("details of an unknown id: %d", r.status)
	}
}

func TestThreatWrapperOption(t *testing.T) {
	h := alertHarness(t, func(o *Options) { o.Alerts.ThreatsWrapper = "events" })
	r := h.get(h.token(), "/threats/v1/events", url.Values{"timestampRangeStartsAt": {"2026-03-15T00:00:00Z"}})
	var b map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &b)
	if _, ok := b["events"]; !ok {
		t.Errorf("wrapper: %s", r.body)
	}
}

func TestAlertSourcesForbiddenOneByOne(t *testing.T) {
	h := alertHarness(t, nil)
	h.sim.SetForbidden([]string{"/api/ttp/url/get-logs", "/siem/v1/batch/events/cg", threatDetailsTemplate})
	tok := h.token()
	if r := h.call(tok, "/api/ttp/url/get-logs", 0, "", map[string]any{}); r.status != http.StatusForbidden || flatCode(t, r) != "app_forbidden" {
		t.Errorf("url logs: %d %s", r.status, r.body)
	}
	if r := h.get(tok, "/siem/v1/batch/events/cg", url.Values{"type": {"receipt"}}); r.status != http.StatusForbidden {
		t.Errorf("siem batch: %d", r.status)
	}
	id := fieldOf(t, json.RawMessage(truthOf(h, SourceThreats)[0]), "id").(string)
	if r := h.get(tok, "/threats/v1/events/"+id+"/details", nil); r.status != http.StatusForbidden {
		t.Errorf("threat details: %d", r.status)
	}
	if r := h.call(tok, "/api/ttp/attachment/get-logs", 0, "", map[string]any{}); r.status != http.StatusOK {
		t.Errorf("attachment logs: %d", r.status)
	}
	if r := h.get(tok, "/siem/v1/events/cg", nil); r.status != http.StatusOK {
		t.Errorf("siem stream: %d", r.status)
	}
}

// pageByTime against a plain filter-and-sort, over random records, windows, positions and
// page sizes in both orders.
func TestPageByTimeMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var recs []*alertRec
	for i := range 300 {
		recs = append(recs, &alertRec{seq: int64(i + 1), at: int64(r.IntN(50)) * 1000})
	}
	slices.SortStableFunc(recs, cmpTimeSeq)
	even := func(a *alertRec) bool { return a.seq%2 == 0 }
	for range 2000 {
		q := timeQuery{from: int64(r.IntN(55)) * 1000, to: int64(r.IntN(55))*1000 + 999, asc: r.IntN(2) == 0,
			size: 1 + r.IntN(20), countTotal: true}
		if r.IntN(2) == 0 {
			q.match = even
		}
		if r.IntN(2) == 0 {
			p := recs[r.IntN(len(recs))]
			q.hasAfter, q.afterAt, q.afterSeq = true, p.at, p.seq
		}
		var want []*alertRec
		for _, a := range recs {
			if a.at >= q.from && a.at <= q.to && (q.match == nil || q.match(a)) {
				want = append(want, a)
			}
		}
		total := len(want)
		if !q.asc {
			slices.Reverse(want)
		}
		if q.hasAfter {
			pos := &alertRec{at: q.afterAt, seq: q.afterSeq}
			i := slices.IndexFunc(want, func(a *alertRec) bool {
				c := cmpTimeSeq(a, pos)
				return (q.asc && c > 0) || (!q.asc && c < 0)
			})
			if i < 0 {
				i = len(want)
			}
			want = want[i:]
		}
		wantMore := len(want) > q.size
		want = want[:min(q.size, len(want))]
		page, more, gotTotal := pageByTime(recs, q)
		if !slices.Equal(page, want) || more != wantMore || gotTotal != total {
			t.Fatalf("%+v: got %d records more=%v total=%d, want %d more=%v total=%d", q, len(page), more, gotTotal, len(want), wantMore, total)
		}
	}
}

// AlertPaging.Loop hands out the first page's token again, byte for byte, from the third
// page on; EmptyPages puts an empty page with a token before the rest.
func TestAlertPagingLoopAndEmptyPages(t *testing.T) {
	h := alertHarness(t, func(o *Options) { o.Alerts.Paging = AlertPaging{Loop: true} })
	tok := h.token()
	q := url.Values{"timestampRangeStartsAt": {"2026-03-15T00:00:00Z"}, "orderBy": {"timestamp:asc"}, "pageSize": {"3"}}
	var tokens []string
	for range 4 {
		b := decodeREST(t, h.get(tok, "/threats/v1/events", q))
		if b.NextPage == nil {
			t.Fatal("no token")
		}
		tokens = append(tokens, *b.NextPage)
		q.Set("pageToken", *b.NextPage)
	}
	if tokens[2] != tokens[0] || tokens[1] == tokens[0] || tokens[3] != tokens[1] {
		t.Errorf("tokens do not cycle A → B → A → B: %q", tokens)
	}

	h = alertHarness(t, func(o *Options) { o.Alerts.Paging = AlertPaging{EmptyPages: true} })
	tok = h.token()
	q = url.Values{"timestampRangeStartsAt": {"2026-03-15T00:00:00Z"}, "orderBy": {"timestamp:asc"}, "pageSize": {"7"}}
	var got []string
	empties := 0
	for range 40 {
		b := decodeREST(t, h.get(tok, "/threats/v1/events", q))
		if len(b.Value) == 0 && b.NextPage != nil {
			empties++
		}
		for _, v := range b.Value {
			got = append(got, string(v))
		}
		if b.NextPage == nil {
			break
		}
		q.Set("pageToken", *b.NextPage)
	}
	if !sameSet(got, truthOf(h, SourceThreats)) || empties == 0 {
		t.Errorf("%d records through %d empty pages; want all of the truth", len(got), empties)
	}
}
