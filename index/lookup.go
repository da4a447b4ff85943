package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Hit is one document found by a search.
type Hit struct {
	Index  string // the name the kind is queried by (its alias), e.g. mimecast-messages
	ID     string
	Source json.RawMessage // only the fields asked for
}

// maxTermsLookup bounds the values of one FindByTerms call, and so the hits it reads: one
// search per page of alerts, never per alert.
const maxTermsLookup = 1000

// FindByTerms returns the documents of kind k whose keyword field equals one of values, with
// only the source fields named in fields, at most perValue hits per value on average (so a
// message stored for many mailboxes cannot flood the answer). A missing index is an empty
// answer: nothing has been written there yet.
func (c *Cluster) FindByTerms(ctx context.Context, k Kind, field string, values []string, fields []string, perValue int) ([]Hit, error) {
	if !k.valid() {
		return nil, fmt.Errorf("find: %w", errNoKind)
	}
	name := c.IndexName(k)
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > maxTermsLookup {
		return nil, fmt.Errorf("find in %s: %d values, at most %d per search", name, len(values), maxTermsLookup)
	}
	if perValue <= 0 {
		perValue = 1
	}
	body := obj{
		"size":    min(len(values)*perValue, 10000),
		"_source": fields,
		"query":   obj{"bool": obj{"filter": []obj{{"terms": obj{field: values}}}}},
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Index  string          `json:"_index"`
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	if err := c.do(ctx, http.MethodPost, "/"+name+"/_search", q, body, &res); err != nil {
		return nil, fmt.Errorf("find %d values of %s in %s: %w", len(values), field, name, err)
	}
	out := make([]Hit, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		// The alias, not the versioned index behind it: a link made from it survives the next
		// schema migration.
		out = append(out, Hit{Index: name, ID: h.ID, Source: h.Source})
	}
	return out, nil
}

// ErrConflict is wrapped by PutDoc when the write's condition failed (409): the document
// changed, or appeared, since it was read.
var ErrConflict = errors.New("document changed since it was read")

// Version is the optimistic-concurrency token of a stored document: _seq_no and
// _primary_term.
type Version struct{ SeqNo, PrimaryTerm int64 }

// GetDoc reads one document in real time (no refresh needed): its _source and version.
// found is false, with a nil error, when the document or its index does not exist.
func (c *Cluster) GetDoc(ctx context.Context, k Kind, id string) (source json.RawMessage, v Version, found bool, err error) {
	if !k.valid() {
		return nil, v, false, fmt.Errorf("get: %w", errNoKind)
	}
	name := c.IndexName(k)
	var res struct {
		Found       bool            `json:"found"`
		SeqNo       int64           `json:"_seq_no"`
		PrimaryTerm int64           `json:"_primary_term"`
		Source      json.RawMessage `json:"_source"`
	}
	err = c.do(ctx, http.MethodGet, "/"+name+"/_doc/"+url.PathEscape(id), nil, nil, &res)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return nil, v, false, nil
	case err != nil:
		return nil, v, false, fmt.Errorf("get %s from %s: %w", id, name, err)
	case !res.Found:
		return nil, v, false, nil
	}
	return res.Source, Version{SeqNo: res.SeqNo, PrimaryTerm: res.PrimaryTerm}, true, nil
}

// PutDoc writes one document and returns once Elasticsearch acknowledged it: only if it is
// new when create is true, else only if the stored document still has version v. A failed
// condition is an error wrapping ErrConflict. For the few documents that are read, merged
// and written back (alert groups); bulk writes go through Writer.
func (c *Cluster) PutDoc(ctx context.Context, k Kind, id string, doc json.RawMessage, v Version, create bool) error {
	if !k.valid() {
		return fmt.Errorf("put: %w", errNoKind)
	}
	name := c.IndexName(k)
	q := url.Values{}
	if create {
		q.Set("op_type", "create")
	} else {
		q.Set("if_seq_no", strconv.FormatInt(v.SeqNo, 10))
		q.Set("if_primary_term", strconv.FormatInt(v.PrimaryTerm, 10))
	}
	err := c.do(ctx, http.MethodPut, "/"+name+"/_doc/"+url.PathEscape(id), q, doc, nil)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusConflict:
		return fmt.Errorf("put %s in %s: %w", id, name, ErrConflict)
	case err != nil:
		return fmt.Errorf("put %s in %s: %w", id, name, err)
	}
	return nil
}

