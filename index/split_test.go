package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// Behind a proxy that refuses request bodies over 64 KiB (nginx's client_max_body_size), a
// bulk request of 300 KB holding one document of 100 KB: the request is split until every
// part passes, the small documents are all indexed, and the large one alone fails for good
// with status 413 and a reason naming its size and elasticsearch.bulk.flush_bytes. Nothing
// is reported as an unreachable cluster.
func TestWriterSplitsARequestTooLargeForTheProxy(t *testing.T) {
	e := newEnv(t)
	proxy := indextest.NewBodyLimitProxy(t, e.base, "64k")
	cfg := e.config(t, proxy)
	cfg.BulkWorkers = 1
	cfg.FlushBytes = 4 << 20        // far above the proxy's limit: one request for everything
	cfg.FlushInterval = time.Minute // flushed by Close
	c := open(t, cfg)

	big := message("big", "a@example.com", "INBOX", 1)
	body := big.Body.(index.MessageDoc)
	body.Mimecast.Body = strings.Repeat("large body ", 10_000)
	big.Body = body
	enc, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	docs := []index.Doc{}
	for i, id := range ids("small-", 200) {
		if i == 117 {
			docs = append(docs, big)
		}
		docs = append(docs, message(id, "a@example.com", "INBOX", 1))
	}
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	res := newResults(t)
	for _, d := range docs {
		if err := w.Add(context.Background(), d, res.done(d.ID)); err != nil {
			t.Fatalf("add %s: %v", d.ID, err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, id := range ids("small-", 200) {
		if r := res.one(id); r.Err != nil {
			t.Errorf("%s: %v", id, r.Err)
		}
	}
	r := res.one("big")
	t.Logf("the large document: %v", r.Err)
	if r.Err == nil || !r.Permanent || r.Status != index.StatusTooLarge {
		t.Errorf("large document: err %v, permanent %t, status %d; want a permanent failure with status 413", r.Err, r.Permanent, r.Status)
	}
	if size := fmt.Sprintf("%d bytes", len(enc)); !strings.Contains(r.Reason, size) || !strings.Contains(r.Reason, "elasticsearch.bulk.flush_bytes") {
		t.Errorf("reason %q: want the document's size (%s) and elasticsearch.bulk.flush_bytes", r.Reason, size)
	}
	st := w.Stats()
	if st.Indexed != 200 || st.Failed != 1 || st.TooLarge != 1 || st.Split < 1 {
		t.Errorf("stats = %+v; want 200 indexed, 1 failed, 1 too large, at least 1 request split", st)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, index.Messages, index.Filter{}); n != 200 {
		t.Errorf("%d documents in the index, want the 200 small ones", n)
	}
}
