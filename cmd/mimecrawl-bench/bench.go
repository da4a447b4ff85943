package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// bench holds what every measurement needs.
type bench struct {
	p    params
	es   *esAdmin
	work string // configs, state files and logs of the runs
	log  io.Writer
	res  *Results
	tree string // the source tree this run measures
	seq  int
	ok   bool
}

func newBench(ctx context.Context, p params, log io.Writer) (*bench, error) {
	for _, name := range []string{"mimecrawl", "mimecast-sim"} {
		if _, err := os.Stat(filepath.Join(p.BinDir, name)); err != nil {
			return nil, fmt.Errorf("binary %s missing in %s (run `make build` first): %w", name, p.BinDir, err)
		}
	}
	es := newESAdmin(p.ESURL)
	node, err := es.node(ctx)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch at %s: %w", p.ESURL, err)
	}
	es.findLocalProcess(ctx)
	if err := os.MkdirAll(p.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	b := &bench{p: p, es: es, log: log, res: newResults(p, node)}
	b.tree = b.res.Host.Tree // the tree this run measures, whatever a merge keeps in the header
	if p.Merge {
		if err := b.res.mergeFrom(b.jsonPath()); err != nil {
			return nil, err
		}
	}
	if b.work, err = os.MkdirTemp("", "mimecrawl-bench-"); err != nil {
		return nil, fmt.Errorf("create work directory: %w", err)
	}
	b.logf("work directory %s (removed when every measurement succeeds)", b.work)
	return b, nil
}

func (b *bench) close() {
	if b.ok {
		_ = os.RemoveAll(b.work)
	} else {
		b.logf("kept %s for inspection", b.work)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

func (b *bench) jsonPath() string { return filepath.Join(b.p.OutDir, "results.json") }
func (b *bench) mdPath() string   { return filepath.Join(b.p.OutDir, "results.md") }

// prefix returns a fresh index prefix for one run.
func (b *bench) prefix(kind string) string {
	b.seq++
	return fmt.Sprintf("mcbench-%d-%s%d", os.Getpid(), kind, b.seq)
}

// cleanup removes a run's indices and templates, then waits --settle before the next run.
func (b *bench) cleanup(ctx context.Context, prefix string) {
	if err := b.es.remove(ctx, prefix); err != nil {
		b.logf("warning: %v", err)
	}
	select {
	case <-time.After(b.p.Settle):
	case <-ctx.Done():
	}
}

func (b *bench) runAll(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"latency", b.runLatency},
		{"ceiling", b.runCeiling},
		{"scaling", b.runScaling},
		{"mailboxes", b.runMailboxes},
		{"ratelimit", b.runRateLimited},
		{"sporadic", b.runSporadic},
	}
	var failed []string
	for _, s := range steps {
		if !b.p.wants(s.name) {
			continue
		}
		started := time.Now()
		b.res.Sections[s.name] = Section{Started: started.UTC(), Tree: b.res.Host.Tree, LoadAverage: loadAverage()}
		b.logf("== %s", s.name)
		if err := s.fn(ctx); err != nil {
			b.logf("%s failed: %v", s.name, err)
			b.res.Errors = append(b.res.Errors, fmt.Sprintf("%s: %v", s.name, err))
			failed = append(failed, s.name)
			if ctx.Err() != nil {
				break
			}
		}
		sec := b.res.Sections[s.name]
		sec.Seconds = time.Since(started).Seconds()
		b.res.Sections[s.name] = sec
		// Results are written after every step, so a long full run that is stopped late still
		// leaves what it measured.
		if err := b.write(); err != nil {
			return err
		}
	}
	if b.p.Hotpaths != "" {
		rows, err := parseHotpaths(b.p.Hotpaths)
		if err != nil {
			b.res.Errors = append(b.res.Errors, err.Error())
		}
		b.res.Hotpaths = rows
		if st, err := os.Stat(b.p.Hotpaths); err == nil {
			b.res.Sections["hotpaths"] = Section{Started: st.ModTime().UTC(), Tree: b.tree}
		}
	}
	if b.p.Alerts != "" {
		rows, err := parseHotpaths(b.p.Alerts)
		if err != nil {
			b.res.Errors = append(b.res.Errors, err.Error())
		}
		b.res.Alerts = rows
		if st, err := os.Stat(b.p.Alerts); err == nil {
			b.res.Sections["alerts"] = Section{Started: st.ModTime().UTC(), Tree: b.tree}
		}
	}
	b.res.Finished = time.Now().UTC()
	b.res.evaluate()
	if err := b.write(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("measurements failed: %v", failed)
	}
	b.ok = true
	return nil
}

