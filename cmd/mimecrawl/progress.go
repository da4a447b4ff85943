package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The progress line is drawn by hand rather than with a progress-bar library: it is one line,
// every frame is redrawn whole, and log lines must pass above it, which a small writer that
// clears the line, writes the log and redraws does exactly. golang.org/x/term gives the width.

// clearLine returns the cursor to column 0 and erases the line (VT100 CR + EL).
const clearLine = "\r\x1b[K"

// statusLine owns the bottom line of a terminal. Everything written to the terminal while a
// line is drawn goes through Write, which lifts the line, writes, and puts the line back, so
// that log lines appear above the progress and never inside it.
type statusLine struct {
	mu    sync.Mutex
	out   io.Writer
	width func() int
	line  string // as drawn (already fitted to the width)
	shown bool
}

func newStatusLine(out io.Writer, width func() int) *statusLine {
	return &statusLine{out: out, width: width}
}

// terminalWidth returns the width of the terminal f, or 80 when it cannot be read.
func terminalWidth(f *os.File) func() int {
	return func() int {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
		return 80
	}
}

// Write writes p above the status line.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shown {
		return s.out.Write(p)
	}
	if _, err := io.WriteString(s.out, clearLine); err != nil {
		return 0, err
	}
	n, err := s.out.Write(p)
	if err != nil {
		return n, err
	}
	if len(p) > 0 && p[len(p)-1] != '\n' {
		// A write without its newline would otherwise share the line with the progress.
		io.WriteString(s.out, "\n")
	}
	_, err = io.WriteString(s.out, s.line)
	return n, err
}

// Draw replaces the status line with text, cut to the terminal's width.
func (s *statusLine) Draw(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// One column less than the width: a line that fills the last column leaves the cursor in
	// a pending-wrap state that some terminals resolve by wrapping.
	s.line = fit(text, s.width()-1)
	s.shown = true
	io.WriteString(s.out, clearLine+s.line)
}

// Done draws text as the last frame and leaves it on the screen, ending the line.
func (s *statusLine) Done(text string) {
	s.Draw(text)
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.out, "\n")
	s.shown, s.line = false, ""
}

// fit makes text one line of at most width columns: control characters become spaces and
// what does not fit is cut, ending in "…". Every rune is taken as one column (the line is
// built from ASCII and a few narrow symbols).
func fit(text string, width int) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	if width < 1 {
		return ""
	}
	if utf8.RuneCountInString(text) <= width {
		return text
	}
	r := []rune(text)
	return string(r[:width-1]) + "…"
}

// progressSource is what a progress frame is made of.
type progressSource interface {
	Totals() crawler.Totals
}

// quotaSource is the part of the Mimecast client the progress reads.
type quotaSource interface {
	Stats() mimecast.Stats
	QuotaWait() time.Duration
}

// frame is one progress reading.
type frame struct {
	phase       string // "listing mailboxes", "crawling", "done"
	elapsed     time.Duration
	done, total int // mailbox views
	totals      crawler.Totals
	rateLimited int64
	waiting     bool // calls are held back for the quota right now
	limit       int  // the bound on archive requests in flight; 0: none
}

