package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// The fixed configuration of the latency measurement: today's behaviour, a fixed number of
// mailbox views at once and a fixed number of messages in flight per view.
const (
	fixedMailboxes = 4
	fixedMessages  = 4
	// concurrencySetting is the crawler setting that keeps concurrency fixed (the default is
	// adaptive). A crawler that predates it rejects it as an unknown key.
	concurrencySetting = "performance.concurrency=fixed"
	// sampleEvery is how often the simulator's counters are read during a latency run.
	sampleEvery = 100 * time.Millisecond
	// The steady state of a latency run lies between these shares of the messages fetched:
	// start, index setup, enumeration and the tail of the last views lie outside it.
	steadyFrom, steadyTo = 0.1, 0.9
)

// LatencyResult is the crawl with latency added to every request the simulator answers: per
// latency, today's fixed configuration and the shipped defaults, runs alternating.
type LatencyResult struct {
	Groups []LatencyGroup `json:"groups"`
	Notes  []string       `json:"notes,omitempty"`
}

// LatencyGroup is one added latency.
type LatencyGroup struct {
	LatencyMS int             `json:"latency_ms"`
	Messages  int             `json:"messages"`
	Mailboxes int             `json:"mailboxes"`
	Configs   []LatencyConfig `json:"configs"`
}

// Keys of the two configurations of a latency group.
const (
	configFixed    = "fixed"
	configDefaults = "defaults"
)

// LatencyConfig is one configuration at one latency: its runs and their medians.
type LatencyConfig struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	Settings string `json:"settings,omitempty"`
	// FixedConcurrency is mailboxes × messages of the fixed configuration; 0 for the shipped
	// defaults, whose concurrency is the crawler's reported time-weighted mean limit.
	FixedConcurrency int          `json:"fixed_concurrency,omitempty"`
	Runs             []LatencyRun `json:"runs"`
	Note             string       `json:"note,omitempty"`

	MessagesPerSec       float64  `json:"median_messages_per_second"`
	SteadyMessagesPerSec *float64 `json:"median_steady_messages_per_second"`
	RequestsPerMessage   *float64 `json:"median_requests_per_message"`
	Concurrency          *float64 `json:"median_concurrency"`
	Bound                *float64 `json:"median_bound_messages_per_second"`
	Ratio                *float64 `json:"median_ratio"`
	WallRatio            *float64 `json:"median_wall_ratio"`
	Limit                *float64 `json:"median_concurrency_limit"`
	LimitAvg             *float64 `json:"median_concurrency_limit_avg"`
	InflightMax          *float64 `json:"median_inflight_max"`
}

// LatencyRun is one crawl at one latency. Optional values are nil where they could not be
// measured (the crawler does not report its limit; too few samples).
type LatencyRun struct {
	Run runStats `json:"run"`
	// SteadyMessagesPerSec counts messages fetched (get-file calls answered) between 10% and
	// 90% of the archive, over the time between those moments.
	SteadyMessagesPerSec *float64 `json:"steady_messages_per_second"`
	SteadySeconds        float64  `json:"steady_seconds"`
	// FirstFetchSeconds is when the first get-file call was answered, from the crawler's
	// start: process start, index setup, enumeration and the first list call.
	FirstFetchSeconds *float64 `json:"first_fetch_seconds"`
	// RequestsPerMessage is measured: the requests on per-message paths (API and download)
	// the simulator answered, over the messages indexed.
	RequestsPerMessage *float64 `json:"requests_per_message"`
	Concurrency        *float64 `json:"concurrency"`
	// Bound is Little's bound: Concurrency / (latency × RequestsPerMessage), messages/s.
	Bound *float64 `json:"bound_messages_per_second"`
	// Ratio is the steady rate over the bound; WallRatio the rate over the whole process.
	Ratio     *float64 `json:"ratio"`
	WallRatio *float64 `json:"wall_ratio"`
}

