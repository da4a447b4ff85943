package index

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/rs/zerolog"
)

// ErrClosed is returned by Add and Delete once Close has been called.
var ErrClosed = errors.New("index writer is closed")

// Doc is one document to index.
type Doc struct {
	Kind Kind
	// ID is the document id. It must derive from the source's ids, so that writing the same
	// source again overwrites instead of duplicating.
	ID   string
	Body any // encoded with encoding/json
	// Pipeline sends the document through the attachment pipeline. It is ignored when the
	// cluster has no attachment processor (the document is then indexed as is; its data field
	// is never stored, see the mapping).
	Pipeline bool
	// Op is how the document is written; the zero value indexes (overwrites).
	Op Op
}

// Result is the outcome of one document.
type Result struct {
	Err error // nil when Elasticsearch acknowledged the document
	// Permanent means that sending the same document again cannot succeed (a mapping or parsing
	// error, any other 4xx of the item). A failure that is not permanent may succeed on a later
	// run.
	Permanent bool
	Status    int    // the item's HTTP status; 0 when the whole request failed
	Reason    string // Elasticsearch's error type and reason, when it gave one
	// Existed means an OpCreate found the document already there (status 409): the write's
	// goal is met, so Err is nil.
	Existed bool
}

// WriterStats counts what a Writer did.
type WriterStats struct {
	Added    uint64 // documents accepted by Add and Delete
	Indexed  uint64 // documents acknowledged as indexed
	Deleted  uint64 // deletions acknowledged (including documents that were already gone)
	Failed   uint64 // documents that failed for good or for this run
	Retried  uint64 // re-queues of items answered 429
	Bytes    uint64 // bytes of bulk bodies sent
	Requests uint64 // bulk requests sent
	Flushes  uint64 // flushes asked for by a waiting caller (Flush), besides size and interval
	// Split counts bulk requests refused as too large (413) and sent again in parts;
	// TooLarge the documents refused so even on their own (failed Permanent, StatusTooLarge).
	Split    uint64
	TooLarge uint64
}

// Writer is the one bulk writer of a run, shared by every goroutine that produces documents.
// Documents are batched by an esutil.BulkIndexer; each gets its result through its own
// callback. Because an esutil item cannot name an ingest pipeline, documents for the attachment
// pipeline go through a second BulkIndexer configured with that pipeline; it exists only when
// the cluster has the processor.
type Writer struct {
	c          *Cluster
	log        zerolog.Logger
	plain      esutil.BulkIndexer
	piped      esutil.BulkIndexer // nil without the attachment processor
	maxRetries int
	backoff    func(attempt int) time.Duration

	// mu guards closed and adding. An esutil indexer panics when it is closed under a
	// concurrent Add, so Close refuses new documents first and then waits for the Adds in
	// progress (adding) before it closes the indexers. It never waits for them longer than its
	// own ctx: then it cancels abort, which every Add in progress also watches, and they return.
	mu     sync.Mutex
	closed bool
	adding sync.WaitGroup
	abort  context.Context
	stop   context.CancelFunc

	// retryMu guards stopping, which ends re-queueing once Close is past the point where a
	// re-queued item could still be flushed; retrying counts the goroutines that wait to
	// re-queue an item.
	retryMu  sync.Mutex
	stopping bool
	retrying sync.WaitGroup
	// giveUp is cancelled when Close stops waiting; it ends the backoff of waiting re-queues.
	giveUp context.Context
	cancel context.CancelFunc

	pending atomic.Int64 // documents accepted whose callback has not returned yet
	// inflight holds the documents accepted and not yet finished, so that a Close that gives up
	// can fail them at once instead of leaving their callbacks to a bulk request that may hang.
	inflightMu sync.Mutex
	inflight   map[*op]struct{}
	progress   chan struct{} // gets a token when a document finishes or is re-queued

	added, indexed, deleted, failed, retried atomic.Uint64
	flushes                                  atomic.Uint64 // calls of Flush that completed
	splits                                   splitCounts
}

// op is one document on its way through the writer.
type op struct {
	kind     Kind
	id       string
	action   string // "index" or "delete"
	body     []byte
	buf      *bytes.Buffer // holds body when it came from bodyBuffers; see recycle
	pipeline bool
	done     func(Result)
	attempt  int // re-queues so far
	// finished is set by the first finish; a later answer for the same op (after Close failed
	// it) is dropped, so that done runs exactly once.
	finished atomic.Bool
}

