package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// Results is everything one benchmark run measured; results.json is its JSON form.
type Results struct {
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Params   params    `json:"params"`
	Host     Host      `json:"host"`
	// Headline is one row per goal of the performance issue, computed from the measurements
	// below; Targets are the other checks.
	Headline    []Goal          `json:"headline"`
	Latency     *LatencyResult  `json:"latency,omitempty"`
	Ceiling     *CeilingResult  `json:"ceiling,omitempty"`
	Scaling     []ScaleRow      `json:"scaling,omitempty"`
	Mailboxes   []MailboxRow    `json:"mailboxes,omitempty"`
	RateLimited *RateSection    `json:"rate_limited,omitempty"`
	Sporadic    *SporadicResult `json:"sporadic_429,omitempty"`
	Hotpaths    []HotRow        `json:"hotpaths,omitempty"`
	// Alerts are the alerts poller's backlog benchmarks (go test, alerts.BenchmarkPollBacklog).
	Alerts  []HotRow `json:"alerts,omitempty"`
	Targets []Target `json:"targets"`
	// Sections says when, on which source tree and for how long each measurement ran; with
	// --merge they may come from different runs.
	Sections map[string]Section `json:"sections"`
	Errors   []string           `json:"errors,omitempty"`
}

// Section is when and on what one measurement ran.
type Section struct {
	Started     time.Time `json:"started"`
	Tree        string    `json:"source_tree"`
	LoadAverage string    `json:"load_average_at_start"`
	Seconds     float64   `json:"seconds"`
}

// mergeFrom keeps the measurements of an earlier results file of the same mode, for the
// measurements this run does not repeat.
func (r *Results) mergeFrom(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read results to merge: %w", err)
	}
	var old Results
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("decode results to merge %s: %w", path, err)
	}
	if old.Mode != r.Mode {
		return fmt.Errorf("--merge: %s holds %s-mode results, this run is %s mode", path, old.Mode, r.Mode)
	}
	only := r.Params.Only
	r.Started = old.Started
	if len(only) == 0 {
		// Only summaries of go test output were added: the header still describes the
		// machine and run of the measurements kept (each section names its own tree).
		r.Host = old.Host
	}
	if !contains(only, "ceiling") {
		r.Ceiling = old.Ceiling
	}
	if !contains(only, "scaling") {
		r.Scaling = old.Scaling
	}
	if !contains(only, "mailboxes") {
		r.Mailboxes = old.Mailboxes
	}
	if !contains(only, "ratelimit") {
		r.RateLimited = old.RateLimited
	}
	if !contains(only, "latency") {
		r.Latency = old.Latency
	}
	if !contains(only, "sporadic") {
		r.Sporadic = old.Sporadic
	}
	if r.Params.Hotpaths == "" {
		r.Hotpaths = old.Hotpaths
	}
	if r.Params.Alerts == "" {
		r.Alerts = old.Alerts
	}
	for k, v := range old.Sections {
		if !contains(only, k) {
			r.Sections[k] = v
		}
	}
	// Results written before sections were recorded kept only the seconds of each step.
	var legacy struct {
		StepSeconds map[string]float64 `json:"step_seconds"`
	}
	if json.Unmarshal(b, &legacy) == nil {
		for k, secs := range legacy.StepSeconds {
			if _, ok := r.Sections[k]; !ok && !contains(only, k) {
				r.Sections[k] = Section{Started: old.Started, Tree: old.Host.Tree, LoadAverage: old.Host.LoadAverage, Seconds: secs}
			}
		}
	}
	return nil
}

