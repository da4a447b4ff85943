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
// (see quotaGroup). Mimecast's quota is per application, so when one call is told to slow
// down (429) every worker calling that group must wait, not only the one that was told. The pacer spaces the starts of all calls by an interval: 0 while all is well (no
// waiting at all), raised by a 429 and shrunk again by successes.
//
// After a 429 nobody starts before the "not before" instant; after that, calls start one per
// interval instead of all at once, which would only earn a new round of 429s.
//
// With a server hint (X-RateLimit-Reset: the time until the quota gives back one call) the
// interval converges on the quota's refill rate: a 429 raises it to at least the hint and by a
// sixth at least, once per congestion episode; each success shrinks it by 1/2048. Every hint
// is at most the refill interval, so the interval settles just above it, and it takes about
// three hundred successes to creep below it again: in steady state about one call in three
// hundred meets a 429 while the quota is used to over 99% (a 600/min quota with a burst of
// 600: 0.29% of calls in steady state, 0.71% when it shrank by 1/1024). Shrinking faster (as
// without a hint) oscillates around the quota and earns a 429 for every other call. After
// calmAfter without any 429 the pressure is taken to be gone and the interval drops to 0, so
// that one transient 429 does not slow a whole run.
//
// Without a hint the interval is a backoff that doubles while 429s keep coming, from
// minBackoff up to maxBackoff, and shrinks by an eighth per success.
//
// The pacer measures real elapsed time (time.Now), not the Client's injectable clock: it
// sleeps, and a sleep is real whatever a test's clock says.
type pacer struct {
	minBackoff time.Duration
	maxBackoff time.Duration
	maxWait    time.Duration
	multiplier float64

	mu       sync.Mutex
	next     time.Time     // no call starts before this instant
	interval time.Duration // spacing between call starts; 0 when calm
	raisedAt time.Time     // when the interval was last raised
	hinted   bool          // the last 429 carried a wait hint
	last429  time.Time
}

// calmAfter is how long without a 429 before the pacer stops spacing calls.
const calmAfter = 5 * time.Minute

// wait blocks until this call may start, or ctx ends. Sleepers re-check after waking: the
// first to wake takes the slot and pushes the next one back by the interval, and a 429 met
// meanwhile may have pushed everything further.
func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		d := p.next.Sub(now)
		if d <= 0 {
			p.next = now.Add(p.interval)
			p.mu.Unlock()
			return ctx.Err()
		}
		p.mu.Unlock()
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// pending is how long until the next call may start (0: now).
func (p *pacer) pending() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(time.Until(p.next), 0)
}

// rateLimited records a 429 for a request sent at sent, and returns how long everyone now
// waits. With a server hint the wait is hint × multiplier, clamped to maxWait. Without one the
// backoff grows, but only for a request sent after the last raise: the 429s of requests that
// were in flight together are one signal, not several.
func (p *pacer) rateLimited(sent time.Time, hint time.Duration, hasHint bool) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.last429, p.hinted = now, hasHint
	var d time.Duration
	if hasHint {
		d = scaleClamp(hint, p.multiplier, p.maxWait)
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
	return d
}

// succeeded shrinks the interval: by 1/2048 after hinted 429s, by an eighth after hintless
// ones, to 0 below a millisecond or after calmAfter without a 429.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.interval == 0 {
		return
	}
	shrink := p.interval / 8
	if p.hinted {
		shrink = p.interval / 2048
	}
	p.interval -= shrink
	if p.interval < time.Millisecond || time.Since(p.last429) > calmAfter {
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
