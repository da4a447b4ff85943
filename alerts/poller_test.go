package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

func recs(prefix string, n int, start time.Time, step time.Duration) []rec {
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{ID: fmt.Sprintf("%s%03d", prefix, i), T: start.Add(time.Duration(i) * step)}
	}
	return out
}

func ids(rs []rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func one(t *testing.T, s PassSummary) SourceSummary {
	t.Helper()
	if len(s.Sources) != 1 {
		t.Fatalf("%d sources in summary, want 1", len(s.Sources))
	}
	return s.Sources[0]
}

func TestOldestFirstPagingWithTokens(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 250, at(-120), 20*time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.clock.set(at(0))
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 100, Lookback: 3 * time.Hour})

	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.Records != 250 || s.Indexed != 250 {
		t.Fatalf("summary = %+v; want 250 records indexed", s)
	}
	if got, want := f.logs.tokens(), []string{"", "100", "200"}; !slices.Equal(got, want) {
		t.Errorf("page tokens asked = %q, want %q", got, want)
	}
	if got := f.sink.alertIDs(); !slices.Equal(got, ids(all)) {
		t.Errorf("indexed %d alerts, want the 250 served", len(got))
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.Equal(at(0)) || !c.From.IsZero() || c.Token != "" {
		t.Errorf("cursor after a complete window = %+v; want since = the window's end %s", c, at(0))
	}
	if !c.Latest.Equal(all[249].T) {
		t.Errorf("latest = %s, want %s", c.Latest, all[249].T)
	}
	// The first window started lookback ago.
	if q := f.logs.queries[0]; !q.From.Equal(at(-180)) || !q.To.Equal(at(0)) {
		t.Errorf("first window %s..%s, want %s..%s", q.From, q.To, at(-180), at(0))
	}
}

// The cursor stays where it was until Elasticsearch acknowledged the alerts it covers.
func TestCursorNotMovedBeforeAck(t *testing.T) {
	f := newFixture(true)
	f.logs.add(mimecast.DLPLogs, recs("a", 30, at(-30), time.Second)...)
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})

	done := make(chan PassSummary)
	go func() { done <- p.Once(context.Background()) }()
	f.sink.waitAdds(t, 30) // every page read and handed over, nothing acknowledged
	if _, ok, _ := f.cursors.Cursor(CursorName(DLP, "")); ok {
		t.Fatalf("cursor saved before any acknowledgement: %v", f.cursors.m)
	}
	f.sink.ackAll()
	s := <-done
	if s.Sources[0].Indexed != 30 {
		t.Fatalf("summary %+v", s.Sources[0])
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) {
		t.Errorf("cursor after acknowledgement = %+v, want since %s", c, t0)
	}
}

// A document that failed (retryable) holds the cursor before its page; the next pass
// resumes with that page's token and completes.
func TestFailedAckKeepsCursor(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 30, at(-30), time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.sink.fail["a015"] = true // on the second page
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})

	s := one(t, p.Once(context.Background()))
	if s.Error == "" {
		t.Fatalf("a failed acknowledgement went unreported: %+v", s)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if c.Token != "10" || !c.Since.IsZero() || c.From.IsZero() {
		t.Fatalf("cursor after a failure on page 2 = %+v; want the window with the token of page 2 (\"10\")", c)
	}
	if c.LastError == "" {
		t.Error("the failure is not recorded in the cursor's status")
	}

	f.logs.queries = nil
	f.clock.set(at(5))
	s = one(t, p.Once(context.Background()))
	if s.Error != "" {
		t.Fatalf("second pass: %+v", s)
	}
	if q := f.logs.queries[0]; q.PageToken != "10" || !q.To.Equal(t0) {
		t.Errorf("second pass began with token %q window end %s; want the saved page and window", q.PageToken, q.To)
	}
	if got := f.sink.alertIDs(); !slices.Equal(got, ids(all)) {
		t.Errorf("after the retry %d alerts indexed, want 30", len(got))
	}
	// The resumed window completed, the pass went on to now (finding 13).
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(at(5)) {
		t.Errorf("cursor = %+v; want since the second pass's start %s", c, at(5))
	}
}