// Stored is one document read by GetDocs: its _source and version.
type Stored struct {
	Source  json.RawMessage
	Version Version
}

// maxDocsBatch bounds the documents of one GetDocs or PutDocs call: one page of alerts'
// groups, never an unbounded request.
const maxDocsBatch = 1000

// GetDocs reads documents of kind k in real time with one _mget: the ones that exist, by
// id. A missing index reads as no documents.
func (c *Cluster) GetDocs(ctx context.Context, k Kind, ids []string) (map[string]Stored, error) {
	if !k.valid() {
		return nil, fmt.Errorf("mget: %w", errNoKind)
	}
	name := c.IndexName(k)
	if len(ids) == 0 {
		return map[string]Stored{}, nil
	}
	if len(ids) > maxDocsBatch {
		return nil, fmt.Errorf("mget from %s: %d ids, at most %d per call", name, len(ids), maxDocsBatch)
	}
	docs, err := c.mget(ctx, name, ids, nil, true)
	if err != nil {
		return nil, fmt.Errorf("mget %d ids from %s: %w", len(ids), name, err)
	}
	return docs, nil
}

// CondWrite is one conditional write of PutDocs: Doc as document ID, only if it is new
// (Create) or the stored document still has Version.
type CondWrite struct {
	ID      string
	Doc     json.RawMessage
	Version Version
	Create  bool
}

// PutDocs sends the writes in one _bulk request and returns once Elasticsearch answered it:
// one error per write, in order, nil for a write acknowledged. A failed condition (409) is
// an error wrapping ErrConflict; an item the cluster was too busy for (429) one wrapping
// ErrBusy; anything else a *StatusError. The second result is the failure of the request as
// a whole (then no write is known to have happened, and any may have).
func (c *Cluster) PutDocs(ctx context.Context, k Kind, ws []CondWrite) ([]error, error) {
	if !k.valid() {
		return nil, fmt.Errorf("bulk put: %w", errNoKind)
	}
	name := c.IndexName(k)
	if len(ws) == 0 {
		return nil, nil
	}
	if len(ws) > maxDocsBatch {
		return nil, fmt.Errorf("bulk put in %s: %d documents, at most %d per call", name, len(ws), maxDocsBatch)
	}
	ops := make([]bulkOp, len(ws))
	for i, w := range ws {
		ops[i] = bulkOp{action: "create", index: name, id: w.ID, body: w.Doc}
		if !w.Create {
			ops[i].action, ops[i].cond = "index", &w.Version
		}
	}
	res, err := c.bulk(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("bulk put %d documents in %s: %w", len(ws), name, err)
	}
	errs := make([]error, len(ws))
	for i, r := range res {
		switch r.Outcome {
		case itemDone:
		case itemExisted, itemConflict:
			errs[i] = fmt.Errorf("put %s in %s: %w", ws[i].ID, name, ErrConflict)
		case itemBusy:
			errs[i] = fmt.Errorf("put %s in %s: %w", ws[i].ID, name, ErrBusy)
		default:
			errs[i] = fmt.Errorf("put %s in %s: %w", ws[i].ID, name,
				&StatusError{Op: "POST /_bulk", Status: r.Status, Type: r.Type, Reason: r.Reason})
		}
	}
	return errs, nil
}

// ErrBusy is wrapped by PutDocs for a write Elasticsearch refused because it was busy
// (429): the same write may succeed later.
var ErrBusy = errors.New("elasticsearch was too busy for the write")
