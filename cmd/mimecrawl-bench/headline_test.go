package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestLittleBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		conc    *float64
		latency float64
		rpm     *float64
		want    *float64
	}{
		{name: "the issue's example: 16 in flight, 100 ms, 2 requests", conc: ptr(16), latency: 0.1, rpm: ptr(2), want: ptr(80)},
		{name: "detail call too: 3 requests", conc: ptr(16), latency: 0.1, rpm: ptr(3), want: ptr(16 / 0.3)},
		{name: "adaptive mean limit, 300 ms", conc: ptr(48.5), latency: 0.3, rpm: ptr(2), want: ptr(48.5 / 0.6)},
		{name: "no concurrency reported", conc: nil, latency: 0.1, rpm: ptr(2)},
		{name: "no requests measured", conc: ptr(16), latency: 0.1, rpm: nil},
		{name: "zero requests per message", conc: ptr(16), latency: 0.1, rpm: ptr(0)},
		{name: "no latency", conc: ptr(16), latency: 0, rpm: ptr(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := littleBound(tc.conc, tc.latency, tc.rpm)
			switch {
			case tc.want == nil && got != nil:
				t.Errorf("got %v, want n/a", *got)
			case tc.want != nil && (got == nil || !near(*got, *tc.want)):
				t.Errorf("got %s, want %v", fmtOpt(got, "%v"), *tc.want)
			}
		})
	}
}

func TestMedianOfSkipsMissing(t *testing.T) {
	if got := medianOf([]*float64{ptr(5), nil, ptr(1), ptr(3)}); got == nil || *got != 3 {
		t.Errorf("got %s, want 3", fmtOpt(got, "%v"))
	}
	if got := medianOf([]*float64{nil, nil}); got != nil {
		t.Errorf("got %v, want n/a", *got)
	}
	if got := quotientOf(ptr(1), nil); got != nil {
		t.Errorf("quotient with a missing divisor: %v", *got)
	}
	if got := quotient(3, 0); got != nil {
		t.Errorf("quotient by 0: %v", *got)
	}
}

func TestJudge(t *testing.T) {
	atLeast := func(x float64) bool { return x >= 0.9 }
	for _, tc := range []struct {
		v    *float64
		want verdict
	}{{ptr(0.95), pass}, {ptr(0.9), pass}, {ptr(0.89), fail}, {nil, notAvailable}} {
		if got := judge(tc.v, atLeast); got != tc.want {
			t.Errorf("judge(%s) = %s, want %s", fmtOpt(tc.v, "%v"), got, tc.want)
		}
	}
}

func TestSteadyRate(t *testing.T) {
	// 1,000 messages: nothing for 2 s (start, enumeration), then 100 messages/s, sampled
	// every 0.5 s, then a tail.
	var samples []progressSample
	for at := 0.5; at <= 14; at += 0.5 {
		n := int64(math.Max(0, math.Min(1000, 100*(at-2))))
		samples = append(samples, progressSample{At: at, N: n})
	}
	rate, secs, ok := steadyRate(samples, 1000, 0.1, 0.9)
	if !ok || !near(rate, 100) || !near(secs, 8) {
		t.Errorf("got %v/s over %vs (ok %v), want 100/s over 8s", rate, secs, ok)
	}
	// The crossing of 10% (100 messages at 3 s) lies between samples at 2.5 s (50) and 4 s
	// (200): interpolated, not rounded to a sample.
	coarse := []progressSample{{At: 2.5, N: 50}, {At: 4, N: 200}, {At: 12, N: 1000}}
	if at, ok := crossing(coarse, 100); !ok || !near(at, 3) {
		t.Errorf("crossing at %v (ok %v), want 3", at, ok)
	}
	// Samples that end before 90% cannot give a steady rate.
	if _, _, ok := steadyRate(samples[:10], 1000, 0.1, 0.9); ok {
		t.Error("steady rate from samples that stop at 300 messages")
	}
	if _, _, ok := steadyRate(nil, 0, 0.1, 0.9); ok {
		t.Error("steady rate of nothing")
	}
}

func latencyRun(secs float64, messages, perMessage int64, steady *float64, lim limiterFields) LatencyRun {
	st := runStats{Seconds: secs, Messages: messages, Requests: requestCounts{PerMessage: perMessage}, Limiter: lim}
	st.rates()
	return LatencyRun{Run: st, SteadyMessagesPerSec: steady}
}

