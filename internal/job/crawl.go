package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// Env is what every command is given: the loaded configuration, the logger, the shard this
// process owns (zero: every mailbox) and the stopping context of the shutdown clock (see
// Shutdown), which the work a stopping command still does runs on.
type Env struct {
	Config   *config.Config
	Log      zerolog.Logger
	Shard    crawler.Shard
	Stopping context.Context
}

// Watcher follows a crawl as it goes: the command's progress display. Its methods are called
// in this order, from the goroutine running Crawl except Views (the crawler's progress
// callback, from any goroutine).
type Watcher interface {
	// Started: the Mimecast client exists and enumeration begins.
	Started(client *mimecast.Client)
	// Crawling: enumeration is over and cr starts.
	Crawling(cr *crawler.Crawler)
	// Views: done of total mailbox views have ended.
	Views(done, total int)
}

// CrawlArgs are what a crawl is asked to do, beyond the configuration.
type CrawlArgs struct {
	// Full starts a full re-crawl (or goes on with one already pending); see fullCampaign.
	Full bool
	// AllowMassRemoval lets mailbox removal pass safety.max_mailbox_removal_ratio.
	AllowMassRemoval bool
	// Metrics is the process's registry; the crawl feeds it and sets its run result.
	Metrics *metrics.Metrics
	// Watch, when not nil, follows the crawl.
	Watch Watcher
}

// Crawl runs one crawl and returns its summary, already recorded in the state file (when it
// could be opened) with its exit code (Summary.Outcome) set. It decides which passes run (the
// full re-crawl campaign), removes the mailboxes no longer kept unless the guard refuses, and
// treats a damaged state file as fatal. ctx is the signal context: when it ends, no new work
// starts and the run stops within the grace of env.Stopping.
func Crawl(ctx context.Context, env Env, args CrawlArgs) *Summary {
	c := &crawl{Env: env, args: args, m: args.Metrics, watch: args.Watch,
		sum: &Summary{Command: "crawl", Started: time.Now().UTC(), Full: args.Full, Shard: env.Shard.String()}}
	if c.watch == nil {
		c.watch = noWatch{}
	}
	if err := c.run(ctx); err != nil {
		c.fatal(ctx, err)
	}
	return c.sum
}

// crawl is one crawl's wiring: what Crawl opened and what the summary collects.
type crawl struct {
	Env
	args  CrawlArgs
	m     *metrics.Metrics
	watch Watcher
	sum   *Summary
	store *state.Store
	live  liveViews
}

// fatal ends a run that could not start or go on: the error is the run's, or, when the
// signal came before the crawl began, the run is interrupted, not failed.
func (c *crawl) fatal(ctx context.Context, err error) {
	c.sum.Interrupted = ctx.Err() != nil
	if c.sum.Interrupted && errors.Is(err, context.Canceled) {
		// SIGTERM or SIGINT before the crawl began: an interrupted run, not a failed one,
		// and not "context canceled" in the summary and in status.
		c.Log.Info().Msg("run interrupted before the crawl began")
	} else {
		c.sum.Error = err.Error()
		c.sum.Fatal = true
		c.Log.Error().Err(err).Msg("run failed")
	}
	c.finish()
}

