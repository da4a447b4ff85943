package crawler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The version before attachment ids came from the RFC 822 message named each attachment
// document by (mailbox, view, message id, Mimecast attachment id): DetailAttachmentDocID. An
// index it wrote must come out of the next full crawl with every attachment once, under the
// new ids, and no incremental crawl may rewrite it in between.
func TestFullCrawlReplacesAttachmentIDsOfThePreviousVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	first := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { o.MessageDetail = true })
	if !first.complete() {
		t.Fatalf("crawl with the detail incomplete: %+v\n%s", first.results, e.log)
	}
	ex := e.expect(truthFilter{})
	e.assertIndexEquals(ex)

	// The index as the previous version left it: every attachment document under its old id.
	n := e.rewriteUnderOldIDs()
	if n != len(ex.attachments) || n == 0 {
		t.Fatalf("rewrote %d attachment documents, want the %d expected", n, len(ex.attachments))
	}
	old := expectation{messages: ex.messages, mailboxOf: ex.mailboxOf, attachments: oldIDs(ex)}
	e.assertIndexEquals(old)

	// An incremental crawl finds every message indexed: nothing fetched, nothing written.
	before := e.indexingTotal()
	e.sim.ResetStats()
	inc := e.crawl(ctx, crawler.Rules{}, nil)
	if !inc.complete() || inc.writer.Added != 0 {
		t.Errorf("incremental crawl: complete=%v, wrote %d documents, want none", inc.complete(), inc.writer.Added)
	}
	if n := requests(e.sim.Stats(), "/api/archive/get-file") + requests(e.sim.Stats(), "/api/archive/get-message-detail"); n != 0 {
		t.Errorf("incremental crawl made %d get-file and detail calls, want 0", n)
	}
	if after := e.indexingTotal(); after != before {
		t.Errorf("index operations went from %d to %d on an incremental crawl", before, after)
	}
	e.assertIndexEquals(old)

	// A full crawl without the detail writes the new ids and sweeps the old ones.
	full := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { o.Full = true })
	if !full.complete() {
		t.Fatalf("full crawl incomplete: %+v\n%s", full.results, e.log)
	}
	if full.totals.Deleted < int64(n) {
		t.Errorf("the full crawl deleted %d documents, want at least the %d under old ids", full.totals.Deleted, n)
	}
	e.assertIndexEquals(ex)
	perMessage := map[any]int{}
	for _, src := range e.indexed("attachments") {
		perMessage[src["mimecast.message_doc_id"]]++
	}
	for id, m := range ex.messages {
		if perMessage[id] != len(m.Attachments) {
			t.Errorf("message %s has %d attachment documents, want %d", id, perMessage[id], len(m.Attachments))
		}
	}
}

// oldIDs is ex's attachments under the previous version's ids.
func oldIDs(ex expectation) map[string]simulator.TruthAttachment {
	out := map[string]simulator.TruthAttachment{}
	for id, m := range ex.messages {
		for _, a := range m.Attachments {
			out[crawler.DetailAttachmentDocID(ex.mailboxOf[id], m.View, m.ID, a.ID)] = a
		}
	}
	return out
}

// rewriteUnderOldIDs replaces every attachment document by the same body under the id the
// previous version gave it, from the Mimecast attachment id the body carries, and returns how
// many it rewrote.
func (e *env) rewriteUnderOldIDs() int {
	e.t.Helper()
	alias := e.prefix + "-attachments"
	e.es(http.MethodPost, "/"+alias+"/_refresh", "", nil)
	var out struct {
		Hits struct {
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	e.es(http.MethodPost, "/"+alias+"/_search?size=10000", `{"query":{"match_all":{}}}`, &out)
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, h := range out.Hits.Hits {
		var d struct {
			Mimecast struct {
				ID           string `json:"id"`
				Mailbox      string `json:"mailbox"`
				View         string `json:"view"`
				AttachmentID string `json:"attachment_id"`
			} `json:"mimecast"`
		}
		if err := json.Unmarshal(h.Source, &d); err != nil || d.Mimecast.AttachmentID == "" {
			e.t.Fatalf("attachment document %s: no Mimecast attachment id (%v): %s", h.ID, err, h.Source)
		}
		oldID := crawler.DetailAttachmentDocID(d.Mimecast.Mailbox, d.Mimecast.View, d.Mimecast.ID, d.Mimecast.AttachmentID)
		if oldID == h.ID {
			e.t.Fatalf("attachment document %s already has its old id", h.ID)
		}
		enc.Encode(map[string]any{"index": map[string]any{"_id": oldID}})
		body.Write(h.Source)
		body.WriteByte('\n')
		enc.Encode(map[string]any{"delete": map[string]any{"_id": h.ID}})
	}
	var res struct {
		Errors bool `json:"errors"`
	}
	e.es(http.MethodPost, "/"+alias+"/_bulk?refresh=true", body.String(), &res)
	if res.Errors {
		e.t.Fatalf("rewriting attachment documents under their old ids failed")
	}
	return len(out.Hits.Hits)
}
