package crawler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/state"
)

// A proxy in front of Elasticsearch that refuses request bodies over a few kilobytes, smaller
// than some of the archive's documents: the crawl does not stop as if Elasticsearch were
// unreachable. Every document that fits is indexed; each one that does not is recorded as
// rejected (status 413, its size and elasticsearch.bulk.flush_bytes in the reason), counted,
// and holds back only its own mailbox view.
func TestCrawlGoesOnPastDocumentsTooLargeForTheProxy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	e.esAddr = indextest.NewBodyLimitProxy(t, e.esURL, "6k")
	ex := e.expect(truthFilter{})
	r := e.crawl(ctx, crawler.Rules{}, nil)
	if r.err != nil {
		t.Fatalf("crawl: %v", r.err)
	}

	store, err := state.Open(e.statePath, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fails, err := store.Failures(nil)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	total := len(ex.messages) + len(ex.attachments)
	if len(fails) == 0 || len(fails) > total/2 {
		t.Fatalf("%d of %d documents rejected; the limit should refuse a few of them", len(fails), total)
	}
	t.Logf("%d of %d documents over the proxy's limit, in %d bulk requests split", len(fails), total, r.writer.Split)
	rejected := make([]string, 0, len(fails))
	blocked := map[state.Key]bool{}
	for _, f := range fails {
		rejected = append(rejected, f.DocID)
		blocked[f.Key] = true
		if f.Status != index.StatusTooLarge || !strings.Contains(f.Reason, "elasticsearch.bulk.flush_bytes") || !strings.Contains(f.Reason, " bytes") {
			t.Errorf("failure %+v: want status 413 and a reason with the size and elasticsearch.bulk.flush_bytes", f)
		}
	}
	if r.totals.DocsFailed != int64(len(fails)) || r.totals.NotIndexed != 0 || r.writer.TooLarge != uint64(len(fails)) {
		t.Errorf("documents failed %d, not indexed %d, too large %d; want %d, 0 and %d",
			r.totals.DocsFailed, r.totals.NotIndexed, r.writer.TooLarge, len(fails), len(fails))
	}
	e.assertIndexEquals(ex, rejected...)
	for _, v := range r.results {
		if key := (state.Key{Mailbox: v.Mailbox, View: v.View}); !blocked[key] && v.Outcome != crawler.Complete {
			t.Errorf("mailbox view %v without a rejected document: %s %s", key, v.Outcome, v.Error)
		}
	}
}
