package crawler

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// Unit tests of the core with the fakes of fakes_test.go: no Mimecast, no Elasticsearch.

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type world struct {
	arc   *fakeArchive
	idx   *fakeIndex
	sink  *fakeSink
	store *fakeStore
	mbs   []Mailbox
}

func newWorld() *world {
	idx := newFakeIndex()
	return &world{arc: newFakeArchive(), idx: idx, sink: &fakeSink{idx: idx}, store: newFakeStore()}
}

// mailbox adds a mailbox with n messages in its INBOX, the newest an hour before testNow.
func (w *world) mailbox(addr string, n int) state.Key {
	w.mbs = append(w.mbs, Mailbox{Address: addr, Domain: "example.com"})
	k := state.Key{Mailbox: addr, View: api.ViewInbox}
	w.arc.add(k, n, testNow.Add(-time.Hour))
	return k
}

func (w *world) options(tweak func(*Options)) Options {
	o := Options{Views: []string{api.ViewInbox}, StartDate: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		PageSize: 5, ListingSlots: 2, MessageWorkers: 2, MessagesInFlight: 8, CheckpointInterval: time.Nanosecond,
		ShutdownGrace: 50 * time.Millisecond, DeltaTokenOffset: -15 * time.Minute,
		Now: func() time.Time { return testNow }, Logger: zerolog.Nop()}
	if tweak != nil {
		tweak(&o)
	}
	return o
}

type runOut struct {
	results []ViewResult
	err     error
	totals  Totals
}

// run runs one crawl; it fails the test if Run does not return within a minute (a hang).
func (w *world) run(t *testing.T, ctx context.Context, tweak func(*Options)) runOut {
	t.Helper()
	c := New(w.arc, w.idx, w.sink, w.store, w.options(tweak))
	done := make(chan runOut, 1)
	go func() {
		rs, err := c.Run(ctx, w.mbs, nil)
		done <- runOut{results: rs, err: err}
	}()
	select {
	case r := <-done:
		w.sink.wg.Wait()
		r.totals = c.Totals()
		return r
	case <-time.After(time.Minute):
		t.Fatal("Run did not return")
		return runOut{}
	}
}

func (w *world) messageIDs(k state.Key) []string {
	var out []string
	for _, m := range w.arc.views[k] {
		out = append(out, MessageDocID(k.Mailbox, k.View, m.ID))
	}
	return out
}

func TestRunIndexesEverythingThenSkips(t *testing.T) {
	w := newWorld()
	a := w.mailbox("a@example.com", 23)
	b := w.mailbox("b@example.com", 7)
	r := w.run(t, context.Background(), nil)
	if r.err != nil || len(r.results) != 2 {
		t.Fatalf("run: %v, %d results", r.err, len(r.results))
	}
	for _, v := range r.results {
		if v.Outcome != Complete || v.Err != nil {
			t.Errorf("%s: %v %v", v.Mailbox, v.Outcome, v.Err)
		}
	}
	got := w.idx.ids(index.Messages)
	for _, k := range []state.Key{a, b} {
		for _, id := range w.messageIDs(k) {
			if !got[id] {
				t.Errorf("%v: message %s not indexed", k, id)
			}
		}
		if p, _, _ := w.store.Position(k); !p.Token.Equal(testNow) || p.Pass != nil {
			t.Errorf("%v: token %v pass %v, want token %v and no pass", k, p.Token, p.Pass, testNow)
		}
	}
	if r.totals.Messages != 30 {
		t.Errorf("messages indexed %d, want 30", r.totals.Messages)
	}
	// One call per message by default: get-file, no detail.
	if f, d := w.arc.fetches.Load(), w.arc.details.Load(); f != 30 || d != 0 {
		t.Errorf("%d get-file and %d detail calls for 30 messages, want 30 and 0", f, d)
	}
	// The next run lists the overlap of the token offset and finds it all indexed.
	w.arc.fetches.Store(0)
	r = w.run(t, context.Background(), func(o *Options) { o.Now = func() time.Time { return testNow.Add(time.Hour) } })
	if w.arc.fetches.Load() != 0 || r.totals.Messages != 0 {
		t.Errorf("second run fetched %d messages, indexed %d; want none", w.arc.fetches.Load(), r.totals.Messages)
	}
}

