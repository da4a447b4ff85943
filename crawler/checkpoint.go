package crawler

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// tracker follows the messages of one pass of one mailbox view, in listing order, and knows the
// resume point: the received time of the last message of the longest prefix of the listing whose
// messages are all finished (acknowledged by Elasticsearch, or skipped because they need no
// write). Acknowledgements arrive out of order from the bulk indexer; the prefix only grows when
// its next message finishes, so the resume point never passes a message still in flight.
//
// The listing is expected newest first (archive search is; the message list is assumed to be,
// which the reference marks as inferred). If a later message turns out newer than an earlier one,
// the order is not what the resume point relies on, so the tracker stops moving it for this pass:
// an interrupted pass then resumes from the start of its window, which costs re-listing but loses
// nothing.
//
// A message that failed for good blocks the prefix for the rest of the pass, so neither the
// resume point nor the delta token passes it.
//
// Messages in flight hold one unit each of a semaphore of maxInflight units: add waits for a
// unit (the back-pressure that bounds the memory of a pass whatever the size of the mailbox),
// and wait takes all of them (nothing in flight). Both honour their context.
type tracker struct {
	slots    *semaphore.Weighted
	waiting  func() (done func()) // registers a wait for room (see flusher.wait); nil for none
	size     int64
	mu       sync.Mutex
	next     int64               // sequence number of the next message listed
	prefix   int64               // every message with a smaller sequence number is finished
	finished map[int64]bool      // messages beyond the prefix that finished well
	received map[int64]time.Time // received time of every message not yet in the prefix
	low      time.Time           // received time of the last message of the prefix
	last     time.Time           // received time of the last message listed
	ordered  bool
	blocked  bool
	inflight int
	failed   int
}

// newTracker returns a tracker of at most maxInflight messages in flight. waiting, if not nil,
// is called when add or wait must wait for acknowledgements, and the function it returns when
// that wait ends: the run flushes the sink meanwhile instead of letting the wait last until the
// bulk writer's timer.
func newTracker(maxInflight int, waiting func() (done func())) *tracker {
	n := int64(max(maxInflight, 1))
	return &tracker{slots: semaphore.NewWeighted(n), size: n, waiting: waiting,
		finished: map[int64]bool{}, received: map[int64]time.Time{}, ordered: true}
}

// acquire takes n units, registering the wait when they are not free at once.
func (t *tracker) acquire(ctx context.Context, n int64) error {
	if t.slots.TryAcquire(n) {
		return nil
	}
	if t.waiting != nil {
		defer t.waiting()()
	}
	return t.slots.Acquire(ctx, n)
}

// add waits until fewer than maxInflight messages are in flight, then registers the next
// listed message and returns its sequence number. Every message added must be finished once.
func (t *tracker) add(ctx context.Context, received time.Time) (int64, error) {
	if err := t.acquire(ctx, 1); err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A zero time is unknown (a message that fails anyway): it says nothing about the order.
	if !received.IsZero() {
		if !t.last.IsZero() && received.After(t.last) {
			t.ordered = false
		}
		t.last = received
	}
	seq := t.next
	t.next++
	if !t.blocked {
		t.received[seq] = received
	}
	t.inflight++
	return seq, nil
}

// finish records the outcome of a message. ok=false blocks the resume point for this pass.
func (t *tracker) finish(seq int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.slots.Release(1)
	t.inflight--
	if !ok {
		t.failed++
		// Once blocked the prefix never grows again in this pass: drop what it would have
		// needed, so that memory stays bounded however long the pass goes on.
		t.blocked = true
		clear(t.finished)
		clear(t.received)
	}
	if t.blocked {
		return
	}
	t.finished[seq] = true
	for t.finished[t.prefix] {
		t.low = t.received[t.prefix]
		delete(t.finished, t.prefix)
		delete(t.received, t.prefix)
		t.prefix++
	}
}

// resumePoint returns the received time down to which everything listed so far is finished,
// and whether it may be used (some message finished, the listing was newest first, nothing
// failed before it).
func (t *tracker) resumePoint() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ordered || t.prefix == 0 {
		return time.Time{}, false
	}
	return t.low, true
}

// wait blocks until no message is in flight and returns how many failed. If ctx ends first it
// returns ctx's error: what is still in flight is then not covered by the checkpoint.
func (t *tracker) wait(ctx context.Context) (failed int, err error) {
	if err := t.acquire(ctx, t.size); err != nil {
		return 0, err
	}
	t.slots.Release(t.size)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed, nil
}

// pending returns the number of messages still in flight.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inflight
}
