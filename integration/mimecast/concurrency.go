package mimecast

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Concurrency bounds the archive requests a Client has in flight: calls of the account's quota
// group (every legacy POST /api/... endpoint) and downloads from pre-signed URLs. Token
// requests and the REST endpoints (threats, SIEM), which have quotas and budgets of their own,
// are not counted.
//
// With Adaptive the bound moves between Min and Max, starting at Initial, as TCP moves its
// congestion window (AIMD): it grows by one per window of Limit answered requests while no 429
// arrives and the answers are not getting slower, and shrinks by a quarter on a 429 of the
// quota (down to Min; a sporadic 429, as the pacer tells them apart, does not count), or when two windows in a row answer more than a quarter slower than the lowest latency
// seen for their endpoints (requests queue: more in flight, no more throughput; down to
// Initial at most). Latency runs from the
// moment a request gets its slot to its answer's headers, so the time it waits for the quota's
// pacer counts: a quota that binds looks like rising latency and keeps the bound low. Without
// Adaptive the bound is Max.
type Concurrency struct {
	Adaptive bool
	Initial  int // first bound; 0 = min(16, Max); clamped to [Min, Max]
	Min      int // 0 = min(2, Max)
	Max      int // 0 = no bound at all (and no statistics)
}

// ConcurrencyStats are the limiter's numbers since the Client was made. All zero when the
// Client has no bound (Concurrency.Max == 0).
type ConcurrencyStats struct {
	Adaptive    bool
	Initial     int     // the first bound
	Limit       int     // the bound now
	LimitAvg    float64 // the bound's time-weighted mean
	LimitMax    int     // the highest bound reached
	LimitMin    int     // the lowest bound reached
	InFlight    int     // requests holding a slot now
	InFlightMax int     // the most requests that held a slot at once
	Increases   int64   // times the bound grew
	Decreases   int64   // times the bound shrank
}

const (
	defaultInitialConcurrency = 16
	defaultMinConcurrency     = 2
	// latencyTolerance is how far above the baseline a window's mean latency may rise before
	// it counts as queueing. Below 1/decreaseFactor - 1 (a third): one decrease from just past
	// the tolerance brings the bound back under the knee where queueing began, so the baseline
	// is seen again and the bound settles around the knee instead of above it.
	latencyTolerance = 0.25
	// slowWindows is how many windows in a row must be over the latency tolerance to shrink
	// the bound (a 429 shrinks it at once).
	slowWindows = 2
	// decreaseFactor is the multiplicative decrease.
	decreaseFactor = 0.75
	// baselineRise is how much an endpoint's baseline may rise per window towards a higher
	// mean, so that a network that got slower for good is taken as the new normal after some
	// fifty windows. It must stay well below the latency added by one more request in flight
	// past the knee (1/limit per window), or the baseline would follow the queue up.
	baselineRise = 1.0 / 256
)

// limiter implements Concurrency. It has no goroutine of its own: the bound is decided on
// each completion. Slots are granted first come, first served; a shrunk bound takes effect as
// slots are released, nothing in flight is interrupted.
//
// A window is the run of slots acquired since the bound last shrank; answers of slots acquired
// before that describe a higher bound and neither count nor trigger a change. So a burst of
// 429s to requests that were in flight together shrinks the bound once, as does one congested
// window. Growing the bound starts a new count of answers but keeps the slots in flight in
// the window: they ran under a lower bound, so they cannot show it too high.
type limiter struct {
	adaptive          bool
	initial, min, max int
	now               func() time.Time

	mu       sync.Mutex
	limit    int
	inflight int
	waiters  []*waiter // FIFO
	next     uint64    // number of the next slot granted

	window    uint64      // number of the first slot of the current window
	answered  int         // answers of this window's slots
	full      bool        // this window had demand for every slot (else the bound is not tested)
	slow      int         // consecutive windows whose latency was over the tolerance
	endpoints []*endpoint // latencies by endpoint, in the order first seen

	start, since time.Time
	area         float64 // bound × seconds before since
	limitMax     int
	limitMin     int
	inflightMax  int
	increases    int64
	decreases    int64
}

// endpoint holds the latencies of one endpoint: answers differ in latency by endpoint (a list
// page, a file, a download from another host), so each is compared with its own baseline and
// a change in the mix of calls is not taken for queueing.
type endpoint struct {
	name     string
	baseline time.Duration // lowest window mean, rising slowly; 0 before the first window
	sum      time.Duration // this window's latencies
	n        int           // and their count
}

