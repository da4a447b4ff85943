package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Fakes at the poller's own interfaces: no network, no Elasticsearch, no bbolt.

// rec is a fake record: {"id","t","v"}; fakeNormalize turns it into an Alert.
type rec struct {
	ID string    `json:"id"`
	T  time.Time `json:"t"`
	V  string    `json:"v,omitempty"`
	H  string    `json:"h,omitempty"` // attachment SHA-256: the alert joins that group
}

func raw(r rec) json.RawMessage {
	b, _ := json.Marshal(r)
	return b
}

func fakeNormalize(src Source, b json.RawMessage) (Alert, error) {
	var r rec
	if err := json.Unmarshal(b, &r); err != nil {
		return Alert{}, err
	}
	if r.ID == "" || r.T.IsZero() {
		return Alert{}, errors.New("no id or time")
	}
	a := Alert{Source: src, ID: r.ID, Time: r.T, Verdict: r.V}
	if r.H != "" {
		a.Files = []File{{Name: "f.bin", SHA256: r.H}}
	}
	return a, nil
}

// keepAll keeps every alert except those with verdict "low".
type keepAll struct{}

func (keepAll) Decide(a *Alert) Decision {
	if a.Verdict == "low" {
		return Decision{Reason: "low"}
	}
	return Decision{Keep: true}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// fakeLogs serves time-window pages of records per kind, oldest first, with offset tokens.
type fakeLogs struct {
	mu        sync.Mutex
	records   map[mimecast.LogKind][]rec
	forbidden map[mimecast.LogKind]bool
	// failAt makes the call with this page token fail (once) with err.
	failAt  map[string]error
	queries []mimecast.LogQuery
	// block makes every call wait for its context; blockKind only those of a kind.
	block     bool
	blockKind map[mimecast.LogKind]bool
	// empties inserts an empty page with a next token before this offset.
	emptyAt map[int]bool
	// loop makes the token after the third page the first page's again (A → B → A).
	loop bool
	// overstate is added to every page's stated total.
	overstate int
	// onCall, when set, runs at the start of every call (e.g. to move a fake clock).
	onCall func()
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{records: map[mimecast.LogKind][]rec{}, forbidden: map[mimecast.LogKind]bool{}, failAt: map[string]error{}, emptyAt: map[int]bool{}}
}

func (f *fakeLogs) add(k mimecast.LogKind, rs ...rec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[k] = append(f.records[k], rs...)
}

func (f *fakeLogs) SecurityLogs(ctx context.Context, k mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	f.mu.Lock()
	block := f.block || f.blockKind[k]
	f.queries = append(f.queries, q)
	onCall := f.onCall
	f.mu.Unlock()
	if onCall != nil {
		onCall()
	}
	if block {
		<-ctx.Done()
		return mimecast.Page{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forbidden[k] {
		return mimecast.Page{}, &mimecast.Error{Op: "POST /api/" + string(k), Status: 403, Code: "app_forbidden", Permission: "Monitoring | " + string(k) + " | Read"}
	}
	if err, ok := f.failAt[q.PageToken]; ok {
		delete(f.failAt, q.PageToken)
		return mimecast.Page{}, err
	}
	if !q.OldestFirst {
		return mimecast.Page{}, errors.New("fake: asked newest first")
	}
	var in []rec
	for _, r := range f.records[k] {
		if !r.T.Before(q.From) && !r.T.After(q.To) {
			in = append(in, r)
		}
	}
	slices.SortStableFunc(in, func(a, b rec) int { return a.T.Compare(b.T) })
	off := 0
	if q.PageToken != "" {
		n, empty, err := parseToken(q.PageToken)
		if err != nil {
			return mimecast.Page{}, &mimecast.Error{Op: "fake", Status: 400, Code: "bad_token"}
		}
		off = n
		if f.emptyAt[off] && !empty {
			return mimecast.Page{Next: fmt.Sprintf("%d:e", off), Total: -1}, nil
		}
	}
	end := min(off+q.PageSize, len(in))
	p := mimecast.Page{Total: len(in) + f.overstate}
	for _, r := range in[off:end] {
		p.Records = append(p.Records, raw(r))
	}
	if end < len(in) {
		p.Next = strconv.Itoa(end)
		if f.loop && end >= 3*q.PageSize {
			p.Next = strconv.Itoa(q.PageSize)
		}
	}
	p.CaughtUp = p.Next == ""
	return p, nil
}

func parseToken(s string) (int, bool, error) {
	empty := false
	if len(s) > 2 && s[len(s)-2:] == ":e" {
		s, empty = s[:len(s)-2], true
	}
	n, err := strconv.Atoi(s)
	return n, empty, err
}

func (f *fakeLogs) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		out = append(out, q.PageToken)
	}
	return out
}

// fakeSink stores documents by kind and id with create semantics, and acknowledges them
// either at once (from another goroutine) or when the test says so.
type fakeSink struct {
	mu      sync.Mutex
	manual  bool
	docs    map[string]index.Doc // kind/id → first doc
	writes  map[string]int       // kind/id → times acknowledged
	waiting []pendingDoc
	// fail makes the acknowledgement of these alert ids fail (retryable) once.
	fail map[string]bool
	// refuse makes Elasticsearch refuse these alert ids for good (a mapping conflict).
	refuse map[string]bool
	added  chan struct{}
	wg     sync.WaitGroup
	// refuseAfter > 0 makes Add refuse every document after that many, as a closed writer
	// or an ended context does.
	refuseAfter, accepted int
}

type pendingDoc struct {
	d    index.Doc
	done func(index.Result)
}

func newFakeSink(manual bool) *fakeSink {
	return &fakeSink{manual: manual, docs: map[string]index.Doc{}, writes: map[string]int{}, fail: map[string]bool{}, refuse: map[string]bool{}, added: make(chan struct{}, 1<<16)}
}

func key(d index.Doc) string { return d.Kind.String() + "/" + d.ID }

func (s *fakeSink) Add(ctx context.Context, d index.Doc, done func(index.Result)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.refuseAfter > 0 && s.accepted >= s.refuseAfter {
		s.mu.Unlock()
		return context.Canceled
	}
	s.accepted++
	manual := s.manual
	if manual {
		s.waiting = append(s.waiting, pendingDoc{d, done})
	}
	s.mu.Unlock()
	s.added <- struct{}{}
	if !manual {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ack(d, done)
		}()
	}
	return nil
}

