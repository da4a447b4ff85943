package metrics

import (
	"context"
	"errors"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

type fakeAPI struct{ st mimecast.Stats }

func (f fakeAPI) Stats() mimecast.Stats { return f.st }

type fakeWriter struct{ st index.WriterStats }

func (f fakeWriter) Stats() index.WriterStats { return f.st }

// fakeSink answers every Add at once with the result its body asks for.
type fakeSink struct{ results map[string]index.Result }

func (f fakeSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	done(f.results[d.ID])
	return nil
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// populated returns Metrics with every snapshot set, so that every series is present.
func populated(t *testing.T, ok bool) *Metrics {
	t.Helper()
	m := New(Options{WorstN: 2, Now: func() time.Time { return t0 }})
	m.WatchAPI(fakeAPI{mimecast.Stats{
		ByEndpoint: map[mimecast.EndpointStatus]int64{
			{Endpoint: "POST /api/archive/get-message-list", Status: 200}: 7,
			{Endpoint: "POST /api/archive/get-file", Status: 403}:         2,
			{Endpoint: mimecast.EndpointToken, Status: 0}:                 1,
		},
		RateLimited: 3, Retries: 4, QuotaWait: 1500 * time.Millisecond, DownloadBytes: 99,
		Groups:      map[string]mimecast.GroupStats{"account": {Calls: 9, RateLimited: 3, QuotaWait: 1500 * time.Millisecond}},
		Concurrency: mimecast.ConcurrencyStats{Adaptive: true, Initial: 16, Limit: 37, LimitAvg: 30.5, LimitMax: 40, InFlightMax: 38, Increases: 24, Decreases: 2},
	}})
	m.WatchWriter(fakeWriter{index.WriterStats{Requests: 5, Retried: 1, Bytes: 1234}})
	m.WatchFilters(fakeFilters(2))
	sink := m.CountDocuments(fakeSink{map[string]index.Result{
		"bad":   {Err: errors.New("mapper_parsing_exception"), Permanent: true, Status: 400},
		"there": {Existed: true},
	}})
	for _, d := range []index.Doc{{Kind: index.Messages, ID: "a"}, {Kind: index.Messages, ID: "b"},
		{Kind: index.Attachments, ID: "bad"}, {Kind: index.Messages, ID: "there"}} {
		if err := sink.Add(context.Background(), d, func(index.Result) {}); err != nil {
			t.Fatal(err)
		}
	}
	m.SetMailboxLag([]MailboxToken{
		{"a@example.com", t0.Add(-10 * time.Second)}, {"b@example.com", t0.Add(-40 * time.Second)},
		{"c@example.com", t0.Add(-20 * time.Second)}, {"d@example.com", t0.Add(-30 * time.Second)},
		{"new@example.com", time.Time{}},
	})
	code := 0
	if !ok {
		code = 3
	}
	m.SetRun(RunResult{Started: t0.Add(-90 * time.Second), Finished: t0, ExitCode: code,
		TextMisses: []TextMiss{{Format: "pdf", Reason: "no_text_layer", Count: 2}, {Format: "docx", Reason: "corrupt", Count: 1}}})
	m.SetAlertSources([]SourceStatus{
		{Source: "threats", LatestEvent: t0.Add(-time.Minute), LastPoll: t0.Add(-5 * time.Second), Pending: 2},
		{Source: "dlp", Forbidden: true},
	})
	return m
}

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value returns the value of the series of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
		return 0, true
	}
	return 0, false
}

