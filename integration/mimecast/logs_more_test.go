package mimecast_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// moreEnv is alertEnv with the archive access, release, threat-intel and CI SIEM logs
// seeded over the same 10 hours.
func moreEnv(t *testing.T, mod func(*simulator.Options)) (*env, *clock) {
	return alertEnv(t, func(o *simulator.Options) {
		o.Alerts.Logs = simulator.LogOptions{ArchiveSearch: 23, Search: 11, View: 13, HeldRelease: 17,
			ThreatIntelCustomer: 37, ThreatIntelGrid: 12, SIEMCI: 31, ThreatIntelPageSize: 5}
		if mod != nil {
			mod(o)
		}
	})
}

// readWindow follows a window log's tokens to the end; a repeated token ends it too, and
// is reported.
func readWindow(t *testing.T, read func(token string) (mimecast.Page, error)) (recs []string, repeated bool) {
	t.Helper()
	seen := map[string]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 200 {
			t.Fatal("paging does not end")
		}
		p, err := read(tok)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, r := range p.Records {
			recs = append(recs, string(r))
		}
		if p.CaughtUp != (p.Next == "") {
			t.Errorf("page %d: CaughtUp %v with Next %q", pages, p.CaughtUp, p.Next)
		}
		if p.Next == "" {
			return recs, false
		}
		if seen[p.Next] {
			return recs, true
		}
		seen[p.Next] = true
		tok = p.Next
	}
}

func TestWindowLogsReadEveryRecordInEveryVariant(t *testing.T) {
	variants := map[string]func(*simulator.Options){
		"documented":      nil,
		"flat data":       func(o *simulator.Options) { o.Alerts.Logs.FlatData = true },
		"empty pages":     func(o *simulator.Options) { o.Alerts.Paging.EmptyPages = true },
		"empty last page": func(o *simulator.Options) { o.EmptyLastPage = true },
		"rfc3339 times":   func(o *simulator.Options) { o.Alerts.Logs.TimeLayout = "rfc3339" },
		"offset times":    func(o *simulator.Options) { o.Alerts.Logs.TimeLayout = "offset" },
	}
	for name, mod := range variants {
		t.Run(name, func(t *testing.T) {
			e, clk := moreEnv(t, mod)
			c := e.client(t, nil)
			ctx := context.Background()
			q := mimecast.WindowQuery{Start: clk.Now().Add(-11 * time.Hour), End: clk.Now(), PageSize: 4}
			reads := map[string]func(string) (mimecast.Page, error){
				simulator.SourceArchiveSearchLogs: func(tok string) (mimecast.Page, error) {
					q := q
					q.PageToken = tok
					return c.ArchiveLogs(ctx, mimecast.ArchiveSearchLogs, q)
				},
				simulator.SourceSearchLogs: func(tok string) (mimecast.Page, error) {
					q := q
					q.PageToken = tok
					return c.ArchiveLogs(ctx, mimecast.SearchLogs, q)
				},
				simulator.SourceViewLogs: func(tok string) (mimecast.Page, error) {
					q := q
					q.PageToken = tok
					return c.ArchiveLogs(ctx, mimecast.ViewLogs, q)
				},
				simulator.SourceHeldRelease: func(tok string) (mimecast.Page, error) {
					q := q
					q.PageToken = tok
					return c.HeldReleaseLogs(ctx, q)
				},
			}
			for source, read := range reads {
				got, repeated := readWindow(t, read)
				want := truthRecords(e.sim, source)
				if repeated || !slices.Equal(sorted(got), want) {
					t.Errorf("%s: read %d records (repeated token %v), simulator holds %d", source, len(got), repeated, len(want))
				}
				if len(want) == 0 {
					t.Errorf("%s: nothing seeded", source)
				}
			}
		})
	}
}

