package crawler

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// flusher turns waiting into flushing. The bulk writer batches documents by size and by a
// timer; that suits a crawl that keeps fetching, but a view that waits for its last
// acknowledgements, or for room in its window of messages in flight, would wait up to a flush
// interval for each of a message's two writes (its attachments, then the message document).
// So while any view waits, the flusher flushes the sink for as long as documents keep coming,
// at most every minFlushSpacing: each flush carries what was added since the previous one, and
// a wait lasts a bulk round trip or two instead of timer ticks.
//
// run is the flusher's one goroutine, owned by Run's services group. wait registers a waiter
// for the duration of a wait; noteAdd is called for every document handed to the sink.
type flusher struct {
	sink    Sink
	waiting atomic.Int64 // views waiting now
	added   atomic.Int64 // documents added since the last flush began
	wake    chan struct{}
	onError func(error)
	last    time.Time // start of the last flush; run's alone
}

// minFlushSpacing is the least time between the starts of two flushes: a waiting view hears
// its acknowledgements within about twice this plus a bulk round trip, and the flusher adds at
// most 1/minFlushSpacing bulk requests per second.
const minFlushSpacing = 50 * time.Millisecond

func newFlusher(sink Sink, onError func(error)) *flusher {
	return &flusher{sink: sink, wake: make(chan struct{}, 1), onError: onError}
}

// wait registers a waiter until the returned function is called, and asks for a flush now.
func (f *flusher) wait() (done func()) {
	f.waiting.Add(1)
	f.poke()
	return func() { f.waiting.Add(-1) }
}

// noteAdd records a document handed to the sink; while someone waits, it asks for a flush.
func (f *flusher) noteAdd() {
	f.added.Add(1)
	if f.waiting.Load() > 0 {
		f.poke()
	}
}

func (f *flusher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run flushes on request until ctx ends. A request that comes while a flush runs is served by
// the next one, so requests never queue up: flushes follow each other at most back to back.
func (f *flusher) run(ctx context.Context) {
	for {
		select {
		case <-f.wake:
		case <-ctx.Done():
			return
		}
		for f.waiting.Load() > 0 && f.added.Swap(0) > 0 {
			if !f.last.IsZero() {
				// Views that wait keep asking; small requests back to back would cost
				// Elasticsearch more per document than the wait saves.
				t := time.NewTimer(time.Until(f.last.Add(minFlushSpacing)))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
			f.last = time.Now()
			err := f.sink.Flush(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The documents' own callbacks carry the failure; this only reports it.
				if f.onError != nil && !errors.Is(err, context.Canceled) {
					f.onError(err)
				}
				break
			}
		}
	}
}