// Cancelling mid-pass returns promptly and the checkpoint never passes a message that
// Elasticsearch did not acknowledge.
func TestRunCancelledMidPassKeepsCheckpointBehindUnacknowledged(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 60)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	n := 0
	w.sink.answer = func(d index.Doc) (index.Result, bool) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 20 {
			cancel() // stop the run while documents are in flight
		}
		return index.Result{}, n%7 == 3 // every seventh document is never answered
	}
	// One worker: documents reach the sink in listing order, so the first two are acknowledged
	// and the third is not; the resume point must cover exactly a prefix of the listing.
	r := w.run(t, ctx, func(o *Options) { o.ListingSlots, o.MessageWorkers = 1, 1 })
	if r.err != nil {
		t.Errorf("Run returned %v; a cancelled run is the caller's doing, not an error", r.err)
	}
	if len(r.results) != 1 || r.results[0].Outcome != Interrupted {
		t.Fatalf("results %+v, want one interrupted view", r.results)
	}
	p, _, _ := w.store.Position(k)
	if !p.Token.IsZero() {
		t.Fatalf("token moved to %v by an interrupted pass", p.Token)
	}
	if p.Pass == nil {
		t.Fatal("no pass recorded")
	}
	acked := w.idx.ids(index.Messages)
	if p.Pass.Low.IsZero() {
		t.Fatal("no resume point recorded although the first messages were acknowledged")
	}
	for _, m := range w.arc.views[k] {
		at, _ := api.ParseTime(m.Received)
		if !at.Before(p.Pass.Low) && !acked[MessageDocID(k.Mailbox, k.View, m.ID)] {
			t.Errorf("resume point %v covers message %s received %v that was not acknowledged", p.Pass.Low, m.ID, at)
		}
	}
}

// A stalled Elasticsearch (nothing ever answered) and a cancelled run: Run still returns.
func TestRunReturnsWhenAcknowledgementsNeverCome(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 30)
	w.sink.answer = func(index.Doc) (index.Result, bool) { return index.Result{}, true }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for w.sink.added.Load() < 8 { // MessagesInFlight: the pass is now blocked on back-pressure
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	r := w.run(t, ctx, nil)
	if len(r.results) != 1 || r.results[0].Outcome != Interrupted {
		t.Fatalf("results %+v, want one interrupted view", r.results)
	}
}

func TestRunFetchFailureBlocksCheckpoint(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 12)
	bad := w.arc.views[k][4].ID
	w.arc.fetchErr = func(id string) error {
		if id == bad {
			return &mimecast.Error{Op: "POST /api/archive/get-file", Status: 500, Retryable: true}
		}
		return nil
	}
	r := w.run(t, context.Background(), nil)
	if len(r.results) != 1 || r.results[0].Outcome != Blocked || r.results[0].Failed != 1 {
		t.Fatalf("results %+v, want one blocked view with one failure", r.results)
	}
	if r.totals.FetchFailed != 1 {
		t.Errorf("fetch failures %d, want 1", r.totals.FetchFailed)
	}
	p, _, _ := w.store.Position(k)
	if !p.Token.IsZero() {
		t.Errorf("token moved past a failed message")
	}
	// The next run retries it.
	w.arc.fetchErr = nil
	r = w.run(t, context.Background(), nil)
	if r.results[0].Outcome != Complete || !w.idx.ids(index.Messages)[MessageDocID(k.Mailbox, k.View, bad)] {
		t.Errorf("retry: %+v", r.results)
	}
}

func TestRunPermanentRejectionIsRecorded(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 6)
	bad := MessageDocID(k.Mailbox, k.View, w.arc.views[k][2].ID)
	w.sink.answer = func(d index.Doc) (index.Result, bool) {
		if d.ID == bad {
			return index.Result{Err: errors.New("mapper_parsing_exception"), Permanent: true, Status: 400, Reason: "mapper_parsing_exception"}, false
		}
		return index.Result{}, false
	}
	r := w.run(t, context.Background(), nil)
	if r.results[0].Outcome != Blocked {
		t.Fatalf("outcome %v, want blocked", r.results[0].Outcome)
	}
	fs, _ := w.store.Failures(&k)
	if len(fs) != 1 || fs[0].DocID != bad || fs[0].Status != 400 {
		t.Errorf("recorded failures %+v, want the rejected document", fs)
	}
	if r.totals.DocsFailed != 1 || r.totals.NotIndexed != 0 {
		t.Errorf("docs failed %d, not indexed %d; want 1, 0", r.totals.DocsFailed, r.totals.NotIndexed)
	}
}

