package mimecast_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// A Client given no HTTP client keeps a connection for each call in flight: concurrent calls
// reuse connections instead of closing all but two after each call and dialling again.
func TestConcurrentCallsReuseConnections(t *testing.T) {
	sim, err := simulator.New(simulator.Options{Seed: 7, Mailboxes: 2, Messages: 40, ClientID: testClientID, ClientSecret: testSecret})
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	var dialled atomic.Int64
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: testClientID, ClientSecret: testSecret,
		RequestTimeout: 10 * time.Second, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(c.Close)

	var ids []string
	for _, mb := range sim.Truth().Mailboxes {
		for _, m := range mb.Messages {
			ids = append(ids, m.ID)
		}
	}
	const workers, rounds = 16, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				id := ids[(w*rounds+r)%len(ids)]
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
		})
	}
	wg.Wait()
	t.Logf("%d connections dialled", dialled.Load())
	// 320 requests (a call and a download each) from 16 workers: a connection per worker, and
	// a few more dialled while one was on its way back to the idle pool.
	if n := dialled.Load(); n > 2*workers {
		t.Errorf("%d connections dialled for %d requests from %d workers, want at most %d", n, 2*workers*rounds, workers, 2*workers)
	}
}
