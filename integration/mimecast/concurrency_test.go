package mimecast

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// fakeClock is a clock the limiter tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLimiter(t *testing.T, c Concurrency) (*limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	l, err := newLimiter(c, clk.now)
	if err != nil || l == nil {
		t.Fatalf("newLimiter(%+v) = %v, %v", c, l, err)
	}
	return l, clk
}

// server is a model of the far side for the limiter: a request's answer takes latency(n), n
// being the requests in flight when it started, and carries status(i) for the i-th request.
type server struct {
	endpoint string // "" = "e"
	latency  func(inflight int) time.Duration
	status   func(i int) int
}

type pending struct {
	s      *slot
	due    time.Time
	status int
}

// driver runs a limiter against a server with unlimited demand: every free slot is taken at
// once. It keeps its requests in flight from one run to the next.
type driver struct {
	l        *limiter
	clk      *fakeClock
	inFlight []pending
	started  int
}

// run goes on for n answers, calling each after every answer with the stats at that point.
func (d *driver) run(srv server, n int, each func(ConcurrencyStats)) {
	for range n {
		for {
			s := d.l.tryAcquire(cmp.Or(srv.endpoint, "e"))
			if s == nil {
				break
			}
			status := 200
			if srv.status != nil {
				status = srv.status(d.started)
			}
			d.started++
			d.inFlight = append(d.inFlight, pending{s: s, due: d.clk.t.Add(srv.latency(len(d.inFlight) + 1)), status: status})
		}
		// The earliest answer arrives next; among equals, the first started.
		i := 0
		for j, p := range d.inFlight {
			if p.due.Before(d.inFlight[i].due) {
				i = j
			}
		}
		p := d.inFlight[i]
		d.inFlight = slices.Delete(d.inFlight, i, i+1)
		if p.due.After(d.clk.t) {
			d.clk.t = p.due
		}
		p.s.answered(p.status)
		p.s.release()
		if each != nil {
			each(d.l.stats())
		}
	}
}

// secondHalf runs n answers from srv, checks every limit against lo..hi, and returns the
// limits after each answer of the second half.
func (d *driver) secondHalf(t *testing.T, srv server, n, lo, hi int) []int {
	t.Helper()
	var late []int
	i := 0
	d.run(srv, n, func(st ConcurrencyStats) {
		checkBounds(t, st, lo, hi)
		if i++; i > n/2 {
			late = append(late, st.Limit)
		}
	})
	return late
}

// answerAll lets after pass, then answers every slot of held with status and releases it.
func answerAll(clk *fakeClock, held []*slot, after time.Duration, status int) {
	clk.t = clk.t.Add(after)
	for _, s := range held {
		s.answered(status)
		s.release()
	}
}

func constant(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

func checkBounds(t *testing.T, st ConcurrencyStats, lo, hi int) {
	t.Helper()
	if st.Limit < lo || st.Limit > hi || st.InFlight > hi || st.InFlightMax > hi {
		t.Fatalf("limit %d, in flight %d (max %d): want the limit within [%d, %d] and no more in flight than %d", st.Limit, st.InFlight, st.InFlightMax, lo, hi, hi)
	}
}

func TestLimiterGrowsToMaxUnderConstantLatency(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 48})
	d := &driver{l: l, clk: clk}
	prev := 16
	d.run(server{latency: constant(100 * time.Millisecond)}, 5000, func(st ConcurrencyStats) {
		checkBounds(t, st, 2, 48)
		if st.Limit < prev {
			t.Fatalf("limit fell from %d to %d without a 429 or rising latency", prev, st.Limit)
		}
		prev = st.Limit
	})
	st := l.stats()
	if st.Limit != 48 || st.LimitMax != 48 || st.InFlightMax != 48 {
		t.Errorf("after 5000 answers: limit %d, max %d, in flight max %d; want 48 each", st.Limit, st.LimitMax, st.InFlightMax)
	}
	if st.Increases != 48-16 || st.Decreases != 0 {
		t.Errorf("increases %d, decreases %d; want %d and 0", st.Increases, st.Decreases, 48-16)
	}
	if st.LimitAvg <= 16 || st.LimitAvg >= 48 {
		t.Errorf("time-weighted average %.1f: want between the initial 16 and the final 48", st.LimitAvg)
	}
	if st.InFlight == 0 {
		t.Errorf("in flight 0 while the driver holds slots")
	}
}

