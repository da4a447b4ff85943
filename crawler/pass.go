package crawler

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

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

// crawlView lists and fetches one mailbox view, and returns the rest of the pass: waiting for
// the acknowledgements of what was sent, the sweep of a full pass, and the commit. The caller
// runs that part outside its worker slot: the last documents of a view wait for the bulk
// indexer's next flush, and a slot held for that wait is a slot not fetching.
func (c *Crawler) crawlView(ctx context.Context, mb Mailbox, view string) func() ViewResult {
	key := state.Key{Mailbox: mb.Address, View: view}
	log := c.log.With().Str("mailbox", mb.Address).Str("view", view).Logger()
	res := ViewResult{Mailbox: mb.Address, View: view}
	fail := func(err error) func() ViewResult {
		res.Error = err.Error()
		if ctx.Err() == nil {
			log.Error().Err(err).Msg("mailbox view failed")
		}
		r := res
		return func() ViewResult { return r }
	}
	pos, _, err := c.store.Position(key)
	if err != nil {
		return fail(fmt.Errorf("read checkpoint: %w", err))
	}
	now := c.opts.Now().UTC().Truncate(time.Second)
	full := c.opts.Full && (c.opts.FullSince.IsZero() || pos.FullDone.Before(c.opts.FullSince.Truncate(time.Second)))
	p := &viewPass{c: c, mb: mb, view: view, key: key, pos: pos, tr: newTracker(), log: log, lastSave: now}
	if p.failedID, err = c.store.FailedMessageIDs(key); err != nil {
		return fail(fmt.Errorf("read recorded failures: %w", err))
	}
	switch {
	case pos.Pass != nil && (!full || pos.Pass.Full) && len(p.failedID) == 0:
		// An interrupted pass: carry on with its window, kind and generation.
		p.pass = *pos.Pass
		res.Resumed = true
	case pos.Pass != nil && (!full || pos.Pass.Full):
		// A pass held back by documents Elasticsearch rejected for good. Resuming its window
		// would retry them but never list what arrived since, so a new pass starts from the
		// delta token, which the failures kept in place: it retries them, skips what is
		// indexed, and takes in the new messages. Its kind and generation stay.
		p.pass = state.Pass{End: now, Full: pos.Pass.Full, Started: now, Generation: pos.Pass.Generation}
		log.Info().Int("failed_messages", len(p.failedID)).Msg("pass blocked by rejected documents: starting a new pass from the delta token")
	default:
		p.pass = state.Pass{End: now, Full: full, Started: now, Generation: pos.Generation}
		if full || pos.Generation == 0 {
			if p.pass.Generation, err = c.store.NextGeneration(); err != nil {
				return fail(fmt.Errorf("allocate crawl generation: %w", err))
			}
		}
	}
	res.Full = p.pass.Full
	from := c.opts.StartDate.UTC()
	if !p.pass.Full && !pos.Token.IsZero() {
		if t := pos.Token.Add(c.opts.DeltaTokenOffset); t.After(from) {
			from = t
		}
	}
	to := p.pass.End
	if !p.pass.Low.IsZero() {
		to = p.pass.Low
	}
	res.From, res.To = from, to
	if p.pass.Full && p.pass.Low.IsZero() {
		// A full pass must survive a kill as a full pass, so it is recorded before any work.
		if err := p.save(); err != nil {
			return fail(err)
		}
	}
	log.Debug().Time("from", from).Time("to", to).Bool("full", p.pass.Full).Bool("resumed", res.Resumed).Msg("pass start")

	var listErr error
	if !to.Before(from) {
		f := api.MessageListFilter{View: view, Mailbox: mb.Address, Start: api.FormatTime(from), End: api.FormatTime(to)}
		listErr = c.arc.ListMessages(ctx, f, c.opts.PageSize, func(page []api.MessageSummary) error {
			return p.page(ctx, page)
		})
	}
	return func() ViewResult { return p.finish(ctx, res, listErr, from, to, now) }
}

