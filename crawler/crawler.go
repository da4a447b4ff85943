package crawler

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/mimecrawl/mimecrawl/index"
)

// Options are the crawl settings, already validated and compiled by package config.
type Options struct {
	Views           []string
	StartDate       time.Time
	ExcludeSubjects []*regexp.Regexp
	BlankSubject    string

	ExtractAttachments bool
	ExcludeNames       []*regexp.Regexp
	BlankName          string
	MaxAttachmentBytes int64
	// AttachmentPipeline routes attachment documents through the cluster's ingest pipeline
	// (the cluster has the attachment processor); otherwise text types are extracted here.
	AttachmentPipeline bool
	MaxTextBytes       int

	PageSize           int
	Mailboxes          int // mailbox views crawled at once
	MessageWorkers     int // messages fetched at once within one mailbox view
	IndexQueries       int // Elasticsearch queries and sweeps at once
	DeltaTokenOffset   time.Duration
	CheckpointInterval time.Duration
	// MaxInflight bounds the messages of one mailbox view that are fetched but not yet
	// acknowledged, and so the memory of a pass.
	MaxInflight int
	// ShutdownGrace is how long a stopping pass waits for acknowledgements of what it sent.
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
}

func (o *Options) defaults() {
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Mailboxes <= 0 {
		o.Mailboxes = 4
	}
	if o.MessageWorkers <= 0 {
		o.MessageWorkers = 2
	}
	if o.IndexQueries <= 0 {
		o.IndexQueries = 2
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 5 * time.Second
	}
	if o.MaxInflight <= 0 {
		// Acknowledgements come when the bulk indexer flushes: by size (flush_bytes) or, failing
		// that, by time (flush_interval, 1 s by default). Too few messages in flight never fill
		// a flush, and then every view waits a whole interval per batch; the bulk indexer's
		// own buffers, not this count, are what bound memory.
		o.MaxInflight = max(10*o.PageSize, 1000)
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 30 * time.Second
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 1 << 20
	}
	if o.BlankSubject == "" {
		o.BlankSubject = "(no subject)"
	}
	if o.BlankName == "" {
		o.BlankName = "unnamed-attachment"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Views) == 0 {
		o.Views = []string{"INBOX", "SENT"}
	}
}

// maxFinishing bounds the views waiting for acknowledgements at once.
const maxFinishing = 256

// Crawler crawls mailbox views into the index. One Crawler serves one run.
type Crawler struct {
	arc     Archive
	idx     Index
	sink    Sink
	store   Store
	opts    Options
	log     zerolog.Logger
	queries *semaphore.Weighted
	ready   *handoff
	commits *committer
	// finishing bounds the views that wait for their acknowledgements and commit: a view that
	// took no time to list (nothing new) must not let thousands of them pile up in memory.
	finishing *semaphore.Weighted
	counts    counters
}

// New returns a crawler. The sink must outlive Run: Run returns once every pass has committed
// what was acknowledged, and the caller then closes the sink.
func New(arc Archive, idx Index, sink Sink, store Store, opts Options) *Crawler {
	opts.defaults()
	c := &Crawler{arc: arc, idx: idx, sink: sink, store: store, opts: opts, log: opts.Logger,
		queries: semaphore.NewWeighted(int64(opts.IndexQueries))}
	c.ready = newHandoff(c.addMessageDoc)
	c.commits = newCommitter(store)
	c.finishing = semaphore.NewWeighted(maxFinishing)
	return c
}

// counters are the run's totals, updated from many goroutines.
type counters struct {
	messages, skipped, excluded, attachments, oversize, attExcluded atomic.Int64
	bytes, docsFailed, fetchFailed, malformed, deleted              atomic.Int64
	fromMessage                                                     atomic.Int64
}