// runCeiling alternates the ceiling (a) and the crawler (b) on the same archive, and the
// crawler with more parallelism (v) when asked, pair after pair, so that slow drifts of the
// shared machine hit all of them alike.
func (b *bench) runCeiling(ctx context.Context) error {
	a := archiveFor(b.p.Seed, b.p.Mailboxes, b.p.CeilingMessages)
	s, err := startSim(ctx, b.p.BinDir, a, b.work)
	if err != nil {
		return err
	}
	defer s.stop()
	c := &CeilingResult{Messages: a.messages(), Mailboxes: a.Mailboxes, Settings: strings.Join(b.p.Set, " "), Variant: strings.Join(b.p.Variant, " ")}
	b.res.Ceiling = c
	b.logf("building the documents of %d messages in memory", a.messages())
	t := time.Now()
	docs, size, err := b.buildDocs(ctx, s.url, false)
	if err != nil {
		return err
	}
	c.BuiltDocs, c.BuiltBytes, c.BuildSeconds = len(docs), size, time.Since(t).Seconds()
	b.logf("built %d documents, %.1f MB, in %.0fs", len(docs), float64(size)/1e6, c.BuildSeconds)
	for i := range b.p.Pairs {
		pair := Pair{}
		prefix := b.prefix("a")
		if pair.Ceiling, err = b.ceiling(ctx, docs, prefix); err != nil {
			return err
		}
		pair.Ceiling.Count, _ = b.es.count(ctx, prefix)
		b.logf("pair %d a: %s", i+1, pair.Ceiling.line())
		b.cleanup(ctx, prefix)

		prefix = b.prefix("b")
		if pair.Crawler, _, err = b.crawl(ctx, s, crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
			StatePath: filepath.Join(b.work, prefix+".db"), Set: b.p.Set}); err != nil {
			return err
		}
		pair.Crawler.Count, _ = b.es.count(ctx, prefix)
		b.logf("pair %d b: %s", i+1, pair.Crawler.line())
		b.cleanup(ctx, prefix)

		if len(b.p.Variant) > 0 {
			prefix = b.prefix("v")
			v, _, err := b.crawl(ctx, s, crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
				StatePath: filepath.Join(b.work, prefix+".db"), Set: append(append([]string(nil), b.p.Set...), b.p.Variant...)})
			if err != nil {
				return err
			}
			v.Count, _ = b.es.count(ctx, prefix)
			pair.Variant = &v
			b.logf("pair %d v: %s", i+1, v.line())
			b.cleanup(ctx, prefix)
		}
		c.Pairs = append(c.Pairs, pair)
	}
	c.summarise()
	return nil
}

// runScaling crawls archives of growing size over the same mailboxes, ScaleRuns times each
// against one simulator (a fresh index and state every time). The size of the ceiling archive
// reuses the ceiling's crawler runs.
func (b *bench) runScaling(ctx context.Context) error {
	for _, total := range b.p.ScaleMessages {
		a := archiveFor(b.p.Seed, b.p.Mailboxes, total)
		row := ScaleRow{Messages: a.messages(), Mailboxes: a.Mailboxes}
		if c := b.res.Ceiling; c != nil && c.Messages == a.messages() && c.Mailboxes == a.Mailboxes && len(c.Pairs) > 0 {
			for _, p := range c.Pairs {
				row.Runs = append(row.Runs, p.Crawler)
			}
			row.Note = fmt.Sprintf("the %d crawler runs of the ceiling comparison", len(c.Pairs))
		} else if err := b.scaleRuns(ctx, a, &row); err != nil {
			return err
		}
		row.summarise()
		b.res.Scaling = append(b.res.Scaling, row)
	}
	sort.Slice(b.res.Scaling, func(i, j int) bool { return b.res.Scaling[i].Messages < b.res.Scaling[j].Messages })
	return nil
}

