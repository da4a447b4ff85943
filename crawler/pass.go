package crawler

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// viewPass is one pass over one mailbox view: list [from, to], fetch what is not indexed yet,
// index it, and move the checkpoint as acknowledgements come in.
type viewPass struct {
	c        *Crawler
	mb       Mailbox
	view     string
	key      state.Key
	pos      state.Position
	pass     state.Pass
	tr       *tracker
	failedID map[string]bool // messages with a recorded failure: never skipped as "already indexed"
	log      zerolog.Logger
	indexed  atomic.Int64
	lastSave time.Time
	// fetching counts the view's messages queued for or in a fetch, plus one held by the
	// listing until it ends; fetched is closed when it drops to zero.
	fetching atomic.Int64
	fetched  chan struct{}
}

// fetchEnded drops one count of fetching.
func (p *viewPass) fetchEnded() {
	if p.fetching.Add(-1) == 0 {
		close(p.fetched)
	}
}

// awaitFetches waits until every message the view handed to the fetch workers has been
// fetched and sent, or ctx ends.
func (p *viewPass) awaitFetches(ctx context.Context) error {
	select {
	case <-p.fetched:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unit is one message on its way into the index: its attachments first, then the message
// document itself, so that an indexed message document always means a complete message.
type unit struct {
	p         *viewPass
	seq       int64
	msg       index.Doc
	messageID string
	pending   atomic.Int32 // attachment documents not yet answered, +1 while they are being added
	permFail  atomic.Bool  // an attachment was rejected for good: written, but the pass is blocked
	retryFail atomic.Bool  // an attachment failed for now: the message document is held back
	retrying  bool         // the message had a recorded failure before this run
	docIDs    []string     // attachment document ids, to clear recorded failures on success
}

// crawlView runs one pass over one mailbox view as four phases, in order:
//
//  1. plan and list, in the listing slot the caller acquired (released here when the listing
//     ends), handing the messages to the run's fetch workers;
//  2. await the fetches and the acknowledgements of what was sent, without a slot, so that the
//     next view lists meanwhile; the flusher keeps the wait short. The wait ends at the latest
//     when the run's grace ends;
//  3. decide the outcome and, for a completed full pass, sweep;
//  4. commit: the delta token for a completed pass, the resume point otherwise.
func (c *Crawler) crawlView(work, grace context.Context, mb Mailbox, view string) ViewResult {
	p, res, listErr := c.listAndFetch(work, mb, view)
	c.slots.Release(1)
	if p == nil {
		return res
	}
	// Only once the view's messages are fetched does its wait depend on the sink alone: then
	// tracker.wait registers it with the flusher.
	waitErr := p.awaitFetches(grace)
	var failed int
	if waitErr == nil {
		failed, waitErr = p.tr.wait(grace)
	}
	if waitErr != nil {
		failed = p.tr.pending()
		p.log.Warn().Int("pending", failed).Msg("gave up waiting for acknowledgements")
	}
	res.Messages = p.indexed.Load()
	res.Failed = failed

	var (
		outcome Outcome
		err     error
	)
	// A listing that ended without error went through the whole window: if everything it sent
	// was acknowledged, the pass completes even when the run is stopping meanwhile.
	switch {
	case listErr != nil && work.Err() != nil, waitErr != nil:
		outcome, err = Interrupted, fmt.Errorf("stopped: %w", context.Cause(work))
	case listErr != nil:
		outcome, err = Failed, fmt.Errorf("list messages %s..%s: %w", api.FormatTime(res.From), api.FormatTime(res.To), listErr)
	case failed > 0:
		outcome, err = Blocked, fmt.Errorf("%d messages failed; the checkpoint stays before the first of them", failed)
	}
	if err == nil && p.pass.Full {
		n, serr := p.sweep(work)
		res.Deleted = n
		if serr != nil {
			outcome, err = Failed, serr
			if work.Err() != nil {
				outcome = Interrupted
			}
		}
	}
	if err != nil {
		if serr := p.save(); serr != nil {
			p.log.Error().Err(serr).Msg("save resume point")
		}
		return p.fail(res, outcome, err)
	}
	if err := p.complete(p.pass.End); err != nil {
		return p.fail(res, Failed, err)
	}
	p.clearStaleFailures()
	res.end(Complete, nil)
	p.log.Info().Int64("documents", res.Messages).Int64("deleted", res.Deleted).Time("token", p.pass.End).Msg("checkpoint committed")
	return res
}

func (p *viewPass) fail(res ViewResult, o Outcome, err error) ViewResult {
	res.end(o, err)
	if o == Failed {
		p.log.Error().Err(err).Msg("mailbox view failed")
	}
	return res
}

// listAndFetch is phase 1: it decides the pass (PlanPass), records a new full pass, lists the
// window and hands every listed message to a fetch worker. p is nil when the pass could not
// start; res then holds the failure.
func (c *Crawler) listAndFetch(work context.Context, mb Mailbox, view string) (p *viewPass, res ViewResult, listErr error) {
	key := state.Key{Mailbox: mb.Address, View: view}
	log := c.log.With().Str("mailbox", mb.Address).Str("view", view).Logger()
	res = ViewResult{Mailbox: mb.Address, View: view}
	fail := func(err error) (*viewPass, ViewResult, error) {
		o := Failed
		if work.Err() != nil {
			o = Interrupted
		} else {
			log.Error().Err(err).Msg("mailbox view failed")
		}
		res.end(o, err)
		return nil, res, nil
	}
	if err := work.Err(); err != nil {
		return fail(fmt.Errorf("stopped: %w", context.Cause(work)))
	}
	pos, _, err := c.store.Position(key)
	if err != nil {
		return fail(fmt.Errorf("read checkpoint: %w", err))
	}
	p = &viewPass{c: c, mb: mb, view: view, key: key, tr: newTracker(c.opts.MessagesInFlight, c.window, c.flush.wait), log: log,
		fetched: make(chan struct{})}
	p.fetching.Store(1) // the listing's; see fetchEnded
	defer p.fetchEnded()
	if p.failedID, err = c.store.FailedMessageIDs(key); err != nil {
		return fail(fmt.Errorf("read recorded failures: %w", err))
	}
	plan := PlanPass(pos, len(p.failedID) > 0, c.windowOptions(), c.opts.Now())
	if len(plan.Damaged) > 0 {
		log.Warn().Strs("damaged", plan.Damaged).Time("from", plan.From).Msg("checkpoint lies in the future; falling back to a safe position")
	}
	if plan.Blocked {
		log.Info().Int("failed_messages", len(p.failedID)).Msg("pass blocked by failed messages: starting a new pass from the delta token")
	}
	p.pos, p.pass, p.lastSave = plan.Position, plan.Pass, c.opts.Now()
	if plan.NewGeneration {
		if p.pass.Generation, err = c.store.NextGeneration(); err != nil {
			return fail(fmt.Errorf("allocate crawl generation: %w", err))
		}
	}
	res.Full, res.Resumed, res.From, res.To = p.pass.Full, plan.Resumed, plan.From, plan.To
	if p.pass.Full && p.pass.Low.IsZero() || len(plan.Damaged) > 0 {
		// A full pass must survive a kill as a full pass, so it is recorded before any work;
		// a damaged position is replaced before any work, so that it is not met again.
		if err := p.save(); err != nil {
			return fail(err)
		}
	}
	log.Debug().Time("from", plan.From).Time("to", plan.To).Bool("full", p.pass.Full).Bool("resumed", plan.Resumed).Msg("pass start")
	if plan.To.Before(plan.From) {
		c.counts.viewsListed.Add(1) // an empty window: listed, with nothing in it
		return p, res, nil
	}
	f := api.MessageListFilter{View: view, Mailbox: mb.Address, Start: api.FormatTime(plan.From), End: api.FormatTime(plan.To)}
	// Listed messages go to the run's fetch workers, so the next page is listed while the last
	// one is fetched, and the view's slot is free for the next view as soon as its listing
	// ends: a list call's latency is hidden behind other views' fetches.
	listErr = c.arc.ListMessages(work, f, c.opts.PageSize, func(page []api.MessageSummary) error {
		c.counts.listed.Add(int64(len(page)))
		return p.page(work, page, c.fetch)
	})
	if listErr == nil {
		c.counts.viewsListed.Add(1)
	}
	return p, res, listErr
}

// fetchJob is a listed message handed to a view's fetch workers, registered in the tracker.
type fetchJob struct {
	p        *viewPass
	m        api.MessageSummary
	seq      int64
	received time.Time
}

func (c *Crawler) windowOptions() WindowOptions {
	return WindowOptions{StartDate: c.opts.StartDate, DeltaTokenOffset: c.opts.DeltaTokenOffset,
		Full: c.opts.Full, FullSince: c.opts.FullSince}
}

// save commits the in-progress pass with the current resume point.
func (p *viewPass) save() error {
	if low, ok := p.tr.resumePoint(); ok && (p.pass.Low.IsZero() || low.Before(p.pass.Low)) {
		p.pass.Low = low
	}
	pos := p.pos
	pass := p.pass
	pos.Pass = &pass
	// Read the counter once: acknowledgements arriving during the commit belong to the next.
	n := p.indexed.Load()
	pos.Indexed += n
	if err := p.c.commits.commit(p.key, pos); err != nil {
		return fmt.Errorf("commit checkpoint of %s %s: %w", p.mb.Address, p.view, err)
	}
	p.pos.Pass = pos.Pass
	p.pos.Indexed = pos.Indexed - n // Indexed is cumulative; count this run once
	p.lastSave = p.c.opts.Now()
	return nil
}

// complete moves the delta token to the end of the pass and closes it. lastRun is recorded as
// the view's last run: the safe position a damaged token falls back to.
func (p *viewPass) complete(lastRun time.Time) error {
	pos := p.pos
	pos.Token = p.pass.End
	pos.Pass = nil
	pos.Generation = p.pass.Generation
	pos.LastRun = lastRun
	pos.Indexed += p.indexed.Load()
	if p.pass.Full {
		pos.FullDone = p.pass.Started
	}
	if err := p.c.commits.commit(p.key, pos); err != nil {
		return fmt.Errorf("commit delta token of %s %s: %w", p.mb.Address, p.view, err)
	}
	return nil
}

// clearStaleFailures forgets the recorded failures of a view whose pass completed. The token
// never passes a rejected message, so the completed window covered every one of them: a
// message that failed again would have kept the pass from completing, so what is left was
// deleted upstream and can never be retried.
func (p *viewPass) clearStaleFailures() {
	if len(p.failedID) == 0 {
		return
	}
	fails, err := p.c.store.Failures(&p.key)
	if err != nil {
		p.log.Error().Err(err).Msg("read recorded failures")
		return
	}
	for _, f := range fails {
		if err := p.c.store.ClearFailure(f.DocID); err != nil {
			p.log.Error().Err(err).Str("doc_id", f.DocID).Msg("clear recorded failure")
		}
	}
}

// sweep removes the documents of this mailbox view that the completed full pass did not write.
func (p *viewPass) sweep(ctx context.Context) (int64, error) {
	if err := p.c.queries.Acquire(ctx, 1); err != nil {
		return 0, err
	}
	defer p.c.queries.Release(1)
	if err := p.c.idx.Refresh(ctx); err != nil {
		return 0, fmt.Errorf("refresh before sweep: %w", err)
	}
	f := index.Filter{Terms: map[string]string{index.FieldMailbox: p.mb.Address, index.FieldView: p.view}, GenerationBelow: p.pass.Generation}
	var total int64
	for _, k := range []index.Kind{index.Attachments, index.Messages} {
		n, err := p.c.idx.DeleteWhere(ctx, k, f)
		total += n
		if err != nil {
			return total, fmt.Errorf("sweep documents older than generation %d: %w", p.pass.Generation, err)
		}
	}
	p.c.counts.deleted.Add(total)
	return total, nil
}

// page handles one listed page: skip what needs no write, hand the rest to the fetch workers.
// It returns once every message of the page is registered in the tracker and handed over,
// which may wait for room in the window of messages in flight.
func (p *viewPass) page(ctx context.Context, msgs []api.MessageSummary, fetch chan<- fetchJob) error {
	c := p.c
	var exists map[string]bool
	if !p.pass.Full {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = MessageDocID(p.mb.Address, p.view, m.ID)
		}
		if err := c.queries.Acquire(ctx, 1); err != nil {
			return err
		}
		var err error
		exists, err = c.idx.Existing(ctx, index.Messages, ids)
		c.queries.Release(1)
		if err != nil {
			return fmt.Errorf("check which listed messages are indexed: %w", err)
		}
	}
	for _, m := range msgs {
		received, ok := receivedTime(m.Received)
		if !ok {
			received = time.Time{} // unknown: the tracker leaves its ordering check alone
		}
		seq, err := p.tr.add(ctx, received)
		if err != nil {
			return err
		}
		docID := MessageDocID(p.mb.Address, p.view, m.ID)
		switch {
		case m.ID == "":
			p.invalid(m, seq, "listed without an id")
		case !ok:
			p.invalid(m, seq, fmt.Sprintf("listed with an unreadable received time %q", truncate(m.Received, 64)))
		case firstMatch(c.opts.ExcludeSubjects, m.Subject) >= 0:
			c.counts.excluded.Add(1)
			p.tr.finish(seq, true)
		case exists[docID] && !p.failedID[m.ID]:
			c.counts.skipped.Add(1)
			p.tr.finish(seq, true)
		default:
			p.fetching.Add(1)
			select {
			case fetch <- fetchJob{p: p, m: m, seq: seq, received: received}:
			case <-ctx.Done():
				p.fetchEnded()
				p.tr.finish(seq, false) // never fetched: the checkpoint stays before it
				return ctx.Err()
			}
		}
	}
	if c.opts.Now().Sub(p.lastSave) >= c.opts.CheckpointInterval {
		if err := p.save(); err != nil {
			// A checkpoint that cannot be written stops the view: going on would fetch what
			// the next run has to fetch again anyway.
			return err
		}
		p.log.Debug().Time("resume_point", p.pass.Low).Msg("resume point committed")
	}
	return nil
}

// invalid fails a listed message that lacks what the crawler needs: it is counted, recorded as
// a failure (so that `status` shows it) and blocks the checkpoint, so the next run lists it
// again and retries.
func (p *viewPass) invalid(m api.MessageSummary, seq int64, reason string) {
	c := p.c
	c.counts.invalid.Add(1)
	p.log.Warn().Str("message_id", truncate(m.ID, 128)).Str("reason", reason).Msg("listed message cannot be crawled")
	f := state.Failure{Key: p.key, DocID: MessageDocID(p.mb.Address, p.view, m.ID), MessageID: m.ID,
		Reason: reason, At: c.opts.Now().UTC()}
	if err := c.store.RecordFailure(f); err != nil {
		p.log.Error().Err(err).Msg("record failed message")
	}
	p.tr.finish(seq, false)
}

// truncate cuts s to at most n bytes, for logs and reasons that quote data from the API.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