func TestArchiveLogsQueryNarrowsAndTokenIsBound(t *testing.T) {
	e, clk := moreEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	q := mimecast.WindowQuery{Start: clk.Now().Add(-11 * time.Hour), End: clk.Now(), Query: "Threat Remediation"}
	p, err := c.ArchiveLogs(ctx, mimecast.ArchiveSearchLogs, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Records {
		if !strings.Contains(string(r), "Threat Remediation") {
			t.Errorf("record outside the query: %s", r)
		}
	}
	// A token of one filter replayed with another is refused: the client reports the 400.
	q2 := mimecast.WindowQuery{Start: q.Start, End: q.End, PageSize: 2}
	p2, err := c.ArchiveLogs(ctx, mimecast.ArchiveSearchLogs, q2)
	if err != nil || p2.Next == "" {
		t.Fatalf("first page: %v, next %q", err, p2.Next)
	}
	q.PageToken = p2.Next
	if _, err := c.ArchiveLogs(ctx, mimecast.ArchiveSearchLogs, q); err == nil {
		t.Error("a token replayed with another query was accepted")
	}
}

func TestWindowLogsLoopIsSeenByTheCaller(t *testing.T) {
	e, clk := moreEnv(t, func(o *simulator.Options) { o.Alerts.Paging.Loop = true })
	c := e.client(t, nil)
	_, repeated := readWindow(t, func(tok string) (mimecast.Page, error) {
		return c.HeldReleaseLogs(context.Background(), mimecast.WindowQuery{Start: clk.Now().Add(-11 * time.Hour), PageSize: 3, PageToken: tok})
	})
	if !repeated {
		t.Error("a looping token was not seen: the client must hand back Next exactly as served")
	}
}

func TestThreatIntelFeedReadsIndicatorsInEveryVariant(t *testing.T) {
	variants := map[string]func(*simulator.Options){
		"bundle, header token":   nil,
		"bundle, token in body":  func(o *simulator.Options) { o.Alerts.Logs.ThreatIntelTokenInBody = true },
		"envelope, header token": func(o *simulator.Options) { o.Alerts.Logs.ThreatIntelShape = "envelope" },
		"envelope, body token": func(o *simulator.Options) {
			o.Alerts.Logs.ThreatIntelShape, o.Alerts.Logs.ThreatIntelTokenInBody = "envelope", true
		},
		"bare array":  func(o *simulator.Options) { o.Alerts.Logs.ThreatIntelShape = "array" },
		"empty pages": func(o *simulator.Options) { o.Alerts.Paging.EmptyPages = true },
	}
	for name, mod := range variants {
		t.Run(name, func(t *testing.T) {
			e, clk := moreEnv(t, mod)
			c := e.client(t, nil)
			for feed, source := range map[string]string{mimecast.FeedMalwareCustomer: simulator.SourceThreatIntelCustomer,
				mimecast.FeedMalwareGrid: simulator.SourceThreatIntelGrid} {
				others := 0
				got, repeated := readWindow(t, func(tok string) (mimecast.Page, error) {
					q := mimecast.ThreatIntelQuery{FeedType: feed, Start: clk.Now().Add(-11 * time.Hour), End: clk.Now(), Token: tok}
					p, n, err := c.ThreatIntelOthers(context.Background(), q)
					others += n
					return p, err
				})
				want := truthRecords(e.sim, source)
				if repeated || !slices.Equal(sorted(got), want) {
					t.Errorf("%s: read %d indicators (repeated %v), simulator holds %d", feed, len(got), repeated, len(want))
				}
				for _, r := range got {
					var o struct{ Type string }
					if json.Unmarshal([]byte(r), &o) != nil || o.Type != "indicator" {
						t.Errorf("%s: a record that is not an indicator: %.80s", feed, r)
					}
				}
				if others != 2*len(want) {
					t.Errorf("%s: %d other objects, want a malware and a relationship per indicator (%d)", feed, others, 2*len(want))
				}
			}
		})
	}
}

func TestThreatIntelNoResultIsAnEmptyPage(t *testing.T) {
	for _, status := range []int{0, 404, 400} {
		e, clk := moreEnv(t, func(o *simulator.Options) { o.Alerts.Logs.NoResultStatus = status })
		c := e.client(t, nil)
		p, err := c.ThreatIntelFeed(context.Background(), mimecast.ThreatIntelQuery{FeedType: mimecast.FeedMalwareGrid,
			Start: clk.Now().Add(-48 * time.Hour), End: clk.Now().Add(-47 * time.Hour)})
		if err != nil || len(p.Records) != 0 || p.Next != "" || !p.CaughtUp {
			t.Errorf("status %d: an empty window gave %+v, %v; want an empty caught-up page", status, p, err)
		}
	}
	// Another failure is still an error.
	e, _ := moreEnv(t, nil)
	c := e.client(t, nil)
	if _, err := c.ThreatIntelFeed(context.Background(), mimecast.ThreatIntelQuery{FeedType: "malware_nope"}); err == nil {
		t.Error("a rejected feed type read as a page")
	}
}

func TestSIEMCIBatchAndStreamReadEveryEvent(t *testing.T) {
	for _, plain := range []bool{false, true} {
		e, _ := moreEnv(t, func(o *simulator.Options) { o.Alerts.SIEMPlainFiles = plain })
		c := e.client(t, nil)
		ctx := context.Background()
		want := truthRecords(e.sim, simulator.SourceSIEMCI)
		got := map[string]bool{}
		for _, typ := range mimecast.SIEMTypesCI {
			next := ""
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("batch paging does not end")
				}
				bp, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: typ, Product: mimecast.ProductCI, PageSize: 2, NextPage: next})
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				for _, f := range bp.Files {
					if err := c.SIEMFileEvents(ctx, f, func(rec json.RawMessage) error { got[string(rec)] = true; return nil }); err != nil {
						t.Fatal(err)
					}
				}
				if bp.CaughtUp {
					break
				}
				next = bp.Next
			}
		}
		if len(got) != len(want) {
			t.Errorf("plain %v: batch files held %d distinct events, simulator %d", plain, len(got), len(want))
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("event missing from the batch files: %.80s", w)
			}
		}
		// The stream holds the same events.
		seen := map[string]bool{}
		next := ""
		for pages := 0; ; pages++ {
			if pages > 50 {
				t.Fatal("stream paging does not end")
			}
			p, err := c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{Product: mimecast.ProductCI, PageSize: 7, NextPage: next})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Records {
				seen[string(r)] = true
			}
			if p.CaughtUp {
				break
			}
			next = p.Next
		}
		if len(seen) != len(want) {
			t.Errorf("stream held %d distinct events, simulator %d", len(seen), len(want))
		}
	}
}

