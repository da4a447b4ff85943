package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// The one bulk path.
//
// Every _bulk request of the package is encoded by an esutil.BulkIndexer from
// esutil.BulkIndexerItems, has its actions counted (countingClient), is sent again in parts
// when refused as too large (bulkSplitter), is retried whole by the client, has its answer
// parsed by bulkDecoder, which refuses an answer that does not list one item per action, and
// has each item's answer classified by classifyItem. Two kinds of callers share that path:
//
//   - The Writer keeps long-lived indexers that batch the documents of many goroutines and
//     answer each by callback; it re-queues items answered 429 and reports the rest.
//   - The synchronous callers (PutDocs, DeleteWhere, StreamIDs.Remove, migrations) call bulk,
//     which runs one indexer for the call, closes it before returning, and hands back one
//     itemResult per op, in order.
//
// The synchronous callers do not go through a Writer: each needs the answer of its request
// before it goes on (PutDocs' caller decides per item, a migration counts what it copied before
// it moves the alias, a delete page is confirmed before the next one is read), within its own
// context rather than a flush interval; they address concrete indices (a new versioned index,
// the backing index of a hit) rather than a kind; and a 429 item is their caller's decision
// (PutDocs reports ErrBusy), not something to re-queue behind its back.

// bulkOp is one action of a synchronous bulk request.
type bulkOp struct {
	action string // "index", "create" or "delete"
	index  string // an index, alias or data stream
	id     string
	body   []byte // the document as JSON on one line; nil for a delete
	// cond, when set, makes the write conditional on the stored document's version
	// (if_seq_no and if_primary_term).
	cond *Version
}

// itemOutcome is what the answer for one bulk item means.
type itemOutcome int

const (
	// itemUnanswered is the zero value: no answer was read for the item. It is never taken
	// for success.
	itemUnanswered itemOutcome = iota
	// itemDone: acknowledged (indexed, created, updated or deleted).
	itemDone
	// itemExisted: a create found the document already there (409). The goal of a create
	// whose id derives from the source is met; a caller that asked "only if new" lost.
	itemExisted
	// itemGone: a delete found no document, or no index (404). The goal of a delete is met.
	itemGone
	// itemConflict: a concurrent write won (409 of a conditional write, or of an update whose
	// retries on conflict ran out). Not permanent: the write can be prepared again.
	itemConflict
	// itemBusy: the cluster refused the item for now (429); the same item may succeed after a
	// backoff.
	itemBusy
	// itemTransient: any other failure a later attempt may not meet (5xx, 408, an item
	// without a status).
	itemTransient
	// itemPermanent: refused for what the item is (a mapping or parsing error, any other
	// 4xx): sending it again cannot succeed.
	itemPermanent
)

// itemResult is the classified answer for one bulk item.
type itemResult struct {
	Outcome itemOutcome
	Status  int    // the item's HTTP status
	Result  string // Elasticsearch's result: created, updated, deleted, not_found, noop
	// Type and Reason are Elasticsearch's error type and reason (with its cause), redacted;
	// empty when the item has no error.
	Type   string
	Reason string
}

// ok reports whether the item's goal is met, as the Writer counts it: done, or a create that
// found its document there, or a delete that found it gone.
func (r itemResult) ok() bool {
	return r.Outcome == itemDone || r.Outcome == itemExisted || r.Outcome == itemGone
}

// describe is the item's error as "type: reason", or its result when it has no error.
func (r itemResult) describe() string {
	if r.Type == "" {
		return r.Result
	}
	return r.Type + ": " + r.Reason
}

