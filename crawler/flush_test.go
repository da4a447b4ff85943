package crawler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/state"
)

// A bulk writer whose requests never fill up and whose timer never fires answers only when
// flushed. Views that wait for room in their window and for their last acknowledgements must
// get those flushes from the crawler, or the run only ends with its context.
func TestWaitingViewsFlushTheSink(t *testing.T) {
	w := newWorld()
	w.sink.onFlush = true
	a := w.mailbox("a@example.com", 23)
	b := w.mailbox("b@example.com", 17)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A window of 3 messages: every page waits for room several times.
	out := w.run(t, ctx, func(o *Options) { o.MessagesInFlight = 3 })
	if ctx.Err() != nil {
		t.Fatal("the run waited for acknowledgements that only a flush brings")
	}
	for _, r := range out.results {
		if r.Outcome != Complete {
			t.Errorf("%s %s: %s (%v)", r.Mailbox, r.View, r.Outcome, r.Err)
		}
	}
	if got := out.totals.Messages; got != 40 {
		t.Errorf("indexed %d messages, want 40", got)
	}
	for _, k := range []struct {
		key  state.Key
		want int
	}{{a, 23}, {b, 17}} {
		n := 0
		for _, id := range w.messageIDs(k.key) {
			if w.idx.ids(index.Messages)[id] {
				n++
			}
		}
		if n != k.want {
			t.Errorf("%s: %d messages in the index, want %d", k.key.Mailbox, n, k.want)
		}
	}
	if w.sink.flushes.Load() == 0 {
		t.Error("the sink was never flushed")
	}
}

// The next page is listed while the messages of the previous one are still being fetched: a
// view pays a list call's latency once, and its workers do not idle at the end of each page.
func TestNextPageListedWhileFetching(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 10)
	second := make(chan struct{})
	var once sync.Once
	w.arc.onPage = func(n int64) {
		if n == 2 {
			once.Do(func() { close(second) })
		}
	}
	w.arc.fileErr = func(id string) error {
		if !strings.HasSuffix(id, "-0") && !strings.HasSuffix(id, "-1") {
			return nil
		}
		// The first page's first messages finish only once the second page is listed.
		select {
		case <-second:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("second page not listed while the first was being fetched")
		}
	}
	out := w.run(t, context.Background(), func(o *Options) { o.PageSize = 5; o.MessageWorkers = 2; o.MessagesInFlight = 100 })
	for _, r := range out.results {
		if r.Outcome != Complete {
			t.Errorf("%s %s: %s (%v)", r.Mailbox, r.View, r.Outcome, r.Err)
		}
	}
	if out.totals.Messages != 10 {
		t.Errorf("indexed %d messages, want 10", out.totals.Messages)
	}
}

// The window of messages in flight is the run's, not each view's: however many views run at
// once, no more messages than MessagesInFlight wait for their acknowledgement, so the memory of a
// run does not grow with the number of views or the size of the mailboxes.
func TestWindowOfMessagesInFlightIsTheRuns(t *testing.T) {
	w := newWorld()
	w.sink.onFlush = true
	for _, mb := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		w.mailbox(mb, 40)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := w.run(t, ctx, func(o *Options) { o.ListingSlots, o.MessagesInFlight = 3, 5 })
	if out.totals.Messages != 120 {
		t.Fatalf("indexed %d messages, want 120", out.totals.Messages)
	}
	// Each message is one document here (no attachments), answered by the flush after it.
	if got := w.sink.maxQueued; got > 5 {
		t.Errorf("a flush answered %d documents at once; at most 5 messages may be in flight in the run", got)
	}
}
