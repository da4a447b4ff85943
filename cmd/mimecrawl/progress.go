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
	"github.com/mimecrawl/mimecrawl/internal/job"
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
	// A progress line is fields apart by two spaces: end at the last whole field that fits,
	// so that no number is cut in half ("(22…" read as 22/s).
	// " …" after it says that fields follow, where "7…" would read as a number cut short.
	for i := width - 2; i > 0; i-- {
		if r[i] == ' ' && r[i+1] == ' ' {
			return string(r[:i]) + " …"
		}
	}
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
	done, total int // mailbox views ended, and in all
	totals      crawler.Totals
	rateLimited int64
	waiting     bool // calls are held back for the quota right now
	limit       int  // the bound on archive requests in flight; 0: none
	// rate is messages indexed per second lately (rateWindow), not since the start: under a
	// quota the start's fast minutes would hide how slow it is now.
	rate float64
	// eta is the estimated time left (see estimate); zero when there is no estimate yet.
	eta time.Duration
	// The final frame says how the views ended, as the summary does.
	complete, failed, interrupted int
}

// text renders a frame, the most important parts first and fields two spaces apart, so that
// when the line is cut to a narrow terminal what is lost is the least useful, and whole.
func (f frame) text() string {
	var b strings.Builder
	el := f.elapsed.Round(time.Second)
	switch f.phase {
	case "listing mailboxes":
		fmt.Fprintf(&b, "%s  listing domains and mailboxes…", el)
		if f.waiting {
			fmt.Fprintf(&b, "  quota wait %d×429", f.rateLimited)
		}
		return b.String()
	case "done":
		// The views as the summary counts them: those that ended, and how, of all there were.
		fmt.Fprintf(&b, "%s  views %d/%d complete", el, f.complete, f.total)
		if f.failed > 0 {
			fmt.Fprintf(&b, ", %d failed", f.failed)
		}
		if f.interrupted > 0 {
			fmt.Fprintf(&b, ", %d interrupted", f.interrupted)
		}
		if n := f.total - f.complete - f.failed - f.interrupted; n > 0 {
			fmt.Fprintf(&b, ", %d not started", n)
		}
	default:
		pct := 0.0
		if f.total > 0 {
			pct = 100 * float64(f.done) / float64(f.total)
		}
		fmt.Fprintf(&b, "%s  views %d/%d %.0f%%", el, f.done, f.total, pct)
		if eta := f.eta.Round(time.Second); eta > 0 {
			fmt.Fprintf(&b, "  ETA %s", eta)
		}
	}
	fmt.Fprintf(&b, "  messages %d (%.0f/s)", f.totals.Messages, f.rate)
	switch {
	case f.waiting:
		fmt.Fprintf(&b, "  quota wait %d×429", f.rateLimited)
	case f.rateLimited > 0:
		fmt.Fprintf(&b, "  quota %d×429", f.rateLimited)
	}
	if n := f.totals.DocsFailed + f.totals.FetchFailed; n > 0 {
		fmt.Fprintf(&b, "  failures %d", n)
	}
	fmt.Fprintf(&b, "  attachments %d  skipped %d  downloaded %s", f.totals.Attachments, f.totals.Skipped, job.HumanBytes(f.totals.Bytes))
	if f.limit > 0 {
		fmt.Fprintf(&b, "  in flight ≤%d", f.limit)
	}
	return b.String()
}

// handled is how many listed messages the crawl is through with: indexed, already indexed,
// excluded, or failed.
func handled(t crawler.Totals) int64 {
	return t.Messages + t.Skipped + t.ExcludedSubjects + t.FetchFailed + t.InvalidListed
}

// rateWindow keeps recent readings, so that rates are those of the last rateSpan rather than
// the average since the start.
type rateWindow struct {
	samples []rateSample
}

type rateSample struct {
	at               time.Time
	indexed, handled int64
}

// rateSpan is how far back a rate looks: long enough to smooth the bursts of a pacer's
// spacing, short enough to follow a quota that tightens.
const rateSpan = 20 * time.Second

