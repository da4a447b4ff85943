package mimecast

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mimecrawl/mimecrawl/internal/backoff"
)

// pacer is shared by every goroutine of one Client that calls endpoints of one quota group
// (see quotaGroup). Mimecast's quota is per application, so when the quota binds every worker
// calling that group must slow down, not only the one that was told. But not every 429 is the
// quota: a gateway may turn away a few calls now and then with a short hint while the quota is
// far from used. The pacer tells the two apart by their density and treats them differently
// (an AIMD rate estimate that decreases on the density of 429s, not on each one):
//
//   - Sporadic 429s (the pacer is calm, fewer than densityEnter of the last densityWindow
//     answers were 429s and fewer than runEnter came in a row) cost what they ask: the call
//     that got one waits its hint (scaled, clamped) on its own, holding no concurrency slot,
//     and the others carry on once the next answer that is not a 429 arrives (new calls are
//     held until then, for the hint at most: so the calls in flight when a quota runs out
//     tell it by their run of 429s before the calls they free send a second wave). Nothing
//     accumulates: 3% of calls turned away with 100 ms hints cost about 3% of throughput
//     (TestPacerShrugsOffSporadic429s).
//   - A dense run of 429s is the quota: all calls of the group then start one per interval,
//     and nobody starts before the hint has passed. This is an AIMD rate estimate on the
//     spacing: a 429 raises the interval to at least the hint and by a sixth, once per
//     congestion episode (the 429s of calls that were in flight together are one signal);
//     each success shrinks it by 1/2048. Every hint of a token bucket is at most its refill
//     interval, so the interval settles just above it, and it takes about three hundred
//     successes to creep below it again: in steady state about one call in three hundred
//     meets a 429 while the quota is used to over 99% (TestPacerUsesATokenBucketQuota). After
//     calmAfter without any 429 the pressure is taken to be gone and the interval drops to 0.
//     Sporadic 429s met while the quota binds do raise the interval: they cannot be told
//     from the quota's then.
//
// Without a hint a sporadic 429 makes its call wait a jittered minBackoff; under the quota
// the interval is a backoff that doubles while 429s keep coming, from minBackoff up to
// maxBackoff, and shrinks by an eighth per success.
//
// The pacer's clock (now) is injectable so that tests drive it through simulated time; the
// Client gives it the real clock, since the waits it computes are real sleeps.
type pacer struct {
	minBackoff time.Duration
	maxBackoff time.Duration
	maxWait    time.Duration
	multiplier float64
	now        func() time.Time

	mu       sync.Mutex
	next     time.Time     // no call starts before this instant
	interval time.Duration // spacing between call starts; 0 when calm
	raisedAt time.Time     // when the interval was last raised
	hinted   bool          // the last 429 carried a wait hint
	last429  time.Time

	recent  [densityWindow]bool // the last answers, true for a 429 (a ring)
	pos     int
	limited int // 429s in recent
	run     int // 429s in a row, the last answers
	// wake is closed when a hold after a sporadic 429 is lifted (nil: no hold).
	wake chan struct{}
}

const (
	// calmAfter is how long without a 429 before the pacer stops spacing calls.
	calmAfter = 5 * time.Minute
	// densityWindow and densityEnter: the quota is taken to bind when at least densityEnter
	// of the last densityWindow answers of a group were 429s. Sporadic 429s at 5% of calls
	// reach that in about one window in four million (Poisson tail), at 3% in one in ten
	// billion; an exhausted quota answers nearly every call 429, and reaches it within
	// densityEnter answers.
	densityWindow = 100
	densityEnter  = 20
	// runEnter: so many 429s in a row (in the order answers arrive, whatever the goroutine)
	// are the quota too. An exhausted quota answers every request in flight 429, so this
	// binds within the first wave, before the calls freed by it send a second one; sporadic
	// 429s at 5% of calls come six in a row once in 60 million answers.
	runEnter = 6
)

func newPacer(minBackoff, maxBackoff, maxWait time.Duration, multiplier float64, now func() time.Time) *pacer {
	if now == nil {
		now = time.Now
	}
	return &pacer{minBackoff: minBackoff, maxBackoff: maxBackoff, maxWait: maxWait, multiplier: multiplier, now: now}
}