// Host is the machine the numbers come from; they mean little without it.
type Host struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes int64  `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	LoadAverage string `json:"load_average_at_start"`
	ESVersion   string `json:"elasticsearch_version"`
	ESHeapBytes int64  `json:"elasticsearch_heap_bytes"`
	ESURL       string `json:"elasticsearch_url"`
	Tree        string `json:"source_tree"`
	Note        string `json:"note"`
}

func newResults(p params, node nodeInfo) *Results {
	return &Results{
		Mode: p.Mode, Started: time.Now().UTC(), Params: p, Sections: map[string]Section{},
		Host: Host{
			CPUs: runtime.NumCPU(), CPUModel: cpuModel(), MemoryBytes: memTotal(), GoVersion: runtime.Version(),
			LoadAverage: loadAverage(), Tree: sourceTree(), ESVersion: node.Version, ESHeapBytes: node.Heap, ESURL: p.ESURL,
			Note: "the simulator, the crawler, Elasticsearch and this program share the machine's CPUs",
		},
	}
}

// runStats is one measured run: a ceiling push or a crawl. Rates are per wall-clock second;
// MB are 10^6 bytes of bulk request bodies.
type runStats struct {
	Kind           string  `json:"kind"` // ceiling or crawler
	Prefix         string  `json:"prefix"`
	Settings       string  `json:"settings,omitempty"` // config overrides of a crawl
	Seconds        float64 `json:"seconds"`
	Docs           int64   `json:"docs"`
	Messages       int64   `json:"messages"`
	Attachments    int64   `json:"attachments"`
	Bytes          int64   `json:"bulk_bytes"`
	BulkRequests   int64   `json:"bulk_requests"`
	DocsPerSec     float64 `json:"docs_per_second"`
	MBPerSec       float64 `json:"mb_per_second"`
	MessagesPerSec float64 `json:"messages_per_second"`
	CrawlerCPU     float64 `json:"crawler_cpu_seconds,omitempty"`
	SimCPU         float64 `json:"simulator_cpu_seconds,omitempty"`
	ESCPU          float64 `json:"elasticsearch_cpu_seconds"`
	BenchCPU       float64 `json:"bench_cpu_seconds,omitempty"`
	MachineCPU     float64 `json:"machine_cpu_seconds"` // busy CPU of the whole machine during the run
	OtherCPU       float64 `json:"other_cpu_seconds"`   // MachineCPU minus the processes above: noise`
	PeakRSSBytes   int64   `json:"peak_rss_bytes,omitempty"`
	APICalls       int64   `json:"api_calls,omitempty"`
	Count          int64   `json:"docs_in_index"`
	ExitCode       int     `json:"exit_code"`
	// Requests are the simulator's counts of this crawl's requests (crawler runs only).
	Requests requestCounts `json:"simulator_requests"`
	// Limiter is what the crawler reported about its concurrency limit (nil fields: nothing).
	Limiter limiterFields `json:"limiter"`
}

func (r *runStats) rates() {
	if r.Seconds <= 0 {
		return
	}
	r.DocsPerSec = float64(r.Docs) / r.Seconds
	r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	r.MessagesPerSec = float64(r.Messages) / r.Seconds
}

func (r runStats) line() string {
	s := fmt.Sprintf("%.1fs, %d docs (%.0f/s), %.1f MB/s, ES CPU %.1fs, other CPU %.1fs", r.Seconds, r.Docs, r.DocsPerSec, r.MBPerSec, r.ESCPU, r.OtherCPU)
	if r.Kind == "crawler" {
		s += fmt.Sprintf(", crawler CPU %.1fs, simulator CPU %.1fs, peak RSS %.1f MB", r.CrawlerCPU, r.SimCPU, mb(r.PeakRSSBytes))
	}
	return s
}

// Pair is one ceiling run and the crawler runs right after it.
type Pair struct {
	Ceiling runStats  `json:"ceiling"`
	Crawler runStats  `json:"crawler"`
	Variant *runStats `json:"variant,omitempty"`
	Ratio   float64   `json:"ratio"`
	VRatio  float64   `json:"variant_ratio,omitempty"`
}