func TestRunStopsWhenElasticsearchUnreachable(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 200)
	w.mailbox("b@example.com", 200)
	w.sink.answer = func(index.Doc) (index.Result, bool) {
		return index.Result{Err: errors.New("bulk request failed: connection refused")}, false
	}
	r := w.run(t, context.Background(), nil)
	if !errors.Is(r.err, ErrIndexUnreachable) || !strings.Contains(r.err.Error(), "Elasticsearch unreachable") {
		t.Fatalf("Run error %v, want ErrIndexUnreachable", r.err)
	}
	if got := w.arc.fetches.Load(); got >= 400 {
		t.Errorf("fetched %d of 400 messages after Elasticsearch became unreachable", got)
	}
	if r.totals.DocsFailed != 0 || r.totals.NotIndexed == 0 {
		t.Errorf("docs failed %d, not indexed %d; want 0 rejected and some not indexed", r.totals.DocsFailed, r.totals.NotIndexed)
	}
	for _, v := range r.results {
		if v.Outcome == Complete {
			t.Errorf("%s completed", v.Mailbox)
		}
	}
}

func TestRunStopsOnForbiddenForEveryMessage(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 100)
	w.mailbox("b@example.com", 100)
	perm := "Archive | Search Content View"
	w.arc.fetchErr = func(string) error {
		return &mimecast.Error{Op: "POST /api/archive/get-file", Status: http.StatusForbidden, Permission: perm}
	}
	r := w.run(t, context.Background(), nil)
	if !errors.Is(r.err, ErrForbidden) || !strings.Contains(r.err.Error(), perm) {
		t.Fatalf("Run error %v, want ErrForbidden naming %q", r.err, perm)
	}
	if got := w.arc.fetches.Load(); got > 20 {
		t.Errorf("%d fetches after every one was refused", got)
	}
}

// Listing works and pages keep coming, but get-file is refused: listing successes do not hide
// the streak of another endpoint.
func TestRunStopsOnForbiddenDownloadsAmidListing(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 100)
	w.mailbox("b@example.com", 100)
	w.arc.fileErr = func(string) error {
		return &mimecast.Error{Op: "POST /api/archive/get-file", Status: http.StatusForbidden, Permission: "Archive | Search Content View"}
	}
	r := w.run(t, context.Background(), func(o *Options) { o.PageSize = 1 })
	if !errors.Is(r.err, ErrForbidden) || !strings.Contains(r.err.Error(), "get-file") {
		t.Fatalf("Run error %v, want ErrForbidden naming get-file", r.err)
	}
	if got := w.arc.fetches.Load(); got > 20 {
		t.Errorf("%d fetches after every download was refused", got)
	}
}

func TestRunSingleForbiddenAmongSuccessesFailsOnlyThatMessage(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 30)
	bad := w.arc.views[k][10].ID
	w.arc.fetchErr = func(id string) error {
		if id == bad {
			return &mimecast.Error{Status: http.StatusForbidden, Permission: "x"}
		}
		return nil
	}
	r := w.run(t, context.Background(), nil)
	if r.err != nil || r.results[0].Outcome != Blocked || r.results[0].Failed != 1 {
		t.Fatalf("err %v, results %+v; want one blocked view", r.err, r.results)
	}
}

// A delta token in the future (a flipped byte: 2096) loses no message.
func TestRunFutureTokenLosesNothing(t *testing.T) {
	for _, lastRun := range []time.Time{{}, testNow.Add(-3 * time.Hour)} {
		w := newWorld()
		k := w.mailbox("a@example.com", 40) // received testNow-1h and older
		w.store.pos[k] = state.Position{Token: time.Date(2096, 1, 1, 0, 0, 0, 0, time.UTC), LastRun: lastRun, Generation: 1}
		r := w.run(t, context.Background(), nil)
		if r.results[0].Outcome != Complete {
			t.Fatalf("lastRun %v: %+v", lastRun, r.results)
		}
		got := w.idx.ids(index.Messages)
		for _, id := range w.messageIDs(k) {
			if !got[id] {
				t.Errorf("lastRun %v: message %s lost behind a future token", lastRun, id)
			}
		}
		if p, _, _ := w.store.Position(k); !p.Token.Equal(testNow) {
			t.Errorf("token %v, want %v", p.Token, testNow)
		}
	}
}