// wait blocks until this call may start, or ctx ends. Sleepers re-check after waking: the
// first to wake takes the slot and pushes the next one back by the interval, and a 429 met
// meanwhile may have pushed everything further.
func (p *pacer) wait(ctx context.Context) error {
	for {
		d, wake := p.reserve()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-wake: // a hold was lifted early; a nil channel never fires
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// reserve takes the start of one call if it may start now and returns 0, else returns how
// long until it may try again, and a channel closed if a hold is lifted before then.
func (p *pacer) reserve() (time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	d := p.next.Sub(now)
	if d <= 0 {
		p.next = now.Add(p.interval)
		return 0, nil
	}
	return d, p.wake
}

// liftLocked ends a hold: calls may start at once, and those waiting are woken.
func (p *pacer) liftLocked(now time.Time) {
	if p.next.After(now) {
		p.next = now
	}
	p.wakeLocked()
}

// wakeLocked wakes the calls sleeping out a hold, if there is one.
func (p *pacer) wakeLocked() {
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// pending is how long until the next call may start (0: now).
func (p *pacer) pending() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.next.Sub(p.now()), 0)
}

// observeLocked adds one answer to the density window.
func (p *pacer) observeLocked(is429 bool) {
	if p.recent[p.pos] {
		p.limited--
	}
	p.recent[p.pos] = is429
	if is429 {
		p.limited++
	}
	p.pos = (p.pos + 1) % densityWindow
	if is429 {
		p.run++
		return
	}
	p.run = 0
	if p.interval == 0 && p.wake != nil {
		// An answer that is not a 429 after a sporadic one: not the quota, carry on.
		p.liftLocked(p.now())
	}
}

// rateLimited records a 429 for a request sent at sent. It returns how long the call that
// got it must wait on its own before trying again (0 when the whole group now waits, which
// wait enforces), and whether the 429 was taken as the quota binding. With a server hint a
// wait is hint × multiplier, clamped to maxWait.
func (p *pacer) rateLimited(sent time.Time, hint time.Duration, hasHint bool) (own time.Duration, quota bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.observeLocked(true)
	p.last429 = now
	var d time.Duration
	if hasHint {
		d = scaleClamp(hint, p.multiplier, p.maxWait)
	}
	if p.interval == 0 && p.limited < densityEnter && p.run < runEnter {
		// Sporadic: this call waits what it was asked, the others carry on. New calls are
		// held back until the next answer that is not a 429 (or for d at most): while
		// the calls in flight answer 429 one after the other, they do not send a second
		// wave at an exhausted quota, and the run of 429s tells the quota within the
		// first. A sporadic 429 holds them for about the time between two answers.
		if !hasHint {
			d = jitter(p.minBackoff)
		}
		if nb := now.Add(d); nb.After(p.next) {
			p.next = nb
		}
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		return d, false
	}
	// The hold becomes the quota's wait: the sleepers wake and see it.
	p.wakeLocked()
	p.hinted = hasHint
	if hasHint {
		switch {
		case sent.After(p.raisedAt):
			p.interval = max(d, min(p.interval+p.interval/6, p.maxWait))
			p.raisedAt = now
		case p.interval < d:
			p.interval = d
		}
	} else {
		switch {
		case p.interval < p.minBackoff:
			p.interval = p.minBackoff
			p.raisedAt = now
		case sent.After(p.raisedAt):
			p.interval = min(2*p.interval, p.maxBackoff)
			p.raisedAt = now
		}
		d = jitter(p.interval)
	}
	if nb := now.Add(d); nb.After(p.next) {
		p.next = nb
	}
	return 0, true
}

// answered records an answer that was neither a success nor a 429 (a 5xx, a 401), for the
// density of 429s only.
func (p *pacer) answered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observeLocked(false)
}

// succeeded records an answer that was not a 429 and shrinks the interval: by 1/2048 after
// hinted 429s, by an eighth after hintless ones, to 0 below a millisecond or after calmAfter
// without a 429.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observeLocked(false)
	if p.interval == 0 {
		return
	}
	shrink := p.interval / 8
	if p.hinted {
		shrink = p.interval / 2048
	}
	p.interval -= shrink
	if p.interval < time.Millisecond || p.now().Sub(p.last429) > calmAfter {
		p.interval = 0
	}
}

// retryBackoff is the per-call wait before retry number n (1-based) after a 5xx or a network
// error: minBackoff doubling up to maxBackoff, with jitter so that workers spread out.
func retryBackoff(n int, minBackoff, maxBackoff time.Duration) time.Duration {
	return backoff.Exponential(n, minBackoff, maxBackoff)
}

// jitter returns a duration in [d/2, d].
func jitter(d time.Duration) time.Duration { return backoff.Jitter(d) }

// scaleClamp multiplies a server hint and clamps it to [0, maxWait], without overflowing.
func scaleClamp(hint time.Duration, multiplier float64, maxWait time.Duration) time.Duration {
	f := float64(hint) * multiplier
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	if f >= float64(maxWait) {
		return maxWait
	}
	return time.Duration(f)
}

