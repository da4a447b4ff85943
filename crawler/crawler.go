package crawler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/internal/rule"
	"github.com/mimecrawl/mimecrawl/state"
)

// Options are the crawl settings, already validated and compiled by package config.
type Options struct {
	Views           []string
	StartDate       time.Time
	ExcludeSubjects []rule.Regexp
	BlankSubject    string

	// MessageDetail also calls get-message-detail for every message fetched, for what only the
	// detail has: the envelope sender as Mimecast saw it, the smash and Mimecast's attachment
	// ids. Without it a message costs one quota-counted call (get-file), and its documents are
	// built from the RFC 822 message alone; either way the documents are the same otherwise.
	MessageDetail bool

	ExtractAttachments bool
	ExcludeNames       []rule.Regexp
	BlankName          string
	MaxAttachmentBytes int64
	// AttachmentPipeline routes attachment documents through the cluster's ingest pipeline
	// (the cluster has the attachment processor); otherwise text types are extracted here.
	AttachmentPipeline bool
	MaxTextBytes       int
	// NoAttachmentText indexes attachments (without the pipeline) with metadata only.
	NoAttachmentText bool
	// MaxAttachmentTextChars caps the text extracted from one attachment. MaxTextBytes caps
	// what the message document carries of all its attachments' text together.
	MaxAttachmentTextChars int
	// AttachmentTextTimeout bounds the extraction of one attachment.
	AttachmentTextTimeout time.Duration

	PageSize int
	// ListingSlots is the mailbox views listed at once (one mailbox and view each). A view's
	// slot is free for the next view as soon as its listing ends, while its last messages are
	// still fetched.
	ListingSlots int
	// MessageWorkers is the fetch workers per listing slot: Fetchers() messages are fetched at
	// once, from whichever views have them listed, so a view's list calls and its last
	// messages overlap with the fetches of others instead of leaving workers idle.
	MessageWorkers     int
	IndexQueries       int // Elasticsearch queries and sweeps at once
	DeltaTokenOffset   time.Duration
	CheckpointInterval time.Duration
	// MessagesInFlight bounds the messages listed and not yet acknowledged (queued for a fetch,
	// being fetched, or sent and awaiting Elasticsearch), across all views of the run: what a
	// run holds in memory, whatever the number of views and the size of the mailboxes. One
	// view may use all of it.
	MessagesInFlight int
	// ShutdownGrace is how long a stopping pass waits for acknowledgements of what it sent: the
	// acknowledgement part of the run's grace (job.AckGrace of performance.shutdown_grace).
	// Zero: a stopping pass does not wait.
	ShutdownGrace time.Duration

	// Full ignores delta tokens: every kept mailbox view is crawled from StartDate and, once its
	// pass completes, documents it did not see are removed.
	Full bool
	// FullSince is when the full re-crawl began (Store.FullSince). A view whose last full pass
	// started at or after it is done already: an interrupted re-crawl that is started again
	// goes on with the views it has not finished, instead of starting over. Zero: every view.
	FullSince time.Time

	Now    func() time.Time
	Logger zerolog.Logger

	// Limits bounds the cost of one message (download size, attachment bytes in memory).
	Limits MessageLimits

	// InternalDomains are the account's internal domains, all of them whatever the rules keep
	// (Enumeration.InternalDomains): mail whose author, envelope sender and recipients are all
	// in them is indexed with email.direction internal (index.Organisation). Empty: the view
	// alone decides the direction.
	InternalDomains []string
}

// needAttachmentBytes tells whether attachment documents carry more than metadata: text the
// crawler extracts, or the file for the ingest pipeline.
func (o *Options) needAttachmentBytes() bool { return o.AttachmentPipeline || !o.NoAttachmentText }

// Fetchers is the fetch workers of a run, ListingSlots × MessageWorkers: the messages fetched
// at once and so, one request per message at a time, the bound on archive requests in flight
// (job.ArchiveConcurrency). The one place the product is computed.
func (o Options) Fetchers() int { return o.ListingSlots * o.MessageWorkers }