// run is the crawl; an error it returns is fatal (see fatal). Once the crawler ran, run
// finishes the summary itself and returns nil.
func (c *crawl) run(ctx context.Context) error {
	cfg, log, sum := c.Config, c.Log, c.sum
	log.Info().Bool("full", c.args.Full).Str("shard", c.Shard.String()).Str("state", cfg.State.Path).Strs("elasticsearch", cfg.Elasticsearch.Addresses).
		Str("mimecast", cfg.Mimecast.BaseURL).Msg("run start")
	store, err := state.Open(cfg.State.Path, StoreOptions(cfg, false))
	if err != nil {
		return err
	}
	defer store.Close()
	client, err := archiveClient(cfg, log)
	if err != nil {
		return err
	}
	defer client.Close()
	c.m.WatchAPI(client)
	cluster, err := openCluster(ctx, cfg, log)
	if err != nil {
		return err
	}
	c.watch.Started(client)

	// Setting up the indices and enumerating the mailboxes ask different servers: at a real
	// tenant each costs round trips of its own, so they overlap.
	var enum *crawler.Enumeration
	setup, sctx := errgroup.WithContext(ctx)
	setup.Go(func() error { return cluster.Setup(sctx) })
	setup.Go(func() error {
		var err error
		enum, err = Enumerate(sctx, cfg, client, c.Shard)
		return err
	})
	if err := setup.Wait(); err != nil {
		return err
	}
	writer, closeWriter, err := OpenWriter(c.Stopping, cluster, c.m, log, func(ws index.WriterStats) {
		sum.BulkRequests, sum.BytesIndexed = int64(ws.Requests), int64(ws.Bytes)
	})
	if err != nil {
		return err
	}
	defer closeWriter()

	// While this run holds the state file, `status` reads the snapshot written after each
	// checkpoint commit; the first one is written now, so that a snapshot left by an earlier
	// run is not taken for this one's.
	snap := newSnapshotter(store, state.Report{StatePath: store.Path(), Shard: c.Shard.String()}, c.live.info,
		func(err error) { log.Warn().Err(err).Msg("write status snapshot") })
	snap.start()
	snap.changed()
	defer snap.stop()

	sum.DomainsTotal = len(enum.Domains)
	sum.MailboxesEnumerated = len(enum.Mailboxes)
	sum.DomainsKept, sum.MailboxesKept, sum.Excluded = enum.Counts()
	sum.ViewsTotal = len(enum.Kept) * len(cfg.Messages.Views)
	log.Info().Int("domains", sum.DomainsTotal).Int("domains_kept", sum.DomainsKept).
		Int("mailboxes", sum.MailboxesEnumerated).Int("mailboxes_kept", sum.MailboxesKept).
		Interface("excluded", sum.Excluded).Msg("enumeration done")

	c.removeMailboxes(ctx, store, cluster, enum.Kept)

	opts := CrawlerOptions(cfg, c.args.Full, UsePipeline(cfg, cluster.AttachmentProcessor(), log), log)
	opts.InternalDomains = enum.InternalDomains
	if opts.Full, opts.FullSince, err = fullCampaign(store, c.args.Full); err != nil {
		return err
	}
	sum.Full = opts.Full
	cr := crawler.New(client, cluster, c.m.CountDocuments(writer), snapshotStore{Store: store, snap: snap}, opts)
	c.live.crawling(cr)
	c.watch.Crawling(cr)
	results, runErr := cr.Run(ctx, enum.Kept, func(done, total int) {
		c.live.views(done, total)
		c.watch.Views(done, total)
	})
	closeWriter()

	removedDocs := sum.Deleted
	client.Close() // its final statistics line belongs before the summary
	sum.Totals = cr.Totals()
	sum.Deleted += removedDocs
	sum.AddResults(results)
	if runErr != nil {
		// A circuit breaker ended the run: a reason that applies to every mailbox.
		sum.Fatal = true
		sum.Error = runErr.Error()
		log.Error().Err(runErr).Msg("run stopped early")
	}
	sum.Interrupted = ctx.Err() != nil
	if err := corrupt(results); err != nil {
		sum.Fatal = true
		sum.Error = err.Error()
	}
	st := client.Stats()
	sum.SetAPI(st)
	sum.APIErrors = map[int]int64{}
	for code, n := range st.ByStatus {
		if code >= 400 {
			sum.APIErrors[code] = n
		}
	}
	if fs, err := store.Failures(nil); err == nil {
		for _, f := range fs {
			sum.FailedDocuments = append(sum.FailedDocuments, fmt.Sprintf("%s %s message %s: %d %s", f.Key.Mailbox, f.Key.View, f.MessageID, f.Status, f.Reason))
		}
	}
	if opts.Full && sum.ViewsFailed == 0 && sum.ViewsInterrupted == 0 && ctx.Err() == nil && runErr == nil {
		if err := store.SetFullSince(time.Time{}); err != nil {
			log.Error().Err(err).Msg("close the full re-crawl")
		}
	}
	if tokens, err := MailboxTokens(store, enum.Kept, cfg.Messages.Views); err == nil {
		c.m.SetMailboxLag(tokens)
	} else {
		log.Error().Err(err).Msg("read delta tokens for the lag metrics")
	}
	c.store = store
	c.finish()
	return nil
}

// corrupt returns the error of a view that found the state file damaged, if any: a state file
// found damaged mid-run is not a partial crawl but a fatal one, since nothing it says can be
// trusted until it is repaired.
func corrupt(results []crawler.ViewResult) error {
	for _, r := range results {
		if errors.Is(r.Err, state.ErrCorrupt) {
			return r.Err
		}
	}
	return nil
}