func TestLatencySummarise(t *testing.T) {
	fixed := LatencyConfig{Key: configFixed, FixedConcurrency: 16, Runs: []LatencyRun{
		latencyRun(40, 2400, 4800, ptr(72), limiterFields{}), // bound 80: 0.90
		latencyRun(45, 2400, 4800, ptr(64), limiterFields{}), // 0.80
		latencyRun(38, 2400, 4800, ptr(76), limiterFields{}), // 0.95
	}}
	fixed.summarise(100)
	if fixed.Bound == nil || !near(*fixed.Bound, 80) || fixed.RequestsPerMessage == nil || !near(*fixed.RequestsPerMessage, 2) {
		t.Errorf("bound %s, requests per message %s; want 80 and 2", fmtOpt(fixed.Bound, "%v"), fmtOpt(fixed.RequestsPerMessage, "%v"))
	}
	if fixed.Ratio == nil || !near(*fixed.Ratio, 0.9) {
		t.Errorf("median ratio %s, want 0.90", fmtOpt(fixed.Ratio, "%v"))
	}
	if r := fixed.Runs[0].WallRatio; r == nil || !near(*r, 60.0/80) {
		t.Errorf("wall ratio %s, want 0.75 (2400 messages in 40 s against 80/s)", fmtOpt(r, "%v"))
	}

	// The shipped defaults take the crawler's time-weighted mean limit as their concurrency.
	adaptive := LatencyConfig{Key: configDefaults, Runs: []LatencyRun{
		latencyRun(20, 2400, 4800, ptr(150), limiterFields{LimitAvg: ptr(40), Limit: ptr(48), InflightMax: ptr(50)}),
	}}
	adaptive.summarise(100)
	if adaptive.Bound == nil || !near(*adaptive.Bound, 200) || adaptive.Ratio == nil || !near(*adaptive.Ratio, 0.75) || adaptive.Note != "" {
		t.Errorf("bound %s ratio %s note %q; want 200, 0.75, none", fmtOpt(adaptive.Bound, "%v"), fmtOpt(adaptive.Ratio, "%v"), adaptive.Note)
	}

	// A crawler without adaptive concurrency reports no limit: n/a, and a note that says why.
	old := LatencyConfig{Key: configDefaults, Runs: []LatencyRun{latencyRun(40, 2400, 7200, ptr(60), limiterFields{})}}
	old.summarise(100)
	if old.Concurrency != nil || old.Bound != nil || old.Ratio != nil || !strings.Contains(old.Note, "api_concurrency_limit_avg") {
		t.Errorf("without a reported limit: concurrency %s bound %s ratio %s note %q", fmtOpt(old.Concurrency, "%v"),
			fmtOpt(old.Bound, "%v"), fmtOpt(old.Ratio, "%v"), old.Note)
	}
	if old.RequestsPerMessage == nil || !near(*old.RequestsPerMessage, 3) {
		t.Errorf("requests per message %s, want 3 (measured, not assumed)", fmtOpt(old.RequestsPerMessage, "%v"))
	}
}

// firstCrawl is a first crawl of 300 messages that made calls /api/ calls the simulator
// admitted, 3 of them list calls and 2 enumeration calls.
func firstCrawl(calls int64, crawlerCPU, esCPU float64, rss int64) runStats {
	return runStats{Messages: 300, Docs: 500, CrawlerCPU: crawlerCPU, ESCPU: esCPU, PeakRSSBytes: rss,
		Requests: requestCounts{apiCounts: apiCounts{Admitted: calls, Lists: 3}, Enumeration: 2,
			ByPath: map[string]int64{"/api/archive/get-file": 300, "/api/archive/get-message-list": 3, "/_download": 300}}}
}

func goalsByName(gs []Goal) map[string]Goal {
	m := map[string]Goal{}
	for _, g := range gs {
		m[g.Name] = g
	}
	return m
}