// summarise computes every run's bound and ratios and the medians of the configuration.
func (c *LatencyConfig) summarise(latencyMS int) {
	latency := float64(latencyMS) / 1000
	var wall []float64
	var steady, rpm, conc, bound, ratio, wallRatio, limit, avg, inflight []*float64
	for i := range c.Runs {
		r := &c.Runs[i]
		r.RequestsPerMessage = quotient(float64(r.Run.Requests.PerMessage), float64(r.Run.Messages))
		if c.FixedConcurrency > 0 {
			r.Concurrency = ptr(float64(c.FixedConcurrency))
		} else {
			r.Concurrency = r.Run.Limiter.LimitAvg
		}
		r.Bound = littleBound(r.Concurrency, latency, r.RequestsPerMessage)
		r.Ratio = quotientOf(r.SteadyMessagesPerSec, r.Bound)
		r.WallRatio = quotientOf(ptr(r.Run.MessagesPerSec), r.Bound)
		wall = append(wall, r.Run.MessagesPerSec)
		steady, rpm, conc = append(steady, r.SteadyMessagesPerSec), append(rpm, r.RequestsPerMessage), append(conc, r.Concurrency)
		bound, ratio, wallRatio = append(bound, r.Bound), append(ratio, r.Ratio), append(wallRatio, r.WallRatio)
		limit, avg, inflight = append(limit, r.Run.Limiter.Limit), append(avg, r.Run.Limiter.LimitAvg), append(inflight, r.Run.Limiter.InflightMax)
	}
	c.MessagesPerSec = median(wall)
	c.SteadyMessagesPerSec, c.RequestsPerMessage, c.Concurrency = medianOf(steady), medianOf(rpm), medianOf(conc)
	c.Bound, c.Ratio, c.WallRatio = medianOf(bound), medianOf(ratio), medianOf(wallRatio)
	c.Limit, c.LimitAvg, c.InflightMax = medianOf(limit), medianOf(avg), medianOf(inflight)
	if c.FixedConcurrency == 0 && c.Concurrency == nil && len(c.Runs) > 0 {
		c.Note = "the crawler reports no api_concurrency_limit_avg (no adaptive concurrency in this build): its concurrency, and so Little's bound, is n/a"
	}
}

// progressSample is the simulator's count of get-file calls answered, At seconds after the
// crawler started.
type progressSample struct {
	At float64
	N  int64
}

// steadyRate is the rate in the middle of a crawl: the messages fetched between the moments
// the count passed lo and hi of total, over the time between those moments, each moment
// interpolated between the two samples around it. ok is false when the samples do not cover
// both moments.
func steadyRate(samples []progressSample, total int64, lo, hi float64) (rate, seconds float64, ok bool) {
	if total <= 0 || lo < 0 || lo >= hi || hi > 1 {
		return 0, 0, false
	}
	tLo, okLo := crossing(samples, lo*float64(total))
	tHi, okHi := crossing(samples, hi*float64(total))
	if !okLo || !okHi || tHi <= tLo {
		return 0, 0, false
	}
	return (hi - lo) * float64(total) / (tHi - tLo), tHi - tLo, true
}

// crossing is the moment the count first reached level, interpolated linearly between the
// sample before and the first sample at or above it; the crawl starts at 0 with nothing.
func crossing(samples []progressSample, level float64) (float64, bool) {
	prevAt, prevN := 0.0, 0.0
	for _, s := range samples {
		n := float64(s.N)
		if n >= level {
			if n == prevN {
				return s.At, true
			}
			return prevAt + (s.At-prevAt)*(level-prevN)/(n-prevN), true
		}
		prevAt, prevN = s.At, n
	}
	return 0, false
}

// settingAccepted tells whether the crawler's configuration accepts a setting: it loads a
// crawler config holding it with the loader mimecrawl uses (scripts/bench.sh builds both
// programs from one tree). The loader is strict, so an unknown key is an error.
func (b *bench) settingAccepted(kv string) error {
	path, err := b.writeCrawlConfig(crawlSpec{Name: "probe", SimURL: "http://127.0.0.1:1", Prefix: "mcbench-probe",
		StatePath: filepath.Join(b.work, "probe.db"), Set: []string{kv}})
	if err != nil {
		return err
	}
	_, err = config.Load(path, func(string) string { return "" })
	return err
}

