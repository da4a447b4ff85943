package crawler

import (
	"sync"
	"time"
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
type tracker struct {
	mu       sync.Mutex
	cond     *sync.Cond
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

func newTracker() *tracker {
	t := &tracker{finished: map[int64]bool{}, received: map[int64]time.Time{}, ordered: true}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// add registers the next listed message and returns its sequence number.
func (t *tracker) add(received time.Time) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next > 0 && received.After(t.last) {
		t.ordered = false
	}
	t.last = received
	seq := t.next
	t.next++
	if !t.blocked {
		t.received[seq] = received
	}
	t.inflight++
	return seq
}

// finish records the outcome of a message. ok=false blocks the resume point for this pass.
func (t *tracker) finish(seq int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight--
	t.cond.Broadcast()
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

// wait blocks until no message is in flight and reports whether every message finished well.
func (t *tracker) wait() (failed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.inflight > 0 {
		t.cond.Wait()
	}
	return t.failed
}

// waitBelow blocks until fewer than n messages are in flight: the back-pressure that bounds
// the memory of a pass whatever the size of the mailbox.
func (t *tracker) waitBelow(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.inflight >= n {
		t.cond.Wait()
	}
}

// pending returns the number of messages still in flight.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inflight
}
