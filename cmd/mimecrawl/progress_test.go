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
	width = 20 // the terminal was narrowed
	s.Done("2s  views 2/2 100%  messages 5 (2/s)")

	scr := newScreen(40)
	// A terminal's line discipline turns LF into CR LF (onlcr); the pseudo-terminal test gets
	// that from the kernel, this one does it here.
	scr.feed(bytes.ReplaceAll(out.Bytes(), []byte("\n"), []byte("\r\n")))
	if len(scr.wraps) > 0 {
		t.Errorf("wrapped: %q", scr.wraps)
	}
	got := strings.Join(scr.lines(), "|")
	want := "log one|log two without newline|2s  views 2/2 100%…|"
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
		{"x", 0, ""},
	} {
		if got := fit(tc.in, tc.width); got != tc.want || utf8.RuneCountInString(got) > max(tc.width, 0) {
			t.Errorf("fit(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestFrameText(t *testing.T) {
	f := frame{phase: "crawling", elapsed: 10 * time.Second, done: 1, total: 4, totals: crawler.Totals{Messages: 50}}
	if got := f.text(); !strings.Contains(got, "views 1/4  25%") || !strings.Contains(got, "ETA 30s") || !strings.Contains(got, "messages 50 (5/s)") {
		t.Errorf("crawling frame %q", got)
	}
	f.waiting, f.rateLimited = true, 3
	if got := f.text(); !strings.Contains(got, "waiting for Mimecast's quota (3×429)") || strings.Contains(got, "ETA") {
		t.Errorf("waiting frame %q", got)
	}
	f = frame{phase: "listing mailboxes", elapsed: 3 * time.Second}
	if got := f.text(); got != "3s  listing domains and mailboxes…" {
		t.Errorf("listing frame %q", got)
	}
}
