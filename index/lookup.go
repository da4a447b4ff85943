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
	Index  string
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
		return nil, fmt.Errorf("find: unknown kind %d", int(k))
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
		out = append(out, Hit{Index: h.Index, ID: h.ID, Source: h.Source})
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
		return nil, v, false, fmt.Errorf("get: unknown kind %d", int(k))
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
		return fmt.Errorf("put: unknown kind %d", int(k))
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
