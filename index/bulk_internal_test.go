package index

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// responseItem is a bulk answer item as Elasticsearch writes it.
func responseItem(status int, result, errType, reason, causeType, causeReason string) esutil.BulkIndexerResponseItem {
	var r esutil.BulkIndexerResponseItem
	r.Status, r.Result = status, result
	r.Error.Type, r.Error.Reason = errType, reason
	r.Error.Cause.Type, r.Error.Cause.Reason = causeType, causeReason
	return r
}

// Every outcome of a bulk item is decided by classifyItem, for the Writer and the synchronous
// callers alike; its reason is redacted.
func TestClassifyItem(t *testing.T) {
	const secret = "hunter2-very-secret"
	c := &Cluster{secrets: newRedactor("elastic", secret, "")}
	cases := []struct {
		name      string
		action    string
		item      esutil.BulkIndexerResponseItem
		want      itemOutcome
		ok        bool
		describes string
	}{
		{"created", "create", responseItem(201, "created", "", "", "", ""), itemDone, true, "created"},
		{"indexed over", "index", responseItem(200, "updated", "", "", "", ""), itemDone, true, "updated"},
		{"deleted", "delete", responseItem(200, "deleted", "", "", "", ""), itemDone, true, "deleted"},
		{"create finds it there", "create", responseItem(409, "", "version_conflict_engine_exception", "document already exists", "", ""), itemExisted, true, "version_conflict_engine_exception: document already exists"},
		{"delete finds it gone", "delete", responseItem(404, "not_found", "", "", "", ""), itemGone, true, "not_found"},
		{"delete finds no index", "delete", responseItem(404, "", "index_not_found_exception", "no such index", "", ""), itemGone, true, "index_not_found_exception: no such index"},
		{"stale version", "index", responseItem(409, "", "version_conflict_engine_exception", "required seqNo [3]", "", ""), itemConflict, false, "version_conflict_engine_exception: required seqNo [3]"},
		{"update conflicts", "update", responseItem(409, "", "version_conflict_engine_exception", "conflict", "", ""), itemConflict, false, "version_conflict_engine_exception: conflict"},
		{"mapping error", "index", responseItem(400, "", "document_parsing_exception", "failed to parse field [count] of type [long]", "illegal_argument_exception", "For input string: \"x\""), itemPermanent, false,
			`document_parsing_exception: failed to parse field [count] of type [long] (caused by illegal_argument_exception: For input string: "x")`},
		{"forbidden", "index", responseItem(403, "", "security_exception", "action unauthorized", "", ""), itemPermanent, false, "security_exception: action unauthorized"},
		{"too many", "index", responseItem(429, "", "es_rejected_execution_exception", "rejected", "", ""), itemBusy, false, "es_rejected_execution_exception: rejected"},
		{"shard unavailable", "index", responseItem(503, "", "unavailable_shards_exception", "primary shard is not active", "", ""), itemTransient, false, "unavailable_shards_exception: primary shard is not active"},
		{"internal error", "create", responseItem(500, "", "exception", "boom", "", ""), itemTransient, false, "exception: boom"},
		{"timeout", "index", responseItem(408, "", "timeout", "slow", "", ""), itemTransient, false, "timeout: slow"},
		{"2xx with an error", "index", responseItem(200, "", "exception", "odd", "", ""), itemTransient, false, "exception: odd"},
		{"no status", "index", responseItem(0, "", "", "", "", ""), itemTransient, false, ""},
		{"reason quoting a credential", "index", responseItem(400, "", "mapper_parsing_exception", "value [elastic:"+secret+"]", "x", "header Authorization: Basic abcdef sent"), itemPermanent, false,
			"mapper_parsing_exception: value [<secret>] (caused by x: header Authorization: Basic <secret> sent)"},
	}
	if (itemResult{}).ok() {
		t.Error("an item without an answer counts as acknowledged")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.classifyItem(tc.action, tc.item)
			if got.Outcome != tc.want || got.ok() != tc.ok || got.Status != tc.item.Status || got.describe() != tc.describes {
				t.Errorf("classifyItem(%s, %d %q) = outcome %d ok %v status %d %q; want outcome %d ok %v %q",
					tc.action, tc.item.Status, tc.item.Error.Type, got.Outcome, got.ok(), got.Status, got.describe(), tc.want, tc.ok, tc.describes)
			}
		})
	}
}