func TestHeadline(t *testing.T) {
	fixed := LatencyConfig{Key: configFixed, Name: "(i) fixed 4 × 4 (today's behaviour)", FixedConcurrency: 16, Runs: []LatencyRun{
		latencyRun(40, 2400, 4800, ptr(75), limiterFields{}), latencyRun(40, 2400, 4800, ptr(74), limiterFields{}), latencyRun(40, 2400, 4800, ptr(70), limiterFields{}),
	}}
	adaptive := LatencyConfig{Key: configDefaults, Name: "(ii) shipped defaults", Runs: []LatencyRun{
		latencyRun(20, 2400, 4800, ptr(150), limiterFields{LimitAvg: ptr(40), Limit: ptr(48)}),
		latencyRun(20, 2400, 4800, ptr(150), limiterFields{LimitAvg: ptr(40), Limit: ptr(12)}),
		latencyRun(20, 2400, 4800, ptr(150), limiterFields{LimitAvg: ptr(40), Limit: ptr(64)}),
	}}
	slow := LatencyConfig{Key: configFixed, Name: "(i) fixed 4 × 4 (today's behaviour)", FixedConcurrency: 16, Runs: []LatencyRun{
		latencyRun(40, 800, 1600, ptr(10), limiterFields{}),
	}}
	for _, c := range []*LatencyConfig{&fixed, &adaptive} {
		c.summarise(100)
	}
	slow.summarise(300)
	small := []runStats{firstCrawl(0, 0, 0, 60e6), firstCrawl(0, 0, 0, 62e6), firstCrawl(0, 0, 0, 64e6)}
	large := []runStats{firstCrawl(306, 4, 10, 66e6), firstCrawl(308, 5, 10, 70e6), firstCrawl(305, 6, 10, 90e6)}
	rate := &RateSection{Runs: []RateResult{
		{LimitPerMinute: 600, Seconds: 120, MaxAdmissible: 1800, QuotaShare: 0.95, Share429: 0.02, Limiter: limiterFields{Limit: ptr(3)}},
		{LimitPerMinute: 600, Seconds: 120, MaxAdmissible: 1800, QuotaShare: 0.97, Share429: 0.004, Limiter: limiterFields{Limit: ptr(4)}},
		{LimitPerMinute: 600, Seconds: 120, MaxAdmissible: 1800, QuotaShare: 0.80, Share429: 0.005, Limiter: limiterFields{Limit: ptr(5)}},
	}}
	rate.summarise()
	r := &Results{
		Latency: &LatencyResult{Groups: []LatencyGroup{
			{LatencyMS: 100, Messages: 2400, Mailboxes: 8, Configs: []LatencyConfig{fixed, adaptive}},
			{LatencyMS: 300, Messages: 800, Mailboxes: 8, Configs: []LatencyConfig{slow}},
		}},
		Scaling:     []ScaleRow{{Messages: 10000, Mailboxes: 20, Runs: small}, {Messages: 300000, Mailboxes: 20, Runs: large}},
		RateLimited: rate,
	}
	got := goalsByName(r.headline())
	for _, tc := range []struct {
		name  string
		value float64
		want  verdict
	}{
		// Medians of 306, 308, 305 calls for 300 messages: 306 / 300.
		{"quota-counted `/api/` calls per message (first crawl, shipped defaults)", 306.0 / 300, pass},
		// Steady 74 msg/s (median) against 16 / (0.1 × 2) = 80.
		{"messages/s at 100 ms per request ÷ Little's bound, (i) fixed 4 × 4 (today's behaviour)", 74.0 / 80, pass},
		// Final limits 48, 12, 64: median 48 > 16.
		{"(ii) shipped defaults at 100 ms: concurrency limit settled at", 48, pass},
		// 300 ms is shown, not judged.
		{"messages/s at 300 ms per request ÷ Little's bound, (i) fixed 4 × 4 (today's behaviour)", 10 / (16 / 0.6), info},
		// 0.4, 0.5, 0.6: median 0.5.
		{"crawler CPU-s per document ÷ Elasticsearch CPU-s per document, same crawl", 0.5, pass},
		// Median 62 → 70 MB: +12.9%.
		{"peak RSS growth 10,000 → 300,000 messages (20 mailboxes)", 70.0/62 - 1, fail},
		{"quota used at 600/min (burst + refill)", 0.95, pass},
		{"calls answered 429 under the quota", 0.005, pass},
		{"concurrency limit settled at under the quota", 4, info},
	} {
		g, ok := got[tc.name]
		if !ok {
			t.Errorf("no goal %q in %v", tc.name, got)
			continue
		}
		if g.Value == nil || !near(*g.Value, tc.value) || g.Verdict != tc.want {
			t.Errorf("%s: value %s, verdict %s; want %v, %s", tc.name, fmtOpt(g.Value, "%v"), g.Verdict, tc.value, tc.want)
		}
	}
	if g := got["quota-counted `/api/` calls per message (first crawl, shipped defaults)"]; !strings.HasPrefix(g.Limit, "1.017 ") || g.Runs != 3 {
		t.Errorf("calls per message: limit %q (want 1 + (3 + 2) / 300 = 1.017), runs %d", g.Limit, g.Runs)
	}
	if len(got) != 9 {
		t.Errorf("%d goals, want 9: %v", len(got), got)
	}
}