// finish waits for the pass's acknowledgements and commits what they cover.
func (p *viewPass) finish(ctx context.Context, res ViewResult, listErr error, from, to, now time.Time) ViewResult {
	fail := func(err error) ViewResult {
		res.Error = err.Error()
		if ctx.Err() == nil {
			p.log.Error().Err(err).Msg("mailbox view failed")
		}
		return res
	}
	failed := p.waitInflight(ctx)
	res.Messages = p.indexed.Load()
	res.Failed = failed
	var err error
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("stopped: %w", ctx.Err())
	case listErr != nil:
		err = fmt.Errorf("list messages %s..%s: %w", api.FormatTime(from), api.FormatTime(to), listErr)
	case failed > 0:
		err = fmt.Errorf("%d messages failed; the checkpoint stays before the first of them", failed)
	}
	if err != nil {
		if serr := p.save(); serr != nil {
			p.log.Error().Err(serr).Msg("save resume point")
		}
		return fail(err)
	}
	if p.pass.Full {
		n, err := p.sweep(ctx)
		res.Deleted = n
		if err != nil {
			_ = p.save()
			return fail(err)
		}
	}
	if err := p.complete(now); err != nil {
		return fail(err)
	}
	p.clearStaleFailures()
	res.Complete = true
	p.log.Info().Int64("documents", res.Messages).Int64("deleted", res.Deleted).Time("token", p.pass.End).Msg("checkpoint committed")
	return res
}

// waitInflight waits for every message of the pass to be answered. After cancellation it waits
// at most ShutdownGrace: what is still unanswered then is simply not covered by the checkpoint.
func (p *viewPass) waitInflight(ctx context.Context) int {
	done := make(chan int, 1)
	go func() { done <- p.tr.wait() }()
	select {
	case n := <-done:
		return n
	case <-ctx.Done():
	}
	select {
	case n := <-done:
		return n
	case <-time.After(p.c.opts.ShutdownGrace):
		p.log.Warn().Int("pending", p.tr.pending()).Msg("gave up waiting for acknowledgements")
		return p.tr.pending()
	}
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
	p.pos.Indexed = pos.Indexed - n // Indexed is cumulative; count this run once
	p.lastSave = p.c.opts.Now()
	return nil
}

// complete moves the delta token to the end of the pass and closes it.
func (p *viewPass) complete(now time.Time) error {
	pos := p.pos
	pos.Token = p.pass.End
	pos.Pass = nil
	pos.Generation = p.pass.Generation
	pos.LastRun = now
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
	f := index.Filter{Terms: map[string]string{"mailbox": p.mb.Address, "view": p.view}, GenerationBelow: p.pass.Generation}
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

// page handles one listed page: skip what needs no write, fetch the rest.
func (p *viewPass) page(ctx context.Context, msgs []api.MessageSummary) error {
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.MessageWorkers)
	for _, m := range msgs {
		if gctx.Err() != nil {
			break
		}
		p.tr.waitBelow(c.opts.MaxInflight)
		received, ok := receivedTime(m.Received)
		seq := p.tr.add(received)
		docID := MessageDocID(p.mb.Address, p.view, m.ID)
		switch {
		case !ok:
			c.counts.fetchFailed.Add(1)
			p.log.Warn().Str("message_id", m.ID).Str("received", m.Received).Msg("listed message has no valid received time")
			p.tr.finish(seq, false)
		case m.ID == "":
			c.counts.fetchFailed.Add(1)
			p.log.Warn().Msg("listed message has no id")
			p.tr.finish(seq, false)
		case firstMatch(c.opts.ExcludeSubjects, m.Subject) >= 0:
			c.counts.excluded.Add(1)
			p.tr.finish(seq, true)
		case exists[docID] && !p.failedID[m.ID]:
			c.counts.skipped.Add(1)
			p.tr.finish(seq, true)
		default:
			g.Go(func() error {
				p.message(gctx, m, seq, received)
				return nil
			})
		}
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.opts.Now().Sub(p.lastSave) >= c.opts.CheckpointInterval {
		if err := p.save(); err != nil {
			return err
		}
		p.log.Debug().Time("resume_point", p.pass.Low).Msg("resume point committed")
	}
	return nil
}
