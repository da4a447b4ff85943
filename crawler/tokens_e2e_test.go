package crawler_test

import (
	"context"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// A crawl under a binding quota against a server that honours tokens for 5 s while saying
// 1799 s: calls queue behind the quota for 10 to 30 s, far longer than a token lives. Every
// view completes, the index equals the truth, and the token endpoint is called about once per
// real expiry. Simulated time runs 20 times faster than real time; client and simulator share
// the clock, and the server's hints are scaled back to real time.
func TestTokenQuotaWaitsOutliveTokens(t *testing.T) {
	const speed = 20
	start := time.Now()
	now := func() time.Time { return start.Add(time.Since(start) * speed) }
	// 30 calls a simulated minute: after a burst of 30, one call every 2 simulated seconds,
	// with the crawl's workers queued behind it.
	e := newEnv(t, simulator.Options{Seed: 11, Mailboxes: 3, Messages: 30, TokenHonoured: 5 * time.Second, RateLimit: 30, Now: now})
	ex := e.expect(truthFilter{})
	e.client.Close()
	c, err := mimecast.New(mimecast.Config{
		BaseURL: e.simSrv.URL, ClientID: defaultID(e), ClientSecret: defaultSecret(e),
		AuthTokenOffset: -time.Second, RetryAfterMultiplier: 1.0 / speed, MaxRetries: 50,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxWait: time.Minute,
		Now: now, Logger: e.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := now()
	r := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { o.MessageWorkers = 2 })
	elapsed := now().Sub(began)
	if r.err != nil {
		t.Fatalf("crawl: %v", r.err)
	}
	for _, v := range r.results {
		if v.Outcome != crawler.Complete {
			t.Errorf("%s %s: %s: %s", v.Mailbox, v.View, v.Outcome, v.Error)
		}
	}
	e.assertIndexEquals(ex)
	st := e.sim.Stats()
	var unauthorized int64
	for _, byStatus := range st.Requests {
		unauthorized += byStatus[401]
	}
	cs := c.Stats()
	expiries := int64(elapsed/(5*time.Second)) + 1
	t.Logf("%s simulated: %d answers 429, %d answers 401, %d tokens for %d expiries of 5 s; quota wait %s simulated, summed over calls",
		elapsed.Round(time.Second), st.RateLimited, unauthorized, st.TokensIssued, expiries, (cs.QuotaWait * speed).Round(time.Second))
	// The calls past the burst of 30 waited 10 s and more on average.
	if paced := cs.APICalls - 30; paced <= 0 || cs.QuotaWait*speed/time.Duration(paced) < 10*time.Second {
		t.Errorf("the crawl took %s simulated and waited %s for the quota over %d calls: calls past the burst did not queue for 10 s and more",
			elapsed.Round(time.Second), (cs.QuotaWait * speed).Round(time.Second), cs.APICalls)
	}
	if st.TokensIssued > expiries*3/2+2 {
		t.Errorf("%d tokens issued over %s (%d expiries of 5 s): want about one per expiry", st.TokensIssued, elapsed.Round(time.Second), expiries)
	}
}
