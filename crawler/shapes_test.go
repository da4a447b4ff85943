package crawler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The simulator's shape-variant mode serves every record in one of the shapes the public
// sources disagree about (addresses as arrays or strings, numbers as strings, times in other
// layouts, missing optional fields, pages not newest-first, next on a final page). The
// variants carry the same information, so the index must still equal the truth, and a second
// run must find nothing to do.
func TestShapeVariantsCrawlMatchesTruth(t *testing.T) {
	ctx := context.Background()
	opts := smallArchive()
	opts.ShapeVariants = true
	e := newEnv(t, opts)
	// With the detail, whose shapes vary most; the listing's vary either way.
	withDetail := func(o *crawler.Options) { o.MessageDetail = true }

	first := e.crawl(ctx, crawler.Rules{}, withDetail)
	if !first.complete() {
		t.Fatalf("first crawl incomplete: %+v\n%s", first.results, e.log)
	}
	ex := e.expect(truthFilter{})
	if len(ex.messages) == 0 || len(ex.attachments) == 0 {
		t.Fatalf("the archive under test has %d messages and %d attachments; the test needs both", len(ex.messages), len(ex.attachments))
	}
	e.assertIndexEquals(ex)
	if first.totals.FetchFailed != 0 || first.totals.DocsFailed != 0 {
		t.Errorf("first crawl: %d fetch failures, %d document failures; want none", first.totals.FetchFailed, first.totals.DocsFailed)
	}
	// The documents say what the documented shapes say: every message has its sender, and
	// most have recipients, whatever shape the detail used for them.
	withTo := 0
	for id, src := range e.indexed("messages") {
		from, _ := src["email.from.address"].([]any)
		if len(from) != 1 || !strings.Contains(fmt.Sprint(from[0]), "@") {
			t.Errorf("message %s: from %v, want an address", id, src["email.from.address"])
		}
		if to, _ := src["email.to.address"].([]any); len(to) > 0 {
			withTo++
		}
		if subject, _ := src["email.subject"].(string); subject != ex.messages[id].Subject && strings.TrimSpace(ex.messages[id].Subject) != "" {
			t.Errorf("message %s: subject %q, want %q", id, subject, ex.messages[id].Subject)
		}
	}
	if withTo < len(ex.messages)/2 {
		t.Errorf("%d of %d messages have recipients; the variant shapes of to lost them", withTo, len(ex.messages))
	}
	// The client noticed the shapes (once per field, without content).
	if !strings.Contains(e.log.String(), "unexpected shape in an answer") {
		t.Errorf("no unexpected-shape warning logged; did the variants reach the client?")
	}

	before := e.indexingTotal()
	e.sim.ResetStats()
	second := e.crawl(ctx, crawler.Rules{}, withDetail)
	if !second.complete() {
		t.Fatalf("second crawl incomplete: %+v", second.results)
	}
	if n := requests(e.sim.Stats(), "/api/archive/get-message-detail"); n != 0 {
		t.Errorf("second crawl made %d detail calls, want 0", n)
	}
	if second.writer.Added != 0 || second.totals.Messages != 0 {
		t.Errorf("second crawl wrote %d documents (%d messages), want 0", second.writer.Added, second.totals.Messages)
	}
	if after := e.indexingTotal(); after != before {
		t.Errorf("Elasticsearch index operations went from %d to %d on a crawl with no change", before, after)
	}
	e.assertIndexEquals(ex)
}

// One malformed record in a page fails that message only: the rest of its view and every
// other view is indexed, the run counts one failed message, and the next run tries it again.
func TestOneBadRecordFailsOnlyThatMessage(t *testing.T) {
	ctx := context.Background()
	opts := smallArchive()
	opts.ShapeVariants = true
	opts.BadRecords = 0.01
	// Find, deterministically, a seed with exactly one malformed message in a crawled
	// mailbox (not an alias or a list).
	found := false
	for seed := int64(1); seed <= 500 && !found; seed++ {
		opts.Seed = seed
		sim, err := simulator.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		found = len(crawledMalformed(sim)) == 1
	}
	if !found {
		t.Fatalf("no seed up to 500 gives exactly one malformed message at rate %v", opts.BadRecords)
	}
	e := newEnv(t, opts)
	bad := crawledMalformed(e.sim)[0]
	ex := e.expect(truthFilter{})
	var badDoc string
	for id, m := range ex.messages {
		if m.ID == bad {
			badDoc = id
		}
	}
	if badDoc == "" {
		t.Fatalf("malformed message %s is not expected in the index at all", bad)
	}
	var except []string
	except = append(except, badDoc)
	for id, a := range ex.attachments {
		if attachmentOf(ex, id, a) == badDoc {
			except = append(except, id)
		}
	}

	first := e.crawl(ctx, crawler.Rules{}, nil)
	if first.totals.InvalidListed != 1 {
		t.Errorf("first crawl: %d listed messages invalid, want 1\n%s", first.totals.InvalidListed, e.log)
	}
	incomplete := 0
	for _, v := range first.results {
		if v.Outcome != crawler.Complete {
			incomplete++
		}
	}
	if incomplete != 1 {
		t.Errorf("%d views incomplete, want only the one with the malformed record: %+v", incomplete, first.results)
	}
	e.assertIndexEquals(ex, except...)
	if _, ok := e.indexed("messages")[badDoc]; ok {
		t.Errorf("malformed message %s was indexed", badDoc)
	}
	if got, want := first.totals.Messages, int64(len(ex.messages)-1); got != want {
		t.Errorf("first crawl indexed %d messages, want %d (all but the malformed one)", got, want)
	}

	// Still malformed: the next run lists it again, fails it again, and rewrites nothing.
	second := e.crawl(ctx, crawler.Rules{}, nil)
	if second.totals.InvalidListed != 1 {
		t.Errorf("second crawl: %d listed messages invalid, want 1 (the malformed one, retried)", second.totals.InvalidListed)
	}
	if second.totals.Messages != 0 {
		t.Errorf("second crawl indexed %d messages, want 0", second.totals.Messages)
	}
	e.assertIndexEquals(ex, except...)
}

// crawledMalformed returns the malformed message ids that belong to crawled mailboxes.
func crawledMalformed(sim *simulator.Server) []string {
	bad := map[string]bool{}
	for _, id := range sim.MalformedIDs() {
		bad[id] = true
	}
	var out []string
	for _, mb := range sim.TruthOf(simulator.TruthQuery{SkipAttachments: true}).Mailboxes {
		if mb.Alias || isDL(mb) {
			continue
		}
		for _, m := range mb.Messages {
			if bad[m.ID] {
				out = append(out, m.ID)
			}
		}
	}
	return out
}

// attachmentOf returns the message document id an expected attachment belongs to.
func attachmentOf(ex expectation, attID string, a simulator.TruthAttachment) string {
	for id, m := range ex.messages {
		for i, x := range m.Attachments {
			if x.ID == a.ID && crawler.AttachmentDocID(ex.mailboxOf[id], m.View, m.ID, i, x.SHA256) == attID {
				return id
			}
		}
	}
	return ""
}