func (b *bench) scaleRuns(ctx context.Context, a archive, row *ScaleRow) error {
	s, err := startSim(ctx, b.p.BinDir, a, b.work)
	if err != nil {
		return err
	}
	defer s.stop()
	for i := range b.p.ScaleRuns {
		prefix := b.prefix("s")
		st, _, err := b.crawl(ctx, s, crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
			StatePath: filepath.Join(b.work, prefix+".db"), Set: b.p.Set})
		if err != nil {
			return err
		}
		st.Count, _ = b.es.count(ctx, prefix)
		b.logf("%d messages, run %d: %s", a.messages(), i+1, st.line())
		row.Runs = append(row.Runs, st)
		b.cleanup(ctx, prefix)
	}
	return nil
}

// runMailboxes crawls the same number of messages spread over more and more mailboxes, then
// crawls again with nothing changed: the incremental cost.
func (b *bench) runMailboxes(ctx context.Context) error {
	for _, n := range b.p.MailboxCounts {
		a := archiveFor(b.p.Seed, n, b.p.MailboxMessages)
		s, err := startSim(ctx, b.p.BinDir, a, b.work)
		if err != nil {
			return err
		}
		row, err := b.mailboxRow(ctx, s, a)
		s.stop()
		if err != nil {
			return err
		}
		b.res.Mailboxes = append(b.res.Mailboxes, row)
	}
	return nil
}

func (b *bench) mailboxRow(ctx context.Context, s *sim, a archive) (MailboxRow, error) {
	prefix := b.prefix("m")
	spec := crawlSpec{Name: prefix + "-first", SimURL: s.url, Prefix: prefix,
		StatePath: filepath.Join(b.work, prefix+".db"), Set: b.p.Set}
	defer b.cleanup(ctx, prefix)
	first, _, err := b.crawl(ctx, s, spec)
	if err != nil {
		return MailboxRow{}, err
	}
	b.logf("%d mailboxes, first crawl: %s", a.Mailboxes, first.line())
	row := MailboxRow{Mailboxes: a.Mailboxes, Messages: a.messages(), First: first}
	spec.Name = prefix + "-again"
	again, res, err := b.crawl(ctx, s, spec)
	if err != nil {
		return row, err
	}
	api := again.Requests
	row.Again = again
	row.Views = res.Summary.MailboxesKept * len(defaultViews())
	row.AgainListCalls = api.Lists
	var total int64
	for _, n := range api.ByPath {
		total += n
	}
	row.AgainAPICalls = total
	row.AgainDocs = res.Summary.Messages + res.Summary.Attachments
	row.AgainBulkRequests = res.Summary.BulkRequests
	if row.Views > 0 {
		row.ListCallsPerView = float64(api.Lists) / float64(row.Views)
	}
	b.logf("%d mailboxes, no-change crawl: %.1fs, %d list calls for %d views, %d documents written",
		a.Mailboxes, again.Seconds, api.Lists, row.Views, row.AgainDocs)
	return row, nil
}

// runRateLimited repeats the rate-limited crawl RateRuns times, each against a fresh
// simulator so that every run starts with a full bucket.
func (b *bench) runRateLimited(ctx context.Context) error {
	sec := &RateSection{Settings: strings.Join(b.p.Set, " ")}
	b.res.RateLimited = sec
	for i := range b.p.RateRuns {
		rl, err := b.rateLimitedRun(ctx)
		if err != nil {
			return err
		}
		sec.Runs = append(sec.Runs, rl)
		b.logf("rate-limited run %d: %.1f%% of the admissible maximum, %.1f%% in steady state, %.2f%% of requests answered 429, limit %s",
			i+1, 100*rl.QuotaShare, 100*rl.SteadyQuotaShare, 100*rl.Share429, fmtOpt(rl.Limiter.Limit, "%.0f"))
		sec.summarise()
	}
	return nil
}

