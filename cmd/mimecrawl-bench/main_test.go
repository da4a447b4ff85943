package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/internal/job"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, p params)
		wantErr string
	}{
		{name: "quick preset", args: nil, check: func(t *testing.T, p params) {
			if p.Mode != "quick" || p.CeilingMessages != presets["quick"].CeilingMessages || p.Pairs < 1 || len(p.LatencyMS) == 0 {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "full preset has the sizes of the issue and at least three runs of every headline number", args: []string{"--mode", "full"}, check: func(t *testing.T, p params) {
			if !reflect.DeepEqual(p.ScaleMessages, []int{10000, 300000}) || p.Mailboxes != 20 || p.RateLimit != 600 ||
				!reflect.DeepEqual(p.LatencyMS, []int{100, 300}) || p.Pairs < 3 ||
				p.ScaleRuns < 5 || p.LatencyRuns < 3 || p.RateRuns < 5 {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "latency flags", args: []string{"--latency", "50,200", "--latency-runs", "2", "--latency-messages", "900", "--rate-runs", "2", "--scale-runs", "4"},
			check: func(t *testing.T, p params) {
				if !reflect.DeepEqual(p.LatencyMS, []int{50, 200}) || p.LatencyRuns != 2 || p.LatencyMessages != 900 || p.RateRuns != 2 || p.ScaleRuns != 4 {
					t.Errorf("got %+v", p)
				}
			}},
		{name: "bad latency list", args: []string{"--latency", "100,-3"}, wantErr: "--latency"},
		{name: "flags win over the preset", args: []string{"--mode", "full", "--pairs", "5", "--scale-messages", "7,8", "--only", "scaling",
			"--set", "parallelism.mailboxes=8", "--variant", "none"}, check: func(t *testing.T, p params) {
			if p.Pairs != 5 || !reflect.DeepEqual(p.ScaleMessages, []int{7, 8}) || !reflect.DeepEqual(p.Only, []string{"scaling"}) ||
				!reflect.DeepEqual(p.Set, []string{"parallelism.mailboxes=8"}) || p.Variant != nil {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "unknown mode", args: []string{"--mode", "huge"}, wantErr: "want quick or full"},
		{name: "unknown measurement", args: []string{"--only", "ceiling,speed"}, wantErr: `unknown measurement "speed"`},
		{name: "bad size list", args: []string{"--scale-messages", "10,x"}, wantErr: "--scale-messages"},
		{name: "warm-up longer than the run", args: []string{"--rate-duration", "10s", "--rate-warmup", "20s"}, wantErr: "--rate-warmup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// TestCrawlConfigLoads writes a crawler config with overrides and loads it with the product's
// own loader, so a setting the benchmark writes wrongly fails here and not mid-benchmark.
func TestCrawlConfigLoads(t *testing.T) {
	b := &bench{p: params{ESURL: "http://127.0.0.1:9200"}, work: t.TempDir()}
	path, err := b.writeCrawlConfig(crawlSpec{Name: "c", SimURL: "http://127.0.0.1:1", Prefix: "mcbench-test",
		StatePath: filepath.Join(b.work, "s.db"),
		Set:       []string{"parallelism.mailboxes=16", "elasticsearch.bulk.flush_interval=200ms", "performance.retry_after_multiplier=1.05"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		raw, _ := os.ReadFile(path)
		t.Fatalf("load %s: %v\n%s", path, err, raw)
	}
	if cfg.Parallelism.Mailboxes != 16 || cfg.Elasticsearch.Bulk.FlushInterval.D() != 200*time.Millisecond ||
		cfg.Performance.RetryAfterMultiplier != 1.05 || !cfg.Attachments.Extract || cfg.Elasticsearch.IndexPrefix != "mcbench-test" {
		t.Errorf("config not as written: %+v", cfg)
	}
	if cfg.Attachments.MaxBytes != config.Default().Attachments.MaxBytes {
		t.Errorf("attachments.max_bytes %d, want the default", cfg.Attachments.MaxBytes)
	}
}

// TestInProcessCrawlsUseTheBinarysOptions: the in-process crawls (ceiling documents, profile)
// run with the options the binary derives from the config the measured crawls load, so that
// the two build the same documents the same way. A hand copy of the mapping had drifted from it
// (no messages_in_flight, no message limits, no text settings).
func TestInProcessCrawlsUseTheBinarysOptions(t *testing.T) {
	b := &bench{p: params{ESURL: "http://127.0.0.1:9200"}, work: t.TempDir()}
	path, err := b.writeCrawlConfig(crawlSpec{Name: "c", SimURL: "http://127.0.0.1:1", Prefix: "mcbench-test", StatePath: filepath.Join(b.work, "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	for _, pipeline := range []bool{false, true} {
		want := job.CrawlerOptions(cfg, false, pipeline, log)
		if got := crawlOptions(pipeline, 0, log); !reflect.DeepEqual(got, want) {
			t.Errorf("pipeline %v: in-process options\n%+v\nthe binary's\n%+v", pipeline, got, want)
		}
	}
}

func TestSetKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   string
		want string
		err  bool
	}{
		{name: "int", kv: "a.b=3", want: "a:\n    b: 3\n"},
		{name: "float", kv: "a=1.5", want: "a: 1.5\n"},
		{name: "bool", kv: "a.b.c=true", want: "a:\n    b:\n        c: true\n"},
		{name: "duration stays a string", kv: "a=200ms", want: "a: 200ms\n"},
		{name: "no value", kv: "a.b", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{}
			err := setKey(m, tc.kv)
			if tc.err {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, _ := yaml.Marshal(m)
			if string(out) != tc.want {
				t.Errorf("got %q, want %q", out, tc.want)
			}
		})
	}
}

func TestParseHotpaths(t *testing.T) {
	out := `goos: linux
pkg: github.com/mimecrawl/mimecrawl/crawler/body
BenchmarkExtractTypical-2   	   24000	     45000 ns/op	 110.00 MB/s	   87600 B/op	     224 allocs/op
BenchmarkExtractTypical-2   	   24000	     47000 ns/op	 105.00 MB/s	   87600 B/op	     224 allocs/op
BenchmarkExtractTypical-2   	   24000	     99000 ns/op	  50.00 MB/s	   87600 B/op	     224 allocs/op
PASS
pkg: github.com/mimecrawl/mimecrawl/index
--- BENCH: BenchmarkWriter-2
BenchmarkWriter-2   	       1	 86209508 ns/op	     58000 docs/s	29339886 B/op	  155414 allocs/op
ok  	github.com/mimecrawl/mimecrawl/index	37.323s
`
	path := filepath.Join(t.TempDir(), "hot.txt")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := parseHotpaths(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(rows), rows)
	}
	ex := rows[0]
	if ex.Package != "crawler/body" || ex.Name != "ExtractTypical" || ex.Runs != 3 || ex.Metrics["ns/op"] != 47000 || ex.Metrics["MB/s"] != 105 {
		t.Errorf("medians wrong: %+v", ex)
	}
	if w := rows[1]; w.Name != "Writer" || w.Metrics["docs/s"] != 58000 {
		t.Errorf("custom metric lost: %+v", w)
	}
}

func TestCountAPI(t *testing.T) {
	st := simulator.Stats{Requests: map[string]map[int]int64{
		"/api/archive/get-message-list":   {200: 10, 429: 2},
		"/api/archive/get-message-detail": {200: 5, 429: 1, 500: 1},
		"/oauth/token":                    {200: 1},
		"/_download":                      {200: 9},
	}}
	got := countAPI(st)
	want := apiCounts{Admitted: 16, Limited: 3, Lists: 10}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestTargetsFollowTheMeasurements(t *testing.T) {
	r := &Results{
		Ceiling: &CeilingResult{Messages: 100, Pairs: []Pair{{
			Ceiling: runStats{DocsPerSec: 1000}, Crawler: runStats{DocsPerSec: 900, PeakRSSBytes: 90e6},
		}}},
		Scaling: []ScaleRow{{Messages: 10000, Runs: []runStats{{PeakRSSBytes: 60e6}}}, {Messages: 300000, Runs: []runStats{{PeakRSSBytes: 70e6}}}},
		Mailboxes: []MailboxRow{{Mailboxes: 1000, Views: 2000, AgainListCalls: 2000, ListCallsPerView: 1,
			Again: runStats{PeakRSSBytes: 160e6}}},
	}
	r.Ceiling.summarise()
	r.evaluate()
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"peak RSS, any run of the shipped defaults":                      false, // 160 MB in the no-change crawl
		"no-change crawl of 1000 mailboxes: list calls per mailbox view": true,
		"no-change crawl of 1000 mailboxes: documents written":           true,
	}
	if !reflect.DeepEqual(met, want) {
		t.Errorf("targets met %v, want %v", met, want)
	}
}

// The alerts poller's benchmark output becomes a section of results.md.
func TestAlertsSection(t *testing.T) {
	out := `pkg: github.com/mimecrawl/mimecrawl/alerts
BenchmarkPollBacklog/backlog=500-2         	       1	2949418601 ns/op	       197.4 alerts/s	         0.01200 calls/alert	       493.0 groups	         3.448 heapMB
BenchmarkPollBacklog/backlog=5000-2        	       1	70118775293 ns/op	        71.75 alerts/s	         0.003000 calls/alert	      4993 groups	         6.379 heapMB
ok  	github.com/mimecrawl/mimecrawl/alerts	75.414s
`
	path := filepath.Join(t.TempDir(), "alerts.txt")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := parseHotpaths(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Results{Mode: "quick", Alerts: rows}
	md := r.markdown()
	for _, want := range []string{"## 6. Alerts poller", "| 500 | 197 | 0.0120 | 3.45 | 493 | 2.9 |", "| 5000 | 71.75 | 0.0030 | 6.38 | 4993 | 70.1 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
}
