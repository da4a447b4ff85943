// Command mimecrawl-bench measures mimecrawl against the goals of its performance work, each
// next to a physical limit: quota-counted API calls per message, throughput with latency
// added to every request against Little's bound, the crawler's CPU per document against
// Elasticsearch's, peak RSS growth with the archive, and the crawl behind a quota; then, as
// information, the ceiling of the machine and Elasticsearch it runs on and how the cost grows
// with the archive. `make bench` runs it through scripts/bench.sh; docs/performance.md
// explains the numbers.
//
// It starts the simulator (bin/mimecast-sim) and the crawler (bin/mimecrawl) as child
// processes, so that the CPU time and peak memory of each are measured apart from each other
// and from this program, and writes results.json and results.md into --out.
//
//	mimecrawl-bench [--mode quick|full] [flags]   run the measurements
//	mimecrawl-bench profile [flags]               one in-process crawl under pprof
//
// Exit codes: 0 when every measurement ran (targets may still be missed; the results say
// which), 1 when a measurement could not run, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "profile" {
		return runProfile(ctx, args[1:], stdout, stderr)
	}
	p, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "mimecrawl-bench:", err)
		return exitUsage
	}
	b, err := newBench(ctx, p, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mimecrawl-bench:", err)
		return exitError
	}
	defer b.close()
	if err := b.runAll(ctx); err != nil {
		fmt.Fprintln(stderr, "mimecrawl-bench:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "results written to %s and %s\n", b.jsonPath(), b.mdPath())
	return exitOK
}

// params are the sizes and settings of one benchmark run. The modes preset them; every flag
// given explicitly wins over the preset.
type params struct {
	Mode     string   `json:"mode"`
	ESURL    string   `json:"-"`
	BinDir   string   `json:"-"`
	OutDir   string   `json:"-"`
	Hotpaths string   `json:"-"`
	Alerts   string   `json:"-"`
	Merge    bool     `json:"-"`
	Only     []string `json:"only"`
	Seed     int64    `json:"seed"`

	// Ceiling vs crawler: an archive of CeilingMessages over Mailboxes mailboxes.
	Mailboxes       int `json:"mailboxes"`
	CeilingMessages int `json:"ceiling_messages"`
	Pairs           int `json:"pairs"`
	// Set overrides settings of every measured crawl ("dotted.key=value"); none by default,
	// so the product is measured as shipped.
	Set []string `json:"set,omitempty"`
	// Variant adds to every pair a crawl with these further overrides; none = no variant.
	Variant []string `json:"variant,omitempty"`

	// Latency: per added latency (ms), LatencyRuns crawls of each configuration of an archive
	// of LatencyMessages × 100 / latency messages over LatencyMailboxes mailboxes.
	LatencyMS        []int `json:"latency_ms"`
	LatencyMessages  int   `json:"latency_messages_at_100ms"`
	LatencyMailboxes int   `json:"latency_mailboxes"`
	LatencyRuns      int   `json:"latency_runs"`

	// Scaling: total messages over Mailboxes mailboxes, ScaleRuns crawls each; and mailbox
	// counts with a fixed total.
	ScaleMessages   []int `json:"scale_messages"`
	ScaleRuns       int   `json:"scale_runs"`
	MailboxCounts   []int `json:"mailbox_counts"`
	MailboxMessages int   `json:"mailbox_total_messages"`

	// Rate-limited crawl.
	RateLimit    int           `json:"rate_limit_per_minute"`
	RateDuration time.Duration `json:"rate_duration_ns"`
	RateWarmup   time.Duration `json:"rate_warmup_ns"`
	RateMessages int           `json:"rate_messages"`
	RateRuns     int           `json:"rate_runs"`

	// Settle is the pause between runs, so that one run's background work in Elasticsearch
	// (refreshes, merges of a deleted index) does not land in the next one's timing.
	Settle time.Duration `json:"settle_ns"`
}

// presets are the two modes. Full measures every headline number as the median of at least
// three runs and fits in about an hour on 2 CPUs (with scripts/bench.sh's Go benchmarks);
// quick checks a change in a few minutes with single runs of small archives and is not for
// the targets. The scaling and rate-limited crawls run five times: their goals (peak RSS
// growth, the 429 share) sit close to their limits, and a median of three crossed a limit by
// chance (nine rate-limited crawls of one tree answered 10 to 23 calls of 1,600 with 429).
var presets = map[string]params{
	"quick": {
		Mailboxes: 10, CeilingMessages: 5000, Pairs: 2,
		LatencyMS: []int{100, 300}, LatencyMessages: 600, LatencyMailboxes: 8, LatencyRuns: 1,
		ScaleMessages: []int{2000, 20000}, ScaleRuns: 1, MailboxCounts: []int{500}, MailboxMessages: 2000,
		RateLimit: 600, RateDuration: 45 * time.Second, RateWarmup: 15 * time.Second, RateMessages: 5000, RateRuns: 1,
		Settle: 2 * time.Second,
	},
	"full": {
		Mailboxes: 20, CeilingMessages: 50000, Pairs: 3,
		LatencyMS: []int{100, 300}, LatencyMessages: 2000, LatencyMailboxes: 8, LatencyRuns: 3,
		ScaleMessages: []int{10000, 300000}, ScaleRuns: 5, MailboxCounts: []int{1000}, MailboxMessages: 20000,
		RateLimit: 600, RateDuration: 100 * time.Second, RateWarmup: 30 * time.Second, RateMessages: 20000, RateRuns: 5,
		Settle: 5 * time.Second,
	},
}

var measurements = []string{"latency", "ceiling", "scaling", "mailboxes", "ratelimit", "sporadic"}

func parseFlags(args []string, stderr io.Writer) (params, error) {
	fs := flag.NewFlagSet("mimecrawl-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "quick", "size preset: quick (a few minutes) or full (the sizes of the issue)")
	es := fs.String("es", envOr("ELASTICSEARCH_URL", "http://127.0.0.1:9260"), "Elasticsearch URL")
	bin := fs.String("bin", "bin", "directory holding the mimecrawl and mimecast-sim binaries")
	out := fs.String("out", "bench", "directory for results.json and results.md")
	hot := fs.String("hotpaths", "", "go test -bench output to summarise in the results (optional)")
	alertsOut := fs.String("alerts", "", "go test -bench output of the alerts poller's BenchmarkPollBacklog to summarise in the results (optional)")
	merge := fs.Bool("merge", false, "keep the other measurements of an existing results.json of the same mode and replace only those run now")
	only := fs.String("only", strings.Join(measurements, ","), "measurements to run: "+strings.Join(measurements, ",")+", or none (with --merge and --hotpaths/--alerts: only summarise those)")
	seed := fs.Int64("seed", 1, "seed of the simulated archives")
	mailboxes := fs.Int("mailboxes", 0, "mailboxes of the ceiling and message-scaling archives")
	ceiling := fs.Int("ceiling-messages", 0, "messages of the ceiling-vs-crawler archive")
	pairs := fs.Int("pairs", 0, "ceiling/crawler pairs (at least 3 for a median)")
	var set, variant listFlag
	fs.Var(&set, "set", "override a crawler setting in every crawl, key.path=value (repeatable)")
	fs.Var(&variant, "variant", "add to every pair a crawl with this override, key.path=value (repeatable; \"none\" drops the preset's)")
	latency := fs.String("latency", "", "comma-separated latencies (ms) added to every simulator request in the latency runs")
	latMsgs := fs.Int("latency-messages", 0, "messages of the latency archive at 100 ms (scaled by 100 / latency for the others)")
	latMbx := fs.Int("latency-mailboxes", 0, "mailboxes of the latency archive")
	latRuns := fs.Int("latency-runs", 0, "crawls of each configuration at each latency")
	scale := fs.String("scale-messages", "", "comma-separated archive sizes (messages) for the scaling runs")
	scaleRuns := fs.Int("scale-runs", 0, "crawls of each scaling size")
	counts := fs.String("mailbox-counts", "", "comma-separated mailbox counts for the mailbox scaling and no-change runs")
	mbMsgs := fs.Int("mailbox-messages", 0, "total messages of each mailbox-count archive")
	rate := fs.Int("rate-limit", 0, "simulator quota, requests per minute, of the rate-limited run")
	rateMsgs := fs.Int("rate-messages", 0, "messages of the rate-limited archive (more than the crawl can fetch in --rate-duration)")
	rateDur := fs.Duration("rate-duration", 0, "length of the rate-limited crawl")
	rateWarm := fs.Duration("rate-warmup", 0, "start of the steady-state window of the rate-limited crawl")
	rateRuns := fs.Int("rate-runs", 0, "rate-limited crawls, each against a fresh simulator")
	settle := fs.Duration("settle", -1, "pause between runs")
	if err := fs.Parse(args); err != nil {
		return params{}, err
	}
	if fs.NArg() > 0 {
		return params{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	p, ok := presets[*mode]
	if !ok {
		return params{}, fmt.Errorf("--mode %q: want quick or full", *mode)
	}
	p.Mode, p.ESURL, p.BinDir, p.OutDir, p.Hotpaths, p.Seed = *mode, strings.TrimRight(*es, "/"), *bin, *out, *hot, *seed
	p.Merge, p.Alerts = *merge, *alertsOut
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setInt(&p.Mailboxes, *mailboxes)
	setInt(&p.CeilingMessages, *ceiling)
	setInt(&p.Pairs, *pairs)
	setInt(&p.MailboxMessages, *mbMsgs)
	setInt(&p.RateLimit, *rate)
	setInt(&p.RateMessages, *rateMsgs)
	setInt(&p.RateRuns, *rateRuns)
	setInt(&p.LatencyMessages, *latMsgs)
	setInt(&p.LatencyMailboxes, *latMbx)
	setInt(&p.LatencyRuns, *latRuns)
	setInt(&p.ScaleRuns, *scaleRuns)
	p.Set = set
	switch {
	case len(variant) == 1 && variant[0] == "none":
		p.Variant = nil
	case len(variant) > 0:
		p.Variant = variant
	}
	if *rateDur > 0 {
		p.RateDuration = *rateDur
	}
	if *rateWarm > 0 {
		p.RateWarmup = *rateWarm
	}
	if *settle >= 0 {
		p.Settle = *settle
	}
	var err error
	if *scale != "" {
		if p.ScaleMessages, err = intList("--scale-messages", *scale); err != nil {
			return p, err
		}
	}
	if *latency != "" {
		if p.LatencyMS, err = intList("--latency", *latency); err != nil {
			return p, err
		}
	}
	if *counts != "" {
		if p.MailboxCounts, err = intList("--mailbox-counts", *counts); err != nil {
			return p, err
		}
	}
	for _, m := range strings.Split(*only, ",") {
		m = strings.TrimSpace(m)
		if m == "none" && *only == "none" {
			break
		}
		if !contains(measurements, m) {
			return p, fmt.Errorf("--only: unknown measurement %q; want some of %s", m, strings.Join(measurements, ","))
		}
		p.Only = append(p.Only, m)
	}
	switch {
	case p.Pairs < 1:
		return p, fmt.Errorf("--pairs %d: want at least 1", p.Pairs)
	case p.RateWarmup >= p.RateDuration:
		return p, fmt.Errorf("--rate-warmup %s must be shorter than --rate-duration %s", p.RateWarmup, p.RateDuration)
	case p.Mailboxes < 1 || p.CeilingMessages < p.Mailboxes:
		return p, fmt.Errorf("--ceiling-messages %d over --mailboxes %d: want at least one message per mailbox", p.CeilingMessages, p.Mailboxes)
	}
	return p, nil
}

func (p params) wants(m string) bool { return contains(p.Only, m) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func intList(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