// rateLimitedRun crawls a large archive behind a quota for a fixed time, then stops the
// crawler with SIGTERM, and reads from the simulator how much of the quota was used.
func (b *bench) rateLimitedRun(ctx context.Context) (RateResult, error) {
	a := archiveFor(b.p.Seed, b.p.Mailboxes, b.p.RateMessages)
	a.RateLimit = b.p.RateLimit
	s, err := startSim(ctx, b.p.BinDir, a, b.work)
	if err != nil {
		return RateResult{}, err
	}
	defer s.stop()
	prefix := b.prefix("r")
	defer b.cleanup(ctx, prefix)
	if err := s.resetStats(ctx); err != nil {
		return RateResult{}, err
	}
	simCPU := s.cpu()
	r, err := b.startCrawl(crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
		StatePath: filepath.Join(b.work, prefix+".db"), Set: b.p.Set})
	if err != nil {
		return RateResult{}, err
	}
	rl := RateResult{LimitPerMinute: a.RateLimit, Seconds: b.p.RateDuration.Seconds(), WarmupSeconds: b.p.RateWarmup.Seconds()}
	sleep := func(until time.Time) bool {
		select {
		case <-time.After(time.Until(until)):
			return true
		case <-r.done:
			// Put the exit back for wait, which reads it.
			r.done <- nil
			return false
		case <-ctx.Done():
			return false
		}
	}
	// The windows are measured from the actual times of the snapshots, not the nominal ones.
	var warm, end apiCounts
	var warmAt, endAt time.Time
	if sleep(r.started.Add(b.p.RateWarmup)) {
		st, err := s.stats(ctx)
		if err != nil {
			return RateResult{}, err
		}
		warm, warmAt = countAPI(st), time.Now()
		if sleep(r.started.Add(b.p.RateDuration)) {
			if st, err = s.stats(ctx); err != nil {
				return RateResult{}, err
			}
			end, endAt = countAPI(st), time.Now()
			r.stop()
		}
	}
	res, err := r.wait(ctx)
	if err != nil {
		return RateResult{}, err
	}
	if end == (apiCounts{}) {
		return RateResult{}, fmt.Errorf("the crawl ended after %.0fs, before the %s window; use a larger --rate-messages archive", res.Seconds, b.p.RateDuration)
	}
	st, err := s.stats(ctx)
	if err != nil {
		return RateResult{}, err
	}
	all := countAPI(st)
	perSecond := float64(a.RateLimit) / 60
	rl.Admitted, rl.Limited = end.Admitted, all.Limited
	rl.Requests = all.Admitted + all.Limited
	// The bucket starts full, so over the whole window the most the quota admits is its burst
	// plus the refill.
	rl.Seconds = endAt.Sub(r.started).Seconds()
	rl.MaxAdmissible = float64(a.RateLimit) + perSecond*rl.Seconds
	rl.QuotaShare = float64(end.Admitted) / rl.MaxAdmissible
	steady := endAt.Sub(warmAt).Seconds()
	rl.SteadyAdmitted = end.Admitted - warm.Admitted
	rl.SteadyLimited = end.Limited - warm.Limited
	rl.SteadyQuotaShare = float64(rl.SteadyAdmitted) / (perSecond * steady)
	if rl.Requests > 0 {
		rl.Share429 = float64(all.Limited) / float64(rl.Requests)
	}
	if n := rl.SteadyAdmitted + rl.SteadyLimited; n > 0 {
		rl.SteadyShare429 = float64(rl.SteadyLimited) / float64(n)
	}
	rl.Messages = res.Summary.Messages
	rl.CrawlerAPICalls, rl.CrawlerRateLimited = res.Summary.APICalls, res.Summary.APIRateLimited
	rl.ExitCode = res.ExitCode
	rl.CrawlerCPU, rl.SimCPU = res.CPU, s.cpu()-simCPU
	rl.Limiter = res.Summary.limiterFields
	return rl, nil
}