// An empty page with a next token does not end the window, and a failure after it leaves
// the cursor at that token, never at the window's end.
func TestEmptyPageDoesNotMoveCursor(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, recs("a", 20, at(-30), time.Second)...)
	f.logs.emptyAt[10] = true
	f.logs.failAt["10:e"] = &mimecast.Error{Op: "fake", Status: 503, Retryable: true}
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})

	s := one(t, p.Once(context.Background()))
	if s.Error == "" {
		t.Fatalf("want the page error reported, got %+v", s)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.IsZero() || c.Token != "10:e" {
		t.Fatalf("cursor = %+v; want the token after the empty page, not the window's end", c)
	}
	s = one(t, p.Once(context.Background()))
	if s.Error != "" || len(f.sink.alertIDs()) != 20 {
		t.Fatalf("resumed pass: %+v, %d alerts", s, len(f.sink.alertIDs()))
	}

	// A source that fails on its first page leaves a cursor that had none without a position.
	g := newFixture(false)
	g.logs.failAt[""] = &mimecast.Error{Op: "fake", Status: 503, Retryable: true}
	q := g.poller(t, Options{Sources: []Source{DLP}})
	one(t, q.Once(context.Background()))
	if c := g.cursors.get(t, CursorName(DLP, "")); !c.Since.IsZero() || !c.From.IsZero() {
		t.Errorf("cursor after a failed first page = %+v; want no position", c)
	}
}

// Late records inside the overlap are read on the next pass; records read twice are
// indexed once.
func TestOverlapRereadDedupes(t *testing.T) {
	f := newFixture(false)
	first := recs("a", 5, at(-20), 4*time.Minute)
	f.logs.add(mimecast.AttachmentLogs, first...)
	p := f.poller(t, Options{Sources: []Source{AttachmentProtection}, Overlap: 10 * time.Minute})
	one(t, p.Once(context.Background()))

	// Recorded late: its time is before the first pass's end.
	late := rec{ID: "late", T: at(-3)}
	f.logs.add(mimecast.AttachmentLogs, late, rec{ID: "new", T: at(30)})
	f.clock.set(at(60))
	f.logs.queries = nil
	s := one(t, p.Once(context.Background()))
	if q := f.logs.queries[0]; !q.From.Equal(at(-10)) || !q.To.Equal(at(60)) {
		t.Errorf("second window %s..%s, want the overlap %s..%s", q.From, q.To, at(-10), at(60))
	}
	want := append(ids(first), "late", "new")
	slices.Sort(want)
	if got := f.sink.alertIDs(); !slices.Equal(got, want) {
		t.Errorf("alerts = %v, want %v", got, want)
	}
	// a003 and a004 (8 and 4 minutes before the first end) are in the overlap: read again, already there.
	if s.Indexed != 2 || s.Existing != 2 {
		t.Errorf("second pass indexed %d new and %d existing; want 2 and 2", s.Indexed, s.Existing)
	}
}

func TestMalformedRecordFailsAlone(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, rec{ID: "a", T: at(-5)}, rec{ID: "", T: at(-4)}, rec{ID: "low", T: at(-3), V: "low"}, rec{ID: "b", T: at(-2)})
	p := f.poller(t, Options{Sources: []Source{DLP}})
	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.Malformed != 1 || s.Indexed != 2 || s.Excluded["low"] != 1 {
		t.Errorf("summary = %+v; want 1 malformed, 1 excluded low, 2 indexed, no error", s)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) {
		t.Errorf("a malformed record held the cursor: %+v", c)
	}
}