// CeilingResult compares the crawler with the ceiling; ratios are per pair, then the median.
type CeilingResult struct {
	Messages     int     `json:"messages"`
	Mailboxes    int     `json:"mailboxes"`
	Settings     string  `json:"settings,omitempty"`
	Variant      string  `json:"variant,omitempty"`
	BuiltDocs    int     `json:"built_docs"`
	BuiltBytes   int64   `json:"built_bytes"`
	BuildSeconds float64 `json:"build_seconds"`
	Pairs        []Pair  `json:"pairs"`

	CeilingDocsPerSec float64 `json:"median_ceiling_docs_per_second"`
	CeilingMBPerSec   float64 `json:"median_ceiling_mb_per_second"`
	CrawlerDocsPerSec float64 `json:"median_crawler_docs_per_second"`
	CrawlerMBPerSec   float64 `json:"median_crawler_mb_per_second"`
	VariantDocsPerSec float64 `json:"median_variant_docs_per_second,omitempty"`
	VariantMBPerSec   float64 `json:"median_variant_mb_per_second,omitempty"`
	Ratio             float64 `json:"median_ratio"`
	VariantRatio      float64 `json:"median_variant_ratio,omitempty"`

	// CPUPer1k is the CPU seconds each process spent per 1,000 documents (medians).
	CPUPer1k struct {
		CeilingES    float64 `json:"ceiling_elasticsearch"`
		CeilingBench float64 `json:"ceiling_bench"`
		CrawlES      float64 `json:"crawl_elasticsearch"`
		Crawler      float64 `json:"crawl_crawler"`
		Sim          float64 `json:"crawl_simulator"`
	} `json:"cpu_seconds_per_1000_docs"`
	// CPUBoundDocsPerSec is what the crawl would reach if CPU were its only limit: the
	// machine's CPUs over the CPU all three processes spend per document.
	CPUBoundDocsPerSec float64 `json:"cpu_bound_docs_per_second"`
	// CPUBoundNoSimDocsPerSec is the same without the simulator's CPU: a crawler whose
	// archive is elsewhere, as in production.
	CPUBoundNoSimDocsPerSec float64 `json:"cpu_bound_without_simulator_docs_per_second"`
}

func (c *CeilingResult) summarise() {
	var ad, am, bd, bm, vd, vm, r, vr []float64
	for i := range c.Pairs {
		p := &c.Pairs[i]
		if p.Ceiling.DocsPerSec > 0 {
			p.Ratio = p.Crawler.DocsPerSec / p.Ceiling.DocsPerSec
			if p.Variant != nil {
				p.VRatio = p.Variant.DocsPerSec / p.Ceiling.DocsPerSec
			}
		}
		ad, am = append(ad, p.Ceiling.DocsPerSec), append(am, p.Ceiling.MBPerSec)
		bd, bm = append(bd, p.Crawler.DocsPerSec), append(bm, p.Crawler.MBPerSec)
		r = append(r, p.Ratio)
		if p.Variant != nil {
			vd, vm, vr = append(vd, p.Variant.DocsPerSec), append(vm, p.Variant.MBPerSec), append(vr, p.VRatio)
		}
	}
	c.CeilingDocsPerSec, c.CeilingMBPerSec = median(ad), median(am)
	c.CrawlerDocsPerSec, c.CrawlerMBPerSec = median(bd), median(bm)
	c.VariantDocsPerSec, c.VariantMBPerSec = median(vd), median(vm)
	c.Ratio, c.VariantRatio = median(r), median(vr)

	per1k := func(cpu float64, docs int64) float64 { return 1000 * cpu / float64(max(docs, 1)) }
	var ces, cb, bes, bc, bs []float64
	for _, p := range c.Pairs {
		ces, cb = append(ces, per1k(p.Ceiling.ESCPU, p.Ceiling.Docs)), append(cb, per1k(p.Ceiling.BenchCPU, p.Ceiling.Docs))
		bes, bc = append(bes, per1k(p.Crawler.ESCPU, p.Crawler.Docs)), append(bc, per1k(p.Crawler.CrawlerCPU, p.Crawler.Docs))
		bs = append(bs, per1k(p.Crawler.SimCPU, p.Crawler.Docs))
	}
	k := &c.CPUPer1k
	k.CeilingES, k.CeilingBench, k.CrawlES, k.Crawler, k.Sim = median(ces), median(cb), median(bes), median(bc), median(bs)
	cpus := float64(runtime.NumCPU())
	if all := k.CrawlES + k.Crawler + k.Sim; all > 0 {
		c.CPUBoundDocsPerSec = 1000 * cpus / all
		c.CPUBoundNoSimDocsPerSec = 1000 * cpus / (k.CrawlES + k.Crawler)
	}
}