func (s *fakeSink) ack(d index.Doc, done func(index.Result)) {
	s.mu.Lock()
	k := key(d)
	if s.fail[d.ID] {
		delete(s.fail, d.ID)
		s.mu.Unlock()
		done(index.Result{Err: errors.New("fake: bulk request failed"), Status: 0})
		return
	}
	if s.refuse[d.ID] {
		s.mu.Unlock()
		done(index.Result{Err: errors.New("fake: mapper_parsing_exception"), Status: 400, Permanent: true})
		return
	}
	_, existed := s.docs[k]
	if !existed || d.Op == index.OpIndex {
		s.docs[k] = d
	}
	s.writes[k]++
	s.mu.Unlock()
	done(index.Result{Status: 201, Existed: existed && d.Op == index.OpCreate})
}

// ackAll acknowledges every waiting document.
func (s *fakeSink) ackAll() {
	s.mu.Lock()
	w := s.waiting
	s.waiting = nil
	s.mu.Unlock()
	for _, p := range w {
		s.ack(p.d, p.done)
	}
}

// waitAdds blocks until n more documents were added.
func (s *fakeSink) waitAdds(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.added:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d documents were added", n)
		}
	}
}

// alertIDs returns the ids of the alerts stored, sorted.
func (s *fakeSink) alertIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.docs {
		if d.Kind == AlertsKind {
			out = append(out, d.ID)
		}
	}
	slices.Sort(out)
	return out
}

// fakeCursors is an in-memory CursorStore that keeps every write.
type fakeCursors struct {
	mu      sync.Mutex
	m       map[string]string
	history []map[string]string
}

func newFakeCursors() *fakeCursors { return &fakeCursors{m: map[string]string{}} }

func (f *fakeCursors) Cursor(name string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[name]
	return v, ok, nil
}

func (f *fakeCursors) SetCursors(u map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range u {
		f.m[k] = v
	}
	f.history = append(f.history, u)
	return nil
}