// NewWriter starts the bulk writer. Close it to flush and stop it.
func (c *Cluster) NewWriter() (*Writer, error) {
	w := &Writer{
		c:          c,
		log:        c.log,
		maxRetries: c.cfg.MaxItemRetries,
		backoff:    c.cfg.RetryBackoff,
		progress:   make(chan struct{}, 1),
		inflight:   map[*op]struct{}{},
	}
	w.giveUp, w.cancel = context.WithCancel(context.Background())
	w.abort, w.stop = context.WithCancel(context.Background())
	var err error
	if w.plain, err = c.newBulkIndexer("", &w.splits); err != nil {
		return nil, err
	}
	if c.AttachmentProcessor() {
		if w.piped, err = c.newBulkIndexer(c.PipelineName(), &w.splits); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (c *Cluster) newBulkIndexer(pipeline string, splits *splitCounts) (esutil.BulkIndexer, error) {
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        countingClient{next: performer{c, &bulkSplitter{next: c.es, log: c.log, counts: splits}}},
		Decoder:       bulkDecoder{},
		NumWorkers:    c.cfg.BulkWorkers,
		FlushBytes:    c.cfg.FlushBytes,
		FlushInterval: c.cfg.FlushInterval,
		Pipeline:      pipeline,
		OnError: func(_ context.Context, err error) {
			// Called once per failed request (each of its items also fails) and when an Add is
			// cancelled, which its caller hears about already.
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			c.log.Warn().Str("error", c.redact(err.Error())).Msg("bulk request failed")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start bulk indexer: %w", err)
	}
	return bi, nil
}

// The bulk indexer matches the items of an answer to the documents it sent by position and
// calls back only the items the answer lists: an answer with fewer items than the request sent
// would leave the last documents without a callback for ever (and one with more would panic).
// countingClient counts the actions of each bulk request and passes the count along with the
// answer's body to bulkDecoder, which turns a count that does not match into an error: the
// indexer then fails every document of the request.

// countingClient is the bulk indexers' client: it counts the actions of each request.
type countingClient struct{ next esapi.Transport }

func (c countingClient) Perform(req *http.Request) (*http.Response, error) {
	want := -1
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			want, err = countActions(body)
			_ = body.Close()
			if err != nil {
				want = -1
			}
		}
	}
	res, err := c.next.Perform(req)
	if err != nil || want < 0 || res == nil || res.Body == nil {
		return res, err
	}
	res.Body = &countedBody{ReadCloser: res.Body, want: want}
	return res, nil
}

// countedBody is a bulk answer's body with the number of actions its request sent.
type countedBody struct {
	io.ReadCloser
	want int
}

// deleteMeta starts the action line of a delete, the one action without a source line.
var deleteMeta = []byte(`{"delete":`)

// countActions counts the actions of a bulk body as the bulk indexer writes it: one action
// line each, followed by a source line except for deletes. Encoded documents never hold a raw
// newline.
func countActions(r io.Reader) (int, error) {
	br := bufio.NewReader(r)
	n, source := 0, false
	for {
		head, _ := br.Peek(len(deleteMeta))
		if len(head) == 0 {
			return n, nil
		}
		if source {
			source = false
		} else {
			n++
			source = !bytes.HasPrefix(head, deleteMeta)
		}
		for {
			_, err := br.ReadSlice('\n')
			if err == nil {
				break
			}
			if err == io.EOF {
				return n, nil
			}
			if err != bufio.ErrBufferFull {
				return 0, err
			}
		}
	}
}

// bulkDecoder decodes a bulk answer and refuses one that does not list one item per action.
type bulkDecoder struct{}

func (bulkDecoder) UnmarshalFromReader(r io.Reader, blk *esutil.BulkIndexerResponse) error {
	if err := json.NewDecoder(r).Decode(blk); err != nil {
		return err
	}
	if cb, ok := r.(*countedBody); ok && len(blk.Items) != cb.want {
		return fmt.Errorf("bulk answer lists %d items for %d sent", len(blk.Items), cb.want)
	}
	return nil
}

