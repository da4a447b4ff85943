package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/rs/zerolog"
)

// Request size limits.
//
// Elasticsearch refuses a request body over http.max_content_length (100MB by default), and a
// proxy in front of it may refuse much less (nginx's client_max_body_size is 1MB by default),
// both with HTTP 413. Sending the same request again cannot help, and failing all of its
// documents "for this run" would fail them again on every run: one document over the limit
// would block every run. So a bulk request answered 413 is sent again in halves, each half
// split again while it is refused, down to single documents; a document refused on its own is
// answered as a permanent item failure (status 413) whose reason names its size and
// elasticsearch.bulk.flush_bytes, and every other document goes through. The answers of the
// parts are put together into one answer with one item per action, in order, so that the
// writer and the bulk indexer above see one request and one answer as always: one bulk path,
// one response parser.

// StatusTooLarge is the item status of a document that Elasticsearch or a proxy in front of it
// refused as too large (HTTP 413) even when sent alone. The item is Permanent.
const StatusTooLarge = http.StatusRequestEntityTooLarge

// splitCounts counts what a bulkSplitter did.
type splitCounts struct {
	split    atomic.Uint64 // bulk requests answered 413 and sent again in parts
	tooLarge atomic.Uint64 // documents refused as too large on their own
}

// bulkSplitter sits between the bulk callers (the writer's indexers, Cluster.do) and the
// client, which does its own retries below it. Requests other than _bulk pass through.
type bulkSplitter struct {
	next   esapi.Transport
	log    zerolog.Logger
	counts *splitCounts
}

func isBulk(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasSuffix(r.URL.Path, "/_bulk")
}

func (s *bulkSplitter) Perform(req *http.Request) (*http.Response, error) {
	if !isBulk(req) || req.GetBody == nil {
		return s.next.Perform(req)
	}
	// The client changes the request it sends (address, credentials); the parts are made
	// from a copy taken before.
	pristine := req.Clone(req.Context())
	res, err := s.next.Perform(req)
	if err != nil || res.StatusCode != http.StatusRequestEntityTooLarge {
		return res, err
	}
	drain(res)
	rc, err := pristine.GetBody()
	if err != nil {
		return nil, fmt.Errorf("bulk request refused as too large (413); read it again to split it: %w", err)
	}
	body, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return nil, fmt.Errorf("bulk request refused as too large (413); read it again to split it: %w", err)
	}
	acts, err := splitActions(body)
	if err != nil {
		return nil, fmt.Errorf("bulk request refused as too large (413); split it: %w", err)
	}
	n := s.counts.split.Add(1)
	before := s.counts.tooLarge.Load()
	items, failed, err := s.parts(pristine, acts)
	if err != nil || failed != nil {
		return failed, err
	}
	if n&(n-1) == 0 { // 1, 2, 4, 8, …: named, without a line per request
		s.log.Warn().Int("bytes", len(body)).Int("documents", len(acts)).Uint64("requests_split", n).
			Uint64("documents_too_large", s.counts.tooLarge.Load()-before).
			Msg("bulk request over the request size limit of elasticsearch or a proxy (413); sent again in parts: keep elasticsearch.bulk.flush_bytes below that limit")
	}
	return answer(items)
}

// parts sends acts in two halves and returns one answer item per action. A half answered 413
// is split again; a single action answered 413 gets a too-large item. When a part fails
// otherwise (no answer, another error status), that failure is returned for the whole request:
// the documents of the parts already answered are written again by a later attempt, under
// their ids.
func (s *bulkSplitter) parts(pristine *http.Request, acts []action) ([]json.RawMessage, *http.Response, error) {
	if len(acts) == 1 {
		s.counts.tooLarge.Add(1)
		item, err := tooLargeItem(acts[0])
		return []json.RawMessage{item}, nil, err
	}
	half := len(acts) / 2
	out := make([]json.RawMessage, 0, len(acts))
	for _, part := range [][]action{acts[:half], acts[half:]} {
		items, failed, err := s.send(pristine, part)
		if err != nil || failed != nil {
			return nil, failed, err
		}
		out = append(out, items...)
	}
	return out, nil, nil
}