func TestMoreLogsForbiddenIsPerEndpoint(t *testing.T) {
	e, clk := moreEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	e.sim.SetForbidden([]string{"/api/archive/get-archive-search-logs", "/api/gateway/get-held-release-logs",
		"/api/ttp/threat-intel/get-feed", "/siem/v1/batch/events/ci"})
	w := mimecast.WindowQuery{Start: clk.Now().Add(-11 * time.Hour)}
	checks := map[string]func() error{
		"Archive | Search Logs | Read":   func() error { _, err := c.ArchiveLogs(ctx, mimecast.ArchiveSearchLogs, w); return err },
		"Gateway | Held Messages | Read": func() error { _, err := c.HeldReleaseLogs(ctx, w); return err },
		"Services | Threat Intelligence | Read": func() error {
			_, err := c.ThreatIntelFeed(ctx, mimecast.ThreatIntelQuery{FeedType: mimecast.FeedMalwareCustomer, Start: w.Start})
			return err
		},
		"Cloud Integrated": func() error {
			_, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "entities", Product: mimecast.ProductCI})
			return err
		},
	}
	for perm, call := range checks {
		err := call()
		var me *mimecast.Error
		if !mimecast.IsForbidden(err) || mimecast.IsRetryable(err) || !errors.As(err, &me) || !strings.Contains(me.Permission, perm) {
			t.Errorf("%s: %v; want a permanent 403 naming the permission", perm, err)
		}
	}
	// The others carry on.
	if _, err := c.ArchiveLogs(ctx, mimecast.ViewLogs, w); err != nil {
		t.Errorf("view logs: %v", err)
	}
	if _, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt"}); err != nil {
		t.Errorf("cg batch: %v", err)
	}
}

func TestSIEMCINotLicensedIsForbidden(t *testing.T) {
	for _, v := range []string{"forbidden", "bad_request"} {
		e, _ := moreEnv(t, func(o *simulator.Options) { o.Alerts.Logs.CINotLicensed = v })
		c := e.client(t, nil)
		ctx := context.Background()
		_, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "entities", Product: mimecast.ProductCI})
		var me *mimecast.Error
		if !errors.Is(err, mimecast.ErrNotLicensed) || !mimecast.IsForbidden(err) || mimecast.IsRetryable(err) ||
			!errors.As(err, &me) || !strings.Contains(me.Permission, "Cloud Integrated") {
			t.Errorf("%s: batch: %v; want not licensed, forbidden, naming the permission", v, err)
		}
		if _, err := c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{Product: mimecast.ProductCI}); !errors.Is(err, mimecast.ErrNotLicensed) {
			t.Errorf("%s: stream: %v", v, err)
		}
		// Cloud Gateway is another product: unaffected.
		if _, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt"}); err != nil {
			t.Errorf("%s: cg batch: %v", v, err)
		}
	}
	// A cg 400 is never taken for a licence problem.
	e, _ := moreEnv(t, nil)
	c := e.client(t, nil)
	_, err := c.SIEMBatch(context.Background(), mimecast.SIEMBatchQuery{Type: "entities"})
	if err == nil || errors.Is(err, mimecast.ErrNotLicensed) || mimecast.IsForbidden(err) {
		t.Errorf("cg batch with a CI type: %v; want a plain 400", err)
	}
}

// A 429 on the feed is waited out by the pacer and the same page read again (the cursor
// stays); one that outlasts the retries is a retryable error, never an empty page.
func TestThreatIntelFeedRateLimited(t *testing.T) {
	e, clk := moreEnv(t, nil)
	c := e.client(t, nil)
	q := mimecast.ThreatIntelQuery{FeedType: mimecast.FeedMalwareCustomer, Start: clk.Now().Add(-11 * time.Hour), End: clk.Now()}
	want, err := c.ThreatIntelFeed(context.Background(), q)
	if err != nil || len(want.Records) == 0 {
		t.Fatalf("first read: %v, %d records", err, len(want.Records))
	}
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/ttp/threat-intel/get-feed", Status: 429, Count: 2, ResetMS: 5}})
	got, err := c.ThreatIntelFeed(context.Background(), q)
	if err != nil || len(got.Records) != len(want.Records) {
		t.Fatalf("after two 429s: %v, %d records, want %d", err, len(got.Records), len(want.Records))
	}
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/ttp/threat-intel/get-feed", Status: 429, ResetMS: 5}})
	_, err = c.ThreatIntelFeed(context.Background(), q)
	if err == nil || !mimecast.IsRetryable(err) {
		t.Errorf("a 429 that does not end: %v; want a retryable error", err)
	}
}