type waiter struct {
	ready    chan struct{} // closed when s is set
	endpoint string
	s        *slot
}

// newLimiter returns the limiter of c, or nil for no bound. now must measure real time: the
// latencies it reads are real.
func newLimiter(c Concurrency, now func() time.Time) (*limiter, error) {
	if c.Max < 0 || c.Min < 0 || c.Initial < 0 {
		return nil, fmt.Errorf("mimecast client: Concurrency %+v: want no negative bound", c)
	}
	if c.Max == 0 {
		return nil, nil
	}
	if c.Min == 0 {
		c.Min = min(defaultMinConcurrency, c.Max)
	}
	if c.Min > c.Max {
		return nil, fmt.Errorf("mimecast client: Concurrency Min %d above Max %d", c.Min, c.Max)
	}
	if c.Initial == 0 {
		c.Initial = defaultInitialConcurrency
	}
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	if !c.Adaptive {
		c.Initial, c.Min = c.Max, c.Max
	}
	t := now()
	return &limiter{adaptive: c.Adaptive, initial: c.Initial, min: c.Min, max: c.Max, now: now,
		limit: c.Initial, start: t, since: t, limitMax: c.Initial, limitMin: c.Initial}, nil
}

// slot is one request's permission to be in flight. Its owner calls answered when the answer's
// headers arrive and release once it is done with the answer; release is idempotent, so a
// body closed twice, or read to its end and then closed, releases once.
type slot struct {
	l         *limiter
	endpoint  string
	n         uint64
	start     time.Time
	latency   time.Duration
	isAnswer  bool
	throttled bool
	released  atomic.Bool
}

