package job

import (
	"fmt"
	"sort"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// Summary is what a run did, printed at its end, logged, and kept in the state file's run
// history. It is the state file's record (state.RunRecord, where each field is described)
// with the methods that fill and judge it: converting between the two copies nothing and
// changes no JSON, since the fields and their names are the record's.
type Summary state.RunRecord

// QuotaGroup is one quota group's share of a run: the state file's record of it.
type QuotaGroup = state.QuotaGroup

// Record is the summary as the state file records it.
func (s *Summary) Record() state.RunRecord { return state.RunRecord(*s) }

// SummaryOf is the summary a state file's run record holds, for status to show; the inverse
// of Summary.Record.
func SummaryOf(r state.RunRecord) Summary { return Summary(r) }

// SetAPI takes the client's call statistics.
func (s *Summary) SetAPI(st mimecast.Stats) {
	s.APICalls, s.APIRateLimited = st.Calls, st.RateLimited
	s.APIQuotaCalls, s.APIDownloads, s.APITokenRequests = st.APICalls, st.DownloadRequests, st.TokenRequests
	s.APIQuotaWaitSeconds = st.QuotaWait.Seconds()
	s.APIQuotaGroups = nil
	for g, gs := range st.Groups {
		if s.APIQuotaGroups == nil {
			s.APIQuotaGroups = map[string]QuotaGroup{}
		}
		s.APIQuotaGroups[g] = QuotaGroup{Calls: gs.Calls, RateLimited: gs.RateLimited, WaitSeconds: gs.QuotaWait.Seconds()}
	}
	s.SetConcurrency(st.Concurrency)
}

// SetConcurrency takes the limiter's numbers; a client without a bound leaves them unset.
func (s *Summary) SetConcurrency(c mimecast.ConcurrencyStats) {
	if c.Limit == 0 {
		return
	}
	s.APIConcurrency = "fixed"
	if c.Adaptive {
		s.APIConcurrency = "adaptive"
	}
	s.APIConcurrencyInitial, s.APIConcurrencyLimit, s.APIConcurrencyLimitAvg = c.Initial, c.Limit, c.LimitAvg
	s.APIConcurrencyLimitMax, s.APIInflightMax = c.LimitMax, c.InFlightMax
}

// AddResults folds the mailbox view results in.
func (s *Summary) AddResults(rs []crawler.ViewResult) {
	for _, r := range rs {
		switch r.Outcome {
		case crawler.Complete:
			s.ViewsComplete++
			continue
		case crawler.Interrupted:
			s.ViewsInterrupted++
		default:
			s.ViewsFailed++
		}
		s.FailedViews = append(s.FailedViews, fmt.Sprintf("%s %s: %s: %s", r.Mailbox, r.View, r.Outcome, r.Error))
	}
	sort.Strings(s.FailedViews)
}

// Code is one of mimecrawl's exit codes, documented in the README. Every command ends with one.
type Code int

// The exit codes.
const (
	CodeOK      Code = 0 // every kept mailbox view completed
	CodeFatal   Code = 1 // the run could not start or was stopped by a fatal error
	CodeUsage   Code = 2 // bad command line
	CodePartial Code = 3 // some mailbox views failed or were interrupted; their checkpoints did not pass the failure
	CodeRefused Code = 4 // the mailbox removal guard refused a removal; nothing was removed, the kept mailboxes were crawled
)

// severity orders exit codes for "the most severe wins": a fatal error hides everything else;
// a partial or interrupted run is worse than a refused removal (mail is missing from the index,
// where a refusal only leaves extra mail in it), so a run that was both is reported as partial.
func (c Code) severity() int {
	switch c {
	case CodeOK:
		return 0
	case CodeRefused:
		return 1
	case CodePartial:
		return 2
	case CodeUsage:
		return 3
	default: // CodeFatal and anything unknown
		return 4
	}
}

// Worst returns the most severe of codes (CodeOK for none).
func Worst(codes ...Code) Code {
	w := CodeOK
	for _, c := range codes {
		if c.severity() > w.severity() {
			w = c
		}
	}
	return w
}

// Outcome is the one rule that turns what a run did into its exit code.
func (s *Summary) Outcome() Code {
	code := CodeOK
	if s.Fatal {
		code = Worst(code, CodeFatal)
	}
	if s.Interrupted || s.ViewsFailed > 0 || s.ViewsInterrupted > 0 || s.RemovalIncomplete {
		code = Worst(code, CodePartial)
	}
	if len(s.RemovalRefused) > 0 {
		code = Worst(code, CodeRefused)
	}
	return code
}
