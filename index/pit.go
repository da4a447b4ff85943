package index

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

const pitKeepAlive = "2m"

// pitHit is one document of a point-in-time walk.
type pitHit struct {
	Index  string            `json:"_index"`
	ID     string            `json:"_id"`
	Source map[string]any    `json:"_source"`
	Sort   []json.RawMessage `json:"sort"`
}

// walkPIT reads every document of target that query matches (nil: all) from a point-in-time
// snapshot, page documents at a time in _shard_doc order, and hands each page to fn; withSource
// says whether the hits carry their _source. Memory is bounded by one page whatever the size of
// the index, and documents written after the walk started are not seen. An error from fn ends
// the walk. The snapshot is closed on return, also when ctx has ended.
func (c *Cluster) walkPIT(ctx context.Context, target string, query obj, withSource bool, page int, fn func([]pitHit) error) error {
	var pit struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/"+target+"/_pit", url.Values{"keep_alive": {pitKeepAlive}}, nil, &pit); err != nil {
		return fmt.Errorf("open a point in time on %s: %w", target, err)
	}
	defer func() {
		// Closing only frees resources early; the keep-alive frees them anyway, so a failure
		// here is not the caller's problem. It must run even when ctx has ended.
		ctx := context.WithoutCancel(ctx)
		if err := c.do(ctx, http.MethodDelete, "/_pit", nil, obj{"id": pit.ID}, nil); err != nil {
			c.log.Debug().Err(err).Str("index", target).Msg("close point in time")
		}
	}()
	var after []json.RawMessage
	for {
		search := obj{
			"size":             page,
			"track_total_hits": false,
			"pit":              obj{"id": pit.ID, "keep_alive": pitKeepAlive},
			"sort":             []obj{{"_shard_doc": "asc"}},
		}
		if !withSource {
			search["_source"] = false
		}
		if query != nil {
			search["query"] = query
		}
		if after != nil {
			search["search_after"] = after
		}
		var res struct {
			PitID string `json:"pit_id"`
			Hits  struct {
				Hits []pitHit `json:"hits"`
			} `json:"hits"`
		}
		if err := c.do(ctx, http.MethodPost, "/_search", nil, search, &res); err != nil {
			return fmt.Errorf("read %s: %w", target, err)
		}
		if res.PitID != "" {
			pit.ID = res.PitID // the id may change between rounds
		}
		hits := res.Hits.Hits
		if len(hits) == 0 {
			return nil
		}
		if err := fn(hits); err != nil {
			return err
		}
		if len(hits) < page {
			return nil
		}
		after = hits[len(hits)-1].Sort
	}
}
