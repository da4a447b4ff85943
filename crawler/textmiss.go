package crawler

import (
	"cmp"
	"slices"
	"sync"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/state"
)

// TextMiss counts the attachments of a run indexed without text for one reason in one format;
// the type is the state file's record of it.
type TextMiss = state.TextMiss

// textMisses counts misses by format and reason and remembers which reasons were already
// named in a warning: one warning per reason and run names a file; the others go to debug,
// and the counts carry them to the summary, status and metrics.
type textMisses struct {
	mu     sync.Mutex
	counts map[[2]string]int64
	warned map[string]bool
}

// add counts one miss and reports whether it is the first of its reason in this run.
func (t *textMisses) add(format body.Format, reason body.FailureKind) (first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts, t.warned = map[[2]string]int64{}, map[string]bool{}
	}
	t.counts[[2]string{string(format), string(reason)}]++
	if t.warned[string(reason)] {
		return false
	}
	t.warned[string(reason)] = true
	return true
}

// list returns the counts sorted by reason, then format.
func (t *textMisses) list() []TextMiss {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TextMiss, 0, len(t.counts))
	for k, n := range t.counts {
		out = append(out, TextMiss{Format: k[0], Reason: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b TextMiss) int {
		return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Format, b.Format))
	})
	return out
}