// A 403 on one source marks it and leaves the others working.
func TestForbiddenSourceIsolated(t *testing.T) {
	f := newFixture(false)
	f.logs.forbidden[mimecast.AttachmentLogs] = true
	f.logs.add(mimecast.DLPLogs, recs("d", 3, at(-10), time.Minute)...)
	p := f.poller(t, Options{Sources: []Source{AttachmentProtection, DLP}})
	sum := p.Once(context.Background())
	att, dlp := sum.Sources[0], sum.Sources[1]
	if !att.Forbidden || att.Permission == "" || att.Error != "not permitted for this API application" {
		t.Errorf("forbidden source summary = %+v", att)
	}
	if dlp.Error != "" || dlp.Indexed != 3 {
		t.Errorf("other source = %+v; want 3 indexed", dlp)
	}
	if sum.Failed() {
		t.Error("a 403 alone counts as a failed pass")
	}
	if c := f.cursors.get(t, CursorName(AttachmentProtection, "")); !c.Forbidden || c.Permission == "" {
		t.Errorf("forbidden not recorded in the cursor's status: %+v", c)
	}
}

// A saved page token the source refuses restarts its window instead of failing forever.
func TestRefusedTokenRestartsWindow(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 5, at(-10), time.Minute)
	f.logs.add(mimecast.DLPLogs, all...)
	saved := cursor{From: at(-60), To: at(-1), Token: "garbage"}
	_ = f.cursors.SetCursors(map[string]string{CursorName(DLP, ""): saved.encode()})
	p := f.poller(t, Options{Sources: []Source{DLP}})
	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.Indexed != 5 {
		t.Fatalf("summary = %+v", s)
	}
	// The saved window completed, and the pass went on to now.
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) {
		t.Errorf("cursor = %+v; want since now (%s)", c, t0)
	}
}

// A batch file that cannot be read is parked, not passed: read again on the next passes,
// and skipped for good (counted) only at its third failed read. The cursor never waits
// for it.
func TestSIEMBatchUnreadableFileParkedThenSkipped(t *testing.T) {
	f := newFixture(false)
	f.siem.pages["av"] = [][]fakeFile{
		{{name: "f1", recs: recs("x", 3, at(-50), time.Second)}, {name: "f2", recs: recs("y", 2, at(-40), time.Second), corrupt: true}},
		{{name: "f3", expired: true}, {name: "f4", recs: recs("z", 2, at(-30), time.Second)}},
	}
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}})
	sum := p.Once(context.Background())
	s := one(t, sum)
	if s.FilesPending != 2 || s.FilesSkipped != 0 || s.Indexed != 7 || !sum.Failed() {
		t.Fatalf("summary = %+v; want 2 files parked, 7 alerts (the good records of the malformed file too), a failed pass", s)
	}
	c := f.cursors.get(t, CursorName(SIEM, "batch/av"))
	if c.Token != "2" || len(c.PendingFiles) != 2 {
		t.Fatalf("batch cursor = %+v, want the token after the last page and 2 files parked", c)
	}
	if s := one(t, p.Once(context.Background())); s.FilesPending != 2 || s.FilesSkipped != 0 {
		t.Fatalf("second pass = %+v; want both still parked", s)
	}
	sum = p.Once(context.Background())
	if s := one(t, sum); s.FilesPending != 0 || s.FilesSkipped != 2 || sum.Failed() {
		t.Fatalf("third pass = %+v; want both skipped for good", s)
	}
	if c := f.cursors.get(t, CursorName(SIEM, "batch/av")); c.Token != "2" || len(c.PendingFiles) != 0 {
		t.Errorf("cursor after the skip = %+v", c)
	}
	one(t, p.Once(context.Background()))
	// f2 read in three passes; f3 twice in the first (once more with the page asked again
	// for fresh URLs), once in each of the next two; never after.
	for name, n := range f.siem.reads {
		if want := map[string]int{"f2": 3, "f3": 4}[name]; want != 0 && n != want || want == 0 && n != 1 {
			t.Errorf("file %s read %d times", name, n)
		}
	}
}