// send sends one part and returns its answer items.
func (s *bulkSplitter) send(pristine *http.Request, acts []action) ([]json.RawMessage, *http.Response, error) {
	var body []byte
	for _, a := range acts {
		body = append(body, a.raw...)
	}
	req := pristine.Clone(pristine.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	res, err := s.next.Perform(req)
	switch {
	case err != nil:
		return nil, nil, err
	case res.StatusCode == http.StatusRequestEntityTooLarge:
		drain(res)
		return s.parts(pristine, acts)
	case res.StatusCode < 200 || res.StatusCode > 299:
		return nil, res, nil
	}
	defer drain(res)
	var blk struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&blk); err != nil {
		return nil, nil, fmt.Errorf("decode the answer to part of a bulk request split after a 413: %w", err)
	}
	if len(blk.Items) != len(acts) {
		return nil, nil, fmt.Errorf("bulk answer lists %d items for %d sent (part of a request split after a 413)", len(blk.Items), len(acts))
	}
	return blk.Items, nil, nil
}

// answer makes one bulk answer of the items of the parts.
func answer(items []json.RawMessage) (*http.Response, error) {
	errs := false
	for _, it := range items {
		var one map[string]struct {
			Status int `json:"status"`
		}
		if json.Unmarshal(it, &one) == nil {
			for _, r := range one {
				errs = errs || r.Status > 299
			}
		}
	}
	b, err := json.Marshal(struct {
		Took   int               `json:"took"`
		Errors bool              `json:"errors"`
		Items  []json.RawMessage `json:"items"`
	}{0, errs, items})
	if err != nil {
		return nil, fmt.Errorf("encode the answer of a bulk request split after a 413: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: h,
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}, nil
}

// action is one action of a bulk body: its metadata line and, except for deletes, its source
// line, newlines included.
type action struct {
	raw  []byte
	meta []byte // the metadata line
	size int    // bytes of the source line, newline excluded
}

// splitActions cuts a bulk body into its actions, as countActions counts them.
func splitActions(body []byte) ([]action, error) {
	// lineEnd is where the line that starts at pos ends, after its newline.
	lineEnd := func(pos int) int {
		if i := bytes.IndexByte(body[pos:], '\n'); i >= 0 {
			return pos + i + 1
		}
		return len(body)
	}
	var out []action
	for pos := 0; pos < len(body); {
		start, end := pos, lineEnd(pos)
		meta := bytes.TrimSpace(body[pos:end])
		pos = end
		if len(meta) == 0 {
			continue
		}
		a := action{meta: meta}
		if !bytes.HasPrefix(meta, deleteMeta) {
			if pos >= len(body) {
				return nil, fmt.Errorf("bulk action without a source line: %.200q", meta)
			}
			end = lineEnd(pos)
			a.size = len(bytes.TrimRight(body[pos:end], "\n"))
			pos = end
		}
		a.raw = body[start:pos]
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no actions in a bulk body of %d bytes", len(body))
	}
	return out, nil
}

// tooLargeItem is the answer item of an action refused as too large on its own.
func tooLargeItem(a action) (json.RawMessage, error) {
	var meta map[string]struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	}
	if err := json.Unmarshal(a.meta, &meta); err != nil || len(meta) != 1 {
		return nil, fmt.Errorf("read the action of a document refused as too large: %q", a.meta)
	}
	type itemError struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	type item struct {
		Index  string    `json:"_index"`
		ID     string    `json:"_id"`
		Status int       `json:"status"`
		Error  itemError `json:"error"`
	}
	out := map[string]item{}
	for op, m := range meta {
		out[op] = item{Index: m.Index, ID: m.ID, Status: StatusTooLarge, Error: itemError{
			Type: "request_entity_too_large",
			Reason: fmt.Sprintf("the document is %d bytes (%d bytes as a bulk request of its own), more than Elasticsearch or a proxy in front of it accepts in one request (HTTP 413); raise that limit (http.max_content_length, or the proxy's, such as nginx's client_max_body_size) above it, and keep elasticsearch.bulk.flush_bytes below the limit",
				a.size, len(a.raw)),
		}}
	}
	return json.Marshal(out)
}

// drain reads what is left of an answer's body, so the connection can be reused, and closes it.
func drain(res *http.Response) {
	if res == nil || res.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
}
