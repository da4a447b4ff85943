package index

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
