package index_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

func TestWriterAcknowledgesEveryDocumentOnce(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t, "")
	cfg.FlushBytes = 16 << 10 // many small requests, so that several run at once
	c := open(t, cfg)

	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	res := newResults(t)
	const producers, perProducer = 4, 250
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids(fmt.Sprintf("p%d-", p), perProducer) {
				d := message(id, "a@example.com", "INBOX", 1)
				if p%2 == 1 {
					d = attachment(id, "a@example.com", 1)
				}
				if err := w.Add(context.Background(), d, res.done(id)); err != nil {
					t.Errorf("add %s: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	for p := range producers {
		for _, id := range ids(fmt.Sprintf("p%d-", p), perProducer) {
			if r := res.one(id); r.Err != nil {
				t.Errorf("%s: %v", id, r.Err)
			}
		}
	}
	st := w.Stats()
	if st.Added != producers*perProducer || st.Indexed != producers*perProducer || st.Failed != 0 {
		t.Errorf("stats = %+v, want %d added and indexed", st, producers*perProducer)
	}
	if st.Requests < 2 || st.Bytes == 0 {
		t.Errorf("stats = %+v, want several requests and some bytes", st)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, index.Messages, index.Filter{}); n != 500 {
		t.Errorf("%d messages indexed, want 500", n)
	}
	if n := count(t, c, index.Attachments, index.Filter{}); n != 500 {
		t.Errorf("%d attachments indexed, want 500", n)
	}
	if err := w.Add(context.Background(), message("late", "a@example.com", "INBOX", 1), res.done("late")); !errors.Is(err, index.ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestWriterOverwritesSameID(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	first := message("same", "a@example.com", "INBOX", 1)
	write(t, c, first, message("other", "a@example.com", "INBOX", 1))

	second := message("same", "a@example.com", "INBOX", 2)
	body := second.Body.(index.MessageDoc)
	body.Email.Subject = "second version"
	second.Body = body
	write(t, c, second)

	if n := count(t, c, index.Messages, index.Filter{}); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
	if n := count(t, c, index.Messages, index.Filter{GenerationBelow: 2}); n != 1 {
		t.Errorf("%d documents of generation 1, want 1 (the overwritten one moved to 2)", n)
	}
	var doc struct {
		Source index.MessageDoc `json:"_source"`
	}
	getJSON(t, e.base+"/"+c.IndexName(index.Messages)+"/_doc/same", &doc)
	if doc.Source.Email.Subject != "second version" {
		t.Errorf("subject = %q, want the second version", doc.Source.Email.Subject)
	}
}

func TestWriterDelete(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	write(t, c, message("keep", "a@example.com", "INBOX", 1), message("drop", "a@example.com", "INBOX", 1))

	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	res := newResults(t)
	for _, id := range []string{"drop", "never-existed"} {
		if err := w.Delete(context.Background(), index.Messages, id, res.done(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"drop", "never-existed"} {
		if r := res.one(id); r.Err != nil {
			t.Errorf("delete %s: %v", id, r.Err)
		}
	}
	if st := w.Stats(); st.Deleted != 2 {
		t.Errorf("stats = %+v, want 2 deleted", st)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := c.Existing(context.Background(), index.Messages, []string{"keep", "drop"})
	if err != nil {
		t.Fatal(err)
	}
	if !got["keep"] || got["drop"] {
		t.Errorf("Existing = %v, want keep only", got)
	}
}

// TestWriterItemFaults puts the fault-injecting proxy between the writer and the cluster.
func TestWriterItemFaults(t *testing.T) {
	tests := []struct {
		name          string
		inject        func(p *indextest.Proxy, id string)
		wantErr       bool
		wantPermanent bool
		wantStatus    int
		wantReason    string
		wantSeen      int // bulk items of the document that reached the proxy
		wantRetried   uint64
	}{
		{
			name:        "429 twice, then acknowledged",
			inject:      func(p *indextest.Proxy, id string) { p.RejectTooMany(id, 2) },
			wantStatus:  http.StatusCreated,
			wantSeen:    3,
			wantRetried: 2,
		},
		{
			name:        "429 more often than the retries allow",
			inject:      func(p *indextest.Proxy, id string) { p.RejectTooMany(id, 10) },
			wantErr:     true,
			wantStatus:  http.StatusTooManyRequests,
			wantReason:  "es_rejected_execution_exception",
			wantSeen:    4, // the first try and MaxItemRetries (3) re-queues
			wantRetried: 3,
		},
		{
			name:          "mapping error is permanent and not retried",
			inject:        func(p *indextest.Proxy, id string) { p.RejectMapping(id) },
			wantErr:       true,
			wantPermanent: true,
			wantStatus:    http.StatusBadRequest,
			wantReason:    "mapper_parsing_exception",
			wantSeen:      1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := indextest.NewProxy(t, e.base)
			cfg := e.config(t, p.URL)
			cfg.MaxItemRetries = 3
			c := open(t, cfg)

			const faulty = "faulty"
			tt.inject(p, faulty)
			docs := []index.Doc{message(faulty, "a@example.com", "INBOX", 1)}
			for _, id := range ids("ok-", 20) {
				docs = append(docs, message(id, "a@example.com", "INBOX", 1))
			}
			res := write(t, c, docs...)

			r := res.one(faulty)
			if (r.Err != nil) != tt.wantErr || r.Permanent != tt.wantPermanent || r.Status != tt.wantStatus {
				t.Errorf("result = %+v, want error %v, permanent %v, status %d", r, tt.wantErr, tt.wantPermanent, tt.wantStatus)
			}
			if !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("reason %q does not contain %q", r.Reason, tt.wantReason)
			}
			if got := p.Seen(faulty); got != tt.wantSeen {
				t.Errorf("proxy saw the document %d times, want %d", got, tt.wantSeen)
			}
			for _, id := range ids("ok-", 20) {
				if r := res.one(id); r.Err != nil {
					t.Errorf("%s: %v", id, r.Err)
				}
				if got := p.Seen(id); got != 1 {
					t.Errorf("proxy saw %s %d times, want 1", id, got)
				}
			}
			wantCount := int64(21)
			if tt.wantErr {
				wantCount = 20
			}
			if n := count(t, c, index.Messages, index.Filter{}); n != wantCount {
				t.Errorf("%d documents indexed, want %d", n, wantCount)
			}
		})
	}
}

func TestWriterRealMappingError(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	bad := index.Doc{Kind: index.Messages, ID: "bad-date", Body: map[string]any{"mimecast": map[string]any{"mailbox": "a@example.com"}, "@timestamp": "not-a-date"}}
	res := write(t, c, bad, message("good", "a@example.com", "INBOX", 1))

	r := res.one("bad-date")
	if r.Err == nil || !r.Permanent || r.Status != http.StatusBadRequest {
		t.Fatalf("result = %+v, want a permanent 400", r)
	}
	if !strings.Contains(r.Reason, "parsing_exception") || !strings.Contains(r.Reason, "@timestamp") {
		t.Errorf("reason %q should name the parsing exception and the field", r.Reason)
	}
	if r := res.one("good"); r.Err != nil {
		t.Errorf("good document: %v", r.Err)
	}
}

func TestWriterRequestFailures(t *testing.T) {
	tests := []struct {
		name  string
		fault func(p *indextest.Proxy, on bool)
	}{
		{"cluster answers 503", (*indextest.Proxy).SetDown},
		{"connections dropped", (*indextest.Proxy).SetRefuse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := indextest.NewProxy(t, e.base)
			c := open(t, e.config(t, p.URL))

			tt.fault(p, true)
			before := p.Requests()
			w, err := c.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			res := newResults(t)
			for _, id := range ids("down-", 5) {
				if err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), res.done(id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
			for _, id := range ids("down-", 5) {
				r := res.one(id)
				if r.Err == nil || r.Permanent || r.Status != 0 {
					t.Errorf("%s: result %+v, want a request failure that is not permanent", id, r)
				}
			}
			// The client retried the request (MaxRetries 2 in the test config) before giving up.
			if got := p.Requests() - before; got < 3 {
				t.Errorf("%d requests reached the proxy, want at least 3 (one and two retries)", got)
			}

			tt.fault(p, false)
			res = write(t, c, message("after", "a@example.com", "INBOX", 1))
			if r := res.one("after"); r.Err != nil {
				t.Errorf("after recovery: %v", r.Err)
			}
		})
	}
}

func TestWriterAttachmentPipeline(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	if !c.AttachmentProcessor() {
		t.Skip("the cluster has no attachment processor")
	}
	d := attachment("piped", "a@example.com", 1)
	body := d.Body.(index.AttachmentDoc)
	body.Mimecast.Content = ""
	body.Mimecast.Data = "SGVsbG8gZnJvbSB0aGUgcGlwZWxpbmU=" // "Hello from the pipeline"
	d.Body, d.Pipeline = body, true
	res := write(t, c, d)
	if r := res.one("piped"); r.Err != nil {
		t.Fatalf("index through the pipeline: %v", r.Err)
	}
	var doc struct {
		Source map[string]any `json:"_source"`
	}
	getJSON(t, e.base+"/"+c.IndexName(index.Attachments)+"/_doc/piped", &doc)
	mc, _ := doc.Source["mimecast"].(map[string]any)
	if _, ok := mc["data"]; ok {
		t.Error("the base64 data was stored")
	}
	att, _ := mc["attachment"].(map[string]any)
	if content, _ := att["content"].(string); !strings.Contains(content, "Hello from the pipeline") {
		t.Errorf("extracted content = %v", mc["attachment"])
	}
}

func TestWriterDataNeverStoredWithoutPipeline(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	d := attachment("raw", "a@example.com", 1)
	body := d.Body.(index.AttachmentDoc)
	body.Mimecast.Data = "SGVsbG8="
	d.Body = body // Pipeline false: indexed as is
	res := write(t, c, d)
	if r := res.one("raw"); r.Err != nil {
		t.Fatal(r.Err)
	}
	var doc struct {
		Source map[string]any `json:"_source"`
	}
	getJSON(t, e.base+"/"+c.IndexName(index.Attachments)+"/_doc/raw", &doc)
	mc, _ := doc.Source["mimecast"].(map[string]any)
	if _, ok := mc["data"]; ok {
		t.Error("the base64 data was stored in _source")
	}
	if mc["content"] != "hello" || mc["attachment_id"] != "a-raw" {
		t.Errorf("_source = %v, want the other fields kept", doc.Source)
	}
}

func TestWriterCloseWithEndedContext(t *testing.T) {
	// Nothing flushes on its own, so every document is still queued when Close starts.
	w, _ := newHoldingWriter(t)
	var wg sync.WaitGroup
	res := newResults(t)
	all := ids("queued-", 50)
	for _, id := range all {
		wg.Add(1)
		done := res.done(id)
		if err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), func(r index.Result) { done(r); wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with an ended context = %v, want context.Canceled", err)
	}
	// The documents still reach a result, once each, after Close gave up waiting.
	wg.Wait()
	for _, id := range all {
		res.one(id)
	}
}

// Flush sends what is queued at once: when it returns, every document added before it has its
// acknowledgement, although no request is full and the timer never fires.
func TestWriterFlushAnswersWhatWasQueued(t *testing.T) {
	w, cfg := newHoldingWriter(t)
	res := newResults(t)
	all := ids("flushed-", 30)
	for _, id := range all {
		if err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), res.done(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for _, id := range all {
		if r := res.one(id); r.Err != nil {
			t.Errorf("%s: %v", id, r.Err)
		}
	}
	// One request per bulk worker that held documents.
	if s := w.Stats(); s.Flushes != 1 || s.Requests < 1 || s.Requests > uint64(cfg.BulkWorkers) {
		t.Errorf("stats after one flush: %+v, want 1 flush and 1 to %d bulk requests", s, cfg.BulkWorkers)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(context.Background()); !errors.Is(err, index.ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

// newHoldingWriter returns a writer on the test cluster that sends nothing on its own: the
// timer never fires within a test and no request fills up. Only Flush and Close send.
func newHoldingWriter(t *testing.T) (*index.Writer, index.Config) {
	t.Helper()
	e := newEnv(t)
	cfg := e.config(t, "")
	cfg.FlushInterval = time.Hour
	cfg.FlushBytes = 64 << 20
	w, err := open(t, cfg).NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	return w, cfg
}