// classifyItem decides what the answer r to a bulk action means. It is the one place where a
// bulk item's status is read, for the Writer and for every synchronous caller.
func (c *Cluster) classifyItem(action string, r esutil.BulkIndexerResponseItem) itemResult {
	out := itemResult{Status: r.Status, Result: r.Result}
	if r.Error.Type != "" {
		reason := r.Error.Reason
		if r.Error.Cause.Reason != "" {
			reason += " (caused by " + r.Error.Cause.Type + ": " + r.Error.Cause.Reason + ")"
		}
		// A reason can quote the document or an echoed request.
		out.Type, out.Reason = c.redact(r.Error.Type), c.redact(reason)
	}
	switch s := r.Status; {
	case action == "delete" && s == http.StatusNotFound:
		out.Outcome = itemGone
	case action == "create" && s == http.StatusConflict:
		out.Outcome = itemExisted
	case r.Error.Type == "" && s >= 200 && s <= 299:
		out.Outcome = itemDone
	case s == http.StatusConflict:
		out.Outcome = itemConflict
	case s == http.StatusTooManyRequests:
		out.Outcome = itemBusy
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout:
		out.Outcome = itemPermanent
	default:
		out.Outcome = itemTransient
	}
	return out
}

// bulk sends ops in one bulk request (more only when an op alone is larger than the estimate)
// and returns one result per op, in order, once Elasticsearch has answered them all. The error
// is the failure of the request as a whole (then no op is known to have happened, and any may
// have): a *StatusError, a *TimeoutError, a transport error, or an answer that does not list
// one item per op or does not parse. ctx bounds the request.
func (c *Cluster) bulk(ctx context.Context, ops []bulkOp) ([]itemResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	// The indexer flushes when its buffer would reach FlushBytes; it is sized above the whole
	// request (the action line quotes the id and the index, at most 6 bytes per byte), so
	// that it flushes once, when closed.
	size := 1
	for _, o := range ops {
		size += len(o.body) + 6*(len(o.id)+len(o.index)) + 128
	}
	var (
		out = make([]itemResult, len(ops))
		// failed is the first failure of a whole request. The indexer's one worker writes it
		// and the items of out; Close waits for that worker before they are read.
		failed error
	)
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:     countingClient{next: performer{c, c.tr}},
		Decoder:    bulkDecoder{},
		NumWorkers: 1,
		FlushBytes: size,
		// Nothing is sent before Close: the ops are all queued by then.
		FlushInterval: time.Hour,
		// The worker sends with a context of its own; the request is the caller's.
		OnFlushStart: func(context.Context) context.Context { return ctx },
	})
	if err != nil {
		return nil, fmt.Errorf("start bulk request: %w", err)
	}
	var addErr error
	for i, o := range ops {
		item := esutil.BulkIndexerItem{
			Index:      o.index,
			Action:     o.action,
			DocumentID: o.id,
			OnSuccess: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem) {
				out[i] = c.classifyItem(o.action, r)
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
				if err != nil {
					if failed == nil {
						failed = flushCause(err)
					}
					return
				}
				out[i] = c.classifyItem(o.action, r)
			},
		}
		if o.body != nil {
			item.Body = bytes.NewReader(o.body)
		}
		if o.cond != nil {
			item.IfSeqNo, item.IfPrimaryTerm = &o.cond.SeqNo, &o.cond.PrimaryTerm
		}
		if addErr = bi.Add(ctx, item); addErr != nil {
			break
		}
	}
	// Close sends what was queued and waits for its answer and every callback. Its context
	// must not end first: that would leave the worker writing out behind our back. The request
	// itself ends with ctx, so the wait is bounded by it.
	if err := bi.Close(context.WithoutCancel(ctx)); err != nil && failed == nil {
		failed = err
	}
	switch {
	case failed != nil:
		return nil, failed
	case addErr != nil:
		return nil, addErr
	}
	return out, nil
}

// flushCause is the failure of a bulk request without the "flush: " with which esutil wraps it.
func flushCause(err error) error {
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "flush: ") {
		return u
	}
	return err
}

// performer is the transport of every bulk indexer: Cluster.perform over tr.
type performer struct {
	c  *Cluster
	tr esapi.Transport
}

func (p performer) Perform(req *http.Request) (*http.Response, error) { return p.c.perform(p.tr, req) }

// itemErrors joins the failures of the items of one request, naming at most three: a page of
// a thousand refused documents would otherwise make an error of a thousand lines.
func itemErrors(errs []error) error {
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return errors.Join(errs...)
}

