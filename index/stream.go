package index

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Data streams (Spec.DataStream): documents that are only ever added, such as alerts, go where
// Elastic's own tools look for them, a data stream logs-{dataset}-{namespace}.
//
//   - The index template is named like the stream, matches exactly its name, and has priority
//     templatePriority (500): above Elasticsearch's built-in "logs" template (100, logs-*-*)
//     and Elastic's integrations (200), so ours decides the mapping whether or not a cluster
//     has them. It is composed of {stream}@mimecrawl and, when it exists, {stream}@custom, as
//     for the indices. The mark (_meta.managed_by) is on both templates and, through the
//     mapping, on every backing index, including those a rollover adds.
//   - Elasticsearch creates the stream at its first write; Ensure creates it earlier where the
//     cluster offers the data stream API (not every distribution does), so that searches of an
//     installation with no alert yet find an empty stream.
//   - A data stream accepts only op_type create, and an id is unique only within one backing
//     index: after a rollover the same id is accepted again. Writers that replay therefore ask
//     StreamIDs which ids the stream already holds, in any backing index, before they write.

// dataStream tells whether kind k is a data stream.
func dataStream(k Kind) bool { return k.spec.DataStream != "" }

// streamLayout is what holds the name of a data stream kind.
type streamLayout struct {
	stream  bool     // a data stream has the name
	other   string   // "index" or "alias" when one of those holds the name instead
	backing []string // the backing indices, oldest first
}

func (c *Cluster) resolveStream(ctx context.Context, k Kind) (streamLayout, error) {
	r, err := c.resolveName(ctx, c.IndexName(k))
	if err != nil {
		return streamLayout{}, err
	}
	var l streamLayout
	if r.index {
		l.other = "index"
	}
	if r.alias != nil {
		l.other = "alias"
	}
	if r.stream {
		l.stream = true
		l.backing = slices.SortedFunc(slices.Values(r.backing), func(a, b string) int {
			return strings.Compare(generation(a), generation(b))
		})
	}
	return l, nil
}

// generation returns the generation suffix of a backing index (.ds-{stream}-{date}-000002),
// which orders backing indices whatever their dates.
func generation(backing string) string {
	if i := strings.LastIndexByte(backing, '-'); i >= 0 {
		return backing[i+1:]
	}
	return backing
}

// claimStream is claim for a data stream kind: the templates of its name must carry the mark,
// the name must be a data stream (not an index or alias), and every backing index must carry
// the mark, which only our template gives them: a stream that Elastic's integration or the
// built-in logs template created is not ours.
func (c *Cluster) claimStream(ctx context.Context, k Kind) (map[string]bool, error) {
	name := c.IndexName(k)
	if _, err := c.claimTemplates(ctx, k, name); err != nil {
		return nil, err
	}
	l, err := c.resolveStream(ctx, k)
	if err != nil {
		return nil, err
	}
	if l.other != "" {
		return nil, foreignIndex(name, "an "+l.other+", not a data stream of mimecrawl's, holds the name")
	}
	ours := map[string]bool{}
	if len(l.backing) > 0 {
		metas, err := c.indexMetas(ctx, l.backing)
		if err != nil {
			return nil, err
		}
		for _, b := range l.backing {
			if meta, ok := metas[b]; ok && !marked(meta) {
				return nil, &ForeignError{Object: "data stream", Name: name,
					Why: fmt.Sprintf("its backing index %s has no _meta.managed_by: mimecrawl (another template created the stream)", b),
					Fix: fmt.Sprintf("delete or rename the data stream, or give mimecrawl a namespace of its own (elasticsearch.namespace); settings of your own belong in the component template %s@custom", name)}
			}
			ours[b] = true
		}
	}
	c.owned.set(k, ours)
	return ours, nil
}