// Add queues one document for indexing. done is called exactly once, from an indexer goroutine,
// when Elasticsearch has acknowledged the document (Result.Err is nil) or the document has
// failed. done must not block and must not call Add or Delete itself: it runs on the goroutine
// that drains the queue those would wait on. Add blocks while the indexer's queue is full. It returns an error,
// and done is not called, when the writer is closed, ctx ends first, or the body cannot be
// encoded.
func (w *Writer) Add(ctx context.Context, d Doc, done func(Result)) error {
	if !d.Kind.valid() {
		return fmt.Errorf("add document %q: %w", d.ID, errNoKind)
	}
	if d.ID == "" {
		return fmt.Errorf("add document to %s: empty id", w.c.IndexName(d.Kind))
	}
	action, err := d.Op.action()
	if err != nil {
		return fmt.Errorf("add document %s to %s: %w", d.ID, w.c.IndexName(d.Kind), err)
	}
	body, buf, err := encodeBody(d.Body)
	if err != nil {
		return fmt.Errorf("encode document %s for %s: %w", d.ID, w.c.IndexName(d.Kind), err)
	}
	o := &op{kind: d.Kind, id: d.ID, action: action, body: body, buf: buf, pipeline: d.Pipeline, done: done}
	if err := w.enqueue(ctx, o); err != nil {
		o.recycle() // not queued: nothing else holds the body
		return err
	}
	return nil
}

// bodyBuffers holds the buffers documents are encoded into. A document's bytes live until
// its answer (they are sent again after a 429), then its buffer is reused, unless it grew
// beyond maxPooledBody: one huge document does not keep its memory.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 256 << 10

// jsonAppender is a document that encodes itself: appendJSON appends to dst exactly the bytes
// json.Marshal would produce for it and returns the extended slice, or fails where
// json.Marshal fails. encoding/json's reflection and byte-wise escaping cost the crawler more
// CPU per document than writing its own two document types by hand.
type jsonAppender interface {
	appendJSON(dst []byte) ([]byte, error)
}

// encodeBody encodes v as json.Marshal does, into a buffer from bodyBuffers: json.Marshal
// copies its result into a new slice of the document's size, for every document.
//
// A buffer keeps the capacity of the largest document it ever held, so documents queued in
// their buffers would hold the memory of the largest documents of the run so far, which
// grows with the length of the run. A body that fills less than half of its buffer is
// therefore copied into a slice of its own size and the buffer goes back to the pool at once
// (buf is then nil); a body that fills most of it keeps it until recycle.
//
// Documents that are jsonAppenders (the archive's) encode themselves; anything else goes
// through encoding/json.
func encodeBody(v any) (body []byte, buf *bytes.Buffer, err error) {
	buf = bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	if a, ok := v.(jsonAppender); ok {
		b, err := a.appendJSON(buf.AvailableBuffer())
		if err != nil {
			bodyBuffers.Put(buf)
			return nil, nil, err
		}
		// The buffer takes b as its contents, also when append had to move b to a larger
		// array: that array is the one worth keeping.
		*buf = *bytes.NewBuffer(b)
	} else {
		if err := json.NewEncoder(buf).Encode(v); err != nil {
			bodyBuffers.Put(buf)
			return nil, nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode ends the value with a newline, Marshal does not
	}
	if buf.Cap() <= 2*buf.Len() {
		return buf.Bytes(), buf, nil
	}
	body = bytes.Clone(buf.Bytes())
	if buf.Cap() <= maxPooledBody {
		bodyBuffers.Put(buf)
	}
	return body, nil, nil
}

// recycle returns the op's buffer to bodyBuffers. It is called only where nothing can read
// the body any more: after the op's answer (the bulk indexer copied the body into its
// request when it took the item), or when the op was never queued; never when Close fails
// an op that may still wait in an indexer's queue.
func (o *op) recycle() {
	if o.buf != nil && o.buf.Cap() <= maxPooledBody {
		bodyBuffers.Put(o.buf)
	}
	o.buf, o.body = nil, nil
}

// Delete queues the deletion of one document, with the same contract as Add. A document that
// does not exist counts as deleted.
func (w *Writer) Delete(ctx context.Context, k Kind, id string, done func(Result)) error {
	if !k.valid() {
		return fmt.Errorf("delete document %q: %w", id, errNoKind)
	}
	if id == "" {
		return fmt.Errorf("delete document from %s: empty id", w.c.IndexName(k))
	}
	return w.enqueue(ctx, &op{kind: k, id: id, action: "delete", done: done})
}

// begin registers a call that uses the indexers (Add, Delete, Flush), which Close waits for
// before it closes them. The context it returns ends with ctx or when Close gives up waiting,
// whichever comes first; end must be called when the call is done.
func (w *Writer) begin(ctx context.Context) (actx context.Context, end func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, nil, ErrClosed
	}
	w.adding.Add(1)
	w.mu.Unlock()
	actx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(w.abort, cancel)
	return actx, func() { stop(); cancel(); w.adding.Done() }, nil
}

// callError is the error of a call begun with begin whose indexer call returned err.
func (w *Writer) callError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case w.abort.Err() != nil:
		return ErrClosed
	}
	return err
}

