package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/crawler"
)

// crawlSpec is one run of `mimecrawl crawl`.
type crawlSpec struct {
	Name      string // names the config, state and log files in the work directory
	SimURL    string
	Prefix    string
	StatePath string   // reused by a later run for an incremental crawl
	Set       []string // config overrides, "dotted.key=value"
	// Sample, when set, is how often the simulator's count of get-file calls answered is read
	// while the crawl runs (crawlResult.Samples).
	Sample time.Duration
}

// crawlRun is a running crawler child process.
type crawlRun struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan error
}

// crawlResult is what one crawl did and cost.
type crawlResult struct {
	Summary  runSummary
	Seconds  float64 // wall time of the process, start to exit
	CPU      float64 // user+system CPU seconds of the process
	ExitCode int
	Samples  []progressSample
}

func (b *bench) writeCrawlConfig(s crawlSpec) (string, error) {
	// Everything not named here keeps mimecrawl's default, so the run measures the product as
	// shipped (notably attachments.max_bytes 25 MB and the bulk settings) unless a setting is
	// overridden on purpose.
	cfg := map[string]any{
		"mimecast":      map[string]any{"base_url": s.SimURL, "client_id": "demo-client", "client_secret": "demo-secret"},
		"messages":      map[string]any{"start_date": benchStartDate},
		"attachments":   map[string]any{"extract": true},
		"elasticsearch": map[string]any{"addresses": []string{b.p.ESURL}, "index_prefix": s.Prefix},
		"state":         map[string]any{"path": s.StatePath},
		"logging":       map[string]any{"level": "info"},
	}
	for _, kv := range s.Set {
		if err := setKey(cfg, kv); err != nil {
			return "", err
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode crawler config: %w", err)
	}
	path := filepath.Join(b.work, s.Name+".yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write crawler config: %w", err)
	}
	return path, nil
}

// setKey applies one "dotted.key=value" override to a nested config map. Numbers and
// booleans become YAML numbers and booleans; anything else stays a string.
func setKey(cfg map[string]any, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return fmt.Errorf("config override %q: want key.path=value", kv)
	}
	parts := strings.Split(key, ".")
	m := cfg
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	var v any = value
	if n, err := strconv.Atoi(value); err == nil {
		v = n
	} else if f, err := strconv.ParseFloat(value, 64); err == nil {
		v = f
	} else if bv, err := strconv.ParseBool(value); err == nil {
		v = bv
	}
	m[parts[len(parts)-1]] = v
	return nil
}