// add records a reading at now and returns the rates of indexed and of handled messages per
// second over the window (the oldest reading kept is at most rateSpan old, the first reading
// of the run until then).
func (w *rateWindow) add(now time.Time, indexed, handled int64) (indexedRate, handledRate float64) {
	w.samples = append(w.samples, rateSample{at: now, indexed: indexed, handled: handled})
	// Drop readings older than the span, keeping the newest of them as the window's start.
	i := 0
	for i+1 < len(w.samples) && now.Sub(w.samples[i+1].at) >= rateSpan {
		i++
	}
	w.samples = w.samples[i:]
	first := w.samples[0]
	dt := now.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	return float64(indexed-first.indexed) / dt, float64(handled-first.handled) / dt
}

// estimate is the time left: the messages listed and not yet handled, plus what the views not
// yet listed are likely to hold (as many as the listed views held on average), at the recent
// rate of handling. No estimate before a view's listing ended or while nothing is handled.
func estimate(t crawler.Totals, views int, rate float64) time.Duration {
	if t.ViewsListed == 0 || rate <= 0 {
		return 0
	}
	left := float64(t.Listed - handled(t))
	if unlisted := int64(views) - t.ViewsListed; unlisted > 0 {
		left += float64(unlisted) * float64(t.Listed) / float64(t.ViewsListed)
	}
	if left <= 0 {
		return 0
	}
	return time.Duration(left / rate * float64(time.Second))
}

// progress shows how a run goes: a line redrawn in place on a terminal (line set), a JSON log
// line every interval otherwise. One goroutine draws; start and stop are called by the command.
type progress struct {
	line  *statusLine // nil: not a terminal
	log   func(frame)
	quota quotaSource
	now   func() time.Time // the clock: time.Now, a fake in tests
	start time.Time

	mu          sync.Mutex
	phase       string
	src         progressSource
	done, total int
	rates       rateWindow

	running  bool // run was called
	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func (a *app) newProgress() *progress {
	p := &progress{line: a.line, now: time.Now, phase: "listing mailboxes", stopc: make(chan struct{})}
	p.log = func(f frame) {
		a.log.Info().Str("phase", f.phase).Int("views_done", f.done).Int("views_total", f.total).Int64("messages", f.totals.Messages).
			Int64("skipped", f.totals.Skipped).Int64("attachments", f.totals.Attachments).Int64("bytes", f.totals.Bytes).
			Int64("failures", f.totals.DocsFailed+f.totals.FetchFailed).Int64("rate_limited", f.rateLimited).
			Bool("waiting_for_quota", f.waiting).Int("api_concurrency_limit", f.limit).
			Float64("messages_per_second", f.rate).Int64("eta_seconds", int64(f.eta.Seconds())).Msg("progress")
	}
	return p
}

// run starts drawing, from now, with quota as the client whose waits it shows; every is how
// often.
func (p *progress) run(quota quotaSource, every time.Duration) {
	p.quota, p.start, p.running = quota, p.now(), true
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
	now := p.now()
	p.mu.Lock()
	f := frame{phase: p.phase, done: p.done, total: p.total, elapsed: now.Sub(p.start)}
	src := p.src
	p.mu.Unlock()
	if src != nil {
		f.totals = src.Totals()
		p.mu.Lock()
		var handledRate float64
		f.rate, handledRate = p.rates.add(now, f.totals.Messages, handled(f.totals))
		p.mu.Unlock()
		if handledRate <= 0 && f.elapsed > 0 {
			// Nothing handled lately (a long wait for the quota): the run's own rate still
			// says how long the rest takes, where none would say nothing.
			handledRate = float64(handled(f.totals)) / f.elapsed.Seconds()
		}
		f.eta = estimate(f.totals, f.total, handledRate)
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
func (p *progress) stop(sum *job.Summary) {
	p.stopOnce.Do(func() { close(p.stopc) })
	p.wg.Wait()
	if p.line == nil || sum == nil || !p.running {
		return
	}
	f := frame{phase: "done", elapsed: time.Duration(sum.Seconds * float64(time.Second)), totals: sum.Totals, rateLimited: sum.APIRateLimited, limit: sum.APIConcurrencyLimit,
		complete: sum.ViewsComplete, failed: sum.ViewsFailed, interrupted: sum.ViewsInterrupted}
	f.done = f.complete + f.failed + f.interrupted
	f.total = max(p.frame().total, sum.ViewsTotal, f.done)
	if sum.Seconds > 0 {
		// The run's rate, as the summary gives it.
		f.rate = float64(sum.Messages) / sum.Seconds
	}
	p.line.Done(f.text())
}