// testCluster opens a Cluster on addr with millisecond retries.
func testCluster(t *testing.T, addr, prefix string) *Cluster {
	t.Helper()
	zero := 0
	c, err := Open(context.Background(), Config{
		Addresses:    []string{addr},
		IndexPrefix:  prefix,
		Namespace:    indextest.Namespace(prefix),
		Replicas:     &zero,
		MaxRetries:   1,
		RetryBackoff: func(int) time.Duration { return time.Millisecond },
		Logger:       zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	return c
}

// Every item outcome that a real Elasticsearch gives, through the one bulk path: created, there
// already, a mapping error, gone, a stale and a current version, and 429 from a proxy. The
// request's results come back in the order of its ops.
func TestBulkItemsAgainstElasticsearch(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	ctx := context.Background()
	proxy := indextest.NewProxy(t, base)
	c := testCluster(t, proxy.URL, prefix)
	name := prefix + "-bulk"
	if err := c.do(ctx, http.MethodPut, "/"+name, nil, obj{
		"settings": obj{"number_of_replicas": 0},
		"mappings": obj{"dynamic": "strict", "properties": obj{"count": obj{"type": "long"}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	doc := func(v any) []byte { b, _ := json.Marshal(obj{"count": v}); return b }

	first, err := c.bulk(ctx, []bulkOp{{action: "create", index: name, id: "a", body: doc(1)}})
	if err != nil || len(first) != 1 || first[0].Outcome != itemDone || first[0].Status != 201 || first[0].Result != "created" {
		t.Fatalf("create a = %+v, %v; want one item done, 201 created", first, err)
	}
	stored, err := c.mget(ctx, name, []string{"a", "nothing"}, nil, false)
	if err != nil || len(stored) != 1 || string(stored["a"].Source) != string(doc(1)) {
		t.Fatalf("mget a, nothing = %v, %v; want a alone", stored, err)
	}
	current := stored["a"].Version
	stale := current
	stale.PrimaryTerm++ // a term the document never had

	proxy.RejectTooMany("busy", 1)
	ops := []bulkOp{
		{action: "create", index: name, id: "a", body: doc(2)},
		{action: "create", index: name, id: "bad", body: doc("not a number")},
		{action: "delete", index: name, id: "missing"},
		{action: "index", index: name, id: "a", body: doc(3), cond: &stale},
		{action: "index", index: name, id: "a", body: doc(4), cond: &current},
		{action: "index", index: name, id: "busy", body: doc(5)},
		{action: "create", index: name, id: "b", body: doc(6)},
	}
	got, err := c.bulk(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		outcome itemOutcome
		status  int
		typ     string
	}{
		{itemExisted, 409, "version_conflict_engine_exception"},
		{itemPermanent, 400, "document_parsing_exception"},
		{itemGone, 404, ""},
		{itemConflict, 409, "version_conflict_engine_exception"},
		{itemDone, 200, ""},
		{itemBusy, 429, "es_rejected_execution_exception"},
		{itemDone, 201, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results for %d ops: %+v", len(got), len(ops), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Outcome != w.outcome || g.Status != w.status || g.Type != w.typ {
			t.Errorf("%s %s = outcome %d, status %d, %q; want outcome %d, status %d, type %q", ops[i].action, ops[i].id, g.Outcome, g.Status, g.describe(), w.outcome, w.status, w.typ)
		}
	}
	if r := got[1]; !strings.Contains(r.Reason, "count") {
		t.Errorf("mapping error reason %q does not name the field", r.Reason)
	}
	stored, err = c.mget(ctx, name, []string{"a", "b", "bad", "busy"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || string(stored["a"].Source) != string(doc(4)) || string(stored["b"].Source) != string(doc(6)) {
		t.Errorf("stored after the request = %v; want a at the current version's write, and b", stored)
	}
}

// fakeBulk is an Elasticsearch that answers every _bulk and _mget with what the test set.
type fakeBulk struct {
	mu     sync.Mutex
	status int
	body   string
	bulks  int
}

func (f *fakeBulk) set(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.Copy(io.Discard, r.Body)
	if strings.HasPrefix(r.URL.Path, "/_nodes") {
		_, _ = io.WriteString(w, `{"nodes":{"n1":{"version":"8.19.0","ingest":{"processors":[]}}}}`)
		return
	}
	f.mu.Lock()
	status, body := f.status, f.body
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		f.bulks++
	}
	f.mu.Unlock()
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// The answers a real cluster rarely gives: a shard failure of one item, an answer that leaves
// an item out, one that does not parse, and a refused request. Each is what the callers see,
// never a silent success.
func TestBulkAnswers(t *testing.T) {
	f := &fakeBulk{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := testCluster(t, srv.URL, "fake")
	ctx := context.Background()
	two := []bulkOp{{action: "delete", index: "i", id: "a"}, {action: "delete", index: "i", id: "b"}}
	refs := []docRef{{index: "i", id: "a"}, {index: "i", id: "b"}}

	t.Run("item 5xx", func(t *testing.T) {
		f.set(200, `{"errors":true,"items":[{"delete":{"_id":"a","status":200,"result":"deleted"}},
			{"delete":{"_id":"b","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}]}`)
		n, err := c.deleteDocs(ctx, refs)
		if n != 1 || err == nil || !strings.Contains(err.Error(), "delete b: status 503: unavailable_shards_exception") {
			t.Errorf("deleteDocs = %d, %v; want 1 deleted and b's failure", n, err)
		}
	})
	t.Run("missing item", func(t *testing.T) {
		f.set(200, `{"errors":false,"items":[{"delete":{"_id":"a","status":200,"result":"deleted"}}]}`)
		res, err := c.bulk(ctx, two)
		if err == nil || res != nil || !strings.Contains(err.Error(), "lists 1 items for 2 sent") {
			t.Errorf("bulk = %+v, %v; want no results and an error about the missing item", res, err)
		}
		// A caller that counts must not count the item it was told about and stop there.
		if n, err := c.deleteDocs(ctx, refs); n != 0 || err == nil {
			t.Errorf("deleteDocs = %d, %v; want the answer refused", n, err)
		}
	})
	t.Run("answer does not parse", func(t *testing.T) {
		f.set(200, `{"errors":false,"items":[{"delete":`)
		res, err := c.bulk(ctx, two)
		if err == nil || res != nil {
			t.Errorf("bulk = %+v, %v; want no results and an error", res, err)
		}
	})
	t.Run("request refused", func(t *testing.T) {
		f.set(400, `{"error":{"type":"illegal_argument_exception","reason":"bad request"},"status":400}`)
		res, err := c.bulk(ctx, two)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 400 || se.Type != "illegal_argument_exception" || se.Op != "POST /_bulk" || res != nil {
			t.Errorf("bulk = %+v, %v; want a *StatusError for POST /_bulk, 400", res, err)
		}
		errs, err := c.PutDocs(ctx, Messages, []CondWrite{{ID: "a", Doc: json.RawMessage(`{}`), Create: true}})
		if !errors.As(err, &se) || errs != nil {
			t.Errorf("PutDocs = %v, %v; want the request's *StatusError", errs, err)
		}
	})
	// The Writer reads the same answers the same way.
	t.Run("writer", func(t *testing.T) {
		write := func() Result {
			w, err := c.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			var got Result
			if err := w.Add(ctx, Doc{Kind: Messages, ID: "a", Body: obj{"k": 1}}, func(r Result) { got = r }); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			return got
		}
		f.set(200, `{"errors":true,"items":[{"index":{"_id":"a","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}]}`)
		if r := write(); r.Err == nil || r.Permanent || r.Status != 503 || r.Reason != "unavailable_shards_exception: primary shard is not active" {
			t.Errorf("writer, item 503: %+v; want a failure for this run with the item's reason", r)
		}
		f.set(200, `{"errors":true,"items":[{"index":{"_id":"a","status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse"}}}]}`)
		if r := write(); r.Err == nil || !r.Permanent || r.Status != 400 {
			t.Errorf("writer, item 400: %+v; want a permanent failure", r)
		}
		f.set(200, `{"errors":false,"items":[]}`)
		if r := write(); r.Err == nil || r.Permanent || !strings.Contains(r.Err.Error(), "lists 0 items for 1 sent") {
			t.Errorf("writer, item missing: %+v; want a failure for this run", r)
		}
		f.set(400, `{"error":{"type":"illegal_argument_exception","reason":"bad request"},"status":400}`)
		if r := write(); r.Err == nil || r.Permanent || r.Status != 0 || !strings.Contains(r.Err.Error(), "POST /_bulk: status 400: illegal_argument_exception: bad request") {
			t.Errorf("writer, request refused: %+v; want a request failure naming the status and reason", r)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f.set(200, `{"errors":false,"items":[]}`)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if res, err := c.bulk(ctx, two); !errors.Is(err, context.Canceled) || res != nil {
			t.Errorf("bulk with an ended context = %+v, %v; want context.Canceled", res, err)
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bulks == 0 {
		t.Error("no bulk request reached the fake cluster")
	}
}

// One _mget parser: found documents with their versions, not found ones absent, a document
// the cluster could not read an error naming it; a missing index is no documents only where
// the caller says so.
func TestMget(t *testing.T) {
	f := &fakeBulk{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := testCluster(t, srv.URL, "fake")
	ctx := context.Background()

	f.set(200, `{"docs":[{"_id":"a","found":true,"_seq_no":7,"_primary_term":2,"_source":{"k":1}},{"_id":"b","found":false},
		{"_id":"c","error":{"type":"index_not_found_exception","reason":"no such index [i]"}}]}`)
	got, err := c.mget(ctx, "i", []string{"a", "b", "c"}, url.Values{"_source": {"true"}}, true)
	if err != nil || len(got) != 1 || string(got["a"].Source) != `{"k":1}` || got["a"].Version != (Version{SeqNo: 7, PrimaryTerm: 2}) {
		t.Errorf("mget = %v, %v; want a alone, at 7/2", got, err)
	}
	if _, err := c.mget(ctx, "i", []string{"a", "b", "c"}, nil, false); err == nil || !strings.Contains(err.Error(), "document c") {
		t.Errorf("mget without missingOK = %v; want an error naming c", err)
	}

	f.set(200, `{"docs":[{"_id":"a","error":{"type":"no_shard_available_action_exception","reason":"No shard available"}}]}`)
	var se *StatusError
	if _, err := c.mget(ctx, "i", []string{"a"}, nil, true); !errors.As(err, &se) || se.Type != "no_shard_available_action_exception" {
		t.Errorf("mget of an unreadable document = %v; want its *StatusError, never not found", err)
	}
	if _, err := c.Existing(ctx, Messages, []string{"a"}); err == nil {
		t.Error("Existing of an unreadable document: no error; want one, never does not exist")
	}

	f.set(404, `{"error":{"type":"index_not_found_exception","reason":"no such index [i]"},"status":404}`)
	if got, err := c.mget(ctx, "i", []string{"a"}, nil, true); err != nil || len(got) != 0 {
		t.Errorf("mget of a missing index with missingOK = %v, %v; want nothing", got, err)
	}
	if _, err := c.mget(ctx, "i", []string{"a"}, nil, false); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("mget of a missing index = %v; want a 404 *StatusError", err)
	}
	if got, err := c.GetDocs(ctx, Messages, []string{"a"}); err != nil || len(got) != 0 {
		t.Errorf("GetDocs of a missing index = %v, %v; want nothing", got, err)
	}
}

// A synchronous bulk request too large for a proxy in front of the cluster goes through the
// same splitting as the Writer's: every small document is written, and the one refused on its
// own comes back permanent, status 413.
func TestBulkSplitsARequestTooLargeForTheProxy(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	ctx := context.Background()
	c := testCluster(t, indextest.NewBodyLimitProxy(t, base, "64k"), prefix)
	name := prefix + "-split"
	if err := c.do(ctx, http.MethodPut, "/"+name, nil, obj{"settings": obj{"number_of_replicas": 0}}, nil); err != nil {
		t.Fatal(err)
	}
	var ops []bulkOp
	for i := range 200 {
		ops = append(ops, bulkOp{action: "create", index: name, id: "small-" + strconv.Itoa(i), body: []byte(`{"text":"` + strings.Repeat("s", 1000) + `"}`)})
	}
	ops[117] = bulkOp{action: "create", index: name, id: "big", body: []byte(`{"text":"` + strings.Repeat("b", 100_000) + `"}`)}
	got, err := c.bulk(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		switch {
		case ops[i].id == "big" && (r.Outcome != itemPermanent || r.Status != StatusTooLarge):
			t.Errorf("big: outcome %d, status %d, %q; want permanent, 413", r.Outcome, r.Status, r.describe())
		case ops[i].id != "big" && r.Outcome != itemDone:
			t.Errorf("%s: outcome %d, status %d, %q; want done", ops[i].id, r.Outcome, r.Status, r.describe())
		}
	}
	if n := c.splits.tooLarge.Load(); n != 1 {
		t.Errorf("%d documents counted too large, want 1", n)
	}
}