// A limit that is not used (fewer requests than slots) is not raised.
func TestLimiterDoesNotGrowWithoutDemand(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 8, Max: 64})
	for range 200 {
		var held []*slot
		for range 4 {
			held = append(held, l.tryAcquire("e"))
		}
		answerAll(clk, held, 10*time.Millisecond, 200)
	}
	if st := l.stats(); st.Limit != 8 || st.Increases != 0 {
		t.Errorf("limit %d after %d increases with 4 requests at a time; want it to stay 8", st.Limit, st.Increases)
	}
}

func TestLimiterBacksOffOn429(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 32, Min: 2, Max: 64})
	d := &driver{l: l, clk: clk}
	// Every slot in flight at once answers 429: one congestion episode, one decrease.
	var held []*slot
	for s := l.tryAcquire("e"); s != nil; s = l.tryAcquire("e") {
		held = append(held, s)
	}
	if len(held) != 32 {
		t.Fatalf("%d slots granted at once; want the initial 32", len(held))
	}
	answerAll(clk, held, 50*time.Millisecond, 429)
	if st := l.stats(); st.Limit != 24 || st.Decreases != 1 {
		t.Fatalf("after 32 answers 429 to requests in flight together: limit %d after %d decreases; want 24 after 1", st.Limit, st.Decreases)
	}

	// Every answer 429 for a while: multiplicative decrease down to Min, never below.
	d.run(server{latency: constant(50 * time.Millisecond), status: func(int) int { return 429 }}, 300,
		func(st ConcurrencyStats) { checkBounds(t, st, 2, 64) })
	st := l.stats()
	if st.Limit != 2 || st.LimitMin != 2 {
		t.Errorf("after 300 answers 429: limit %d (lowest %d); want Min 2", st.Limit, st.LimitMin)
	}
	// 32 → 24 → 18 → 13 → 9 → 6 → 4 → 3 → 2: eight decreases, each a quarter or less.
	if st.Decreases != 8 {
		t.Errorf("%d decreases from 32 to 2; want 8 (×0.75 each)", st.Decreases)
	}

	// The 429s stop: it grows again.
	d.run(server{latency: constant(50 * time.Millisecond)}, 500, func(st ConcurrencyStats) { checkBounds(t, st, 2, 64) })
	if st := l.stats(); st.Limit <= 2 {
		t.Errorf("limit %d after 500 answers without 429; want it to grow again", st.Limit)
	}
}

// A server whose latency grows with the requests in flight beyond its capacity (a queue: more
// in flight, no more throughput) makes the limit back off, and settle around the knee.
func TestLimiterSettlesNearLatencyKnee(t *testing.T) {
	const knee = 40
	base := 100 * time.Millisecond
	queue := func(n int) time.Duration {
		if n <= knee {
			return base
		}
		return base * time.Duration(n) / knee
	}
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 128})
	d := &driver{l: l, clk: clk}
	late := d.secondHalf(t, server{latency: queue}, 40000, 2, 128)
	st := l.stats()
	if st.LimitMax <= knee || st.Decreases == 0 {
		t.Errorf("highest limit %d, %d decreases: want it to probe past the knee %d and back off", st.LimitMax, st.Decreases, knee)
	}
	lo, hi := slices.Min(late), slices.Max(late)
	if lo < knee*3/4 || hi > knee*3/2 {
		t.Errorf("limit over the second half within [%d, %d]; want it around the knee %d: within [%d, %d]", lo, hi, knee, knee*3/4, knee*3/2)
	}
	if st.LimitMax >= 128 {
		t.Errorf("limit reached Max %d although latency rose past the knee %d", st.LimitMax, knee)
	}
	t.Logf("second half: limit %d..%d; average %.1f; %d increases, %d decreases", lo, hi, st.LimitAvg, st.Increases, st.Decreases)
}

