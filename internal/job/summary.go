package job

import (
	"fmt"
	"sort"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// Summary is what a run did, printed at its end and kept in the state file (as the
// state.RunRecord that Record copies it into).
type Summary struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"seconds"`
	Full     bool      `json:"full"`
	// Shard is "i/n" for one shard of a sharded crawl.
	Shard string `json:"shard,omitempty"`

	DomainsTotal        int            `json:"domains_total"`
	DomainsKept         int            `json:"domains_kept"`
	MailboxesEnumerated int            `json:"mailboxes_enumerated"`
	MailboxesKept       int            `json:"mailboxes_kept"`
	Excluded            map[string]int `json:"excluded,omitempty"`

	// ViewsTotal is every kept mailbox view; those not complete, failed or interrupted were
	// not started (the run was stopped first).
	ViewsTotal       int      `json:"views_total,omitempty"`
	ViewsComplete    int      `json:"views_complete"`
	ViewsFailed      int      `json:"views_failed"`
	ViewsInterrupted int      `json:"views_interrupted"`
	FailedViews      []string `json:"failed_views,omitempty"`

	crawler.Totals
	MailboxesRemoved int `json:"mailboxes_removed"`
	// RemovalIncomplete: a removal was attempted and did not finish; the mailboxes it did not
	// finish keep their state and the next run tries again.
	RemovalIncomplete bool     `json:"removal_incomplete,omitempty"`
	RemovalRefused    []string `json:"removal_refused,omitempty"`

	APICalls       int64         `json:"api_calls"` // every HTTP exchange with Mimecast
	APIRateLimited int64         `json:"api_rate_limited"`
	APIErrors      map[int]int64 `json:"api_errors_by_status,omitempty"`
	// What the quota counts: calls of API endpoints, not downloads nor token requests; per
	// quota group with their 429s and the time calls waited for the quota. A crawl and an
	// alerts poller on one API application share the account group's quota.
	APIQuotaCalls       int64                 `json:"api_quota_calls"`
	APIDownloads        int64                 `json:"api_download_requests"`
	APITokenRequests    int64                 `json:"api_token_requests"`
	APIQuotaWaitSeconds float64               `json:"api_quota_wait_seconds"`
	APIQuotaGroups      map[string]QuotaGroup `json:"api_quota_groups,omitempty"`
	// The bound on archive requests in flight (performance.concurrency): adaptive or fixed,
	// where it started, where it ended, its time-weighted mean and highest value, and the
	// most requests that were in flight at once.
	APIConcurrency         string  `json:"api_concurrency,omitempty"`
	APIConcurrencyInitial  int     `json:"api_concurrency_initial,omitempty"`
	APIConcurrencyLimit    int     `json:"api_concurrency_limit"`
	APIConcurrencyLimitAvg float64 `json:"api_concurrency_limit_avg"`
	APIConcurrencyLimitMax int     `json:"api_concurrency_limit_max,omitempty"`
	APIInflightMax         int     `json:"api_inflight_max"`
	BulkRequests           int64   `json:"bulk_requests"`
	BytesIndexed           int64   `json:"bytes_indexed"`
	PeakRSSBytes           int64   `json:"peak_rss_bytes,omitempty"`

	FailedDocuments []string `json:"failed_documents,omitempty"`
	Error           string   `json:"error,omitempty"`
	// Fatal: the run could not start, or ended early for a reason that applies to every
	// mailbox (Elasticsearch unreachable, a permission Mimecast refuses).
	Fatal bool `json:"fatal,omitempty"`
	// Interrupted: the run was stopped by a signal before every view was done.
	Interrupted bool `json:"interrupted,omitempty"`
	ExitCode    int  `json:"exit_code"`
}

// QuotaGroup is one quota group's share of a run: the state file's record of it.
type QuotaGroup = state.QuotaGroup

// Record is the summary as the state file records it (state.RunRecord): the same fields under
// the same names, the crawler's totals copied into the record's own.
func (s *Summary) Record() state.RunRecord {
	r := state.RunRecord{
		Command: s.Command, Started: s.Started, Finished: s.Finished, Seconds: s.Seconds, Full: s.Full, Shard: s.Shard,
		DomainsTotal: s.DomainsTotal, DomainsKept: s.DomainsKept, MailboxesEnumerated: s.MailboxesEnumerated,
		MailboxesKept: s.MailboxesKept, Excluded: s.Excluded,
		ViewsTotal: s.ViewsTotal, ViewsComplete: s.ViewsComplete, ViewsFailed: s.ViewsFailed,
		ViewsInterrupted: s.ViewsInterrupted, FailedViews: s.FailedViews,

		Messages: s.Messages, Skipped: s.Skipped, ExcludedSubjects: s.ExcludedSubjects, Attachments: s.Attachments,
		Oversize: s.Oversize, ExcludedNames: s.ExcludedNames, Bytes: s.Bytes, DocsFailed: s.DocsFailed,
		FetchFailed: s.FetchFailed, MalformedBodies: s.MalformedBodies, Deleted: s.Deleted, FromMessage: s.FromMessage,
		NotIndexed: s.NotIndexed, InvalidListed: s.InvalidListed, TextFailed: s.TextFailed, Listed: s.Listed,
		ViewsListed: s.ViewsListed,

		MailboxesRemoved: s.MailboxesRemoved, RemovalIncomplete: s.RemovalIncomplete, RemovalRefused: s.RemovalRefused,

		APICalls: s.APICalls, APIRateLimited: s.APIRateLimited, APIErrors: s.APIErrors, APIQuotaCalls: s.APIQuotaCalls,
		APIDownloads: s.APIDownloads, APITokenRequests: s.APITokenRequests, APIQuotaWaitSeconds: s.APIQuotaWaitSeconds,
		APIQuotaGroups: s.APIQuotaGroups, APIConcurrency: s.APIConcurrency, APIConcurrencyInitial: s.APIConcurrencyInitial,
		APIConcurrencyLimit: s.APIConcurrencyLimit, APIConcurrencyLimitAvg: s.APIConcurrencyLimitAvg,
		APIConcurrencyLimitMax: s.APIConcurrencyLimitMax, APIInflightMax: s.APIInflightMax,
		BulkRequests: s.BulkRequests, BytesIndexed: s.BytesIndexed, PeakRSSBytes: s.PeakRSSBytes,

		FailedDocuments: s.FailedDocuments, Error: s.Error, Fatal: s.Fatal, Interrupted: s.Interrupted, ExitCode: s.ExitCode,
	}
	for _, m := range s.TextMisses {
		r.TextMisses = append(r.TextMisses, state.TextMiss{Format: m.Format, Reason: m.Reason, Count: m.Count})
	}
	return r
}

// SummaryOf is the summary a state file's run record holds, for status to show; the inverse
// of Summary.Record.
func SummaryOf(r state.RunRecord) Summary {
	s := Summary{
		Command: r.Command, Started: r.Started, Finished: r.Finished, Seconds: r.Seconds, Full: r.Full, Shard: r.Shard,
		DomainsTotal: r.DomainsTotal, DomainsKept: r.DomainsKept, MailboxesEnumerated: r.MailboxesEnumerated,
		MailboxesKept: r.MailboxesKept, Excluded: r.Excluded,
		ViewsTotal: r.ViewsTotal, ViewsComplete: r.ViewsComplete, ViewsFailed: r.ViewsFailed,
		ViewsInterrupted: r.ViewsInterrupted, FailedViews: r.FailedViews,

		Totals: crawler.Totals{
			Messages: r.Messages, Skipped: r.Skipped, ExcludedSubjects: r.ExcludedSubjects, Attachments: r.Attachments,
			Oversize: r.Oversize, ExcludedNames: r.ExcludedNames, Bytes: r.Bytes, DocsFailed: r.DocsFailed,
			FetchFailed: r.FetchFailed, MalformedBodies: r.MalformedBodies, Deleted: r.Deleted, FromMessage: r.FromMessage,
			NotIndexed: r.NotIndexed, InvalidListed: r.InvalidListed, TextFailed: r.TextFailed, Listed: r.Listed,
			ViewsListed: r.ViewsListed,
		},

		MailboxesRemoved: r.MailboxesRemoved, RemovalIncomplete: r.RemovalIncomplete, RemovalRefused: r.RemovalRefused,

		APICalls: r.APICalls, APIRateLimited: r.APIRateLimited, APIErrors: r.APIErrors, APIQuotaCalls: r.APIQuotaCalls,
		APIDownloads: r.APIDownloads, APITokenRequests: r.APITokenRequests, APIQuotaWaitSeconds: r.APIQuotaWaitSeconds,
		APIQuotaGroups: r.APIQuotaGroups, APIConcurrency: r.APIConcurrency, APIConcurrencyInitial: r.APIConcurrencyInitial,
		APIConcurrencyLimit: r.APIConcurrencyLimit, APIConcurrencyLimitAvg: r.APIConcurrencyLimitAvg,
		APIConcurrencyLimitMax: r.APIConcurrencyLimitMax, APIInflightMax: r.APIInflightMax,
		BulkRequests: r.BulkRequests, BytesIndexed: r.BytesIndexed, PeakRSSBytes: r.PeakRSSBytes,

		FailedDocuments: r.FailedDocuments, Error: r.Error, Fatal: r.Fatal, Interrupted: r.Interrupted, ExitCode: r.ExitCode,
	}
	for _, m := range r.TextMisses {
		s.TextMisses = append(s.TextMisses, crawler.TextMiss{Format: m.Format, Reason: m.Reason, Count: m.Count})
	}
	return s
}

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