func (w *Writer) enqueue(ctx context.Context, o *op) error {
	// The indexer's Add waits on a full queue until its context ends, the caller's or Close's.
	// An Add that returns an error has not queued the item, so its callback never runs.
	actx, end, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	w.pending.Add(1)
	w.track(o, true)
	if err := w.submit(actx, o); err != nil {
		w.track(o, false)
		w.pending.Add(-1)
		return w.callError(ctx, fmt.Errorf("queue %s of %s in %s: %w", o.action, o.id, w.c.IndexName(o.kind), err))
	}
	w.added.Add(1)
	return nil
}

// submit hands the op to the right BulkIndexer; it may block on a full queue until ctx ends.
func (w *Writer) submit(ctx context.Context, o *op) error {
	bi := w.plain
	if o.pipeline && w.piped != nil {
		bi = w.piped
	}
	item := esutil.BulkIndexerItem{
		Index:      w.c.IndexName(o.kind),
		Action:     o.action,
		DocumentID: o.id,
		OnSuccess: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem) {
			if w.answered(o, r, nil) {
				o.recycle()
			}
		},
		OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
			if w.answered(o, r, err) {
				o.recycle()
			}
		},
	}
	if o.body != nil {
		item.Body = bytes.NewReader(o.body)
	}
	if o.action == "update" {
		item.RetryOnConflict = &updateConflictRetries
	}
	return bi.Add(ctx, item)
}

// answered finishes the op with its answer, classified by classifyItem (bulk.go). err !=
// nil means the whole request failed (after the client's own retries); otherwise the item was
// answered, acknowledged or refused. It reports whether it finished the op (rather than
// re-queueing it, or finding it finished by Close).
func (w *Writer) answered(o *op, r esutil.BulkIndexerResponseItem, err error) bool {
	where := w.c.IndexName(o.kind)
	if err != nil {
		return w.finish(o, Result{Err: fmt.Errorf("%s %s in %s: bulk request failed: %s", o.action, o.id, where, w.c.redact(err.Error()))})
	}
	it := w.c.classifyItem(o.action, r)
	if it.ok() {
		return w.finish(o, Result{Status: it.Status, Existed: it.Outcome == itemExisted})
	}
	if it.Outcome == itemBusy && o.attempt < w.maxRetries && w.requeue(o) {
		w.log.Debug().Str("index", where).Str("id", o.id).Int("attempt", o.attempt).Msg("bulk item rejected with 429; re-queued")
		return false
	}
	return w.finish(o, Result{
		Err:       fmt.Errorf("%s %s in %s: status %d: %s", o.action, o.id, where, it.Status, it.describe()),
		Permanent: it.Outcome == itemPermanent,
		Status:    it.Status,
		Reason:    it.describe(),
	})
}

// requeue sends the op again after a backoff, unless Close is already past the last flush.
func (w *Writer) requeue(o *op) bool {
	w.retryMu.Lock()
	if w.stopping {
		w.retryMu.Unlock()
		return false
	}
	w.retrying.Add(1)
	w.retryMu.Unlock()

	w.retried.Add(1)
	o.attempt++
	go func() {
		defer w.retrying.Done()
		t := time.NewTimer(w.backoff(o.attempt))
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.giveUp.Done():
			w.finish(o, Result{Err: fmt.Errorf("%s %s in %s: writer closed before retry %d", o.action, o.id, w.c.IndexName(o.kind), o.attempt)})
			return
		}
		if err := w.submit(w.giveUp, o); err != nil {
			w.finish(o, Result{Err: fmt.Errorf("%s %s in %s: re-queue: %w", o.action, o.id, w.c.IndexName(o.kind), err)})
			return
		}
		w.signal()
	}()
	return true
}

func (w *Writer) track(o *op, add bool) {
	w.inflightMu.Lock()
	defer w.inflightMu.Unlock()
	if add {
		w.inflight[o] = struct{}{}
	} else {
		delete(w.inflight, o)
	}
}

// finish ends the op with r, unless it has ended already; it reports whether it did.
func (w *Writer) finish(o *op, r Result) bool {
	if !o.finished.CompareAndSwap(false, true) {
		return false // Close failed it already
	}
	w.track(o, false)
	switch {
	case r.Err != nil:
		w.failed.Add(1)
	case o.action == "delete":
		w.deleted.Add(1)
	default:
		w.indexed.Add(1)
	}
	if o.done != nil {
		o.done(r)
	}
	o.body = nil
	// Only after the callback returned: Close promises that every callback has run.
	w.pending.Add(-1)
	w.signal()
	return true
}