// waitHint reads the server's wait hint from an answer: Retry-After (seconds or an HTTP date)
// if present, else X-RateLimit-Reset. The reference documents Reset as milliseconds until the
// quota refills, but some clients read it as a Unix timestamp; a value that can only be a
// timestamp (> 1e9, i.e. more than eleven days of milliseconds) is taken as epoch seconds, and
// > 1e12 as epoch milliseconds (inferred).
func waitHint(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(secs) {
			return fromSeconds(secs), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(n) {
			return 0, false
		}
		nowSecs := float64(now.UnixNano()) / 1e9
		switch {
		case n > 1e12:
			return fromSeconds(n/1000 - nowSecs), true
		case n > 1e9:
			return fromSeconds(n - nowSecs), true
		default:
			return fromSeconds(n / 1000), true
		}
	}
	return 0, false
}

// fromSeconds converts without overflow; a week is far beyond any sane clamp.
func fromSeconds(s float64) time.Duration {
	const limit = 7 * 24 * 3600
	switch {
	case s <= 0:
		return 0
	case s > limit:
		s = limit
	}
	return time.Duration(s * float64(time.Second))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Quota groups. Mimecast counts calls per application, but the SIEM endpoints have published
// budgets of their own, and a 429 from one endpoint family says nothing about the others
// (inferred: the reference says limits "vary per resource"). Each group therefore has its own
// pacer, so that a SIEM 429 does not stall an archive or log call; every legacy /api endpoint
// stays in one group, the account's quota, as before.
const (
	groupAccount    = "account"     // every legacy POST /api/... endpoint
	groupThreats    = "threats"     // GET /threats/v1/...
	groupSIEMBatch  = "siem-batch"  // GET /siem/v1/batch/events/cg: 50 calls / 15 min
	groupSIEMStream = "siem-stream" // GET /siem/v1/events/cg: 300 calls / h
)

// quotaGroup names the group of an API path (no query).
func quotaGroup(path string) string {
	switch {
	case strings.HasPrefix(path, "/siem/v1/batch/"):
		return groupSIEMBatch
	case strings.HasPrefix(path, "/siem/v1/"):
		return groupSIEMStream
	case strings.HasPrefix(path, "/threats/"):
		return groupThreats
	}
	return groupAccount
}

// Budget is a client-side call budget: at most Calls attempts start in any window of length
// Per. A zero Budget takes the endpoint's published default; Calls < 0 means no budget.
type Budget struct {
	Calls int
	Per   time.Duration
}

// Published budgets of the SIEM endpoints (API reference, §3).
var (
	defaultSIEMBatchBudget  = Budget{Calls: 50, Per: 15 * time.Minute}
	defaultSIEMStreamBudget = Budget{Calls: 300, Per: time.Hour}
)

// pacers holds one pacer per quota group, created on first use, and the budgets of the
// groups that have one.
type pacers struct {
	newPacer func() *pacer

	mu      sync.Mutex
	groups  map[string]*pacer
	budgets map[string]*window
}

func newPacers(newPacer func() *pacer, budgets map[string]Budget) *pacers {
	ps := &pacers{newPacer: newPacer, groups: map[string]*pacer{}, budgets: map[string]*window{}}
	for g, b := range budgets {
		if b.Calls > 0 && b.Per > 0 {
			ps.budgets[g] = &window{calls: b.Calls, per: b.Per}
		}
	}
	return ps
}

// get returns the pacer of group.
func (ps *pacers) get(group string) *pacer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.groups[group]
	if p == nil {
		p = ps.newPacer()
		ps.groups[group] = p
	}
	return p
}

// wait blocks until a call of group may start: its pacer allows it and, if the group has a
// budget, a slot of the budget is free (the slot is taken on return).
func (ps *pacers) wait(ctx context.Context, group string) error {
	if err := ps.get(group).wait(ctx); err != nil {
		return err
	}
	if w := ps.budgets[group]; w != nil {
		return w.take(ctx)
	}
	return nil
}

// window is a sliding-window budget: it remembers the start times of the last calls attempts
// and lets a new one start only when the oldest of them is at least per old. Like the pacer
// it measures real time, since it sleeps.
type window struct {
	calls int
	per   time.Duration

	mu     sync.Mutex
	starts []time.Time // oldest first, at most calls entries
}

func (w *window) take(ctx context.Context) error {
	for {
		w.mu.Lock()
		now := time.Now()
		for len(w.starts) > 0 && now.Sub(w.starts[0]) >= w.per {
			w.starts = w.starts[1:]
		}
		if len(w.starts) < w.calls {
			w.starts = append(w.starts, now)
			w.mu.Unlock()
			return ctx.Err()
		}
		d := w.starts[0].Add(w.per).Sub(now)
		w.mu.Unlock()
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}
