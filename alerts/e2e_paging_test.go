package alerts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The paging rule end to end: the simulator serves each variant over HTTP, the real client
// decodes it, and the index must equal the truth (or the cursor must not pass the window).

// pagingVariants are the shapes a window may be served in; each must be read to its end.
func pagingVariants() map[string]simulator.AlertPaging {
	return map[string]simulator.AlertPaging{
		"empty pages with tokens": {EmptyPages: true},
		"nextPageToken and total": {TokenKey: "nextPageToken", TotalKey: "total", EmptyPages: true},
		"nextPage":                {TokenKey: "nextPage", TotalKey: "resultCount"},
		"next link":               {TokenKey: "next", EmptyPages: true},
		"header token":            {TokenKey: "header", TotalKey: "totalCount", EmptyPages: true},
	}
}

// Findings 1 and 2: empty middle pages carrying tokens, the threat feed as events[] with
// nextPageToken and a total, and every other token key: every window is read to its end.
func TestEndToEndPagingVariantsReadToTheEnd(t *testing.T) {
	for name, pg := range pagingVariants() {
		t.Run(name, func(t *testing.T) {
			o := seeded()
			o.ThreatsWrapper = "events"
			o.Threats = 40
			o.Paging = pg
			w := newWorld(t, o)
			w.opts = func(o *alerts.Options) { o.PageSize = 7 }
			sum := w.pass(context.Background())
			for _, s := range sum.Sources {
				if s.Error != "" || s.PagesLooped != 0 || s.RecordsUnread != 0 {
					t.Errorf("%s: %+v", s.Source, s)
				}
			}
			compare(t, w.indexed(), w.expected())
		})
	}
}

// Finding 3: tokens that cycle end the window: the pass ends, with a bounded number of
// calls, every looping source counted and failing, and no cursor past its window.
func TestEndToEndPagingLoopHoldsCursor(t *testing.T) {
	o := seeded()
	o.Paging = simulator.AlertPaging{Loop: true}
	w := newWorld(t, o)
	w.opts = func(o *alerts.Options) { o.PageSize = 3; o.SIEMStream = true }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum := w.pass(ctx)
	if !sum.Failed() {
		t.Error("a pass with looping tokens did not fail")
	}
	for _, s := range sum.Sources {
		if s.Interrupted {
			t.Fatalf("%s: the pass did not end by itself: %+v", s.Source, s)
		}
		if s.PagesLooped != 1 {
			t.Errorf("%s: %d loops counted, want 1: %+v", s.Source, s.PagesLooped, s)
		}
		if s.Source != alerts.SIEM && s.Source != alerts.SIEMCI && !strings.Contains(s.Cursor, "in window") { // token sources have no window
			t.Errorf("%s: cursor %q passed the window", s.Source, s.Cursor)
		}
	}
	if calls := w.client.Stats().Calls; calls > 100 {
		t.Errorf("%d API calls; the loops were not caught early", calls)
	}
}

// When pages state a total and fewer records were listed, the window is not passed and the
// shortfall is counted.
func TestEndToEndStatedTotalShortfall(t *testing.T) {
	o := seeded()
	o.ThreatsWrapper = "events"
	o.Paging = simulator.AlertPaging{TokenKey: "nextPageToken", TotalKey: "total", HideEvery: 7}
	w := newWorld(t, o, alerts.AttachmentProtection, alerts.Threats)
	w.opts = func(o *alerts.Options) { o.PageSize = 10 }
	sum := w.pass(context.Background())
	for _, s := range sum.Sources {
		if s.RecordsUnread == 0 || s.Error == "" || !strings.Contains(s.Cursor, "in window") {
			t.Errorf("%s: %+v; want records unread, an error and the cursor in its window", s.Source, s)
		}
	}
}

// Kill and resume with every paging variant on: the index equals the truth.
func TestEndToEndInterruptedPassesPagingVariants(t *testing.T) {
	o := seeded()
	o.ThreatsWrapper = "events"
	o.Paging = simulator.AlertPaging{TokenKey: "nextPageToken", TotalKey: "total", EmptyPages: true}
	w := newWorld(t, o)
	w.opts = func(o *alerts.Options) { o.PageSize = 7 }
	interruptThenComplete(t, w)
}

// The SIEM batch endpoint's @nextPage looping ends each event type's pass with the loop
// counted, the pass failing, and no cursor past the page whose token came back.
func TestEndToEndSIEMBatchLoop(t *testing.T) {
	o := seeded()
	o.SIEMFileEvents = 2
	o.Paging = simulator.AlertPaging{Loop: true}
	w := newWorld(t, o, alerts.SIEM)
	w.opts = func(o *alerts.Options) { o.PageSize = 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum := w.pass(ctx)
	s := sum.Sources[0]
	if s.Interrupted || s.PagesLooped == 0 || !sum.Failed() {
		t.Fatalf("summary = %+v; want loops counted and the pass failed, ended by itself", s)
	}
	if calls := w.client.Stats().Calls; calls > 200 {
		t.Errorf("%d API calls; the loops were not caught early", calls)
	}
}