func (w *Writer) signal() {
	select {
	case w.progress <- struct{}{}:
	default:
	}
}

func (w *Writer) indexers() []esutil.BulkIndexer {
	if w.piped != nil {
		return []esutil.BulkIndexer{w.plain, w.piped}
	}
	return []esutil.BulkIndexer{w.plain}
}

// Flush sends every document queued before the call at once, without waiting for the flush
// interval or a full request, and returns when Elasticsearch has answered them: their callbacks
// have run (documents re-queued after a 429 excepted), or ctx ended first. A caller that waits
// for acknowledgements calls it, so that its wait is one bulk round trip, not up to a flush
// interval. Flush on a closed writer returns ErrClosed; it is safe to call from any goroutine
// except a callback.
func (w *Writer) Flush(ctx context.Context) error {
	// Like an Add, a Flush in progress ends when Close gives up waiting.
	fctx, end, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	for _, bi := range w.indexers() {
		if err := bi.Flush(fctx); err != nil {
			return w.callError(ctx, fmt.Errorf("flush bulk requests: %w", err))
		}
	}
	w.flushes.Add(1)
	return nil
}

// Close refuses further documents, waits for the Adds in progress, flushes everything queued,
// waits for re-queued items and for every callback, and stops the indexers. Every callback has
// run when Close returns. If ctx ends first, Close returns its error promptly, even while a bulk
// request hangs: Adds still waiting for room return ErrClosed, and every document not yet
// acknowledged fails (not Permanent) before Close returns; an answer Elasticsearch gives later
// is ignored. Such a document may still have been indexed: its id makes the retry overwrite it.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	defer w.stop()

	err := w.waitAdds(ctx)
	if err == nil {
		err = w.drain(ctx)
	}

	w.retryMu.Lock()
	w.stopping = true
	w.retryMu.Unlock()
	w.cancel()
	w.retrying.Wait()
	for _, bi := range w.indexers() {
		if cerr := bi.Close(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		n := w.failInflight(err)
		w.waitCallbacks()
		return fmt.Errorf("close index writer with %d documents unacknowledged: %w", n, err)
	}
	return nil
}

// waitCallbacks waits for the callbacks still running after failInflight: an answer that
// arrived just before Close gave up finishes its document on an indexer goroutine, and
// failInflight, finding the document finished, leaves it to that callback. The wait is short:
// every Add has returned and every re-queue has ended, so each pending document is inside a
// callback, which must not block.
func (w *Writer) waitCallbacks() {
	for w.pending.Load() > 0 {
		<-w.progress
	}
}

// failInflight finishes every document still in flight with a failure and returns how many
// there were.
func (w *Writer) failInflight(cause error) int {
	w.inflightMu.Lock()
	ops := make([]*op, 0, len(w.inflight))
	for o := range w.inflight {
		ops = append(ops, o)
	}
	w.inflightMu.Unlock()
	for _, o := range ops {
		w.finish(o, Result{Err: fmt.Errorf("%s %s in %s: not acknowledged before the index writer closed: %w",
			o.action, o.id, w.c.IndexName(o.kind), cause)})
	}
	return len(ops)
}

// waitAdds waits for the Adds in progress to queue their documents. When ctx ends first it makes
// them give up, and then waits for them to return, which they do at once: the indexer must not
// be closed under them.
func (w *Writer) waitAdds(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		w.adding.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.stop()
		<-done
		return ctx.Err()
	}
}

// drain flushes until no document is pending. After a Flush every document queued before it
// has had its callback, except the ones re-queued after a 429: those wake drain up when they
// are queued again.
func (w *Writer) drain(ctx context.Context) error {
	for w.pending.Load() > 0 {
		for _, bi := range w.indexers() {
			if err := bi.Flush(ctx); err != nil {
				return err
			}
		}
		if w.pending.Load() == 0 {
			return nil
		}
		select {
		case <-w.progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stats returns the counters so far.
func (w *Writer) Stats() WriterStats {
	s := WriterStats{
		Added:    w.added.Load(),
		Indexed:  w.indexed.Load(),
		Deleted:  w.deleted.Load(),
		Failed:   w.failed.Load(),
		Retried:  w.retried.Load(),
		Flushes:  w.flushes.Load(),
		Split:    w.splits.split.Load(),
		TooLarge: w.splits.tooLarge.Load(),
	}
	for _, bi := range w.indexers() {
		b := bi.Stats()
		s.Bytes += b.FlushedBytes
		s.Requests += b.NumRequests
	}
	return s
}