func (f *fakeCursors) get(t *testing.T, name string) cursor {
	t.Helper()
	v, ok, _ := f.Cursor(name)
	if !ok {
		return cursor{}
	}
	c, err := decodeCursor(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeSIEM serves batch pages of files and stream pages.
type fakeSIEM struct {
	mu sync.Mutex
	// pages of batch files by type, in order; token i+1 reads page i+1.
	pages map[string][][]fakeFile
	// reads counts downloads per file name.
	reads   map[string]int
	batchQs []mimecast.SIEMBatchQuery
	// stream pages in order; token i reads page i.
	stream   [][]rec
	streamQs []mimecast.SIEMStreamQuery
	// streamLoop: the token after the last stream page is "1" again, never caught up.
	streamLoop bool
}

type fakeFile struct {
	name    string
	recs    []rec
	corrupt bool // malformed after its records
	expired bool
	// expiredOnce: the first download is refused as expired, later ones work.
	expiredOnce bool
}

func (f *fakeSIEM) SIEMBatch(ctx context.Context, q mimecast.SIEMBatchQuery) (mimecast.SIEMBatchPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batchQs = append(f.batchQs, q)
	i := 0
	if q.NextPage != "" {
		n, err := strconv.Atoi(q.NextPage)
		if err != nil {
			return mimecast.SIEMBatchPage{}, &mimecast.Error{Status: 400}
		}
		i = n
	}
	pages := f.pages[q.Type]
	if i >= len(pages) {
		return mimecast.SIEMBatchPage{Next: strconv.Itoa(i), CaughtUp: true}, nil
	}
	var out mimecast.SIEMBatchPage
	for _, ff := range pages[i] {
		out.Files = append(out.Files, mimecast.SIEMFile{URL: "https://files.example/" + ff.name})
	}
	out.Next = strconv.Itoa(i + 1)
	out.CaughtUp = i+1 >= len(pages)
	return out, nil
}

func (f *fakeSIEM) SIEMFileEvents(ctx context.Context, file mimecast.SIEMFile, fn func(json.RawMessage) error) error {
	f.mu.Lock()
	var ff fakeFile
	for _, pages := range f.pages {
		for _, p := range pages {
			for _, x := range p {
				if "https://files.example/"+x.name == file.URL {
					ff = x
				}
			}
		}
	}
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[ff.name]++
	n := f.reads[ff.name]
	f.mu.Unlock()
	if ff.expired || (ff.expiredOnce && n == 1) {
		return fmt.Errorf("fake: %w", mimecast.ErrExpiredFile)
	}
	for _, r := range ff.recs {
		if err := fn(raw(r)); err != nil {
			return err
		}
	}
	if ff.corrupt {
		return fmt.Errorf("fake: line 3: %w", mimecast.ErrMalformedFile)
	}
	return nil
}

func (f *fakeSIEM) SIEMEvents(ctx context.Context, q mimecast.SIEMStreamQuery) (mimecast.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streamQs = append(f.streamQs, q)
	i := 0
	if q.NextPage != "" {
		i, _ = strconv.Atoi(q.NextPage)
	}
	if i >= len(f.stream) {
		return mimecast.Page{Next: strconv.Itoa(i), CaughtUp: true, Total: -1}, nil
	}
	var p mimecast.Page
	for _, r := range f.stream[i] {
		p.Records = append(p.Records, raw(r))
	}
	p.Next = strconv.Itoa(i + 1)
	if f.streamLoop && i+1 == len(f.stream) {
		p.Next = "1"
	}
	p.Total = -1
	return p, nil
}

// fakeGroups is an in-memory GroupStore; failing makes every write fail.
type fakeGroups struct {
	mu      sync.Mutex
	docs    map[string][]byte
	failing bool
	reads   int // GetGroups calls
}

func (g *fakeGroups) GetGroups(ctx context.Context, ids []string) (map[string]StoredGroup, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads++
	out := map[string]StoredGroup{}
	for _, id := range ids {
		if d, ok := g.docs[id]; ok {
			out[id] = StoredGroup{Doc: d, Version: GroupVersion{SeqNo: int64(len(d))}}
		}
	}
	return out, nil
}

func (g *fakeGroups) PutGroups(ctx context.Context, ws []GroupWrite) ([]error, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failing {
		return nil, errors.New("fake: cluster unavailable")
	}
	if g.docs == nil {
		g.docs = map[string][]byte{}
	}
	for _, w := range ws {
		g.docs[w.ID] = w.Doc
	}
	return make([]error, len(ws)), nil
}

// setup builds a Poller over fakes.
type fixture struct {
	logs    *fakeLogs
	siem    *fakeSIEM
	sink    *fakeSink
	cursors *fakeCursors
	clock   *clock
	groups  *fakeGroups
}

func newFixture(manual bool) *fixture {
	return &fixture{logs: newFakeLogs(), siem: &fakeSIEM{pages: map[string][][]fakeFile{}}, sink: newFakeSink(manual),
		cursors: newFakeCursors(), clock: &clock{t: t0}, groups: &fakeGroups{}}
}

func (f *fixture) poller(t *testing.T, o Options) *Poller {
	t.Helper()
	o.Now = f.clock.now
	o.Normalize = fakeNormalize
	o.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	p, err := New(Deps{Logs: f.logs, Threats: nil, SIEM: f.siem, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}, Groups: f.groups}, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