func TestSeriesFromSnapshots(t *testing.T) {
	fams := gather(t, populated(t, true))
	cases := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mimecrawl_documents_indexed_total", map[string]string{"kind": "messages"}, 2},
		{"mimecrawl_documents_existing_total", map[string]string{"kind": "messages"}, 1},
		{"mimecrawl_documents_failed_total", map[string]string{"kind": "attachments"}, 1},
		{"mimecrawl_api_calls_total", map[string]string{"endpoint": "POST /api/archive/get-file", "status": "403"}, 2},
		{"mimecrawl_api_calls_total", map[string]string{"endpoint": "token", "status": "none"}, 1},
		{"mimecrawl_api_rate_limited_total", nil, 3},
		{"mimecrawl_api_retries_total", nil, 4},
		{"mimecrawl_api_quota_wait_seconds_total", nil, 1.5},
		{"mimecrawl_api_quota_calls_total", map[string]string{"group": "account"}, 9},
		{"mimecrawl_api_quota_rate_limited_total", map[string]string{"group": "account"}, 3},
		{"mimecrawl_api_quota_group_wait_seconds_total", map[string]string{"group": "account"}, 1.5},
		{"mimecrawl_api_concurrency_limit", nil, 37},
		{"mimecrawl_api_inflight_max", nil, 38},
		{"mimecrawl_api_concurrency_changes_total", map[string]string{"direction": "increase"}, 24},
		{"mimecrawl_api_concurrency_changes_total", map[string]string{"direction": "decrease"}, 2},
		{"mimecrawl_bulk_requests_total", nil, 5},
		{"mimecrawl_bulk_item_retries_total", nil, 1},
		{"mimecrawl_mailbox_lag_worst_seconds", map[string]string{"mailbox": "b@example.com"}, 40},
		{"mimecrawl_mailbox_lag_worst_seconds", map[string]string{"mailbox": "d@example.com"}, 30},
		{"mimecrawl_mailboxes_without_checkpoint", nil, 1},
		{"mimecrawl_run_duration_seconds", nil, 90},
		{"mimecrawl_run_exit_code", nil, 0},
		{"mimecrawl_run_attachments_without_text", map[string]string{"format": "pdf", "reason": "no_text_layer"}, 2},
		{"mimecrawl_run_attachments_without_text", map[string]string{"format": "docx", "reason": "corrupt"}, 1},
		{"mimecrawl_run_last_success_timestamp_seconds", nil, float64(t0.Unix())},
		{"mimecrawl_alerts_lag_seconds", map[string]string{"source": "threats"}, 60},
		{"mimecrawl_alerts_source_lag_seconds", map[string]string{"source": "threats"}, 60},
		{"mimecrawl_alerts_pending", map[string]string{"source": "threats"}, 2},
		{"mimecrawl_alerts_pending", map[string]string{"source": "dlp"}, 0},
		{"mimecrawl_alerts_source_forbidden", map[string]string{"source": "dlp"}, 1},
		{"mimecrawl_alerts_source_forbidden", map[string]string{"source": "threats"}, 0},
	}
	for _, tc := range cases {
		got, ok := value(t, fams, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if n := len(fams["mimecrawl_mailbox_lag_worst_seconds"].GetMetric()); n != 2 {
		t.Errorf("worst-lag series: %d, want WorstN = 2", n)
	}
	s := fams["mimecrawl_mailbox_lag_seconds"].GetMetric()[0].GetSummary()
	if s.GetSampleCount() != 4 || s.GetSampleSum() != 100 {
		t.Errorf("lag summary count %d sum %v, want 4 and 100", s.GetSampleCount(), s.GetSampleSum())
	}
	for _, q := range s.GetQuantile() {
		// Nearest rank over 10, 20, 30, 40: the median is 20, the 90th and 99th are 40.
		want := map[float64]float64{0.5: 20, 0.9: 40, 0.99: 40}[q.GetQuantile()]
		if q.GetValue() != want {
			t.Errorf("lag quantile %v = %v, want %v", q.GetQuantile(), q.GetValue(), want)
		}
	}
}

func TestFailedRunHasNoLastSuccess(t *testing.T) {
	fams := gather(t, populated(t, false))
	if _, ok := fams["mimecrawl_run_last_success_timestamp_seconds"]; ok {
		t.Error("a failed run exports a last success timestamp; a push would overwrite the last real one")
	}
	if v, _ := value(t, fams, "mimecrawl_run_exit_code", nil); v != 3 {
		t.Errorf("exit code series = %v, want 3", v)
	}
}

func TestEmptyLagSummary(t *testing.T) {
	m := New(Options{WorstN: 3})
	m.SetMailboxLag(nil)
	s := gather(t, m)["mimecrawl_mailbox_lag_seconds"].GetMetric()[0].GetSummary()
	if s.GetSampleCount() != 0 || !math.IsNaN(s.GetQuantile()[0].GetValue()) {
		t.Errorf("empty summary: count %d, quantile %v; want 0 and NaN", s.GetSampleCount(), s.GetQuantile()[0].GetValue())
	}
}

// TestAlertRulesReferenceRealSeries parses the alert rules we ship and checks that every
// mimecrawl series an expression names exists in the registry (a summary's _count and _sum
// included), so a renamed series cannot leave a rule that never fires.
func TestAlertRulesReferenceRealSeries(t *testing.T) {
	data, err := os.ReadFile("../deploy/prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	known := map[string]bool{}
	for name, f := range gather(t, populated(t, true)) {
		known[name] = true
		if f.GetType() == dto.MetricType_SUMMARY {
			known[name+"_count"], known[name+"_sum"] = true, true
		}
	}
	series := regexp.MustCompile(`\bmimecrawl_[a-z0-9_]+`)
	var alerts []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q: want alert, expr, a severity label and a summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			names := series.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("rule %s names no mimecrawl series: %s", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("rule %s names %s, which the registry does not have", r.Alert, n)
				}
			}
		}
	}
	for _, want := range []string{"MimecrawlNoSuccessfulCrawl", "MimecrawlMailboxLagHigh", "MimecrawlAPIForbidden",
		"MimecrawlDocumentsFailing", "MimecrawlAlertsSourceForbidden"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("rules.yml lacks alert %s", want)
		}
	}
}

// TestOperationsDocListsEverySeries checks docs/operations.md against the registry: every
// series is documented, and every documented series exists.
func TestOperationsDocListsEverySeries(t *testing.T) {
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	fams := gather(t, populated(t, true))
	for name := range fams {
		if !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("docs/operations.md has no table row for %s", name)
		}
	}
	row := regexp.MustCompile("(?m)^\\| `(mimecrawl_[a-z0-9_]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		if fams[m[1]] == nil {
			t.Errorf("docs/operations.md documents %s, which the registry does not have", m[1])
		}
	}
}

type fakeFilters int64

func (f fakeFilters) FilterLimited() int64 { return int64(f) }
