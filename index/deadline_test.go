package index_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

func TestOpenGivesUpOnASilentNode(t *testing.T) {
	addr := indextest.SilentNode(t)
	_, err := index.Open(context.Background(), index.Config{
		Addresses: []string{addr}, RequestTimeout: 100 * time.Millisecond, MaxRetries: 3,
		RetryBackoff: func(int) time.Duration { return time.Millisecond }, Logger: zerolog.Nop(),
	})
	var te *index.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Open = %v, want a TimeoutError", err)
	}
	for _, want := range []string{addr, "unreachable", "no answer", "100ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestStalledNode: every request to a node that stops answering ends with a TimeoutError, and
// the bulk writer neither hangs its callers nor loses a callback.
func TestStalledNode(t *testing.T) {
	e := newEnv(t)
	p := indextest.NewProxy(t, e.base)
	cfg := e.config(t, p.URL)
	// With the default deadlines: a busy shared cluster may take a while to create indices.
	healthy := open(t, cfg)
	cfg.RequestTimeout = 200 * time.Millisecond
	cfg.BulkTimeout = 300 * time.Millisecond
	cfg.BulkWorkers = 1
	cfg.FlushBytes = 1000 // every document is its own bulk request
	short, err := index.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BulkTimeout = time.Minute // for a writer that meets the stall, not the deadline
	long, err := index.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.SetStall(true)

	t.Run("requests", func(t *testing.T) {
		c := short
		calls := map[string]func() error{
			"refresh": func() error { return c.Refresh(context.Background()) },
			"count":   func() error { _, err := c.Count(context.Background(), index.Messages, index.Filter{}); return err },
			"mget": func() error {
				_, err := c.Existing(context.Background(), index.Messages, []string{"a"})
				return err
			},
			"setup": func() error { return c.Setup(context.Background()) },
			"delete where": func() error {
				_, err := c.DeleteWhere(context.Background(), index.Messages, index.Filter{Terms: map[string]string{index.FieldMailbox: "x"}})
				return err
			},
		}
		for name, call := range calls {
			var te *index.TimeoutError
			if err := call(); !errors.As(err, &te) {
				t.Errorf("%s on a stalled node = %v, want a TimeoutError", name, err)
			}
		}
	})

	t.Run("bulk deadline", func(t *testing.T) {
		w, err := short.NewWriter()
		if err != nil {
			t.Fatal(err)
		}
		res := newResults(t)
		all := ids("deadline-", 3)
		for _, id := range all {
			if err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), res.done(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatalf("close: %v", err)
		}
		for _, id := range all {
			r := res.one(id)
			if r.Err == nil || r.Permanent || !strings.Contains(r.Err.Error(), "no answer") {
				t.Errorf("%s: result %+v, want a failure by the deadline that is not permanent", id, r)
			}
		}
	})

	t.Run("writer", func(t *testing.T) {
		w, err := long.NewWriter()
		if err != nil {
			t.Fatal(err)
		}
		res := newResults(t)
		var callbacks sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		// Add until the queue is full and Add blocks, then end its context: Add must return.
		var added []string
		var addErr error
		var cancelled atomic.Bool
		for i := 0; ; i++ {
			id := fmt.Sprintf("stall-%05d", i)
			callbacks.Add(1)
			done := res.done(id)
			blocked := time.AfterFunc(500*time.Millisecond, func() { cancelled.Store(true); cancel() })
			addErr = w.Add(ctx, message(id, "a@example.com", "INBOX", 1), func(r index.Result) { done(r); callbacks.Done() })
			blocked.Stop()
			if addErr != nil {
				callbacks.Done()
				break
			}
			added = append(added, id)
			if i > 1000 {
				t.Fatal("Add never blocked")
			}
		}
		if !cancelled.Load() || !errors.Is(addErr, context.Canceled) {
			t.Fatalf("blocked Add = %v (cancelled %v), want context.Canceled", addErr, cancelled.Load())
		}
		// Close gives up with its context while the bulk request hangs.
		cctx, ccancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer ccancel()
		if err := w.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want context.DeadlineExceeded", err)
		}
		if err := w.Add(context.Background(), message("late", "a@example.com", "INBOX", 1), func(index.Result) {}); !errors.Is(err, index.ErrClosed) {
			t.Errorf("Add after Close = %v, want ErrClosed", err)
		}
		// Every document accepted has had its one callback when Close returns: failed, not
		// permanent, although its bulk request still hangs.
		callbacks.Wait()
		for _, id := range added {
			if r := res.one(id); r.Err == nil || r.Permanent || !strings.Contains(r.Err.Error(), "not acknowledged before the index writer closed") {
				t.Errorf("%s: result %+v, want a failure that is not permanent", id, r)
			}
		}
		// The answers that come once the node answers again are dropped: still one callback each.
		p.SetStall(false)
		if err := healthy.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		for _, id := range added {
			res.one(id)
		}
	})

	p.SetStall(false)
	if err := healthy.Refresh(context.Background()); err != nil {
		t.Errorf("refresh after the stall ended: %v", err)
	}
}

// TestCloseReleasesBlockedAdd: an Add waiting for room when Close runs out of time returns
// ErrClosed instead of holding Close (and its caller) for ever.
func TestCloseReleasesBlockedAdd(t *testing.T) {
	e := newEnv(t)
	p := indextest.NewProxy(t, e.base)
	cfg := e.config(t, p.URL)
	cfg.BulkTimeout = time.Minute // the stall, not the deadline, is what Close meets
	cfg.BulkWorkers = 1
	cfg.FlushBytes = 1000
	c := open(t, cfg)
	p.SetStall(true)

	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	var callbacks sync.WaitGroup
	errs := make(chan error, 1)
	go func() {
		// Without a deadline of its own this Add blocks once the queue is full.
		for i := 0; ; i++ {
			callbacks.Add(1)
			err := w.Add(context.Background(), message(fmt.Sprintf("blocked-%05d", i), "a@example.com", "INBOX", 1),
				func(index.Result) { callbacks.Done() })
			if err != nil {
				callbacks.Done()
				errs <- err
				return
			}
		}
	}()
	for p.Stalled() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the adder fill the queue and block
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want context.DeadlineExceeded", err)
	}
	if err := <-errs; !errors.Is(err, index.ErrClosed) {
		t.Errorf("blocked Add = %v, want ErrClosed", err)
	}
	p.SetStall(false)
	callbacks.Wait() // each accepted document still reports once the node answers
}
