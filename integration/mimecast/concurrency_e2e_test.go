package mimecast_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// messageIDs returns the ids of every message in the simulator's archive.
func messageIDs(sim *simulator.Server) []string {
	var ids []string
	for _, mb := range sim.Truth().Mailboxes {
		for _, m := range mb.Messages {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// fetchFor runs workers goroutines that fetch messages (get-file, then the pre-signed
// download, read to its end) like the crawler's message workers, until stop is closed. It
// returns the number of messages fetched; an error fails the test.
func fetchFor(t *testing.T, c *mimecast.Client, ids []string, workers int, stop <-chan struct{}) int64 {
	t.Helper()
	var fetched atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[int(next.Add(1))%len(ids)]
				rc, err := c.GetFile(context.Background(), id)
				if err != nil {
					t.Errorf("get file %s: %v", id, err)
					return
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					t.Errorf("read file %s: %v", id, err)
					return
				}
				fetched.Add(1)
			}
		})
	}
	wg.Wait()
	return fetched.Load()
}

// With 100 ms per request and no quota, more requests in flight mean more throughput: the
// adaptive limit grows past the old fixed 16. How far it gets in 3 s depends on how busy the
// machine is (a CPU shared with other work shows as latency, and rightly holds the limit
// back), so the test asserts the direction, not a value.
func TestAdaptiveConcurrencyGrowsUnderLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	e := newEnv(t, simulator.Options{Mailboxes: 2, Messages: 50})
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/", LatencyMS: 100}, {PathPrefix: "/_download/", LatencyMS: 100}})
	c := e.client(t, func(cfg *mimecast.Config) {
		cfg.Concurrency = mimecast.Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 64}
		cfg.HTTPClient = nil // the client's own transport, with its pool of connections
	})
	stop := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { close(stop) })
	n := fetchFor(t, c, messageIDs(e.sim), 64, stop)
	st := c.Stats()
	cs := st.Concurrency
	t.Logf("%d messages; limit %d (avg %.1f, max %d, min %d), in flight max %d, %d increases, %d decreases",
		n, cs.Limit, cs.LimitAvg, cs.LimitMax, cs.LimitMin, cs.InFlightMax, cs.Increases, cs.Decreases)
	if cs.LimitMax <= 16 || cs.Increases <= cs.Decreases || cs.Limit < 2 {
		t.Errorf("limit %d (highest %d) after %d increases and %d decreases at 100 ms without a quota: want it to grow past the initial 16, more often up than down",
			cs.Limit, cs.LimitMax, cs.Increases, cs.Decreases)
	}
	if cs.InFlightMax > 64 || cs.InFlightMax <= 16 {
		t.Errorf("in flight at most %d: want above 16 and within Max 64", cs.InFlightMax)
	}
	if cs.InFlight != 0 {
		t.Errorf("%d slots still held after every body was closed", cs.InFlight)
	}
	if st.RateLimited != 0 {
		t.Errorf("%d answers 429 without a quota", st.RateLimited)
	}
}