// A parked file that can be read on a later pass gets its alerts indexed.
func TestSIEMBatchParkedFileRecovers(t *testing.T) {
	f := newFixture(false)
	f.siem.pages["av"] = [][]fakeFile{{{name: "f1", recs: recs("x", 2, at(-50), time.Second)}, {name: "f2", recs: recs("y", 3, at(-40), time.Second), expired: true}}}
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}})
	if s := one(t, p.Once(context.Background())); s.FilesPending != 1 || s.Indexed != 2 {
		t.Fatalf("first pass = %+v", s)
	}
	f.siem.mu.Lock()
	f.siem.pages["av"][0][1].expired = false
	f.siem.mu.Unlock()
	sum := p.Once(context.Background())
	if s := one(t, sum); s.FilesPending != 0 || s.FilesSkipped != 0 || s.Indexed != 3 || sum.Failed() {
		t.Fatalf("second pass = %+v; want the file's 3 alerts", s)
	}
	if q := f.siem.batchQs[len(f.siem.batchQs)-2]; q.NextPage != "" || q.Start.IsZero() {
		t.Errorf("the parked file's page was asked as %+v; want the first page again, by its start date", q)
	}
}

func TestSIEMStreamDropsRepeats(t *testing.T) {
	f := newFixture(false)
	p1 := recs("s", 4, at(-30), time.Second)
	p2 := append([]rec{p1[2], p1[3]}, recs("t", 2, at(-20), time.Second)...)
	f.siem.stream = [][]rec{p1, p2}
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMStream: true, SIEMTypes: []string{"av"}, Lookback: 72 * time.Hour})
	s := one(t, p.Once(context.Background()))
	if s.Repeats != 2 || s.Indexed != 6 || s.Existing != 0 {
		t.Errorf("summary = %+v; want 2 repeats dropped and 6 alerts", s)
	}
	if c := f.cursors.get(t, CursorName(SIEM, "stream")); c.Token != "2" {
		t.Errorf("stream cursor = %+v, want the last @nextPage", c)
	}
	// The stream keeps 24 hours: a longer lookback is clamped.
	if q := f.siem.streamQs[0]; q.Start.Before(at(-24 * 60)) {
		t.Errorf("stream start %s is older than the 24 hours the stream keeps", q.Start)
	}
}

