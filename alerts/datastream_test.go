package alerts

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// fakeStream answers Has from a set of ids and fails the calls it is told to.
type fakeStream struct {
	mu      sync.Mutex
	present map[string]bool
	calls   int
	failAt  int // the Has call (1-based) that fails; 0: none
	opens   int
	kinds   []index.Kind // of every OpenIDs
}

func (f *fakeStream) Namespace() string { return "ns1" }

func (f *fakeStream) OpenIDs(_ context.Context, k index.Kind) (IDSet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	f.kinds = append(f.kinds, k)
	return f, nil
}

func (f *fakeStream) Has(_ context.Context, ids []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == f.failAt {
		return nil, errors.New("search failed")
	}
	out := map[string]bool{}
	for _, id := range ids {
		if f.present[id] {
			out[id] = true
		}
	}
	return out, nil
}

func (f *fakeStream) Remove(context.Context, []string) (int64, error) { return 0, nil }

// Alerts the data stream holds already (in any backing index) are counted as existing and
// not written; a lookup that fails holds the cursor at its page, as an unacknowledged
// alert would ("unknown", never "absent"), and the next pass writes what is missing.
func TestStreamLookupSkipsPresentAndHoldsOnError(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 30, at(-30), 1e9)
	f.logs.add(mimecast.DLPLogs, all...)
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})
	st := &fakeStream{present: map[string]bool{"a003": true, "a004": true}, failAt: 2}
	p.d.Stream = st

	s := one(t, p.Once(context.Background()))
	if s.Error == "" {
		t.Fatalf("a failed lookup went unreported: %+v", s)
	}
	if s.Existing != 2 || s.Indexed != 8 {
		t.Errorf("first pass = %+v; want page 1 written but for the 2 present alerts", s)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); c.Token != "10" {
		t.Fatalf("cursor after a failed lookup on page 2 = %+v; want it at page 2", c)
	}
	for _, id := range f.sink.alertIDs() {
		if id == "a003" || id == "a004" {
			t.Errorf("present alert %s written again", id)
		}
	}
	if st.opens != 1 {
		t.Errorf("ids opened %d times in one pass; want once", st.opens)
	}

	s = one(t, p.Once(context.Background()))
	if s.Error != "" || s.Indexed != 20 {
		t.Errorf("second pass = %+v; want the 20 alerts of pages 2 and 3 written", s)
	}
	if got := len(f.sink.alertIDs()); got != 28 {
		t.Errorf("%d alerts written; want 28 (30 less the 2 present)", got)
	}
	for _, d := range f.sink.docs {
		ds, _ := d.Body.(map[string]any)["data_stream"].(map[string]any)
		if ds["namespace"] != "ns1" || ds["dataset"] != Dataset || ds["type"] != "logs" {
			t.Errorf("document data_stream = %v", ds)
			break
		}
	}
}