// docRef names one stored document.
type docRef struct{ index, id string }

// deleteDocs deletes the documents refs names in one bulk request and returns how many were
// deleted. A document already gone is not an error; any other item failure is, after the whole
// request has been counted.
func (c *Cluster) deleteDocs(ctx context.Context, refs []docRef) (int64, error) {
	ops := make([]bulkOp, len(refs))
	for i, r := range refs {
		ops[i] = bulkOp{action: "delete", index: r.index, id: r.id}
	}
	return c.bulkCount(ctx, ops, "delete", func(o itemOutcome) bool { return o == itemDone })
}

// deleteOwned deletes the documents hits names, found through name (an index, alias or data
// stream of kind k), and returns how many were deleted. Every index a hit is in must be
// mimecrawl's (a *ForeignError otherwise, before anything is deleted): an alias of name may
// lead elsewhere.
func (c *Cluster) deleteOwned(ctx context.Context, k Kind, name string, hits []pitHit) (int64, error) {
	indices := make([]string, 0, 1)
	refs := make([]docRef, len(hits))
	for i, h := range hits {
		if !slices.Contains(indices, h.Index) {
			indices = append(indices, h.Index)
		}
		refs[i] = docRef{index: h.Index, id: h.ID}
	}
	if err := c.checkOwned(ctx, k, indices...); err != nil {
		return 0, err
	}
	n, err := c.deleteDocs(ctx, refs)
	if err != nil {
		return n, fmt.Errorf("delete %d documents from %s: %w", len(hits), name, err)
	}
	return n, nil
}

// bulkCount sends ops in one bulk request and returns how many items have an outcome counted
// accepts. An item whose goal is met otherwise (ok) is not counted and is not an error; any
// other item failure is, named "<verb> <id>", after the whole request has been counted.
func (c *Cluster) bulkCount(ctx context.Context, ops []bulkOp, verb string, counted func(itemOutcome) bool) (int64, error) {
	res, err := c.bulk(ctx, ops)
	if err != nil {
		return 0, err
	}
	var (
		n    int64
		errs []error
	)
	for i, r := range res {
		switch {
		case counted(r.Outcome):
			n++
		case r.ok():
		default:
			errs = append(errs, fmt.Errorf("%s %s: status %d: %s", verb, ops[i].id, r.Status, r.describe()))
		}
	}
	return n, itemErrors(errs)
}

// mget reads ids from the index (or alias) name with one _mget, with the query's parameters
// (_source filtering), and returns the documents found, by id. A document Elasticsearch could
// not read is an error naming it, never "not found". A missing index is an error too, unless
// missingOK, when it reads as no documents.
func (c *Cluster) mget(ctx context.Context, name string, ids []string, query url.Values, missingOK bool) (map[string]Stored, error) {
	var res struct {
		Docs []struct {
			ID          string          `json:"_id"`
			Found       bool            `json:"found"`
			SeqNo       int64           `json:"_seq_no"`
			PrimaryTerm int64           `json:"_primary_term"`
			Source      json.RawMessage `json:"_source"`
			Error       *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"docs"`
	}
	op := "/" + name + "/_mget"
	err := c.do(ctx, http.MethodPost, op, query, obj{"ids": ids}, &res)
	var se *StatusError
	switch {
	case missingOK && errors.As(err, &se) && se.Status == http.StatusNotFound:
		return map[string]Stored{}, nil
	case err != nil:
		return nil, err
	}
	out := make(map[string]Stored, len(res.Docs))
	for _, d := range res.Docs {
		switch {
		case d.Error != nil && missingOK && d.Error.Type == "index_not_found_exception":
			continue
		case d.Error != nil:
			return nil, fmt.Errorf("document %s: %w", d.ID, &StatusError{Op: http.MethodPost + " " + op,
				Status: http.StatusOK, Type: c.redact(d.Error.Type), Reason: c.redact(d.Error.Reason)})
		case d.Found:
			out[d.ID] = Stored{Source: d.Source, Version: Version{SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}}
		}
	}
	return out, nil
}