func (b *bench) startCrawl(s crawlSpec) (*crawlRun, error) {
	cfg, err := b.writeCrawlConfig(s)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(b.work, s.Name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create crawler log: %w", err)
	}
	cmd := exec.Command(filepath.Join(b.p.BinDir, "mimecrawl"), "crawl", "--config", cfg, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = nil, logf
	dieWithParent(cmd)
	r := &crawlRun{cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	r.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start crawler %s: %w", cmd.Path, err)
	}
	go func() { r.done <- cmd.Wait(); logf.Close() }()
	return r, nil
}

// stop asks the crawler to stop as an operator would, with SIGTERM.
func (r *crawlRun) stop() { _ = r.cmd.Process.Signal(syscall.SIGTERM) }

func (r *crawlRun) wait(ctx context.Context) (crawlResult, error) {
	var res crawlResult
	select {
	case <-r.done:
	case <-ctx.Done():
		r.stop()
		<-r.done
		return res, ctx.Err()
	}
	res.Seconds = time.Since(r.started).Seconds()
	ps := r.cmd.ProcessState
	res.ExitCode = ps.ExitCode()
	res.CPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	sum, err := readSummary(r.logPath)
	if err != nil {
		return res, err
	}
	res.Summary = sum
	return res, nil
}

// runSummary is the part of mimecrawl's run summary (the "summary" of its "run end" log line)
// that the benchmark reads.
type runSummary struct {
	crawler.Totals
	MailboxesKept  int   `json:"mailboxes_kept"`
	APICalls       int64 `json:"api_calls"`
	APIRateLimited int64 `json:"api_rate_limited"`
	// APIQuotaWaitSeconds is 0 from a crawler that does not report it.
	APIQuotaWaitSeconds float64 `json:"api_quota_wait_seconds"`
	BulkRequests        int64   `json:"bulk_requests"`
	BytesIndexed        int64   `json:"bytes_indexed"`
	PeakRSSBytes        int64   `json:"peak_rss_bytes,omitempty"`
	ExitCode            int     `json:"exit_code"`
	limiterFields
}

// limiterFields are what a crawler with adaptive concurrency reports about its limit of API
// calls in flight. A crawler without it reports none of them; nil then means "not reported",
// never zero.
type limiterFields struct {
	// LimitAvg is the time-weighted mean of the limit over the run.
	LimitAvg *float64 `json:"api_concurrency_limit_avg,omitempty"`
	// Limit is the limit when the run ended: where it settled.
	Limit *float64 `json:"api_concurrency_limit,omitempty"`
	// InflightMax is the most API calls that were in flight at once.
	InflightMax *float64 `json:"api_inflight_max,omitempty"`
}

// merge fills the fields o reports that l lacks.
func (l *limiterFields) merge(o limiterFields) {
	if l.LimitAvg == nil {
		l.LimitAvg = o.LimitAvg
	}
	if l.Limit == nil {
		l.Limit = o.Limit
	}
	if l.InflightMax == nil {
		l.InflightMax = o.InflightMax
	}
}

// readSummary finds the JSON "run end" line of a crawler log and decodes its summary. The
// limiter's fields are read from the summary or, failing that, from the line itself.
func readSummary(path string) (runSummary, error) {
	var sum runSummary
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("read crawler log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Message string          `json:"message"`
			Summary json.RawMessage `json:"summary"`
			limiterFields
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Message != "run end" {
			continue
		}
		if err := json.Unmarshal(line.Summary, &sum); err != nil {
			return sum, fmt.Errorf("decode run summary in %s: %w", path, err)
		}
		sum.merge(line.limiterFields)
		return sum, nil
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("read crawler log %s: %w", path, err)
	}
	head, _ := os.ReadFile(path)
	return sum, fmt.Errorf("no \"run end\" line in %s: %.400s", path, head)
}

// sample reads the simulator's count of get-file calls answered every interval (never when
// interval is 0) until the returned function is called, which stops the sampling, waits for
// it and returns the samples.
func (b *bench) sample(ctx context.Context, s *sim, r *crawlRun, interval time.Duration) func() []progressSample {
	if interval <= 0 {
		return func() []progressSample { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []progressSample, 1)
	go func() {
		var out []progressSample
		defer func() { done <- out }()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			before := time.Since(r.started)
			st, err := s.stats(ctx)
			if err != nil {
				continue // a missed sample only coarsens the curve
			}
			// The counters were read somewhere between asking and the answer.
			at := (before + time.Since(r.started)) / 2
			out = append(out, progressSample{At: at.Seconds(), N: st.Requests[pathGetFile][http.StatusOK]})
		}
	}()
	return func() []progressSample {
		cancel()
		return <-done
	}
}

// crawl runs one crawl to its end and measures it, with the CPU the simulator and
// Elasticsearch spent meanwhile.
func (b *bench) crawl(ctx context.Context, s *sim, spec crawlSpec) (runStats, crawlResult, error) {
	// The simulator's counters start at zero for every crawl, so that they count this
	// crawl's requests alone.
	if err := s.resetStats(ctx); err != nil {
		return runStats{}, crawlResult{}, err
	}
	simCPU, esCPU, machine := s.cpu(), b.es.cpu(ctx), machineCPU()
	r, err := b.startCrawl(spec)
	if err != nil {
		return runStats{}, crawlResult{}, err
	}
	samples := b.sample(ctx, s, r, spec.Sample)
	res, err := r.wait(ctx)
	res.Samples = samples()
	if err != nil {
		return runStats{}, res, err
	}
	st := runStats{
		Kind: "crawler", Prefix: spec.Prefix, Settings: strings.Join(spec.Set, " "), Seconds: res.Seconds,
		Messages: res.Summary.Messages, Attachments: res.Summary.Attachments,
		Docs:  res.Summary.Messages + res.Summary.Attachments,
		Bytes: res.Summary.BytesIndexed, BulkRequests: res.Summary.BulkRequests,
		CrawlerCPU: res.CPU, SimCPU: s.cpu() - simCPU, ESCPU: b.es.cpu(ctx) - esCPU,
		// The crawler's own VmHWM, read as it finishes. Not wait4's ru_maxrss: Linux carries
		// the parent's peak over an exec into the child's, which would report this program's
		// memory (the pre-built documents) as the crawler's.
		PeakRSSBytes: res.Summary.PeakRSSBytes,
		APICalls:     res.Summary.APICalls, ExitCode: res.ExitCode,
	}
	st.MachineCPU = machineCPU() - machine
	st.OtherCPU = st.MachineCPU - st.CrawlerCPU - st.SimCPU - st.ESCPU
	st.Limiter = res.Summary.limiterFields
	sst, err := s.stats(ctx)
	if err != nil {
		return st, res, err
	}
	st.Requests = classify(sst)
	st.rates()
	if res.ExitCode != 0 {
		return st, res, fmt.Errorf("crawl %s exited with %d; see %s", spec.Name, res.ExitCode, r.logPath)
	}
	return st, res, nil
}
