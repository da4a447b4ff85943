package alerts

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The paging rule at the poller's own interfaces (paging.go). The HTTP variants of each
// case run end to end in e2e_test.go.

// A token that comes back (A → B → A) ends the window: the pass ends, the loop is counted
// and reported, and the cursor does not pass the window. Without the rule the pass never
// ends.
func TestPagingLoopEndsWindowWithoutPassingIt(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 60, at(-30), time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.logs.loop = true
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := one(t, p.Once(ctx))
	if s.Interrupted || s.PagesLooped != 1 || !strings.Contains(s.Error, "page tokens loop") {
		t.Fatalf("summary = %+v; want one loop, reported", s)
	}
	if got := f.logs.tokens(); !slices.Equal(got, []string{"", "10", "20"}) {
		t.Errorf("tokens asked %q; want the loop caught at its first repeat", got)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.IsZero() || c.From.IsZero() || c.Token != "20" {
		t.Errorf("cursor = %+v; want inside the window, at the page whose token looped", c)
	}
	if (PassSummary{Sources: []SourceSummary{s}}).Failed() != true {
		t.Error("a looping source does not fail the pass")
	}

	// The server mends its tokens: the window is read to its end, nothing lost.
	f.logs.loop = false
	if s := one(t, p.Once(context.Background())); s.Error != "" {
		t.Fatalf("second pass: %+v", s)
	}
	if got := f.sink.alertIDs(); !slices.Equal(got, ids(all)) {
		t.Errorf("%d alerts, want 60", len(got))
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) {
		t.Errorf("cursor = %+v, want since %s", c, t0)
	}
}

// More pages than MaxPages end the window the same way.
func TestPagingCapEndsWindow(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, recs("a", 50, at(-30), time.Second)...)
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10, MaxPages: 3})
	s := one(t, p.Once(context.Background()))
	if s.PagesLooped != 1 || !strings.Contains(s.Error, "alerts.max_pages") {
		t.Fatalf("summary = %+v; want the cap reported", s)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.IsZero() || c.From.IsZero() {
		t.Errorf("cursor = %+v; want inside the window", c)
	}
	if n := len(f.logs.tokens()); n != 3 {
		t.Errorf("%d pages asked, want 3", n)
	}
}

// A window that ends with fewer records than its pages stated is read again from its
// start, and the shortfall is counted.
func TestStatedTotalShortfallHoldsWindow(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 25, at(-30), time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.logs.overstate = 4
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})
	s := one(t, p.Once(context.Background()))
	if s.RecordsUnread != 4 || !strings.Contains(s.Error, "fewer records read") || s.Indexed != 25 {
		t.Fatalf("summary = %+v; want 4 records unread, reported, and the 25 read indexed", s)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.IsZero() || !c.From.Equal(at(-24*60)) || c.Token != "" {
		t.Fatalf("cursor = %+v; want the window, from its start", c)
	}
	f.logs.queries = nil
	f.logs.overstate = 0
	if s := one(t, p.Once(context.Background())); s.Error != "" || s.Existing != 25 {
		t.Fatalf("second pass = %+v", s)
	}
	if q := f.logs.queries[0]; q.PageToken != "" || !q.To.Equal(t0) {
		t.Errorf("second pass began at token %q, window end %s; want the same window from its start", q.PageToken, q.To)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) {
		t.Errorf("cursor = %+v, want since %s", c, t0)
	}
}

// A resumed window (from a saved token) cannot count what earlier passes read, so a total
// does not hold it.
func TestStatedTotalIgnoredOnResumedWindow(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, recs("a", 25, at(-30), time.Second)...)
	saved := cursor{From: at(-60), To: t0, Token: "10"}
	_ = f.cursors.SetCursors(map[string]string{CursorName(DLP, ""): saved.encode()})
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 10})
	if s := one(t, p.Once(context.Background())); s.Error != "" || s.RecordsUnread != 0 || s.Indexed != 15 {
		t.Fatalf("summary = %+v; want the rest of the window, no shortfall", s)
	}
}

// The SIEM stream's @nextPage coming back ends the pass with the loop counted, and the
// cursor stays at the page that asked.
func TestSIEMStreamLoopEnds(t *testing.T) {
	f := newFixture(false)
	f.siem.stream = [][]rec{recs("s", 3, at(-30), time.Second), recs("t", 3, at(-20), time.Second), recs("u", 3, at(-10), time.Second)}
	f.siem.streamLoop = true
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMStream: true, SIEMTypes: []string{"av"}})
	s := one(t, p.Once(context.Background()))
	if s.PagesLooped != 1 || s.Indexed != 9 || s.Error == "" {
		t.Fatalf("summary = %+v; want 9 alerts and the loop reported", s)
	}
	if c := f.cursors.get(t, CursorName(SIEM, "stream")); c.Token != "2" {
		t.Errorf("stream cursor = %+v; want the token of the page whose next looped", c)
	}
}