// runLatency crawls with latency added to every request: per latency a fresh simulator, then
// the fixed configuration and the shipped defaults alternately, LatencyRuns times each. The
// archive shrinks as the latency grows, so that every run takes about as long.
func (b *bench) runLatency(ctx context.Context) error {
	res := &LatencyResult{}
	b.res.Latency = res
	fixed := []string{fmt.Sprintf("parallelism.mailboxes=%d", fixedMailboxes), fmt.Sprintf("parallelism.messages=%d", fixedMessages)}
	if err := b.settingAccepted(concurrencySetting); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("this crawler does not accept %s (%s); (i) ran with the parallelism alone, which is fixed concurrency in a crawler without that setting", concurrencySetting, rejection(err)))
	} else {
		fixed = append([]string{concurrencySetting}, fixed...)
	}
	for _, ms := range b.p.LatencyMS {
		a := archiveFor(b.p.Seed, b.p.LatencyMailboxes, max(b.p.LatencyMessages*100/ms, b.p.LatencyMailboxes))
		g := LatencyGroup{LatencyMS: ms, Messages: a.messages(), Mailboxes: a.Mailboxes, Configs: []LatencyConfig{
			{Key: configFixed, Name: fmt.Sprintf("(i) fixed %d × %d (today's behaviour)", fixedMailboxes, fixedMessages),
				Settings: strings.Join(fixed, " "), FixedConcurrency: fixedMailboxes * fixedMessages},
			{Key: configDefaults, Name: "(ii) shipped defaults"},
		}}
		if err := b.latencyGroup(ctx, a, &g, fixed); err != nil {
			return err
		}
		res.Groups = append(res.Groups, g)
	}
	return nil
}

func (b *bench) latencyGroup(ctx context.Context, a archive, g *LatencyGroup, fixed []string) error {
	s, err := startSim(ctx, b.p.BinDir, a, b.work)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.setLatency(ctx, g.LatencyMS); err != nil {
		return err
	}
	for i := range b.p.LatencyRuns {
		for j := range g.Configs {
			c := &g.Configs[j]
			set := append([]string(nil), b.p.Set...)
			if c.Key == configFixed {
				set = append(set, fixed...)
			}
			prefix := b.prefix("l")
			st, cr, err := b.crawl(ctx, s, crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
				StatePath: filepath.Join(b.work, prefix+".db"), Set: set, Sample: sampleEvery})
			if err != nil {
				return err
			}
			run := LatencyRun{Run: st}
			if rate, secs, ok := steadyRate(cr.Samples, st.Requests.GetFile, steadyFrom, steadyTo); ok {
				run.SteadyMessagesPerSec, run.SteadySeconds = ptr(rate), secs
			}
			if at, ok := crossing(cr.Samples, 1); ok {
				run.FirstFetchSeconds = ptr(at)
			}
			c.Runs = append(c.Runs, run)
			b.logf("%d ms, %s, run %d: %.1fs, %.1f messages/s (steady %s), %s requests per message, limit %s (mean %s)",
				g.LatencyMS, c.Name, i+1, st.Seconds, st.MessagesPerSec, fmtOpt(run.SteadyMessagesPerSec, "%.1f"),
				fmtOpt(quotient(float64(st.Requests.PerMessage), float64(st.Messages)), "%.2f"),
				fmtOpt(st.Limiter.Limit, "%.0f"), fmtOpt(st.Limiter.LimitAvg, "%.1f"))
			b.cleanup(ctx, prefix)
		}
	}
	for j := range g.Configs {
		g.Configs[j].summarise(g.LatencyMS)
	}
	return nil
}

// rejection is the loader's complaint about the setting, without the probe file's path.
func rejection(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	// "<path>probe.yaml:<line>: <key>: unknown key; allowed here: …"
	if _, rest, ok := strings.Cut(s, "probe.yaml:"); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			s = after
		}
	}
	s, _, _ = strings.Cut(s, ";")
	return s
}