// text renders a frame, the most important parts first, so that when the line is cut to a
// narrow terminal what is lost is the least useful.
func (f frame) text() string {
	var b strings.Builder
	el := f.elapsed.Round(time.Second)
	switch f.phase {
	case "listing mailboxes":
		fmt.Fprintf(&b, "%s  listing domains and mailboxes…", el)
		if f.waiting {
			fmt.Fprintf(&b, "  waiting for Mimecast's quota (%d×429)", f.rateLimited)
		}
		return b.String()
	}
	pct := 0.0
	if f.total > 0 {
		pct = 100 * float64(f.done) / float64(f.total)
	}
	fmt.Fprintf(&b, "%s  views %d/%d %3.0f%%", el, f.done, f.total, pct)
	rate := 0.0
	if s := f.elapsed.Seconds(); s > 0 {
		rate = float64(f.totals.Messages) / s
	}
	switch {
	case f.waiting:
		fmt.Fprintf(&b, "  waiting for Mimecast's quota (%d×429)", f.rateLimited)
	case f.phase == "crawling" && f.done > 0 && f.done < f.total:
		eta := time.Duration(float64(f.elapsed) * float64(f.total-f.done) / float64(f.done)).Round(time.Second)
		fmt.Fprintf(&b, "  ETA %s", eta)
	}
	fmt.Fprintf(&b, "  messages %d (%.0f/s)", f.totals.Messages, rate)
	if n := f.totals.DocsFailed + f.totals.FetchFailed; n > 0 {
		fmt.Fprintf(&b, "  failures %d", n)
	}
	fmt.Fprintf(&b, "  attachments %d  skipped %d  downloaded %s", f.totals.Attachments, f.totals.Skipped, humanBytes(f.totals.Bytes))
	if f.rateLimited > 0 && !f.waiting {
		fmt.Fprintf(&b, "  %d×429", f.rateLimited)
	}
	if f.limit > 0 {
		fmt.Fprintf(&b, "  in flight ≤%d", f.limit)
	}
	return b.String()
}

// progress shows how a run goes: a line redrawn in place on a terminal (line set), a JSON log
// line every interval otherwise. One goroutine draws; start and stop are called by the command.
type progress struct {
	line  *statusLine // nil: not a terminal
	log   func(frame)
	quota quotaSource
	start time.Time

	mu          sync.Mutex
	phase       string
	src         progressSource
	done, total int

	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func (a *app) newProgress(quota quotaSource) *progress {
	p := &progress{line: a.line, quota: quota, start: time.Now(), phase: "listing mailboxes", stopc: make(chan struct{})}
	p.log = func(f frame) {
		a.log.Info().Str("phase", f.phase).Int("views_done", f.done).Int("views_total", f.total).Int64("messages", f.totals.Messages).
			Int64("skipped", f.totals.Skipped).Int64("attachments", f.totals.Attachments).Int64("bytes", f.totals.Bytes).
			Int64("failures", f.totals.DocsFailed+f.totals.FetchFailed).Int64("rate_limited", f.rateLimited).
			Bool("waiting_for_quota", f.waiting).Int("api_concurrency_limit", f.limit).Msg("progress")
	}
	return p
}

// run starts drawing; every is how often.
func (p *progress) run(every time.Duration) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		p.draw()
		for {
			select {
			case <-p.stopc:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// crawling switches from enumeration to the crawl of cr.
func (p *progress) crawling(cr progressSource) {
	p.mu.Lock()
	p.phase, p.src = "crawling", cr
	p.mu.Unlock()
}

// views is the crawler's progress callback.
func (p *progress) views(done, total int) {
	p.mu.Lock()
	p.done, p.total = done, total
	p.mu.Unlock()
}

func (p *progress) frame() frame {
	p.mu.Lock()
	f := frame{phase: p.phase, done: p.done, total: p.total, elapsed: time.Since(p.start)}
	src := p.src
	p.mu.Unlock()
	if src != nil {
		f.totals = src.Totals()
	}
	if p.quota != nil {
		st := p.quota.Stats()
		f.rateLimited, f.limit = st.RateLimited, st.Concurrency.Limit
		f.waiting = p.quota.QuotaWait() > 0
	}
	return f
}

func (p *progress) draw() {
	f := p.frame()
	if p.line != nil {
		p.line.Draw(f.text())
		return
	}
	if f.phase != "listing mailboxes" {
		p.log(f)
	}
}

// stop ends the drawing. On a terminal the last frame is drawn once more from the summary's
// own numbers, so that the line left on the screen agrees with the summary below it.
func (p *progress) stop(sum *Summary) {
	p.stopOnce.Do(func() { close(p.stopc) })
	p.wg.Wait()
	if p.line == nil || sum == nil {
		return
	}
	f := frame{phase: "done", elapsed: time.Duration(sum.Seconds * float64(time.Second)), totals: sum.Totals, rateLimited: sum.APIRateLimited, limit: sum.APIConcurrencyLimit,
		done: sum.ViewsComplete + sum.ViewsFailed + sum.ViewsInterrupted}
	f.total = max(p.frame().total, f.done)
	p.line.Done(f.text())
}