// medianCrawler returns the crawler run of median duration.
func (c *CeilingResult) medianCrawler() runStats {
	runs := make([]runStats, 0, len(c.Pairs))
	for _, p := range c.Pairs {
		runs = append(runs, p.Crawler)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Seconds < runs[j].Seconds })
	return runs[len(runs)/2]
}

// ScaleRow is one archive size of the scaling measurement: one or more first crawls of the
// same archive. Run is the run of median duration; the medians are over all runs.
type ScaleRow struct {
	Messages  int        `json:"messages"`
	Mailboxes int        `json:"mailboxes"`
	Runs      []runStats `json:"runs"`
	Run       runStats   `json:"run"`
	Note      string     `json:"note,omitempty"`

	MedianSeconds      float64 `json:"median_seconds"`
	MedianPeakRSSBytes int64   `json:"median_peak_rss_bytes"`
}

func (s *ScaleRow) summarise() {
	if len(s.Runs) == 0 {
		return
	}
	runs := append([]runStats(nil), s.Runs...)
	sort.Slice(runs, func(i, j int) bool { return runs[i].Seconds < runs[j].Seconds })
	s.Run = runs[len(runs)/2]
	var secs, rss []float64
	for _, r := range s.Runs {
		secs, rss = append(secs, r.Seconds), append(rss, float64(r.PeakRSSBytes))
	}
	s.MedianSeconds, s.MedianPeakRSSBytes = median(secs), int64(median(rss))
}

// MailboxRow is one mailbox count: a first crawl, then a crawl with nothing changed.
type MailboxRow struct {
	Mailboxes         int      `json:"mailboxes"`
	Messages          int      `json:"messages"`
	Views             int      `json:"views"`
	First             runStats `json:"first"`
	Again             runStats `json:"no_change"`
	AgainListCalls    int64    `json:"no_change_list_calls"`
	AgainAPICalls     int64    `json:"no_change_requests"`
	AgainDocs         int64    `json:"no_change_docs_written"`
	AgainBulkRequests int64    `json:"no_change_bulk_requests"`
	ListCallsPerView  float64  `json:"no_change_list_calls_per_view"`
}

// RateResult is the crawl behind a quota. Admitted and limited count /api requests (the
// token endpoint and downloads are not limited).
type RateResult struct {
	LimitPerMinute     int     `json:"limit_per_minute"`
	Seconds            float64 `json:"seconds"`
	WarmupSeconds      float64 `json:"warmup_seconds"`
	Admitted           int64   `json:"admitted"`
	Limited            int64   `json:"rate_limited"`
	Requests           int64   `json:"requests"`
	MaxAdmissible      float64 `json:"max_admissible"`
	QuotaShare         float64 `json:"quota_share"`
	SteadyAdmitted     int64   `json:"steady_admitted"`
	SteadyLimited      int64   `json:"steady_rate_limited"`
	SteadyQuotaShare   float64 `json:"steady_quota_share"`
	Share429           float64 `json:"share_429"`
	SteadyShare429     float64 `json:"steady_share_429"`
	Messages           int64   `json:"messages_indexed"`
	CrawlerAPICalls    int64   `json:"crawler_api_calls"`
	CrawlerRateLimited int64   `json:"crawler_rate_limited"`
	CrawlerCPU         float64 `json:"crawler_cpu_seconds"`
	SimCPU             float64 `json:"simulator_cpu_seconds"`
	ExitCode           int     `json:"exit_code"`
	// Limiter is what the crawler reported about its concurrency limit as it stopped.
	Limiter limiterFields `json:"limiter"`
}

