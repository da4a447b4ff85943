package crawler

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// startServices does for a test that drives a pass directly what Run does: it sets the run's
// breaker and starts the hand-off and committer goroutines. The returned function stops them
// and waits for them.
func startServices(c *Crawler) func() {
	_, stop := context.WithCancelCause(context.Background())
	grace, endGrace := context.WithCancel(context.Background())
	c.trip = func(err error) { stop(err) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.ready.run(grace) }()
	go func() { defer wg.Done(); c.commits.run() }()
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
		pass: state.Pass{Generation: 1}, tr: newTracker(c.opts.MessagesInFlight, nil, nil), log: log}
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
	p.message(context.Background(), context.Background(), m, seq, at)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failed, err := p.tr.wait(ctx)
	stop()
	if err != nil {
		t.Fatalf("wait for the message: %v", err)
	}
	return failed
}

// ctxSink records the context of every Add.
type ctxSink struct{ got []context.Context }

func (s *ctxSink) Add(ctx context.Context, _ index.Doc, done func(index.Result)) error {
	s.got = append(s.got, ctx)
	go done(index.Result{Status: 201})
	return nil
}
func (s *ctxSink) Flush(context.Context) error { return nil }

// The run's guarded sink sends on the context it is given (the grace context its callers pass),
// not one it keeps: a document added after that context ended does not wait.
func TestGuardedSinkAddHonoursItsContext(t *testing.T) {
	sink := &ctxSink{}
	c := New(newFakeArchive(), newFakeIndex(), sink, newFakeStore(), Options{Logger: zerolog.Nop()})
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "grace")
	done := make(chan struct{})
	if err := c.sink.Add(ctx, index.Doc{ID: "d"}, func(index.Result) { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
	if len(sink.got) != 1 || sink.got[0].Value(key{}) != "grace" {
		t.Errorf("the sink was given %v, not the caller's context", sink.got)
	}
}
