package mimecast_test

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// Tokens honoured for 5 s while calls wait 10 to 30 s: for the quota (a per-minute token
// bucket that binds, so that calls queue behind the pacer) or for a 429's own hint. Whether
// the server says so (expires_in 5) or not (expires_in 1799, refused after 5 s), every view is
// read to its end and every message fetched, no call fails for its token, and the token
// endpoint is called about once per real expiry. Simulated time runs faster than real time;
// client and simulator share the clock, and hints are scaled back to real time.
func TestTokensOutliveNoWait(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	cases := []struct {
		name   string
		speed  int
		opts   simulator.Options
		faults []simulator.Fault
	}{
		{name: "expires_in 5s, quota waits", speed: 20,
			opts: simulator.Options{Mailboxes: 4, Messages: 8, TokenTTL: 5 * time.Second, RateLimit: 30}},
		{name: "expires_in 1799s honoured 5s, quota waits", speed: 20,
			opts: simulator.Options{Mailboxes: 4, Messages: 8, TokenHonoured: 5 * time.Second, RateLimit: 30}},
		{name: "expires_in 1799s honoured 5s, 429s of 10 to 30 s", speed: 20,
			opts: simulator.Options{Mailboxes: 4, Messages: 60, TokenHonoured: 5 * time.Second},
			faults: []simulator.Fault{
				{PathPrefix: "/api/", LatencyMS: 5},
				{PathPrefix: "/api/", Status: 429, Probability: 0.04, ResetMS: 10_000},
				{PathPrefix: "/api/", Status: 429, Probability: 0.02, ResetMS: 30_000},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := fastClock(tc.speed)
			tc.opts.Domains, tc.opts.Now = 1, now
			e := newEnv(t, tc.opts)
			e.sim.SetFaults(tc.faults)
			c := e.client(t, func(cfg *mimecast.Config) {
				cfg.Now = now
				cfg.RetryAfterMultiplier = 1.0 / float64(tc.speed) // hints are in simulated time
				cfg.MaxWait = time.Minute
				cfg.MaxRetries = 50
				cfg.AuthTokenOffset = -time.Second
			})
			start := now()
			walkArchive(t, e.sim, c)
			elapsed := now().Sub(start)
			st := e.sim.Stats()
			cs := c.Stats()
			expiries := int64(elapsed/(5*time.Second)) + 1
			t.Logf("%s simulated: %d answers 429, %d answers 401, %d tokens issued for %d expiries, quota wait %s (real, summed over calls)",
				elapsed.Round(time.Second), st.RateLimited, requests401(st), st.TokensIssued, expiries, cs.QuotaWait.Round(time.Millisecond))
			if st.RateLimited == 0 {
				t.Fatal("no 429 at all; the test does not make calls wait")
			}
			if elapsed < 20*time.Second {
				t.Fatalf("the run took %s simulated: too short for tokens of 5 s to expire during it", elapsed)
			}
			// One fetch per expiry, plus a few for calls that raced a refresh.
			if st.TokensIssued > expiries*3/2+2 {
				t.Errorf("%d tokens issued over %s (%d expiries of 5 s): want about one per expiry", st.TokensIssued, elapsed.Round(time.Second), expiries)
			}
		})
	}
}

// walkArchive lists every view of every mailbox with messages, one goroutine per view, and
// fetches every message listed (get-file and its download, read to its end), then compares
// the ids listed with the simulator's truth. Any error fails the test.
func walkArchive(t *testing.T, sim *simulator.Server, c *mimecast.Client) {
	t.Helper()
	type unit struct{ mailbox, view string }
	var units []unit
	want := map[unit][]string{}
	for _, mb := range sim.Truth().Mailboxes {
		if mb.Alias || len(mb.Messages) == 0 {
			continue
		}
		for _, v := range []string{api.ViewInbox, api.ViewSent} {
			u := unit{mb.Address, v}
			units = append(units, u)
			for _, m := range mb.Messages {
				if m.View == v {
					want[u] = append(want[u], m.ID)
				}
			}
		}
	}
	// The whole archive: seeded messages were received in the year before 2026.
	from := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC).Format(api.TimeLayout)
	to := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Format(api.TimeLayout)
	var (
		mu  sync.Mutex
		got = map[unit][]string{}
		wg  sync.WaitGroup
	)
	for _, u := range units {
		wg.Go(func() {
			var ids []string
			err := c.ListMessages(context.Background(), api.MessageListFilter{View: u.view, Mailbox: u.mailbox, Start: from, End: to}, 5, func(page []api.MessageSummary) error {
				for _, m := range page {
					ids = append(ids, m.ID)
				}
				return nil
			})
			if err != nil {
				t.Errorf("list %s %s: %v", u.mailbox, u.view, err)
				return
			}
			for _, id := range ids {
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
			}
			mu.Lock()
			got[u] = ids
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, u := range units {
		g, w := slices.Sorted(slices.Values(got[u])), slices.Sorted(slices.Values(want[u]))
		if !slices.Equal(g, w) {
			t.Errorf("%s %s: listed %d ids, truth has %d", u.mailbox, u.view, len(g), len(w))
		}
	}
}

// requests401 counts answers 401 to API calls.
func requests401(st simulator.Stats) int64 {
	var n int64
	for _, byStatus := range st.Requests {
		n += byStatus[401]
	}
	return n
}