// acquire waits for a slot for a request to endpoint (a small fixed set of names, as in
// Stats.ByEndpoint), or for ctx to end. A nil limiter grants nil slots at once.
func (l *limiter) acquire(ctx context.Context, endpoint string) (*slot, error) {
	if l == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if s := l.tryLocked(endpoint); s != nil {
		l.mu.Unlock()
		return s, nil
	}
	w := &waiter{ready: make(chan struct{}), endpoint: endpoint}
	l.waiters = append(l.waiters, w)
	l.full = true
	l.mu.Unlock()
	select {
	case <-w.ready:
		return w.s, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	select {
	case <-w.ready:
		// Granted while ctx ended: hand it back unused.
		l.mu.Unlock()
		w.s.release()
		return nil, ctx.Err()
	default:
	}
	for i, o := range l.waiters {
		if o == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	return nil, ctx.Err()
}

// tryAcquire returns a slot if one is free now and nobody waits, else nil.
func (l *limiter) tryAcquire(endpoint string) *slot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tryLocked(endpoint)
}

func (l *limiter) tryLocked(endpoint string) *slot {
	if len(l.waiters) > 0 || l.inflight >= l.limit {
		return nil
	}
	return l.grantLocked(endpoint)
}

func (l *limiter) grantLocked(endpoint string) *slot {
	l.inflight++
	l.inflightMax = max(l.inflightMax, l.inflight)
	if l.inflight >= l.limit {
		l.full = true
	}
	s := &slot{l: l, endpoint: endpoint, n: l.next, start: l.now()}
	l.next++
	return s
}

// answered records that the answer's headers arrived with status. Nil-safe.
func (s *slot) answered(status int) {
	if s == nil {
		return
	}
	s.latency = s.l.now().Sub(s.start)
	s.isAnswer = true
	s.throttled = status == 429
}

// notThrottled says that the 429 the slot's request got was not the quota (see pacer): the
// limiter does not shrink for it. Nil-safe; call before release.
func (s *slot) notThrottled() {
	if s != nil {
		s.throttled = false
	}
}

// release gives the slot back, once; later calls do nothing. Nil-safe.
func (s *slot) release() {
	if s == nil || !s.released.CompareAndSwap(false, true) {
		return
	}
	s.l.complete(s)
}

// complete frees s's slot, lets the answer move the bound, and wakes waiters.
func (l *limiter) complete(s *slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if l.adaptive && s.isAnswer && s.n >= l.window {
		l.observeLocked(s)
	}
	for len(l.waiters) > 0 && l.inflight < l.limit {
		w := l.waiters[0]
		l.waiters[0] = nil
		l.waiters = l.waiters[1:]
		w.s = l.grantLocked(w.endpoint)
		close(w.ready)
	}
}

// observeLocked takes one answer of the current window.
func (l *limiter) observeLocked(s *slot) {
	if s.throttled {
		l.setLocked(max(int(float64(l.limit)*decreaseFactor), l.min))
		return
	}
	l.answered++
	ep := l.endpointLocked(s.endpoint)
	ep.sum += s.latency
	ep.n++
	if l.answered < l.limit {
		return
	}
	// The window's latency against the baselines: the mean of mean/baseline over its
	// endpoints, weighted by their answers. An endpoint's first window is its baseline.
	var ratio float64
	for _, ep := range l.endpoints {
		if ep.n == 0 {
			continue
		}
		mean := ep.sum / time.Duration(ep.n)
		r := 1.0
		if ep.baseline > 0 {
			r = float64(mean) / float64(ep.baseline)
		}
		ratio += r * float64(ep.n) / float64(l.answered)
		if ep.baseline == 0 || mean < ep.baseline {
			ep.baseline = mean
		} else {
			ep.baseline = min(mean, ep.baseline+max(time.Duration(float64(ep.baseline)*baselineRise), 1))
		}
	}
	congested := ratio > 1+latencyTolerance
	if congested {
		l.slow++
	} else {
		l.slow = 0
	}
	switch {
	case l.slow >= slowWindows:
		l.slow = 0
		// Latency alone never takes the bound below Initial: the time a request waits also
		// includes the client's own CPU, which a latency cannot tell from a queue at the
		// server, and on a busy machine that shrank the bound until throughput fell (2 in
		// flight: 570 messages/s, against 800 at the fixed 16). A 429 is a clear signal and
		// takes it down to Min.
		if l.limit > l.initial {
			l.setLocked(max(int(float64(l.limit)*decreaseFactor), l.initial))
		} else {
			l.newWindowLocked()
		}
	case congested:
		// Hold the bound: one slow window may be a pause on either side (a garbage
		// collection, a busy CPU), not a queue.
		l.newWindowLocked()
	case l.full:
		l.setLocked(min(l.limit+1, l.max))
	default:
		// Fewer requests than slots: the bound was not tested; keep it.
		l.newWindowLocked()
	}
}

// setLocked changes the bound to n and starts a new window; after a decrease, answers of slots
// acquired before it no longer count.
func (l *limiter) setLocked(n int) {
	if n != l.limit {
		t := l.now()
		l.area += float64(l.limit) * t.Sub(l.since).Seconds()
		l.since = t
		if n > l.limit {
			l.increases++
		} else {
			l.decreases++
			l.window = l.next
			l.slow = 0
		}
		l.limit = n
		l.limitMax = max(l.limitMax, n)
		l.limitMin = min(l.limitMin, n)
	}
	l.newWindowLocked()
}

// newWindowLocked starts counting answers afresh.
func (l *limiter) newWindowLocked() {
	l.answered = 0
	for _, ep := range l.endpoints {
		ep.sum, ep.n = 0, 0
	}
	l.full = l.inflight >= l.limit || len(l.waiters) > 0
}

// endpointLocked returns the latencies of name, added on first use. The set of names is small
// and fixed (method and path template, or download), so a slice is enough.
func (l *limiter) endpointLocked(name string) *endpoint {
	for _, ep := range l.endpoints {
		if ep.name == name {
			return ep
		}
	}
	ep := &endpoint{name: name}
	l.endpoints = append(l.endpoints, ep)
	return ep
}

// stats returns the limiter's numbers; zero for a nil limiter.
func (l *limiter) stats() ConcurrencyStats {
	if l == nil {
		return ConcurrencyStats{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	avg := float64(l.limit)
	if total := t.Sub(l.start).Seconds(); total > 0 {
		avg = (l.area + float64(l.limit)*t.Sub(l.since).Seconds()) / total
	}
	return ConcurrencyStats{Adaptive: l.adaptive, Initial: l.initial, Limit: l.limit, LimitAvg: avg,
		LimitMax: l.limitMax, LimitMin: l.limitMin, InFlight: l.inflight, InFlightMax: l.inflightMax,
		Increases: l.increases, Decreases: l.decreases}
}
