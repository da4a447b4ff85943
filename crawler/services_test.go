package crawler

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// startServices does for a test that drives a pass directly what Run does: it sets the run's
// contexts and starts the hand-off and committer goroutines. The returned function stops them
// and waits for them.
func startServices(c *Crawler) func() {
	work, stop := context.WithCancelCause(context.Background())
	grace, endGrace := context.WithCancel(context.Background())
	c.work, c.grace, c.stop = work, grace, stop
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.ready.run(grace) }()
	go func() { defer wg.Done(); _ = c.commits.run() }()
	return func() {
		stop(nil)
		endGrace()
		c.commits.close()
		wg.Wait()
	}
}

// simulatorClient starts a simulator with opts behind an HTTP server and returns it with a
// client of its API; both are closed when the test or benchmark ends.
func simulatorClient(tb testing.TB, opts simulator.Options) (*simulator.Server, *mimecast.Client) {
	tb.Helper()
	sim, err := simulator.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	tb.Cleanup(srv.Close)
	client, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "demo-client", ClientSecret: "demo-secret", Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	return sim, client
}

// testPass returns a pass of generation 1 over the INBOX of mb, as crawlView would make it
// but without the run's window and flusher.
func testPass(c *Crawler, mb Mailbox, log zerolog.Logger) *viewPass {
	return &viewPass{c: c, mb: mb, view: api.ViewInbox, key: state.Key{Mailbox: mb.Address, View: api.ViewInbox},
		pass: state.Pass{Generation: 1}, tr: newTracker(c.opts.MaxInflight, nil, nil), log: log}
}

// crawlOneMessage fetches and indexes the listed message m (received at) through a pass over
// mb, waits until its documents are answered (the sink's and the hand-off's), stops the
// crawler's services and returns how many messages failed.
func crawlOneMessage(t *testing.T, c *Crawler, mb Mailbox, m api.MessageSummary, log zerolog.Logger) int {
	t.Helper()
	p := testPass(c, mb, log)
	stop := startServices(c)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	seq, err := p.tr.add(context.Background(), at)
	if err != nil {
		stop()
		t.Fatalf("track message: %v", err)
	}
	p.message(context.Background(), m, seq, at)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failed, err := p.tr.wait(ctx)
	stop()
	if err != nil {
		t.Fatalf("wait for the message: %v", err)
	}
	return failed
}
