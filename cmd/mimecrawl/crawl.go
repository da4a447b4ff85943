package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

func (a *app) crawl(ctx context.Context, full, allowMassRemoval bool) int {
	sum := &Summary{Command: "crawl", Started: time.Now().UTC(), Full: full, Shard: a.shard.String()}
	m := a.newMetrics()
	log := a.log
	log.Info().Bool("full", full).Str("shard", a.shard.String()).Str("state", a.cfg.State.Path).Strs("elasticsearch", a.cfg.Elasticsearch.Addresses).
		Str("mimecast", a.cfg.Mimecast.BaseURL).Msg("run start")
	fatal := func(err error) int {
		sum.Interrupted = ctx.Err() != nil
		if sum.Interrupted && errors.Is(err, context.Canceled) {
			// SIGTERM or SIGINT before the crawl began: an interrupted run, not a failed one,
			// and not "context canceled" in the summary and in status.
			log.Info().Msg("run interrupted before the crawl began")
			return a.finish(sum, nil, m)
		}
		sum.Error = err.Error()
		sum.Fatal = true
		log.Error().Err(err).Msg("run failed")
		return a.finish(sum, nil, m)
	}

	store, err := a.openStore(false)
	if err != nil {
		return fatal(err)
	}
	defer store.Close()
	client, err := a.mimecastClient()
	if err != nil {
		return fatal(err)
	}
	defer client.Close()
	m.WatchAPI(client)
	cluster, err := a.cluster(ctx)
	if err != nil {
		return fatal(err)
	}
	prog := a.newProgress(client)
	interval := 10 * time.Second
	if a.line != nil {
		interval = 250 * time.Millisecond
	}
	prog.run(interval)
	defer prog.stop(nil)
	// The last frame is drawn from the summary's numbers just before the summary is printed;
	// on a fatal error before that, the line is closed the same way.
	a.beforeSummary = func(s *Summary) { prog.stop(s) }

	// Setting up the indices and enumerating the mailboxes ask different servers: at a real
	// tenant each costs round trips of its own, so they overlap.
	var enum *crawler.Enumeration
	setup, sctx := errgroup.WithContext(ctx)
	setup.Go(func() error { return cluster.Setup(sctx) })
	setup.Go(func() error {
		var err error
		enum, err = crawler.Enumerate(sctx, client, a.rules(), a.cfg.Performance.PageSize, a.cfg.Parallelism.Mailboxes)
		return err
	})
	if err := setup.Wait(); err != nil {
		return fatal(err)
	}
	writer, closeWriter, err := a.openWriter(cluster, m, log, func(ws index.WriterStats) {
		sum.BulkRequests, sum.BytesIndexed = int64(ws.Requests), int64(ws.Bytes)
	})
	if err != nil {
		return fatal(err)
	}
	defer closeWriter()

	// While this run holds the state file, `status` reads the snapshot written after each
	// checkpoint commit; the first one is written now, so that a snapshot left by an earlier
	// run is not taken for this one's.
	snap := newSnapshotter(store, statusReport{StatePath: store.Path(), Shard: a.shard.String()}, func() snapshotInfo {
		f := prog.frame()
		return snapshotInfo{ViewsDone: f.done, ViewsTotal: f.total, Messages: f.totals.Messages}
	}, func(err error) { log.Warn().Err(err).Msg("write status snapshot") })
	snap.start()
	snap.changed()
	defer snap.stop()

	sum.DomainsTotal = len(enum.Domains)
	sum.MailboxesEnumerated = len(enum.Mailboxes)
	sum.DomainsKept, sum.MailboxesKept, sum.Excluded = enum.Counts()
	sum.ViewsTotal = len(enum.Kept) * len(a.cfg.Messages.Views)
	log.Info().Int("domains", sum.DomainsTotal).Int("domains_kept", sum.DomainsKept).
		Int("mailboxes", sum.MailboxesEnumerated).Int("mailboxes_kept", sum.MailboxesKept).
		Interface("excluded", sum.Excluded).Msg("enumeration done")

	a.removeMailboxes(ctx, store, cluster, enum.Kept, allowMassRemoval, sum)

	opts := a.crawlOptions(full, a.usePipeline(cluster.AttachmentProcessor()))
	opts.InternalDomains = enum.InternalDomains
	// The crawler waits for acknowledgements for most of the grace; the rest is for the writer
	// to fail what is still in flight and for the checkpoints to be committed.
	opts.ShutdownGrace = a.cfg.Performance.ShutdownGrace.D() * 3 / 4
	if opts.Full, opts.FullSince, err = fullCampaign(store, full); err != nil {
		return fatal(err)
	}
	sum.Full = opts.Full
	cr := crawler.New(client, cluster, m.CountDocuments(writer), snapshotStore{Store: store, snap: snap}, opts)
	prog.crawling(cr)
	results, runErr := cr.Run(ctx, enum.Kept, prog.views)
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
	for _, r := range results {
		if errors.Is(r.Err, state.ErrCorrupt) {
			// A state file found damaged mid-run is not a partial crawl: nothing it says can be
			// trusted until it is repaired.
			sum.Fatal = true
			sum.Error = r.Err.Error()
			break
		}
	}
	st := client.Stats()
	sum.setAPI(st)
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
	if tokens, err := mailboxTokens(store, enum.Kept, a.cfg.Messages.Views); err == nil {
		m.SetMailboxLag(tokens)
	} else {
		log.Error().Err(err).Msg("read delta tokens for the lag metrics")
	}
	return a.finish(sum, store, m)
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
func (a *app) removeMailboxes(ctx context.Context, store *state.Store, cluster *index.Cluster, kept []crawler.Mailbox, allowMass bool, sum *Summary) {
	plan, err := crawler.PlanRemoval(store, kept, a.shard, a.cfg.Safety.MaxMailboxRemovalRatio, allowMass)
	if err != nil {
		if errors.Is(err, crawler.ErrRemovalRefused) {
			sum.RemovalRefused = plan.Gone
		}
		sum.Error = err.Error()
		a.log.Error().Err(err).Int("would_remove", len(plan.Gone)).Msg("mailbox removal refused")
		return
	}
	if len(plan.Gone) == 0 {
		return
	}
	n, docs, err := crawler.RemoveMailboxes(ctx, cluster, store, plan.Gone, a.cfg.Parallelism.MailboxDeletions)
	sum.MailboxesRemoved = n
	sum.Deleted += docs
	a.log.Info().Int("mailboxes", n).Int64("documents", docs).Strs("removed", plan.Gone).Msg("mailboxes removed")
	if err != nil {
		sum.Error = err.Error()
		sum.RemovalIncomplete = true
		a.log.Error().Err(err).Msg("mailbox removal incomplete")
	}
}

// runRecorder is the part of the state store that keeps run summaries.
type runRecorder interface {
	AddRun(summary []byte) error
}

// finish sets the exit code, logs and prints the summary, records it in the state file,
// pushes the metrics (when metrics.pushgateway_url is set: a failed run too, so that the
// failure is visible) and returns the exit code.
func (a *app) finish(sum *Summary, store runRecorder, m *metrics.Metrics) int {
	sum.ExitCode = runExitCode(sum)
	sum.Finished = time.Now().UTC()
	sum.Seconds = sum.Finished.Sub(sum.Started).Seconds()
	sum.PeakRSSBytes = peakRSS()
	blob, _ := json.Marshal(sum)
	if store != nil {
		if err := store.AddRun(blob); err != nil {
			a.log.Error().Err(err).Msg("record run summary")
		}
	}
	a.log.Info().RawJSON("summary", blob).Int("exit_code", sum.ExitCode).Msg("run end")
	if a.beforeSummary != nil {
		a.beforeSummary(sum)
		a.beforeSummary = nil
	}
	if a.textSummary {
		sum.Print(a.stdout)
	}
	run := metrics.RunResult{Started: sum.Started, Finished: sum.Finished, ExitCode: sum.ExitCode}
	for _, t := range sum.TextMisses {
		run.TextMisses = append(run.TextMisses, metrics.TextMiss{Format: t.Format, Reason: t.Reason, Count: t.Count})
	}
	m.SetRun(run)
	a.pushMetrics(m, "crawl")
	return sum.ExitCode
}