// ViewResult is the outcome of one mailbox view.
type ViewResult struct {
	Mailbox  string    `json:"mailbox"`
	View     string    `json:"view"`
	Full     bool      `json:"full"`
	Complete bool      `json:"complete"`
	Resumed  bool      `json:"resumed"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Messages int64     `json:"messages"`
	Deleted  int64     `json:"deleted"`
	Failed   int       `json:"failed"`
	Error    string    `json:"error,omitempty"`
}

// Run crawls every view of every mailbox, Options.Mailboxes views at a time. A failing view does
// not stop the others; its error is in its result. Run returns when every view has finished or,
// after ctx is cancelled, has committed what was acknowledged.
func (c *Crawler) Run(ctx context.Context, mailboxes []Mailbox, progress func(done, total int)) []ViewResult {
	defer c.commits.close()
	defer c.ready.close()
	total := len(mailboxes) * len(c.opts.Views)
	results := make([]ViewResult, 0, total)
	if progress != nil {
		progress(0, total)
	}
	var mu sync.Mutex
	var finishing sync.WaitGroup
	g := new(errgroup.Group)
	g.SetLimit(c.opts.Mailboxes)
	for _, mb := range mailboxes {
		for _, view := range c.opts.Views {
			if ctx.Err() != nil {
				break
			}
			g.Go(func() error {
				finish := c.crawlView(ctx, mb, view)
				// Not ctx: a stopping run still commits what was acknowledged.
				_ = c.finishing.Acquire(context.Background(), 1)
				finishing.Add(1)
				go func() {
					defer finishing.Done()
					defer c.finishing.Release(1)
					r := finish()
					mu.Lock()
					results = append(results, r)
					done := len(results)
					mu.Unlock()
					if progress != nil {
						progress(done, total)
					}
				}()
				return nil
			})
		}
	}
	_ = g.Wait()
	finishing.Wait()
	return results
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
	}
}

// Totals are the documents and bytes of a run.
type Totals struct {
	Messages         int64 `json:"messages_indexed"`
	Skipped          int64 `json:"messages_already_indexed"`
	ExcludedSubjects int64 `json:"messages_excluded_by_subject"`
	Attachments      int64 `json:"attachments_indexed"`
	Oversize         int64 `json:"attachments_oversize"`
	ExcludedNames    int64 `json:"attachments_excluded_by_name"`
	Bytes            int64 `json:"bytes_downloaded"`
	DocsFailed       int64 `json:"documents_failed"`
	FetchFailed      int64 `json:"messages_fetch_failed"`
	MalformedBodies  int64 `json:"malformed_bodies"`
	Deleted          int64 `json:"documents_deleted"`
	// FromMessage counts attachments taken from the downloaded RFC 822 message (digest matched)
	// rather than downloaded on their own.
	FromMessage int64 `json:"attachments_from_message"`
}

// handoff queues message documents whose attachments are acknowledged and adds them to the
// sink from its own goroutine. Acknowledgement callbacks run on the bulk indexer's workers;
// adding from there could wait for queue space that only those same workers free, so the
// callback only appends to this unbounded queue (bounded in practice by Options.MaxInflight).
type handoff struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*unit
	closed bool
	done   chan struct{}
}

func newHandoff(add func(*unit)) *handoff {
	h := &handoff{done: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	go func() {
		defer close(h.done)
		for {
			h.mu.Lock()
			for len(h.queue) == 0 && !h.closed {
				h.cond.Wait()
			}
			if len(h.queue) == 0 {
				h.mu.Unlock()
				return
			}
			u := h.queue[0]
			h.queue[0] = nil
			h.queue = h.queue[1:]
			h.mu.Unlock()
			add(u)
		}
	}()
	return h
}

func (h *handoff) push(u *unit) {
	h.mu.Lock()
	h.queue = append(h.queue, u)
	h.mu.Unlock()
	h.cond.Signal()
}

func (h *handoff) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Broadcast()
	<-h.done
}

// errPermanentDoc marks a document Elasticsearch rejected for good.
var errPermanentDoc = errors.New("rejected by Elasticsearch")

func docError(r index.Result) error {
	if r.Permanent {
		return fmt.Errorf("%w: status %d: %s", errPermanentDoc, r.Status, r.Reason)
	}
	return r.Err
}
