package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/internal/job"
)

// The summary shows the concurrency the run used when the client had a bound, and nothing
// about it otherwise.
func TestSummaryPrintsConcurrency(t *testing.T) {
	var s job.Summary
	s.SetConcurrency(mimecast.ConcurrencyStats{Adaptive: true, Initial: 16, Limit: 48, LimitAvg: 37.24, LimitMax: 52, InFlightMax: 48})
	var b strings.Builder
	printSummary(&b, &s)
	if want := "  concurrency   adaptive, 16 → 48 (avg 37.2, highest 52), max in flight 48\n"; !strings.Contains(b.String(), want) {
		t.Errorf("summary:\n%s\nwant the line %q", b.String(), want)
	}
	blob, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"api_concurrency_limit":48`, `"api_concurrency_limit_avg":37.24`, `"api_inflight_max":48`} {
		if !strings.Contains(string(blob), field) {
			t.Errorf("summary JSON %s lacks %s", blob, field)
		}
	}

	var none job.Summary
	none.SetConcurrency(mimecast.ConcurrencyStats{})
	b.Reset()
	printSummary(&b, &none)
	if strings.Contains(b.String(), "concurrency") {
		t.Errorf("a client without a bound printed a concurrency line:\n%s", b.String())
	}
}

// TestSummaryFitsEightyColumns: every line of a busy run's summary fits 80 columns, broken
// between phrases; exclusions stand under the line they belong to; counts of one are singular.
func TestSummaryFitsEightyColumns(t *testing.T) {
	s := job.Summary{Command: "crawl", Seconds: 1234.5, DomainsTotal: 3, DomainsKept: 2, MailboxesEnumerated: 20, MailboxesKept: 20,
		Excluded:   map[string]int{"domain not in domains.include": 1},
		ViewsTotal: 40, ViewsComplete: 11, ViewsInterrupted: 9,
		APICalls: 123456, APIRateLimited: 1234, APIErrors: map[int]int64{429: 1234, 500: 12, 503: 3},
		BulkRequests: 1, BytesIndexed: 1 << 40, PeakRSSBytes: 300 << 20,
		MailboxesRemoved: 2, RemovalRefused: []string{"a", "b", "c"}}
	s.Totals = crawler.Totals{Messages: 1234567, Skipped: 7654321, ExcludedSubjects: 12345, Attachments: 2345678, FromMessage: 2345000,
		Oversize: 12345, ExcludedNames: 54321, Bytes: 5 << 40, DocsFailed: 12345, FetchFailed: 23456, InvalidListed: 34567, MalformedBodies: 45678}
	s.SetConcurrency(mimecast.ConcurrencyStats{Adaptive: true, Initial: 16, Limit: 48, LimitAvg: 37.24, LimitMax: 52, InFlightMax: 48})
	var b strings.Builder
	printSummary(&b, &s)
	out := b.String()
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("%d columns: %q", n, l)
		}
		if strings.HasPrefix(l, strings.Repeat(" ", 16)) && strings.HasPrefix(strings.TrimSpace(l), ",") {
			t.Errorf("a continuation starts mid-phrase: %q", l)
		}
	}
	for _, want := range []string{
		"  domains       2 kept of 3\n    excluded    1: not in domains.include\n  mailboxes     20 kept of 20 enumerated",
		"in 1 bulk request\n", "  views         11 complete, 0 failed, 9 interrupted, 20 not started\n",
		"  attachments   2345678 indexed (2345000 taken from the message, no download),\n                12345 over the size cap (metadata only)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// TestRunLine: status shows a run stopped by a signal as interrupted, with how its views
// ended, never the cancellation error.
func TestRunLine(t *testing.T) {
	got := runLine(job.Summary{Interrupted: true, ViewsComplete: 11, ViewsInterrupted: 9, Error: "list messages: context canceled", Totals: crawler.Totals{Messages: 5, Attachments: 1}})
	if !strings.HasPrefix(got, "interrupted, 5 messages, 1 attachment, ") || !strings.Contains(got, "views 11 complete, 0 failed, 9 interrupted") || strings.Contains(got, "canceled") {
		t.Errorf("runLine = %q", got)
	}
	if got := runLine(job.Summary{ViewsFailed: 1, Error: "elasticsearch: 401"}); !strings.Contains(got, "1 failed") || !strings.HasSuffix(got, "error: elasticsearch: 401") {
		t.Errorf("runLine of a failed run = %q", got)
	}
}

// The summary tells the calls the quota counts, by quota group, from downloads and token
// requests, and says how long calls waited for the quota.
func TestSummaryShowsQuotaGroups(t *testing.T) {
	s := job.Summary{Seconds: 60}
	s.SetAPI(mimecast.Stats{Calls: 1300, RateLimited: 4, APICalls: 1000, DownloadRequests: 298, TokenRequests: 2,
		QuotaWait: 2500 * time.Millisecond, Groups: map[string]mimecast.GroupStats{
			"account": {Calls: 990, RateLimited: 4, QuotaWait: 2400 * time.Millisecond},
			"threats": {Calls: 10, QuotaWait: 100 * time.Millisecond},
		}})
	var b strings.Builder
	printSummary(&b, &s)
	// Lines are broken between phrases at 80 columns: compare with the breaks taken out.
	flat := strings.ReplaceAll(b.String(), ",\n"+strings.Repeat(" ", 16), ", ")
	for _, want := range []string{
		"  quota         1000 calls (1000/min), account 990 (4 answered 429, waited 2.4s), threats 10 (0 answered 429, waited 0.1s), waited 2.5s in all\n",
		"  api           1300 requests, 1000 quota-counted, 298 downloads, 2 token requests, 4 answered 429",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("summary:\n%s\nwant the line %q", b.String(), want)
		}
	}
	blob, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"api_quota_calls":1000`, `"api_download_requests":298`, `"api_token_requests":2`, `"api_quota_wait_seconds":2.5`,
		`"api_quota_groups":{"account":{"calls":990,"rate_limited":4,"quota_wait_seconds":2.4}`} {
		if !strings.Contains(string(blob), field) {
			t.Errorf("summary JSON %s lacks %s", blob, field)
		}
	}
}

// A pass of the alerts poller reports what the quota counted during that pass only.
func TestQuotaSinceIsThePassOnly(t *testing.T) {
	before := mimecast.Stats{APICalls: 10, Groups: map[string]mimecast.GroupStats{
		"account": {Calls: 10, QuotaWait: time.Second}, "siem-batch": {Calls: 2}}}
	now := mimecast.Stats{APICalls: 25, Groups: map[string]mimecast.GroupStats{
		"account": {Calls: 22, RateLimited: 1, QuotaWait: 3 * time.Second}, "siem-batch": {Calls: 2}, "threats": {Calls: 3}}}
	calls, groups := job.QuotaSince(now, before)
	if calls != 15 || len(groups) != 2 || groups["account"] != (job.QuotaGroup{Calls: 12, RateLimited: 1, WaitSeconds: 2}) || groups["threats"].Calls != 3 {
		t.Errorf("QuotaSince = %d, %+v; want 15 calls, account 12 (1 answered 429, 2 s), threats 3, no siem-batch", calls, groups)
	}
}