// DefaultOptions returns the crawl's defaults. They are the defaults of the settings that map
// to them (config.Default takes them from here, docs/configuration.md states them and a test
// holds the three together). New gives a count or a duration left at zero its default where
// zero has no meaning; where it has one it is taken as is: "" for a blank label leaves the
// field empty, a zero ShutdownGrace does not wait, a zero MaxAttachmentBytes indexes every
// attachment with its metadata only, a zero StartDate or DeltaTokenOffset is no bound and no
// overlap (Limits has its own zero rule, see MessageLimits).
func DefaultOptions() Options {
	return Options{
		Views:                  []string{api.ViewInbox, api.ViewSent},
		StartDate:              time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		BlankSubject:           "(no subject)",
		BlankName:              "unnamed-attachment",
		MaxAttachmentBytes:     25 * 1000 * 1000,
		MaxTextBytes:           1 << 20,
		MaxAttachmentTextChars: body.DefaultMaxTextChars,
		AttachmentTextTimeout:  30 * time.Second,
		PageSize:               100,
		// 8 × 8: up to 64 messages fetched at once, so up to 64 archive requests in flight,
		// enough to hide 300 ms per request at some 100 messages/s (Little's law: two requests
		// per message); with adaptive concurrency only as many are used as pay. Each message
		// being fetched holds up to Limits.KeepMemory of attachments (worst case 64 × 16 MiB,
		// typically a few MB in all).
		ListingSlots:       8,
		MessageWorkers:     8,
		IndexQueries:       2,
		DeltaTokenOffset:   -15 * time.Minute,
		CheckpointInterval: 5 * time.Second,
		// A view that finds the window full makes the flusher send what is queued (see
		// flusher), so acknowledgements come back within a bulk round trip or two: at about
		// 0.3 s for both, 250 messages carry some 800 messages/s. A larger window buys little
		// more on a busy machine and holds more in memory: peak RSS grew 59% from 10,000 to
		// 60,000 messages with 1,000, 6% with 250.
		MessagesInFlight: 250,
		Limits:           MessageLimits{MaxMessageBytes: DefaultMaxMessageBytes, KeepMemory: body.DefaultKeepMemory},
	}
}

