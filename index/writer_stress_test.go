package index_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// TestWriterOneCallbackPerAddWithRepeatsAndRejections adds every id several times from
// concurrent producers (as a poller re-reading an overlap does), some with op_type create
// (the repeats are answered 409) and some rejected with 429 and re-queued, in many small bulk
// requests. Each Add, not each id, must get exactly one callback, before Close is called: a
// caller waits for its acknowledgements while the writer is open.
func TestWriterOneCallbackPerAddWithRepeatsAndRejections(t *testing.T) {
	e := newEnv(t)
	p := indextest.NewProxy(t, e.base)
	cfg := e.config(t, p.URL)
	cfg.FlushBytes = 4 << 10
	cfg.MaxItemRetries = 3
	c := open(t, cfg)
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}

	const n, repeats, producers = 300, 3, 4
	all := ids("rep-", n)
	for i, id := range all {
		if i%5 == 0 {
			p.RejectTooMany(id, 2) // two of its occurrences are answered 429
		}
	}
	type call struct {
		id    string
		calls atomic.Int32
		res   index.Result
	}
	var (
		mu      sync.Mutex
		calls   []*call
		waiting sync.WaitGroup
	)
	var wg sync.WaitGroup
	for pr := range producers {
		wg.Go(func() {
			for r := range repeats {
				for i, id := range all {
					if (i+r+pr)%producers != 0 && r > 0 {
						continue // each id several times, not by every producer every time
					}
					d := message(id, "a@example.com", "INBOX", 1)
					if i%2 == 0 {
						d.Op = index.OpCreate
					}
					cl := &call{id: id}
					waiting.Add(1)
					err := w.Add(context.Background(), d, func(res index.Result) {
						if cl.calls.Add(1) == 1 {
							cl.res = res
							waiting.Done()
						}
					})
					if err != nil {
						waiting.Done()
						t.Errorf("add %s: %v", id, err)
						continue
					}
					mu.Lock()
					calls = append(calls, cl)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	allDone := make(chan struct{})
	go func() { waiting.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(time.Minute): // a hang, not a timing: the writer is idle long before
		missing := 0
		mu.Lock()
		for _, cl := range calls {
			if cl.calls.Load() == 0 {
				if missing < 10 {
					t.Errorf("document %s accepted by Add got no callback", cl.id)
				}
				missing++
			}
		}
		mu.Unlock()
		t.Errorf("%d of %d accepted documents got no callback; stats %+v", missing, len(calls), w.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	created := map[string]int{}
	for _, cl := range calls {
		if got := cl.calls.Load(); got != 1 {
			t.Errorf("%s: %d callbacks, want 1", cl.id, got)
			continue
		}
		if cl.res.Err != nil {
			t.Errorf("%s: %v", cl.id, cl.res.Err)
		}
		if cl.res.Status == http.StatusCreated && !cl.res.Existed {
			created[cl.id]++
		}
	}
	for i, id := range all {
		if i%2 == 0 && created[id] != 1 {
			t.Errorf("%s: created %d times by op_type create, want once", id, created[id])
		}
	}
	if st := w.Stats(); st.Added != uint64(len(calls)) || st.Indexed != uint64(len(calls)) || st.Retried == 0 {
		t.Errorf("stats = %+v, want %d added and indexed, some retried", st, len(calls))
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, c, index.Messages, index.Filter{}); got != n {
		t.Errorf("%d documents, want %d", got, n)
	}
}

// TestWriterCloseGivingUpWaitsForRunningCallback: when Close's context ends while a
// callback is still running (its answer arrived just before Close gave up), Close must not
// return before that callback has: it promises that every callback has run.
func TestWriterCloseGivingUpWaitsForRunningCallback(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	if err := w.Add(context.Background(), message("slow-callback", "a@example.com", "INBOX", 1), func(index.Result) {
		close(entered)
		<-release
		returned.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	<-entered // acknowledged; the callback runs on
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go func() {
		// Without the wait in Close, it has long returned by now; with it, this lets it return.
		time.Sleep(100 * time.Millisecond)
		close(release)
	}()
	err = w.Close(ctx)
	if !returned.Load() {
		t.Error("Close returned while a callback was still running")
	}
	if err == nil {
		t.Error("Close with an ended context returned nil")
	}
}

// TestWriterSameIDTwiceInOneRequest sends the same id several times in one bulk request:
// callbacks belong to Adds, not to ids, so each Add gets its own, in the order Elasticsearch
// answered (the first create creates, the repeats find it there).
func TestWriterSameIDTwiceInOneRequest(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t, "")
	cfg.BulkWorkers = 1
	cfg.FlushInterval = time.Hour // one request, sent by Close
	c := open(t, cfg)
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	ops := []index.Op{index.OpCreate, index.OpCreate, index.OpIndex, index.OpCreate}
	got := make([][]index.Result, len(ops))
	for i, op := range ops {
		d := message("twice", "a@example.com", "INBOX", 1)
		d.Op = op
		if err := w.Add(context.Background(), d, func(r index.Result) { got[i] = append(got[i], r) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Requests != 1 {
		t.Fatalf("stats = %+v, want the documents in one request", st)
	}
	want := []struct {
		status  int
		existed bool
	}{{http.StatusCreated, false}, {http.StatusConflict, true}, {http.StatusOK, false}, {http.StatusConflict, true}}
	for i, rs := range got {
		if len(rs) != 1 {
			t.Errorf("add %d: %d callbacks, want 1", i, len(rs))
			continue
		}
		if r := rs[0]; r.Err != nil || r.Status != want[i].status || r.Existed != want[i].existed {
			t.Errorf("add %d: result %+v, want status %d, existed %v", i, r, want[i].status, want[i].existed)
		}
	}
}

// TestWriterShortBulkAnswer: an answer that lists fewer items than the request sent (a broken
// intermediary) must not leave documents without a callback. The bulk indexer calls back only
// the items an answer lists, so the writer fails the whole request instead (not permanent: a
// later run sends the documents again).
func TestWriterShortBulkAnswer(t *testing.T) {
	e := newEnv(t)
	p := indextest.NewProxy(t, e.base)
	cfg := e.config(t, p.URL)
	cfg.BulkWorkers = 1
	cfg.FlushInterval = time.Hour // one request, sent by Close
	c := open(t, cfg)
	p.OmitFromAnswer("short-00002")
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	res := newResults(t)
	all := ids("short-", 5)
	for _, id := range all {
		if err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), res.done(id)); err != nil {
			t.Fatal(err)
		}
	}
	// A delete has no source line: the count of actions must still be right.
	if err := w.Delete(context.Background(), index.Messages, "short-gone", res.done("short-gone")); err != nil {
		t.Fatal(err)
	}
	all = append(all, "short-gone")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang, not a timing
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	for _, id := range all {
		if r := res.one(id); r.Err == nil || r.Permanent || !strings.Contains(r.Err.Error(), "bulk answer lists 5 items for 6 sent") {
			t.Errorf("%s: result %+v, want a failure of the request that is not permanent", id, r)
		}
	}
}