// RateSection is the rate-limited crawl, repeated: every run against a fresh simulator (a
// full bucket), the medians over the runs.
type RateSection struct {
	Settings         string       `json:"settings,omitempty"`
	Runs             []RateResult `json:"runs"`
	QuotaShare       float64      `json:"median_quota_share"`
	SteadyQuotaShare float64      `json:"median_steady_quota_share"`
	Share429         float64      `json:"median_share_429"`
	SteadyShare429   float64      `json:"median_steady_share_429"`
	// Limit and LimitAvg are the medians of the concurrency limit the crawler settled at and
	// of its time-weighted mean; nil when the crawler does not report them.
	Limit    *float64 `json:"median_concurrency_limit,omitempty"`
	LimitAvg *float64 `json:"median_concurrency_limit_avg,omitempty"`
}

func (r *RateSection) summarise() {
	var q, sq, l, sl []float64
	var lim, avg []*float64
	for _, x := range r.Runs {
		q, sq, l, sl = append(q, x.QuotaShare), append(sq, x.SteadyQuotaShare), append(l, x.Share429), append(sl, x.SteadyShare429)
		lim, avg = append(lim, x.Limiter.Limit), append(avg, x.Limiter.LimitAvg)
	}
	r.QuotaShare, r.SteadyQuotaShare, r.Share429, r.SteadyShare429 = median(q), median(sq), median(l), median(sl)
	r.Limit, r.LimitAvg = medianOf(lim), medianOf(avg)
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func defaultViews() []string { return config.Default().Messages.Views }

// evaluate sets the headline (the goals) and the other checks from what was measured.
func (r *Results) evaluate() {
	r.Headline = r.headline()
	r.Targets = nil
	add := func(name, want, got string, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Met: met})
	}
	var peak int64
	var where string
	consider := func(rs runStats, what string) {
		if rs.PeakRSSBytes > peak {
			peak, where = rs.PeakRSSBytes, what
		}
	}
	if c := r.Ceiling; c != nil {
		for _, p := range c.Pairs {
			consider(p.Crawler, fmt.Sprintf("%d messages", c.Messages))
		}
	}
	for _, s := range r.Scaling {
		for _, run := range s.runs() {
			consider(run, fmt.Sprintf("%d messages", s.Messages))
		}
	}
	for _, m := range r.Mailboxes {
		consider(m.First, fmt.Sprintf("%d mailboxes", m.Mailboxes))
		consider(m.Again, fmt.Sprintf("%d mailboxes, no change", m.Mailboxes))
	}
	if peak > 0 {
		add("peak RSS, any run of the shipped defaults", "≤ 150 MB", fmt.Sprintf("%.1f MB (%s)", mb(peak), where), mb(peak) <= 150)
	}
	for _, m := range r.Mailboxes {
		add(fmt.Sprintf("no-change crawl of %d mailboxes: list calls per mailbox view", m.Mailboxes), "1",
			fmt.Sprintf("%.2f (%d calls, %d views)", m.ListCallsPerView, m.AgainListCalls, m.Views), m.ListCallsPerView == 1)
		add(fmt.Sprintf("no-change crawl of %d mailboxes: documents written", m.Mailboxes), "0",
			strconv.FormatInt(m.AgainDocs, 10), m.AgainDocs == 0)
	}
}

func (r *Results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func (b *bench) write() error {
	b.res.evaluate()
	if err := b.res.writeJSON(b.jsonPath()); err != nil {
		return err
	}
	if err := os.WriteFile(b.mdPath(), []byte(b.res.markdown()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// sourceTree names the commit measured, "-dirty" when the tree had changes; "" outside git.
func sourceTree() string {
	b, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