// putStreamTemplate installs the templates of a data stream kind.
func (c *Cluster) putStreamTemplate(ctx context.Context, k Kind) error {
	name := c.IndexName(k)
	settings := c.templateSettings(k)
	mapping := mappingOf(k)
	markMapping(mapping, k)
	own := obj{"template": obj{"settings": settings, "mappings": mapping}, "_meta": ownMeta(k)}
	if err := c.do(ctx, http.MethodPut, "/_component_template/"+c.ownTemplate(k), nil, own, nil); err != nil {
		return fmt.Errorf("install component template %s: %w", c.ownTemplate(k), err)
	}
	custom := c.CustomTemplate(k)
	body := obj{
		"index_patterns":                     []string{name},
		"data_stream":                        obj{},
		"priority":                           templatePriority,
		"composed_of":                        []string{c.ownTemplate(k), custom},
		"ignore_missing_component_templates": []string{custom},
		"_meta":                              ownMeta(k),
	}
	if err := c.do(ctx, http.MethodPut, "/_index_template/"+name, nil, body, nil); err != nil {
		return fmt.Errorf("install index template %s: %w", name, err)
	}
	return nil
}

// ensureStream creates the data stream where the cluster offers the API (elsewhere the first
// write does), and adds to an existing one the fields its mapping gained.
func (c *Cluster) ensureStream(ctx context.Context, k Kind) error {
	name := c.IndexName(k)
	err := c.do(ctx, http.MethodPut, "/_data_stream/"+url.PathEscape(name), nil, nil, nil)
	var se *StatusError
	switch {
	case err == nil:
		c.log.Info().Str("data_stream", name).Msg("created data stream")
		return nil
	case errors.As(err, &se) && (se.Status == http.StatusBadRequest || se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusNotFound):
		// Exists already, or no data stream API: the stream appears at the first write.
	default:
		return fmt.Errorf("create data stream %s: %w", name, err)
	}
	l, err := c.resolveStream(ctx, k)
	if err != nil {
		return err
	}
	if !l.stream {
		return nil
	}
	if err := c.checkOwned(ctx, k, l.backing...); err != nil {
		return err
	}
	// Only the write index takes documents: older backing indices keep the mapping they
	// were made with, and a field whose type changed is fixed by a rollover.
	if len(l.backing) == 0 {
		return nil
	}
	return c.updateMappingAs(ctx, l.backing[len(l.backing)-1], name)
}

// StreamIDs is one pass's view of which ids a data stream already holds.
type StreamIDs struct {
	c    *Cluster
	k    Kind
	name string
	// search is what Has searches: the stream and the index of the kind's release before
	// data streams ({prefix}-{Name}), left in place on upgrade.
	search string
}

// LegacyName returns, for a data stream kind, the alias its documents had in releases before
// data streams, {prefix}-{Name}; upgrades leave that index in place, readable.
func (c *Cluster) LegacyName(k Kind) string { return c.cfg.IndexPrefix + "-" + k.String() }

// StreamIDs refreshes the data stream of kind k, so that everything acknowledged before the
// call is searchable, and returns what answers which ids it holds. A writer that may write an
// id again (an overlap re-read, a replay after a crash) asks Has before it writes: op_type
// create refuses a repeat only within the backing index it went to, and a rollover between
// the two writes sends the second to a new one. Ids written after this call are not
// necessarily seen; a writer does not re-read within one pass what it wrote in it.
func (c *Cluster) StreamIDs(ctx context.Context, k Kind) (*StreamIDs, error) {
	if !k.valid() || !dataStream(k) {
		return nil, fmt.Errorf("stream ids: kind %s is not a data stream", k)
	}
	name := c.IndexName(k)
	search := name + "," + c.LegacyName(k)
	q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	if err := c.do(ctx, http.MethodPost, "/"+search+"/_refresh", q, nil, nil); err != nil && !notFound(err) {
		return nil, fmt.Errorf("refresh %s: %w", search, err)
	}
	return &StreamIDs{c: c, k: k, name: name, search: search}, nil
}

