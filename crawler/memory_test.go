package crawler

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// collectingSink answers a document only once the garbage collector has collected its body,
// or after a deadline: it keeps the callback and the id, never the document.
type collectingSink struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	ids  []string // every document added
	kept []string // the documents whose body was still reachable at the deadline
}

func (s *collectingSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	collected := make(chan struct{})
	switch b := d.Body.(type) {
	case *index.MessageDoc:
		runtime.AddCleanup(b, func(ch chan struct{}) { close(ch) }, collected)
	case *index.AttachmentDoc:
		runtime.AddCleanup(b, func(ch chan struct{}) { close(ch) }, collected)
	}
	id := d.ID
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	s.wg.Go(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			runtime.GC()
			select {
			case <-collected:
				done(index.Result{Status: http.StatusCreated})
				return
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				s.mu.Lock()
				s.kept = append(s.kept, id)
				s.mu.Unlock()
				done(index.Result{Status: http.StatusCreated})
				return
			}
		}
	})
	return nil
}

// Flush has nothing to do: every document is answered without it.
func (s *collectingSink) Flush(ctx context.Context) error { return ctx.Err() }

// Once a document is queued, its encoded bytes in the writer are all that is needed of it until
// its answer. A crawler that kept the document itself until then would hold every document in
// flight twice, with the text of its body and attachments in both: the message document while
// it waits for its answer, and each attachment document while it waits for its own.
func TestQueuedDocumentsAreNotKeptUntilTheirAnswer(t *testing.T) {
	raw, _, _ := twinMessage()
	arc := &fileArchive{id: "m1", rfc822: raw}
	sink := &collectingSink{}
	c := New(arc, nil, sink, nil, Options{ExtractAttachments: true, MaxAttachmentBytes: 1 << 20,
		Logger: zerolog.Nop(), Now: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) },
		Limits: MessageLimits{SpillDir: t.TempDir()}})
	m := api.MessageSummary{ID: arc.id, Subject: "listed subject"}
	failed := crawlOneMessage(t, c, Mailbox{Address: testMailbox, Domain: "example.com"}, m, zerolog.Nop())
	sink.wg.Wait()
	if failed != 0 {
		t.Fatalf("%d messages failed", failed)
	}
	if len(sink.ids) < 2 {
		t.Fatalf("documents added: %v; want the message and its attachments", sink.ids)
	}
	if len(sink.kept) > 0 {
		t.Errorf("documents still held by the crawler while they waited for their answer: %v (of %v)", sink.kept, sink.ids)
	}
}