// A benchmark of a crawler without adaptive concurrency, or with measurements left out, says
// n/a: it never passes what it did not measure.
func TestHeadlineNotAvailable(t *testing.T) {
	adaptive := LatencyConfig{Key: configDefaults, Name: "(ii) shipped defaults", Runs: []LatencyRun{latencyRun(40, 2400, 7200, ptr(50), limiterFields{})}}
	adaptive.summarise(100)
	r := &Results{Latency: &LatencyResult{Groups: []LatencyGroup{{LatencyMS: 100, Configs: []LatencyConfig{adaptive}}}}}
	gs := r.headline()
	byName := goalsByName(gs)
	settled := byName["(ii) shipped defaults at 100 ms: concurrency limit settled at"]
	if settled.Verdict != notAvailable || settled.Value != nil || !strings.Contains(settled.Note, "reports no api_concurrency_limit_avg") {
		t.Errorf("settled limit without a reported limit: %+v", settled)
	}
	for _, g := range gs {
		if g.Verdict == pass || g.Verdict == fail {
			t.Errorf("goal %q judged %s without a measurement", g.Name, g.Verdict)
		}
	}
	r.evaluate()
	md := r.markdown()
	if !strings.Contains(md, "| n/a (mean n/a, most in flight n/a;") {
		t.Errorf("headline lacks the n/a settled limit:\n%s", md)
	}
	if !strings.Contains(md, "| n/a | n/a | n/a |") {
		t.Errorf("latency table lacks the n/a cells:\n%s", md)
	}
	if got := goalsByName((&Results{}).headline()); got["crawler CPU-s per document ÷ Elasticsearch CPU-s per document, same crawl"].Verdict != notAvailable {
		t.Errorf("CPU goal of an empty run: %+v", got)
	}
}

func TestHeadlineMarkdownComesFirst(t *testing.T) {
	fixed := LatencyConfig{Key: configFixed, Name: "(i) fixed 4 × 4 (today's behaviour)", FixedConcurrency: 16,
		Runs: []LatencyRun{latencyRun(40, 2400, 4800, ptr(40.9), limiterFields{})}}
	fixed.summarise(100)
	r := &Results{Mode: "full", Latency: &LatencyResult{Groups: []LatencyGroup{{LatencyMS: 100, Messages: 2400, Mailboxes: 8, Configs: []LatencyConfig{fixed}}}},
		Ceiling: &CeilingResult{Messages: 50000, Mailboxes: 20}}
	r.evaluate()
	md := r.markdown()
	head, lat, ceil := strings.Index(md, "## Headline: the goals"), strings.Index(md, "## 1. Latency-bound throughput"), strings.Index(md, "## 2. Ceiling vs crawler")
	if head < 0 || lat < head || ceil < lat {
		t.Fatalf("sections out of order (headline %d, latency %d, ceiling %d):\n%s", head, lat, ceil, md)
	}
	for _, want := range []string{
		"| messages/s at 100 ms per request ÷ Little's bound, (i) fixed 4 × 4 (today's behaviour) | 0.51 (40.9 msg/s steady; whole run 60.0 msg/s, 0.75 of the bound) | 1 | ≥ 0.9 | bound 80.0 msg/s = 16.0 / (0.1 s × 2.00 requests per message) | **fail** |",
		"| (i) fixed 4 × 4 (today's behaviour) | median | | | 60.0 | 40.9 | 2.00 | 16.0 | 80.0 | **0.51** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Quick mode") {
		t.Error("full-mode results carry the quick-mode note")
	}
	r.Mode = "quick"
	if !strings.Contains(r.markdown(), "not for the targets") && !strings.Contains(r.markdown(), "goals are judged on `BENCH_MODE=full make bench` only") {
		t.Error("quick-mode results lack the note that they are not for the targets")
	}
}