func TestRunInvalidListedMessageIsRecordedAndRetried(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 5)
	w.arc.views[k][1].ID = ""
	w.arc.views[k][3].Received = "yesterday"
	r := w.run(t, context.Background(), nil)
	if r.results[0].Outcome != Blocked || r.totals.InvalidListed != 2 {
		t.Fatalf("outcome %v, invalid %d; want blocked, 2", r.results[0].Outcome, r.totals.InvalidListed)
	}
	fs, _ := w.store.Failures(&k)
	if len(fs) != 2 {
		t.Fatalf("recorded failures %+v, want 2", fs)
	}
	for _, f := range fs {
		if f.Reason == "" {
			t.Errorf("failure without a reason: %+v", f)
		}
	}
	if p, _, _ := w.store.Position(k); !p.Token.IsZero() {
		t.Errorf("token moved past invalid messages")
	}
	if got := len(w.idx.ids(index.Messages)); got != 3 {
		t.Errorf("%d messages indexed, want the 3 valid ones", got)
	}
}

func TestRunFullPassSweepsWhatIsGone(t *testing.T) {
	w := newWorld()
	k := w.mailbox("a@example.com", 10)
	w.run(t, context.Background(), nil)
	gone := MessageDocID(k.Mailbox, k.View, w.arc.views[k][0].ID)
	w.arc.views[k] = w.arc.views[k][1:] // deleted upstream
	r := w.run(t, context.Background(), func(o *Options) { o.Full = true })
	if r.results[0].Outcome != Complete || r.results[0].Deleted != 1 {
		t.Fatalf("full pass: %+v", r.results)
	}
	if got := w.idx.ids(index.Messages); got[gone] || len(got) != 9 {
		t.Errorf("after the sweep: %d messages, gone one present %v", len(got), got[gone])
	}
}

// Removal sees documents written just before it (not yet refreshed), and drops a mailbox's
// state only when its documents are gone.
func TestRemoveMailboxesSeesUnrefreshedDocuments(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 8)
	w.mailbox("b@example.com", 8)
	w.run(t, context.Background(), nil) // nothing refreshes: the fake keeps them unsearchable
	n, docs, err := RemoveMailboxes(context.Background(), w.idx, w.store, []string{"a@example.com"}, 2)
	if err != nil || n != 1 || docs != 8 {
		t.Fatalf("removed %d mailboxes, %d documents, err %v; want 1, 8, nil", n, docs, err)
	}
	for id := range w.idx.ids(index.Messages) {
		if w.idx.docs[id].mailbox == "a@example.com" {
			t.Errorf("document %s of the removed mailbox remains", id)
		}
	}
	if len(w.idx.ids(index.Messages)) != 8 {
		t.Errorf("the other mailbox lost documents")
	}
	if ms, _ := w.store.Mailboxes(); len(ms) != 1 || ms[0] != "b@example.com" {
		t.Errorf("state mailboxes %v", ms)
	}
}

// leakyIndex deletes nothing: removal must then keep the mailbox's state.
type leakyIndex struct{ *fakeIndex }

func (leakyIndex) DeleteWhere(context.Context, index.Kind, index.Filter) (int64, error) {
	return 0, nil
}

func TestRemoveMailboxesKeepsStateWhenDocumentsRemain(t *testing.T) {
	w := newWorld()
	w.mailbox("a@example.com", 3)
	w.run(t, context.Background(), nil)
	n, _, err := RemoveMailboxes(context.Background(), leakyIndex{w.idx}, w.store, []string{"a@example.com"}, 1)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "remain") {
		t.Fatalf("removed %d, err %v; want 0 and an error saying documents remain", n, err)
	}
	if len(w.store.deleted) != 0 {
		t.Errorf("state of %v dropped although its documents remain", w.store.deleted)
	}
}

func TestRunNewDoesNotStartGoroutinesAndRunsOnce(t *testing.T) {
	w := newWorld()
	c := New(w.arc, w.idx, w.sink, w.store, w.options(nil))
	if _, err := c.Run(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(context.Background(), nil, nil); err == nil {
		t.Error("second Run accepted")
	}
}