// The quota's pacer holds calls back before they are sent: with the wait counted as latency, a
// quota that binds (answers at a fixed rate, whatever is in flight) brings the limit back down
// to Initial, and no further: latency alone cannot tell a queue at the server from the
// client's own busy CPU. Only 429s take the limit below Initial (TestLimiterBacksOffOn429).
func TestLimiterComesBackToInitialUnderQuota(t *testing.T) {
	const perSecond = 20 // the quota
	rtt := 100 * time.Millisecond
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 64})
	d := &driver{l: l, clk: clk}
	// The pacer is calm until the quota's first 429: the limit grows while latency is the RTT.
	d.run(server{latency: constant(rtt)}, 1000, func(st ConcurrencyStats) { checkBounds(t, st, 2, 64) })
	grown := l.stats().Limit
	// Then it spaces calls at the quota's rate: with n in flight each waits n/rate in all
	// (Little's law).
	quota := func(n int) time.Duration { return max(rtt, time.Duration(n)*time.Second/perSecond) }
	late := d.secondHalf(t, server{latency: quota}, 5000, 16, 64)
	if lo, hi := slices.Min(late), slices.Max(late); grown <= 16 || lo != 16 || hi != 16 {
		t.Errorf("limit grew to %d, then under a quota of %d/s at %s stayed within %d..%d late; want it above 16 first, then back at Initial 16",
			grown, perSecond, rtt, lo, hi)
	}
	t.Logf("grown to %d; under the quota %d..%d", grown, slices.Min(late), slices.Max(late))
}

// Endpoints differ in latency; moving from a fast one to a slow one is no queueing.
func TestLimiterTellsEndpointMixFromQueueing(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 64})
	d := &driver{l: l, clk: clk}
	d.run(server{endpoint: "list", latency: constant(20 * time.Millisecond)}, 300, nil)
	d.run(server{endpoint: "file", latency: constant(300 * time.Millisecond)}, 1000, nil)
	if st := l.stats(); st.Decreases != 0 || st.Limit <= 16 {
		t.Errorf("limit %d after %d decreases; want growth without decrease when only the endpoint changed", st.Limit, st.Decreases)
	}
}

func TestLimiterFixedNeverChanges(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: false, Initial: 4, Min: 1, Max: 12})
	d := &driver{l: l, clk: clk}
	flaky := func(i int) int {
		if i%3 == 0 {
			return 429
		}
		return 200
	}
	d.run(server{latency: func(n int) time.Duration { return time.Duration(n) * 50 * time.Millisecond }, status: flaky}, 2000,
		func(st ConcurrencyStats) {
			if st.Limit != 12 {
				t.Fatalf("fixed limit moved to %d", st.Limit)
			}
		})
	st := l.stats()
	if st.Adaptive || st.Initial != 12 || st.LimitAvg != 12 || st.LimitMax != 12 || st.LimitMin != 12 || st.InFlightMax != 12 || st.Increases != 0 || st.Decreases != 0 {
		t.Errorf("fixed stats %+v: want limit 12 throughout, no change", st)
	}
}

func TestLimiterTimeWeightedAverage(t *testing.T) {
	l, clk := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 10, Min: 2, Max: 20})
	clk.t = clk.t.Add(3 * time.Second) // 3 s at 10
	l.mu.Lock()
	l.setLocked(20)
	l.mu.Unlock()
	clk.t = clk.t.Add(1 * time.Second) // 1 s at 20
	if st := l.stats(); st.LimitAvg != 12.5 || st.LimitMax != 20 || st.Increases != 1 {
		t.Errorf("average %.2f, max %d, increases %d; want 12.5, 20, 1", st.LimitAvg, st.LimitMax, st.Increases)
	}
}