// Has returns which of ids are in the data stream, in any backing index, or in the index of
// the release before data streams, so that the first passes after an upgrade, which re-read
// the overlap of the last ones before it, do not write those alerts a second time. A shard
// that does not answer is an error, never "absent".
func (s *StreamIDs) Has(ctx context.Context, ids []string) (map[string]bool, error) {
	found := make(map[string]bool)
	for chunk := range slices.Chunk(ids, mgetChunk) {
		var res struct {
			Shards struct {
				Failed int `json:"failed"`
			} `json:"_shards"`
			Hits struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "_source": {"false"}}
		body := obj{"size": len(chunk) * 2, "query": obj{"ids": obj{"values": chunk}}, "track_total_hits": false}
		err := s.search1(ctx, q, body, &res, func() bool { return res.Shards.Failed > 0 })
		switch {
		case notFound(err):
			return found, nil
		case err != nil:
			return nil, fmt.Errorf("look up %d ids in %s: %w", len(chunk), s.search, err)
		case res.Shards.Failed > 0:
			return nil, fmt.Errorf("look up %d ids in %s: %d shards failed", len(chunk), s.search, res.Shards.Failed)
		}
		for _, h := range res.Hits.Hits {
			found[h.ID] = true
		}
	}
	return found, nil
}

// streamSearchTries bounds the attempts of one id lookup while the shards of a backing index
// are not started: a data stream that the first write of another source creates (on clusters
// without the data stream API) or a rollover's new write index has its primary shard
// initialising for a moment, and a search then answers 503 "all shards failed" or counts a
// failed shard. The waits double from streamSearchWait: about 3 s in all.
const (
	streamSearchTries = 6
	streamSearchWait  = 100 * time.Millisecond
)

// search1 runs one search of the lookup, again while a shard is not started (an answer 503,
// or failed() after decoding), within streamSearchTries; every wait selects on ctx.
func (s *StreamIDs) search1(ctx context.Context, q url.Values, body any, out any, failed func() bool) error {
	wait := streamSearchWait
	for attempt := 1; ; attempt++ {
		err := s.c.do(ctx, http.MethodPost, "/"+s.search+"/_search", q, body, out)
		var se *StatusError
		unavailable := (errors.As(err, &se) && se.Status == http.StatusServiceUnavailable) || (err == nil && failed())
		if !unavailable || attempt == streamSearchTries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// Remove deletes every copy of ids from the data stream (in whichever backing index each is),
// so that a corrected document can be written again with op_type create: a data stream does
// not take writes over an existing document. It refreshes first, so that a write acknowledged
// before the call is found.
func (s *StreamIDs) Remove(ctx context.Context, ids []string) (int64, error) {
	q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	if err := s.c.do(ctx, http.MethodPost, "/"+url.PathEscape(s.name)+"/_refresh", q, nil, nil); err != nil && !notFound(err) {
		return 0, fmt.Errorf("refresh %s: %w", s.name, err)
	}
	var deleted int64
	for chunk := range slices.Chunk(ids, mgetChunk) {
		var res struct {
			Hits struct {
				Hits []pitHit `json:"hits"`
			} `json:"hits"`
		}
		q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "_source": {"false"}}
		body := obj{"size": len(chunk) * 4, "query": obj{"ids": obj{"values": chunk}}}
		err := s.c.do(ctx, http.MethodPost, "/"+url.PathEscape(s.name)+"/_search", q, body, &res)
		switch {
		case notFound(err):
			return deleted, nil
		case err != nil:
			return deleted, fmt.Errorf("find %d ids in %s: %w", len(chunk), s.name, err)
		}
		if len(res.Hits.Hits) == 0 {
			continue
		}
		n, err := s.c.deleteOwned(ctx, s.k, s.name, res.Hits.Hits)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// LegacyCount returns how many documents the index of a data stream kind's release before
// data streams ({prefix}-{Name}) holds, and whether it exists.
func (c *Cluster) LegacyCount(ctx context.Context, k Kind) (int64, bool, error) {
	name := c.LegacyName(k)
	var res struct {
		Count int64 `json:"count"`
	}
	err := c.do(ctx, http.MethodGet, "/"+url.PathEscape(name)+"/_count", nil, nil, &res)
	switch {
	case notFound(err):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("count the documents of %s: %w", name, err)
	}
	return res.Count, true, nil
}