// Stopping a pass returns promptly, with the source's summary saying so.
func TestCancellationReturnsPromptly(t *testing.T) {
	f := newFixture(false)
	f.logs.block = true
	p := f.poller(t, Options{Sources: []Source{DLP, URLProtection}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan PassSummary)
	go func() { done <- p.Once(ctx) }()
	cancel()
	select {
	case s := <-done:
		for _, src := range s.Sources {
			if src.Error != "interrupted" {
				t.Errorf("%s: error %q, want interrupted", src.Source, src.Error)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Once did not return after cancellation")
	}

	// Run returns too, between passes.
	g := newFixture(false)
	q := g.poller(t, Options{Sources: []Source{DLP}, PollInterval: time.Hour})
	ctx, cancel = context.WithCancel(context.Background())
	passes := make(chan PassSummary, 1)
	errc := make(chan error)
	go func() { errc <- q.Run(ctx, func(s PassSummary) { passes <- s }) }()
	<-passes
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Run returned nil after cancellation")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}

// Group updates are part of what a cursor covers: a failed one holds it.
func TestGroupFailureHoldsCursor(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.AttachmentLogs, rec{ID: "a", T: at(-5), H: "ab"}, rec{ID: "b", T: at(-4), H: "ab"})
	f.groups.failing = true
	p := f.poller(t, Options{Sources: []Source{AttachmentProtection}})
	if s := one(t, p.Once(context.Background())); s.Error == "" {
		t.Fatalf("group failure unreported: %+v", s)
	}
	if c := f.cursors.get(t, CursorName(AttachmentProtection, "")); !c.Since.IsZero() {
		t.Fatalf("cursor moved past alerts whose group was not written: %+v", c)
	}
	f.groups.failing = false
	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.Groups != 1 || len(f.groups.docs) != 1 {
		t.Errorf("second pass %+v, %d groups; want one group written", s, len(f.groups.docs))
	}
	if c := f.cursors.get(t, CursorName(AttachmentProtection, "")); !c.Since.Equal(t0) {
		t.Errorf("cursor = %+v, want since %s", c, t0)
	}
}

// A page whose records could not all be handed to the sink (a stop in the middle of it)
// holds the cursor before that page, even though every record handed over was acknowledged.
func TestPartlyQueuedPageHoldsCursor(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 30, at(-30), time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.sink.refuseAfter = 15
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})
	if s := one(t, p.Once(context.Background())); s.Error == "" {
		t.Fatalf("refused documents unreported: %+v", s)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); c.Token != "10" {
		t.Fatalf("cursor = %+v; want the token of the page that was cut (\"10\")", c)
	}
	f.sink.refuseAfter = 0
	if s := one(t, p.Once(context.Background())); s.Error != "" {
		t.Fatal(s.Error)
	}
	if got := f.sink.alertIDs(); !slices.Equal(got, ids(all)) {
		t.Errorf("%d alerts after resuming, want 30", len(got))
	}
}

// fakeDirectory counts its walks.
type fakeDirectory struct {
	mu      sync.Mutex
	domains int
	walks   map[string]int
}

func (d *fakeDirectory) InternalDomains(ctx context.Context) ([]api.Domain, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.domains++
	return []api.Domain{{Domain: "corp.example"}}, nil
}

func (d *fakeDirectory) InternalUsers(ctx context.Context, domain string, pageSize int) ([]api.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.walks == nil {
		d.walks = map[string]int{}
	}
	d.walks[domain]++
	return []api.User{{EmailAddress: "Ann@corp.example", Name: "Ann Example"}}, nil
}

// fakeArchive counts its searches and finds one message.
type fakeArchive struct {
	mu       sync.Mutex
	searches int
}

func (a *fakeArchive) FindByTerms(ctx context.Context, k index.Kind, field string, values, fields []string, perValue int) ([]index.Hit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.searches++
	if k != index.Messages || field != index.FieldMessageID {
		return nil, fmt.Errorf("fake: unexpected lookup %v %s", k, field)
	}
	var out []index.Hit
	for _, v := range values {
		if v == "<m1@corp.example>" {
			out = append(out, index.Hit{Index: "x-messages", ID: "doc-1",
				Source: []byte(`{"mimecast":{"mailbox":"ann@corp.example"},"email":{"subject":"Invoice","message_id":"<m1@corp.example>"}}`)})
		}
	}
	return out, nil
}

// Enrichment costs one directory walk per domain however many alerts and passes, and one
// archive search per page.
func TestEnrichmentCachesAndBatches(t *testing.T) {
	dir, arch := &fakeDirectory{}, &fakeArchive{}
	clk := &clock{t: t0}
	e := newEnricher(arch, dir, nil, time.Hour, 100, clk.now, zerolog.Nop())
	page := []Alert{
		{ID: "1", Recipients: []string{"ann@corp.example"}, MessageID: "<m1@corp.example>"},
		{ID: "2", Recipients: []string{"bob@corp.example"}, MessageID: "<m2@corp.example>"},
		{ID: "3", Recipients: []string{"x@outside.example"}},
	}
	var got []Enrichment
	for range 3 {
		got = e.lookup(context.Background(), page)
	}
	if dir.walks["corp.example"] != 1 || dir.walks["outside.example"] != 0 || dir.domains != 1 {
		t.Errorf("directory walks %v, domain lists %d; want one walk of the internal domain only", dir.walks, dir.domains)
	}
	if arch.searches != 3 {
		t.Errorf("%d archive searches for 3 pages, want 3", arch.searches)
	}
	if g := got[0]; g.RecipientName != "Ann Example" || g.RecipientMailbox != "ann@corp.example" || g.RecipientDomain != "corp.example" ||
		g.ArchiveDocID != "doc-1" || g.ArchiveSubject != "Invoice" {
		t.Errorf("enrichment of a known recipient and an archived message = %+v", g)
	}
	if g := got[2]; g.RecipientName != "" || g.RecipientDomain != "outside.example" || g.ArchiveDocID != "" {
		t.Errorf("enrichment of an external recipient = %+v", g)
	}
	clk.set(t0.Add(2 * time.Hour)) // past the cache's lifetime
	e.lookup(context.Background(), page)
	if dir.walks["corp.example"] != 2 {
		t.Errorf("after the cache expired: %d walks, want 2", dir.walks["corp.example"])
	}
}

// fakeThreats serves one page of threat events and their details.
type fakeThreats struct {
	mu           sync.Mutex
	recs         []rec
	forbidDetail bool
	detailCalls  int
	// failDetail makes the details of these ids fail (as after the client's retries).
	failDetail map[string]bool
}

func (f *fakeThreats) ThreatEvents(ctx context.Context, q mimecast.ThreatQuery) (mimecast.Page, error) {
	if !q.OldestFirst {
		return mimecast.Page{}, fmt.Errorf("fake: asked newest first")
	}
	var p mimecast.Page
	for _, r := range f.recs {
		p.Records = append(p.Records, raw(r))
	}
	return p, nil
}

func (f *fakeThreats) ThreatDetails(ctx context.Context, id string) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detailCalls++
	if f.forbidDetail {
		return nil, &mimecast.Error{Op: "GET /threats/v1/events/x/details", Status: 403}
	}
	if f.failDetail[id] {
		return nil, &mimecast.Error{Op: "GET /threats/v1/events/x/details", Status: 503, Retryable: true}
	}
	return json.RawMessage(`{"subject":"details of ` + id + `"}`), nil
}

