package index

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Filter selects documents: all Terms must match exactly (keyword fields such as mailbox and
// view: FieldMailbox, FieldView) and, when GenerationBelow is not 0, FieldGeneration must be
// lower than it.
type Filter struct {
	Terms           map[string]string
	GenerationBelow int64
}

func (f Filter) empty() bool { return len(f.Terms) == 0 && f.GenerationBelow == 0 }

func (f Filter) query() obj {
	clauses := []obj{}
	keys := make([]string, 0, len(f.Terms))
	for k := range f.Terms {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable request is easier to read in a trace
	for _, k := range keys {
		clauses = append(clauses, obj{"term": obj{k: f.Terms[k]}})
	}
	if f.GenerationBelow != 0 {
		clauses = append(clauses, obj{"range": obj{FieldGeneration: obj{"lt": f.GenerationBelow}}})
	}
	return obj{"bool": obj{"filter": clauses}}
}

// mgetChunk bounds the ids of one _mget request.
const mgetChunk = 1000

// Existing reports which of ids exist in the index of kind k. Ids that do not exist are absent
// from the map. A shard that cannot answer is an error, never "does not exist".
func (c *Cluster) Existing(ctx context.Context, k Kind, ids []string) (map[string]bool, error) {
	if !k.valid() {
		return nil, fmt.Errorf("existing: %w", errNoKind)
	}
	name := c.IndexName(k)
	found := make(map[string]bool, len(ids))
	for chunk := range slices.Chunk(ids, mgetChunk) {
		docs, err := c.mget(ctx, name, chunk, url.Values{"_source": {"false"}}, false)
		if err != nil {
			return nil, fmt.Errorf("look up %d ids in %s: %w", len(chunk), name, err)
		}
		for id := range docs {
			found[id] = true
		}
	}
	return found, nil
}

// Count returns how many documents of kind k match f.
func (c *Cluster) Count(ctx context.Context, k Kind, f Filter) (int64, error) {
	if !k.valid() {
		return 0, fmt.Errorf("count: %w", errNoKind)
	}
	name := c.IndexName(k)
	var res struct {
		Count int64 `json:"count"`
	}
	if err := c.do(ctx, http.MethodPost, "/"+name+"/_count", nil, obj{"query": f.query()}, &res); err != nil {
		return 0, fmt.Errorf("count documents in %s: %w", name, err)
	}
	return res.Count, nil
}

// deletePage is the number of documents DeleteWhere reads and deletes per round; it bounds
// its memory whatever the number of matches.
const deletePage = 1000

// pitKeepAlive must outlive one round of search plus bulk delete.
// DeleteWhere deletes every document of kind k that matches f and returns how many were
// deleted. It walks a point-in-time snapshot in pages and deletes each page by id with _bulk,
// because _delete_by_query is not available on every cluster and a page bounds memory. An empty
// filter is refused, and so is a document in an index that is not mimecrawl's (a
// *ForeignError). Documents written after the walk started are not touched.
func (c *Cluster) DeleteWhere(ctx context.Context, k Kind, f Filter) (int64, error) {
	if !k.valid() {
		return 0, fmt.Errorf("delete: %w", errNoKind)
	}
	name := c.IndexName(k)
	if f.empty() {
		return 0, fmt.Errorf("delete from %s: refusing an empty filter, which would match every document", name)
	}

	var deleted int64
	err := c.walkPIT(ctx, name, f.query(), false, deletePage, func(hits []pitHit) error {
		n, err := c.deleteOwned(ctx, k, name, hits)
		deleted += n
		return err
	})
	if err != nil {
		return deleted, fmt.Errorf("delete from %s: %w", name, err)
	}
	return deleted, nil
}