// Under a tight quota the pacer's waits count as latency: once the quota binds the limit comes
// down and stays low, and the 429s stay within 1% of the calls. The first 429s, to the
// requests in flight when the quota's burst ran out, are one episode at the start of a run;
// the test measures the steady state after it, and logs the whole run.
func TestAdaptiveConcurrencyStaysLowUnderQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	const speed = 25 // the simulator's clock runs 25x faster than real time
	now := fastClock(speed)
	// 96 calls per simulated minute: 40 get-file calls per real second after a burst of 96,
	// well below what this machine does even when busy, so the quota binds within a second.
	e := newEnv(t, simulator.Options{Mailboxes: 2, Messages: 50, RateLimit: 96, Now: now})
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/", LatencyMS: 10}, {PathPrefix: "/_download/", LatencyMS: 10}})
	c := e.client(t, func(cfg *mimecast.Config) {
		cfg.Now = now
		cfg.RetryAfterMultiplier = 1.0 / speed // hints are in simulated time
		cfg.MaxRetries = 50
		cfg.MaxWait = time.Second
		cfg.Concurrency = mimecast.Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 64}
		cfg.HTTPClient = nil // the client's own transport, with its pool of connections
	})
	stop := make(chan struct{})
	fetched := make(chan int64, 1)
	go func() { fetched <- fetchFor(t, c, messageIDs(e.sim), 64, stop) }()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-fetched
		}
	}()

	bound := false
	for range 1000 { // 10 s at most
		if c.Stats().RateLimited > 0 {
			bound = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !bound {
		t.Fatalf("no 429 after 10 s: the quota never bound and the test does not exercise it")
	}
	time.Sleep(time.Second) // the first episode settles
	s0 := c.Stats()
	time.Sleep(5 * time.Second)
	s1 := c.Stats()
	close(stop)
	stopped = true
	n := <-fetched

	calls, limited := s1.Calls-s0.Calls, s1.RateLimited-s0.RateLimited
	c0, c1 := s0.Concurrency, s1.Concurrency
	// The limit's time-weighted mean over the steady state, from the means since New.
	avg := (c1.LimitAvg*s1.Elapsed.Seconds() - c0.LimitAvg*s0.Elapsed.Seconds()) / (s1.Elapsed - s0.Elapsed).Seconds()
	t.Logf("whole run: %d messages, %d calls, %d answered 429; limit %d (avg %.1f, max %d, min %d), in flight max %d, %d increases, %d decreases",
		n, s1.Calls, s1.RateLimited, c1.Limit, c1.LimitAvg, c1.LimitMax, c1.LimitMin, c1.InFlightMax, c1.Increases, c1.Decreases)
	t.Logf("steady state (5 s): %d calls, %d answered 429; limit %d → %d, avg %.1f", calls, limited, c0.Limit, c1.Limit, avg)
	if c1.Decreases == 0 || avg >= 16 || c1.Limit >= 16 || c1.LimitMin < 2 {
		t.Errorf("limit %d (steady-state avg %.1f, lowest %d, %d decreases) under a quota: want it below the initial 16 and at least Min 2",
			c1.Limit, avg, c1.LimitMin, c1.Decreases)
	}
	// Calls as the run summary counts them (api_calls: every HTTP exchange, downloads
	// included).
	if float64(limited) > 0.01*float64(calls) {
		t.Errorf("%d of %d calls answered 429 once the quota bound: want at most 1%%", limited, calls)
	}
	if st := c.Stats().Concurrency; st.InFlight != 0 {
		t.Errorf("%d slots still held after every body was closed", st.InFlight)
	}
}

// A streamed body releases its slot when read to its end, and closing it (twice) does not
// release it again.
func TestStreamedBodyReleasesItsSlotOnce(t *testing.T) {
	for _, stream := range []bool{true, false} {
		e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 3, StreamFiles: stream})
		c := e.client(t, func(cfg *mimecast.Config) {
			cfg.Concurrency = mimecast.Concurrency{Adaptive: false, Max: 1}
		})
		ids := messageIDs(e.sim)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rc, err := c.GetFile(ctx, ids[0])
		if err != nil {
			t.Fatalf("stream %v: get file: %v", stream, err)
		}
		if got := c.Stats().Concurrency.InFlight; got != 1 {
			t.Errorf("stream %v: %d in flight with an open body; want 1", stream, got)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("stream %v: read: %v", stream, err)
		}
		if got := c.Stats().Concurrency.InFlight; got != 0 {
			t.Errorf("stream %v: %d in flight after the body was read to its end; want 0", stream, got)
		}
		rc.Close()
		rc.Close()
		if got := c.Stats().Concurrency.InFlight; got != 0 {
			t.Errorf("stream %v: %d in flight after two closes; want 0", stream, got)
		}
		// A body closed unread gives its slot back too; with Max 1 a leak would block here
		// until ctx ends.
		for _, id := range ids[1:] {
			rc, err := c.GetFile(ctx, id)
			if err != nil {
				t.Fatalf("stream %v: get file after release: %v", stream, err)
			}
			rc.Close()
		}
		if st := c.Stats().Concurrency; st.InFlight != 0 || st.InFlightMax != 1 {
			t.Errorf("stream %v: in flight %d (max %d); want 0 (max 1)", stream, st.InFlight, st.InFlightMax)
		}
		cancel()
	}
}

// Sporadic 429s (3% of calls, short hints, no quota) do not shrink the adaptive bound: only
// the quota's 429s do. Before, each one took a quarter off, and the bound sank to its
// minimum.
func TestAdaptiveConcurrencyIgnoresSporadic429s(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	e := newEnv(t, simulator.Options{Mailboxes: 2, Messages: 50})
	e.sim.SetFaults([]simulator.Fault{
		{PathPrefix: "/api/", LatencyMS: 10},
		{PathPrefix: "/api/archive/get-file", Status: 429, Probability: 0.03, ResetMS: 20},
	})
	c := e.client(t, func(cfg *mimecast.Config) {
		cfg.MaxRetries = 20
		cfg.MaxWait = time.Second
		cfg.Concurrency = mimecast.Concurrency{Adaptive: true, Initial: 16, Min: 2, Max: 64}
		cfg.HTTPClient = nil
	})
	stop := make(chan struct{})
	fetched := make(chan int64, 1)
	go func() { fetched <- fetchFor(t, c, messageIDs(e.sim), 32, stop) }()
	for range 500 { // 5 s at most
		if c.Stats().RateLimited >= 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	n := <-fetched
	st := c.Stats()
	t.Logf("%d messages, %d answered 429; limit %d (lowest %d), %d decreases", n, st.RateLimited, st.Concurrency.Limit, st.Concurrency.LimitMin, st.Concurrency.Decreases)
	if st.RateLimited < 10 {
		t.Fatalf("%d answers 429: the faults did not fire", st.RateLimited)
	}
	if st.Concurrency.LimitMin < 16 {
		t.Errorf("the bound went down to %d after %d sporadic 429s; want it never below the initial 16", st.Concurrency.LimitMin, st.RateLimited)
	}
}
