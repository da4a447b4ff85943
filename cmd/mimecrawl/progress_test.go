package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/crawler"
)

// TestStatusLineKeepsLogsAboveAndFitsTheWidth: what the emulated screen shows after frames and
// log lines interleave: each log line on its own row, one progress line at the bottom, cut to
// the width.
func TestStatusLineKeepsLogsAboveAndFitsTheWidth(t *testing.T) {
	var out bytes.Buffer
	width := 40
	s := newStatusLine(&out, func() int { return width })
	s.Draw("0s  listing domains and mailboxes…")
	s.Write([]byte("log one\n"))
	s.Draw(strings.Repeat("x", 100))
	s.Write([]byte("log two without newline"))
	s.Draw("1s  views 1/2  50%")
	width = 21 // the terminal was narrowed
	s.Done("2s  views 2/2 100%  messages 5 (2/s)")

	scr := newScreen(40)
	// A terminal's line discipline turns LF into CR LF (onlcr); the pseudo-terminal test gets
	// that from the kernel, this one does it here.
	scr.feed(bytes.ReplaceAll(out.Bytes(), []byte("\n"), []byte("\r\n")))
	if len(scr.wraps) > 0 {
		t.Errorf("wrapped: %q", scr.wraps)
	}
	got := strings.Join(scr.lines(), "|")
	want := "log one|log two without newline|2s  views 2/2 100% …|"
	if got != want {
		t.Errorf("screen %q, want %q", got, want)
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven chars", 10, "eleven ch…"},
		{"a\tb\x1b[2Jc", 20, "a b [2Jc"},
		{"×429 quota", 4, "×42…"},
		// A progress line is cut between its fields, never inside a number.
		{"5s  views 1/2 50%  messages 120 (221/s)  quota 8×429", 36, "5s  views 1/2 50% …"},
		{"x", 0, ""},
	} {
		if got := fit(tc.in, tc.width); got != tc.want || utf8.RuneCountInString(got) > max(tc.width, 0) {
			t.Errorf("fit(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestFrameText(t *testing.T) {
	f := frame{phase: "crawling", elapsed: 10 * time.Second, done: 1, total: 4, totals: crawler.Totals{Messages: 50}, rate: 5, eta: 30 * time.Second}
	if got := f.text(); !strings.Contains(got, "views 1/4 25%  ETA 30s  messages 50 (5/s)") {
		t.Errorf("crawling frame %q", got)
	}
	f.waiting, f.rateLimited = true, 3
	if got := f.text(); !strings.Contains(got, "ETA 30s  messages 50 (5/s)  quota wait 3×429") {
		t.Errorf("waiting frame %q", got)
	}
	f.waiting = false
	if got := f.text(); !strings.Contains(got, "(5/s)  quota 3×429") {
		t.Errorf("frame after a wait %q", got)
	}
	f = frame{phase: "listing mailboxes", elapsed: 3 * time.Second}
	if got := f.text(); got != "3s  listing domains and mailboxes…" {
		t.Errorf("listing frame %q", got)
	}
	// After Ctrl-C the last frame counts the views as the summary does.
	f = frame{phase: "done", elapsed: 32 * time.Second, total: 40, complete: 11, interrupted: 9, totals: crawler.Totals{Messages: 300}, rate: 9.4}
	if got := f.text(); !strings.HasPrefix(got, "32s  views 11/40 complete, 9 interrupted, 20 not started  messages 300 (9/s)") {
		t.Errorf("final frame %q", got)
	}
	// At 80 columns under 429s the most useful fields are whole.
	f = frame{phase: "crawling", elapsed: 75 * time.Second, done: 12, total: 40, totals: crawler.Totals{Messages: 2210, Attachments: 900, Bytes: 3 << 30},
		rate: 35, eta: 3*time.Minute + 5*time.Second, rateLimited: 8, limit: 16}
	got := fit(f.text(), 79)
	if !strings.HasPrefix(got, "1m15s  views 12/40 30%  ETA 3m5s  messages 2210 (35/s)  quota 8×429") || !strings.HasSuffix(got, " …") {
		t.Errorf("frame at 80 columns %q", got)
	}
}

// TestRateWindow: the rate is that of the last rateSpan, not the average since the start.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// 200/s for the first minute, then a quota: 35/s.
	n := int64(0)
	for s := 0; s <= 60; s++ {
		w.add(at(s), n, n)
		n += 200
	}
	n -= 200
	var indexed, handledRate float64
	for s := 61; s <= 120; s++ {
		n += 35
		indexed, handledRate = w.add(at(s), n, n+1)
	}
	if indexed < 34 || indexed > 36 || handledRate < 34 || handledRate > 36 {
		t.Errorf("rate after a minute at 35/s: %.1f indexed, %.1f handled; want 35", indexed, handledRate)
	}
	if len(w.samples) > int(rateSpan/time.Second)+2 {
		t.Errorf("the window keeps %d readings", len(w.samples))
	}
	var one rateWindow
	if r, _ := one.add(t0, 5, 5); r != 0 {
		t.Errorf("rate of a single reading: %v", r)
	}
}

// TestEstimate: the time left is the listed messages not yet handled plus what the unlisted
// views are likely to hold, at the recent rate; none before a listing ended.
func TestEstimate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		t     crawler.Totals
		views int
		rate  float64
		want  time.Duration
	}{
		{"nothing listed yet", crawler.Totals{Listed: 100}, 4, 10, 0},
		{"no rate yet", crawler.Totals{Listed: 100, ViewsListed: 1}, 4, 0, 0},
		// 2 of 4 views listed, 200 messages: 200 more expected; 150 handled; 250 left at 10/s.
		{"half listed", crawler.Totals{Listed: 200, ViewsListed: 2, Messages: 100, Skipped: 40, FetchFailed: 10}, 4, 10, 25 * time.Second},
		{"all listed", crawler.Totals{Listed: 400, ViewsListed: 4, Messages: 300}, 4, 20, 5 * time.Second},
		{"all handled", crawler.Totals{Listed: 400, ViewsListed: 4, Messages: 400}, 4, 20, 0},
	} {
		if got := estimate(tc.t, tc.views, tc.rate); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// fakeTotals is a crawl's counters as the progress reads them.
type fakeTotals struct{ t *crawler.Totals }

func (f fakeTotals) Totals() crawler.Totals { return *f.t }

// TestProgressFramesUnderAQuota: the rate shown follows the crawl as it slows under a quota,
// and the ETA stays while nothing is handled for a long wait, from the run's own rate.
func TestProgressFramesUnderAQuota(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	tot := &crawler.Totals{}
	p := &progress{now: func() time.Time { return now }, start: t0, phase: "crawling", src: fakeTotals{tot}, total: 4}
	step := func(d time.Duration, handledNow int64) frame {
		now = now.Add(d)
		tot.Messages = handledNow
		return p.frame()
	}
	// 2 of 4 views listed, 400 messages each: 800 more expected.
	tot.Listed, tot.ViewsListed = 800, 2
	var f frame
	for s := int64(1); s <= 10; s++ {
		f = step(time.Second, s*40) // 40/s
	}
	if f.rate < 39 || f.rate > 41 || f.eta < 30*time.Second || f.eta > 32*time.Second {
		t.Errorf("at 40/s with 1200 of 1600 left: rate %.1f, ETA %s; want 40/s and 30s", f.rate, f.eta)
	}
	// The quota holds every call for a minute: nothing handled.
	for range 60 {
		f = step(time.Second, 400)
	}
	if f.rate != 0 || f.eta == 0 {
		t.Errorf("after a minute of waiting: rate %.1f, ETA %s; want 0/s and the ETA at the run's rate", f.rate, f.eta)
	}
	// 1200 left at 400 handled in 70 s.
	if want := time.Duration(1200 / (400.0 / 70) * float64(time.Second)); f.eta < want-time.Second || f.eta > want+time.Second {
		t.Errorf("ETA after the wait %s, want about %s", f.eta, want)
	}
}