// fullCampaign decides whether this run re-crawls in full. `--full` starts a full re-crawl
// (or goes on with one already pending); a plain run goes on with a pending one, so that a
// re-crawl that was interrupted finishes the views it had not done, and only those.
func fullCampaign(store *state.Store, full bool) (bool, time.Time, error) {
	since, pending, err := store.FullSince()
	if err != nil {
		return false, time.Time{}, err
	}
	if full && !pending {
		since = time.Now().UTC().Truncate(time.Second)
		if err := store.SetFullSince(since); err != nil {
			return false, time.Time{}, err
		}
		pending = true
	}
	return pending, since, nil
}

// removeMailboxes removes the mailboxes the state file knows but enumeration no longer keeps,
// unless the guard refuses; a refusal is reported in the summary and the exit code, and the
// kept mailboxes are crawled all the same.
func (c *crawl) removeMailboxes(ctx context.Context, store crawler.MailboxStore, idx crawler.RemovalIndex, kept []crawler.Mailbox) {
	sum := c.sum
	plan, err := crawler.PlanRemoval(store, kept, c.Shard, c.Config.Safety.MaxMailboxRemovalRatio, c.args.AllowMassRemoval)
	if err != nil {
		if errors.Is(err, crawler.ErrRemovalRefused) {
			sum.RemovalRefused = plan.Gone
		}
		sum.Error = err.Error()
		c.Log.Error().Err(err).Int("would_remove", len(plan.Gone)).Msg("mailbox removal refused")
		return
	}
	if len(plan.Gone) == 0 {
		return
	}
	n, docs, err := crawler.RemoveMailboxes(ctx, idx, store, plan.Gone, c.Config.Parallelism.MailboxDeletions)
	sum.MailboxesRemoved = n
	sum.Deleted += docs
	c.Log.Info().Int("mailboxes", n).Int64("documents", docs).Strs("removed", plan.Gone).Msg("mailboxes removed")
	if err != nil {
		sum.Error = err.Error()
		sum.RemovalIncomplete = true
		c.Log.Error().Err(err).Msg("mailbox removal incomplete")
	}
}

// finish sets the exit code, records the summary in the state file (when it is open), logs it
// and sets the run's result in the metrics.
func (c *crawl) finish() {
	sum := c.sum
	sum.ExitCode = int(sum.Outcome())
	sum.Finished = time.Now().UTC()
	sum.Seconds = sum.Finished.Sub(sum.Started).Seconds()
	sum.PeakRSSBytes = peakRSS()
	blob, _ := json.Marshal(sum)
	if c.store != nil {
		if err := c.store.AddRun(sum.Record()); err != nil {
			c.Log.Error().Err(err).Msg("record run summary")
		}
	}
	c.Log.Info().RawJSON("summary", blob).Int("exit_code", sum.ExitCode).Msg("run end")
	run := metrics.RunResult{Started: sum.Started, Finished: sum.Finished, ExitCode: sum.ExitCode}
	for _, t := range sum.TextMisses {
		run.TextMisses = append(run.TextMisses, metrics.TextMiss{Format: t.Format, Reason: t.Reason, Count: t.Count})
	}
	c.m.SetRun(run)
}

// liveViews is what the status snapshot says of a running crawl: its views and messages so far.
type liveViews struct {
	mu          sync.Mutex
	done, total int
	cr          *crawler.Crawler
}

func (l *liveViews) crawling(cr *crawler.Crawler) {
	l.mu.Lock()
	l.cr = cr
	l.mu.Unlock()
}

func (l *liveViews) views(done, total int) {
	l.mu.Lock()
	l.done, l.total = done, total
	l.mu.Unlock()
}

func (l *liveViews) info() state.SnapshotInfo {
	l.mu.Lock()
	info, cr := state.SnapshotInfo{ViewsDone: l.done, ViewsTotal: l.total}, l.cr
	l.mu.Unlock()
	if cr != nil {
		info.Messages = cr.Totals().Messages
	}
	return info
}

type noWatch struct{}

func (noWatch) Started(*mimecast.Client)  {}
func (noWatch) Crawling(*crawler.Crawler) {}
func (noWatch) Views(int, int)            {}