// defaults gives every option left at zero that has a default its default (see DefaultOptions).
func (o *Options) defaults() {
	d := DefaultOptions()
	fill(&o.PageSize, d.PageSize)
	fill(&o.ListingSlots, d.ListingSlots)
	fill(&o.MessageWorkers, d.MessageWorkers)
	fill(&o.IndexQueries, d.IndexQueries)
	fill(&o.MessagesInFlight, d.MessagesInFlight)
	fill(&o.MaxTextBytes, d.MaxTextBytes)
	fill(&o.MaxAttachmentTextChars, d.MaxAttachmentTextChars)
	fill(&o.CheckpointInterval, d.CheckpointInterval)
	fill(&o.AttachmentTextTimeout, d.AttachmentTextTimeout)
	if len(o.Views) == 0 {
		o.Views = d.Views
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// fill gives *v, a count or a duration with no meaning at zero or below, def when it has none.
func fill[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// maxFinishing bounds the views that wait for their acknowledgements and commit, beyond those
// that hold a fetch slot: a view that took no time to list (nothing new) must not let thousands
// of them pile up in memory.
const maxFinishing = 256

// forbiddenStreak is how many calls in a row of one endpoint of the message path (list,
// detail, get-file), across the run and with no success of that endpoint in between, may be
// refused with 403 before the run ends. A missing permission refuses every call alike, so a
// streak says "every message" without a probe; the few calls it costs are the proof. A single
// message refused among successes (not seen in practice; inferred possible) only fails that
// message.
const forbiddenStreak = 5

// Crawler crawls mailbox views into the index. One Crawler serves one run: New only wires it;
// Run starts every goroutine and returns after all of them ended.
type Crawler struct {
	arc     Archive
	idx     Index
	sink    Sink
	store   Store
	opts    Options
	log     zerolog.Logger
	org     *index.Organisation // Options.InternalDomains
	queries *semaphore.Weighted // Elasticsearch queries and sweeps at once
	slots   *semaphore.Weighted // views listing at once (Options.ListingSlots)
	live    *semaphore.Weighted // views started and not yet returned
	window  *semaphore.Weighted // messages in flight in the run (Options.MessagesInFlight)
	ready   *handoff
	flush   *flusher
	commits *committer
	counts  counters
	started atomic.Bool

	// Set by Run before any goroutine starts. The run's contexts are not kept here: Run
	// passes them down (see doc.go, Contexts); trip closes over the work context.
	fetch chan<- fetchJob // listed messages to the fetch workers
	trip  func(error)     // ends the work of the run for a reason that applies to every view
	// forbidden counts 403s in a row per endpoint of the message path; see forbiddenStreak.
	forbidden [epCount]atomic.Int64
}

// New returns a crawler. It starts nothing. The sink must outlive Run: Run returns once every
// pass has committed what was acknowledged, and the caller then closes the sink.
func New(arc Archive, idx Index, sink Sink, store Store, opts Options) *Crawler {
	opts.defaults()
	c := &Crawler{idx: idx, store: store, opts: opts, log: opts.Logger,
		org:     index.NewOrganisation(opts.InternalDomains...),
		queries: semaphore.NewWeighted(int64(opts.IndexQueries)),
		slots:   semaphore.NewWeighted(int64(opts.ListingSlots)),
		live:    semaphore.NewWeighted(int64(opts.ListingSlots + maxFinishing)),
		window:  semaphore.NewWeighted(int64(opts.MessagesInFlight))}
	c.arc = guardedArchive{arc: arc, c: c}
	c.sink = guardedSink{sink: sink, c: c}
	c.flush = newFlusher(sink, func(err error) { c.log.Debug().Err(err).Msg("flush for a waiting view failed") })
	c.ready = newHandoff(c.addMessageDoc)
	c.trip = func(error) {} // replaced by Run
	c.commits = newCommitter(store)
	return c
}

// counters are the run's totals, updated from many goroutines.
type counters struct {
	messages, skipped, excluded, attachments, oversize, attExcluded atomic.Int64
	bytes, docsFailed, fetchFailed, malformed, deleted              atomic.Int64
	fromMessage, notIndexed, invalid, textFailed                    atomic.Int64
	listed, viewsListed                                             atomic.Int64
	textMisses                                                      textMisses
}

// ViewResult is the outcome of one mailbox view.
type ViewResult struct {
	Mailbox  string    `json:"mailbox"`
	View     string    `json:"view"`
	Full     bool      `json:"full"`
	Outcome  Outcome   `json:"outcome"`
	Resumed  bool      `json:"resumed"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Messages int64     `json:"messages"`
	Deleted  int64     `json:"deleted"`
	Failed   int       `json:"failed"`
	// Err says why the view did not complete; nil when Outcome is Complete.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

func (r *ViewResult) end(o Outcome, err error) {
	r.Outcome, r.Err = o, err
	if err != nil {
		r.Error = err.Error()
	}
}

// Run crawls every view of every mailbox, Options.ListingSlots views at a time. A failing view does
// not stop the others; its outcome and error are in its result. The error Run returns is the
// reason the run ended early on its own (ErrIndexUnreachable, ErrForbidden), nil otherwise;
// cancelling ctx is the caller's own reason and is not returned.
//
// Run returns when every view has finished or, after ctx is cancelled (or a circuit breaker
// tripped), when every started view has waited at most ShutdownGrace for the acknowledgements
// of what it sent and committed what was acknowledged. Views not started are not in the
// results. Run may be called once.
func (c *Crawler) Run(ctx context.Context, mailboxes []Mailbox, progress func(done, total int)) ([]ViewResult, error) {
	if !c.started.CompareAndSwap(false, true) {
		return nil, errors.New("crawler: Run called twice")
	}
	// work ends when the caller cancels or a breaker trips: no new listing or fetching.
	work, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// grace carries what must still happen once work ended: sending the documents of fetched
	// messages and hearing their acknowledgements. It ends ShutdownGrace after work, or when
	// every view has returned.
	grace, endGrace := context.WithCancel(context.WithoutCancel(ctx))
	defer endGrace()
	c.trip = func(err error) {
		stop(err)
		if context.Cause(work) == err { // the first reason wins
			c.log.Error().Err(err).Msg("stopping the run")
		}
	}

	// None of the run's goroutines fails: each reports through the views' results, so they
	// are WaitGroups, not errgroups.
	viewsDone := make(chan struct{})
	var services sync.WaitGroup
	services.Go(c.commits.run)
	services.Go(func() { c.ready.run(grace) })
	services.Go(func() { c.flush.run(grace) })
	if !c.opts.AttachmentPipeline && !c.opts.NoAttachmentText {
		// The PDF engine starts while the first pages are listed, not inside the first PDF's
		// text timeout (compiling it takes seconds on a machine's first run).
		services.Go(func() {
			if err := body.WarmUp(); err != nil {
				c.log.Warn().Err(err).Msg("pdf engine did not start; pdf text is read by the fallback reader")
			}
		})
	}
	services.Go(func() {
		select {
		case <-work.Done():
		case <-viewsDone:
			return
		}
		t := time.NewTimer(c.opts.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			c.log.Warn().Dur("grace", c.opts.ShutdownGrace).Msg("shutdown grace over: no longer waiting for acknowledgements")
			endGrace()
		case <-viewsDone:
		}
	})

	// The fetch workers serve every view; they end once the views are done and the queue is
	// closed. A job still queued when the work context ended fails at once: its view has
	// stopped waiting for it or waits within the grace.
	workers := c.opts.Fetchers()
	fetch := make(chan fetchJob, workers)
	c.fetch = fetch
	var fetchers sync.WaitGroup
	for range workers {
		fetchers.Go(func() {
			for j := range fetch {
				j.p.message(work, grace, j.m, j.seq, j.received)
				j.p.fetchEnded()
			}
		})
	}

	total := len(mailboxes) * len(c.opts.Views)
	results := make([]ViewResult, 0, total)
	if progress != nil {
		progress(0, total)
	}
	var mu sync.Mutex
	var views sync.WaitGroup
dispatch:
	for _, mb := range mailboxes {
		for _, view := range c.opts.Views {
			if err := c.live.Acquire(work, 1); err != nil {
				break dispatch
			}
			if err := c.slots.Acquire(work, 1); err != nil {
				c.live.Release(1)
				break dispatch
			}
			views.Go(func() {
				defer c.live.Release(1)
				r := c.crawlView(work, grace, mb, view) // releases the fetch slot when its listing ends
				mu.Lock()
				results = append(results, r)
				done := len(results)
				mu.Unlock()
				if progress != nil {
					progress(done, total)
				}
			})
		}
	}
	views.Wait()
	close(fetch)
	fetchers.Wait()
	close(viewsDone)
	endGrace()
	c.commits.close()
	services.Wait()
	if err := context.Cause(work); err != nil && ctx.Err() == nil {
		return results, err
	}
	return results, nil
}

// guardedArchive is the run's view of the archive: per endpoint it counts 403s in a row and
// trips the run's breaker at forbiddenStreak (see ErrForbidden). A success of an endpoint
// resets only its own streak: each endpoint needs its own permission.
type guardedArchive struct {
	arc Archive
	c   *Crawler
}

// Endpoints whose 403 streaks are counted apart.
const (
	epList = iota
	epDetail
	epFile
	epCount
)

func (g guardedArchive) observe(ep int, err error) {
	streak := &g.c.forbidden[ep]
	switch {
	case err == nil:
		streak.Store(0)
	case mimecast.IsForbidden(err):
		// At or beyond: every call past the threshold trips (the first reason wins), so the run
		// stops at the next refusal even if the goroutine that reached it is slow to act.
		if n := streak.Add(1); n >= forbiddenStreak {
			g.c.trip(fmt.Errorf("%w: %d calls in a row refused; last: %w", ErrForbidden, n, err))
		}
	}
}

func (g guardedArchive) ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func([]api.MessageSummary) error) error {
	err := g.arc.ListMessages(ctx, f, pageSize, func(page []api.MessageSummary) error {
		g.observe(epList, nil) // a page came: the listing permission is there
		return fn(page)
	})
	g.observe(epList, err)
	return err
}

func (g guardedArchive) MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error) {
	d, err := g.arc.MessageDetail(ctx, id)
	g.observe(epDetail, err)
	return d, err
}

func (g guardedArchive) GetFile(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := g.arc.GetFile(ctx, id)
	g.observe(epFile, err)
	return rc, err
}

// guardedSink is the run's view of the sink. Its callers send on the run's grace context (see
// Run), not the work context: a stopping run still sends what it fetched, and nothing waits
// past the grace. A result that says the whole bulk request failed (status 0, not permanent: the
// client's retries are spent) trips the run's breaker (see ErrIndexUnreachable).
type guardedSink struct {
	sink Sink
	c    *Crawler
}

func (g guardedSink) Add(ctx context.Context, d index.Doc, done func(index.Result)) error {
	err := g.sink.Add(ctx, d, func(r index.Result) {
		if unreachable(r) {
			g.c.trip(fmt.Errorf("%w: %w", ErrIndexUnreachable, r.Err))
		}
		done(r)
	})
	if err == nil {
		g.c.flush.noteAdd()
	}
	return err
}

// Flush is the flusher's alone; the crawler's own code never calls it through the guard.
func (g guardedSink) Flush(ctx context.Context) error { return g.sink.Flush(ctx) }

// unreachable reports whether a result says Elasticsearch was not reached at all, as opposed to
// a document it refused.
func unreachable(r index.Result) bool {
	return r.Err != nil && !r.Permanent && r.Status == 0
}

// Totals returns the run's counters so far; safe to call while Run runs.
func (c *Crawler) Totals() Totals {
	return Totals{
		Messages: c.counts.messages.Load(), Skipped: c.counts.skipped.Load(),
		ExcludedSubjects: c.counts.excluded.Load(), Attachments: c.counts.attachments.Load(),
		Oversize: c.counts.oversize.Load(), ExcludedNames: c.counts.attExcluded.Load(),
		Bytes: c.counts.bytes.Load(), DocsFailed: c.counts.docsFailed.Load(),
		FetchFailed: c.counts.fetchFailed.Load(), MalformedBodies: c.counts.malformed.Load(),
		Deleted: c.counts.deleted.Load(), FromMessage: c.counts.fromMessage.Load(),
		NotIndexed: c.counts.notIndexed.Load(), InvalidListed: c.counts.invalid.Load(),
		TextFailed: c.counts.textFailed.Load(), TextMisses: c.counts.textMisses.list(),
		Listed: c.counts.listed.Load(), ViewsListed: c.counts.viewsListed.Load(),
	}
}

// Totals are the documents and bytes of a run; the type, its JSON names and what each
// count means are the state file's record of them.
type Totals = state.Totals

// handoff queues message documents whose attachments are acknowledged and adds them to the
// sink from its own goroutine (run, started by Crawler.Run). Acknowledgement callbacks run on the
// bulk indexer's workers; adding from there could wait for queue space that only those same
// workers free, so the callback only appends to this unbounded queue (bounded in practice by
// Options.MessagesInFlight).
type handoff struct {
	add   func(context.Context, *unit) // called with the context run was given
	mu    sync.Mutex
	queue []*unit
	wake  chan struct{} // one pending wake-up; push never blocks
}

func newHandoff(add func(context.Context, *unit)) *handoff {
	return &handoff{add: add, wake: make(chan struct{}, 1)}
}

// run adds queued documents until ctx ends. What is still queued then belongs to views that
// gave up waiting; it is dropped, and the next run fetches those messages again.
func (h *handoff) run(ctx context.Context) {
	for {
		h.mu.Lock()
		var u *unit
		if len(h.queue) > 0 {
			u = h.queue[0]
			h.queue[0] = nil
			h.queue = h.queue[1:]
		}
		h.mu.Unlock()
		if u != nil {
			h.add(ctx, u)
			continue
		}
		select {
		case <-h.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (h *handoff) push(u *unit) {
	h.mu.Lock()
	h.queue = append(h.queue, u)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func docError(r index.Result) error {
	if r.Permanent {
		return fmt.Errorf("%w: status %d: %s", errPermanentDoc, r.Status, r.Reason)
	}
	return r.Err
}
