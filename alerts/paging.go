package alerts

import (
	"errors"
	"fmt"

	"github.com/mimecrawl/mimecrawl/config"
)

// The paging rule, one for every reader (legacy meta.pagination.next, SIEM @nextPage, REST
// nextPageToken, next links, the threat-intel feed's header token; the client hands each
// page's token over exactly as served):
//
//   - Follow a token until a page has none, whatever the page held: an empty page that
//     carries a token continues the window.
//   - A token seen before in the same window (any cycle, A → B → A as well as A → A), or
//     more than Options.MaxPages pages, ends the window with a warning and a counted
//     pages_looped; the cursor does not pass the window.
//   - When a page states a total (total, totalCount, resultCount) and a window read from
//     its first page in this pass ends with fewer records, the shortfall is warned about
//     and counted as records_unread, and the cursor does not pass the window: the next
//     pass reads it again from its start.
//
// Token sources (SIEM batch and stream) apply the same rule to a pass instead of a window,
// with their own end: isCaughtUp.

// Errors of the paging rule, for errors.Is. Each leaves the source's cursor before the
// window (or the page) it concerns, and fails the source's pass.
var (
	// ErrPagesLooped: a page token came back, or a window had more pages than the cap.
	ErrPagesLooped = errors.New("page tokens loop")
	// ErrRecordsUnread: a window ended with fewer records than its pages stated.
	ErrRecordsUnread = errors.New("fewer records read than the source stated")
)

// DefaultMaxPages is Options.MaxPages's default (alerts.max_pages): at the largest page
// size that is 50 million records in one window, far beyond any poll interval's worth.
const DefaultMaxPages = config.DefaultAlertsMaxPages

// pageVerdict is what the rule says after one page.
type pageVerdict int

const (
	pageFollow   pageVerdict = iota // read the next token
	pageComplete                    // the window (pass) is read to its end
	pageLooped                      // a token came back, or too many pages: stop, do not pass
	pageUnread                      // complete, but fewer records than stated: do not pass
)

// pager applies the paging rule to one window (one pass of a token source).
type pager struct {
	max   int
	pages int
	seen  map[string]bool
	// fresh: the window is read from its first page in this pass, so read counts all of it.
	fresh bool
	read  int
	total int // the largest total a page stated; -1 for none
}

// newPager starts a window at token ("" = its first page).
func newPager(max int, token string) *pager {
	p := &pager{max: max, seen: map[string]bool{}, fresh: token == "", total: -1}
	if token != "" {
		p.seen[token] = true
	}
	return p
}

// page records one page (its records, its next token as served, the total it stated or -1)
// and says what to do next. end, for token sources, says the page is the last by the
// source's own word (isCaughtUp) whatever its token.
func (p *pager) page(records int, next string, total int, end bool) pageVerdict {
	p.pages++
	p.read += records
	p.total = max(p.total, total)
	switch {
	case end || next == "":
		if p.fresh && p.total >= 0 && p.read < p.total {
			return pageUnread
		}
		return pageComplete
	case p.seen[next] || p.pages >= p.max:
		return pageLooped
	}
	p.seen[next] = true
	return pageFollow
}

// loopError describes the pages_looped outcome.
func (p *pager) loopError(next string) error {
	if p.pages >= p.max && !p.seen[next] {
		return fmt.Errorf("%w: more than %d pages in one window (alerts.max_pages); the cursor stays before the window", ErrPagesLooped, p.max)
	}
	return fmt.Errorf("%w: page %d gave a token already followed in this window; the cursor stays before the window", ErrPagesLooped, p.pages)
}

// unreadError describes the records_unread outcome.
func (p *pager) unreadError() error {
	return fmt.Errorf("%w: %d records read in a window whose pages stated %d; the window is read again on the next pass", ErrRecordsUnread, p.read, p.total)
}

// unread is how many records the window's pages stated but did not list.
func (p *pager) unread() int { return max(p.total-p.read, 0) }