func TestReadSummaryLimiter(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, line        string
		avg, limit, inMax *float64
	}{
		{name: "in the summary", line: `{"level":"info","summary":{"messages_indexed":7,"api_concurrency_limit_avg":31.5,"api_concurrency_limit":40,"api_inflight_max":41},"message":"run end"}`,
			avg: ptr(31.5), limit: ptr(40), inMax: ptr(41)},
		{name: "on the line", line: `{"level":"info","summary":{"messages_indexed":7},"api_concurrency_limit_avg":12,"api_concurrency_limit":16,"message":"run end"}`,
			avg: ptr(12), limit: ptr(16)},
		{name: "not reported", line: `{"level":"info","summary":{"messages_indexed":7,"peak_rss_bytes":5},"message":"run end"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".log")
			if err := os.WriteFile(path, []byte(`{"level":"info","message":"run start"}`+"\n"+tc.line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := readSummary(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Messages != 7 {
				t.Errorf("messages %d, want 7", sum.Messages)
			}
			for _, f := range []struct {
				what      string
				got, want *float64
			}{{"avg", sum.LimitAvg, tc.avg}, {"limit", sum.Limit, tc.limit}, {"inflight max", sum.InflightMax, tc.inMax}} {
				if (f.got == nil) != (f.want == nil) || (f.got != nil && *f.got != *f.want) {
					t.Errorf("%s: got %s, want %s", f.what, fmtOpt(f.got, "%v"), fmtOpt(f.want, "%v"))
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	st := simulator.Stats{Requests: map[string]map[int]int64{
		"/oauth/token":                       {200: 1},
		"/api/domain/get-internal-domain":    {200: 1},
		"/api/user/get-internal-users":       {200: 2},
		"/api/archive/get-message-list":      {200: 6, 429: 1},
		"/api/archive/get-message-detail":    {200: 100},
		"/api/archive/get-file":              {200: 99, 500: 1},
		"/_download":                         {200: 99},
		"/api/archive/get-message-part/else": {200: 0},
	}}
	c := classify(st)
	if c.Admitted != 209 || c.Limited != 1 || c.Lists != 6 || c.Enumeration != 3 || c.PerMessage != 299 || c.GetFile != 99 {
		t.Errorf("got %+v", c)
	}
	if c.ByPath["/oauth/token"] != 1 || c.ByPath["/api/archive/get-message-list"] != 7 {
		t.Errorf("by path %v", c.ByPath)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 300000: "300,000", 1234567: "1,234,567", -2500: "-2,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// The probe of a setting uses the crawler's own loader: a known setting passes, an unknown
// key fails, so the latency measurement knows whether to send performance.concurrency.
func TestSettingAccepted(t *testing.T) {
	b := &bench{p: params{ESURL: "http://127.0.0.1:9200"}, work: t.TempDir()}
	if err := b.settingAccepted("parallelism.messages=4"); err != nil {
		t.Errorf("known setting refused: %v", err)
	}
	err := b.settingAccepted("performance.no_such_setting=1")
	if err == nil {
		t.Fatal("unknown setting accepted")
	}
	if got := rejection(err); strings.Contains(got, b.work) {
		t.Errorf("rejection %q names the probe file", got)
	}
}

// setLatency installs one latency fault that covers every path the crawler uses, and clears it.
func TestSetLatency(t *testing.T) {
	srv, err := simulator.New(simulator.Options{Seed: 1, Mailboxes: 1, Messages: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	s := &sim{url: ts.URL, http: ts.Client()}
	ctx := context.Background()
	if err := s.setLatency(ctx, 100); err != nil {
		t.Fatal(err)
	}
	faults := fetchFaults(t, ts.URL)
	if len(faults) != 1 || faults[0].LatencyMS != 100 || faults[0].Status != 0 {
		t.Fatalf("faults %+v, want one of 100 ms latency alone", faults)
	}
	for _, path := range []string{"/oauth/token", "/api/archive/get-file", "/_download/x"} {
		if !strings.HasPrefix(path, faults[0].PathPrefix) {
			t.Errorf("fault prefix %q does not cover %s", faults[0].PathPrefix, path)
		}
	}
	if err := s.setLatency(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if faults := fetchFaults(t, ts.URL); len(faults) != 0 {
		t.Errorf("faults left after clearing: %+v", faults)
	}
}

func fetchFaults(t *testing.T, url string) []simulator.Fault {
	t.Helper()
	resp, err := http.Get(url + "/_sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []simulator.Fault
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The sporadic-429 crawl is a headline row when it ran: the throughput with the 429s over the
// throughput without, against 90%.
func TestSporadicGoal(t *testing.T) {
	for _, tc := range []struct {
		with float64
		want verdict
	}{{95, pass}, {50, fail}} {
		r := Results{Sporadic: &SporadicResult{Without: SporadicRun{MessagesPerSec: 100}, With: SporadicRun{MessagesPerSec: tc.with}, Ratio: tc.with / 100}}
		hl := r.headline()
		g := hl[len(hl)-1]
		if !strings.HasPrefix(g.Name, "sporadic 429s") || g.Verdict != tc.want {
			t.Errorf("with %.0f of 100 messages/s: last headline row %q, verdict %s; want the sporadic row, %s", tc.with, g.Name, g.Verdict, tc.want)
		}
	}
}