// Threat events get their details under _details; a 403 on details stops asking for them
// in the pass and the events are indexed without.
func TestThreatDetails(t *testing.T) {
	for _, forbid := range []bool{false, true} {
		f := newFixture(false)
		th := &fakeThreats{recs: recs("t", 3, at(-10), time.Minute), forbidDetail: forbid}
		var mu sync.Mutex
		withDetails := 0
		norm := func(src Source, b json.RawMessage) (Alert, error) {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(b, &m)
			if _, ok := m[threatDetailsKey]; ok {
				mu.Lock()
				withDetails++
				mu.Unlock()
			}
			return fakeNormalize(src, b)
		}
		p, err := New(Deps{Threats: th, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}},
			Options{Sources: []Source{Threats}, Now: f.clock.now, Normalize: norm, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		s := one(t, p.Once(context.Background()))
		if s.Error != "" || s.Indexed != 3 {
			t.Fatalf("forbidden details %t: %+v", forbid, s)
		}
		switch {
		case !forbid && (withDetails != 3 || th.detailCalls != 3):
			t.Errorf("%d records with details, %d calls; want 3 and 3", withDetails, th.detailCalls)
		case forbid && (withDetails != 0 || th.detailCalls != 1):
			t.Errorf("details forbidden: %d records with details, %d calls; want 0 and 1", withDetails, th.detailCalls)
		}
	}
}

// An expired URL is read again with the URL of the same page asked once more.
func TestSIEMBatchExpiredURLRefreshed(t *testing.T) {
	f := newFixture(false)
	f.siem.pages["av"] = [][]fakeFile{{{name: "f1", recs: recs("x", 2, at(-50), time.Second)}, {name: "f2", recs: recs("y", 3, at(-40), time.Second), expiredOnce: true}}}
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}})
	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.FilesSkipped != 0 || s.Indexed != 5 {
		t.Fatalf("summary = %+v; want all 5 alerts, no file skipped", s)
	}
	if n := len(f.siem.batchQs); n != 2 {
		t.Errorf("%d batch calls, want 2 (the page, then the same page for fresh URLs)", n)
	}
}