func TestLimiterAcquireHonoursContext(t *testing.T) {
	l, _ := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 2, Min: 1, Max: 4})
	a, b := l.tryAcquire("e"), l.tryAcquire("e")
	if a == nil || b == nil || l.tryAcquire("e") != nil {
		t.Fatal("want exactly two slots free")
	}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := l.acquire(done, "e"); !errors.Is(err, context.Canceled) || s != nil {
		t.Errorf("acquire with an ended context = %v, %v; want context.Canceled", s, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := l.acquire(ctx, "e")
		res <- err
	}()
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiters) == 1 })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("blocked acquire after cancel: %v; want context.Canceled", err)
	}
	if st := l.stats(); st.InFlight != 2 || len(l.waiters) != 0 {
		t.Errorf("after a cancelled wait: %d in flight, %d waiting; want 2 and 0", st.InFlight, len(l.waiters))
	}

	// A waiter gets the slot a release frees.
	got := make(chan *slot, 1)
	go func() {
		s, err := l.acquire(context.Background(), "e")
		if err != nil {
			t.Errorf("acquire: %v", err)
		}
		got <- s
	}()
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiters) == 1 })
	a.release()
	c := <-got
	if c == nil || l.stats().InFlight != 2 {
		t.Errorf("waiter got %v with %d in flight; want a slot, 2 in flight", c, l.stats().InFlight)
	}
	b.release()
	c.release()
}

func TestSlotReleasesOnce(t *testing.T) {
	l, _ := newTestLimiter(t, Concurrency{Adaptive: true, Initial: 2, Min: 1, Max: 2})
	a, b := l.tryAcquire("e"), l.tryAcquire("e")
	a.answered(200)
	a.release()
	a.release()
	a.release()
	if st := l.stats(); st.InFlight != 1 {
		t.Fatalf("in flight %d after one slot released three times; want 1", st.InFlight)
	}
	if l.tryAcquire("e") == nil || l.tryAcquire("e") != nil {
		t.Errorf("want exactly one slot free again")
	}
	b.release()
	var none *slot
	none.answered(200) // nil slots (no limiter) are no-ops
	none.release()
	var nl *limiter
	if s, err := nl.acquire(context.Background(), "e"); s != nil || err != nil {
		t.Errorf("nil limiter acquire = %v, %v; want nil, nil", s, err)
	}
	if st := nl.stats(); st != (ConcurrencyStats{}) {
		t.Errorf("nil limiter stats %+v; want zero", st)
	}
}

func TestNewLimiterBounds(t *testing.T) {
	now := time.Now
	if l, err := newLimiter(Concurrency{Adaptive: true}, now); l != nil || err != nil {
		t.Errorf("Max 0: %v, %v; want no limiter", l, err)
	}
	for _, c := range []Concurrency{{Max: -1}, {Max: 4, Min: 5}, {Max: 4, Initial: -1}} {
		if _, err := newLimiter(c, now); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	l, err := newLimiter(Concurrency{Adaptive: true, Max: 8}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st := l.stats(); st.Limit != 8 || st.Initial != 8 || l.min != 2 {
		t.Errorf("Max 8 with defaults: limit %d initial %d min %d; want 8, 8 (16 clamped), 2", st.Limit, st.Initial, l.min)
	}
	l, _ = newLimiter(Concurrency{Adaptive: true, Max: 64}, now)
	if st := l.stats(); st.Limit != 16 {
		t.Errorf("Max 64 with defaults: limit %d; want the default initial 16", st.Limit)
	}
}

// waitFor polls cond until it holds, failing the test after a generous while; it orders
// goroutines, it measures nothing.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 10000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not reached")
}
