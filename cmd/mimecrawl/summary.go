package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Summary is what a run did, printed at its end and kept in the state file.
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

// QuotaGroup is one quota group's share of a run.
type QuotaGroup struct {
	Calls       int64   `json:"calls"`
	RateLimited int64   `json:"rate_limited"`
	WaitSeconds float64 `json:"quota_wait_seconds"`
}

// setAPI takes the client's call statistics.
func (s *Summary) setAPI(st mimecast.Stats) {
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
	s.setConcurrency(st.Concurrency)
}

// quotaSince is what a quota counted between two snapshots of the client's statistics: the
// calls, and per group the calls, 429s and wait.
func quotaSince(now, before mimecast.Stats) (int64, map[string]QuotaGroup) {
	var groups map[string]QuotaGroup
	for g, gs := range now.Groups {
		b := before.Groups[g]
		if gs.Calls == b.Calls && gs.QuotaWait == b.QuotaWait {
			continue
		}
		if groups == nil {
			groups = map[string]QuotaGroup{}
		}
		groups[g] = QuotaGroup{Calls: gs.Calls - b.Calls, RateLimited: gs.RateLimited - b.RateLimited, WaitSeconds: (gs.QuotaWait - b.QuotaWait).Seconds()}
	}
	return now.APICalls - before.APICalls, groups
}

// quotaWait sums the groups' waits.
func quotaWait(groups map[string]QuotaGroup) float64 {
	var w float64
	for _, q := range groups {
		w += q.WaitSeconds
	}
	return w
}

// quotaText is the quota's line: calls per group, then the time waited for it.
func (s *Summary) quotaText() string {
	groups := make([]string, 0, len(s.APIQuotaGroups))
	for g := range s.APIQuotaGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		q := s.APIQuotaGroups[g]
		parts = append(parts, fmt.Sprintf("%s %d (%d answered 429, waited %.1fs)", g, q.Calls, q.RateLimited, q.WaitSeconds))
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	perMinute := 0.0
	if s.Seconds > 0 {
		perMinute = float64(s.APIQuotaCalls) / s.Seconds * 60
	}
	return fmt.Sprintf("%d calls (%.0f/min): %s; waited %.1fs in all", s.APIQuotaCalls, perMinute, strings.Join(parts, ", "), s.APIQuotaWaitSeconds)
}

// setConcurrency takes the limiter's numbers; a client without a bound leaves them unset.
func (s *Summary) setConcurrency(c mimecast.ConcurrencyStats) {
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

// Print writes the summary for a person: one screen at most.
func (s *Summary) Print(w io.Writer) {
	rate := 0.0
	if s.Seconds > 0 {
		rate = float64(s.Messages) / s.Seconds
	}
	shard := ""
	if s.Shard != "" {
		shard = ", shard " + s.Shard
	}
	fmt.Fprintf(w, "\nmimecrawl %s summary (%s%s, %.1fs)\n", s.Command, map[bool]string{true: "full re-crawl", false: "incremental"}[s.Full], shard, s.Seconds)
	fmt.Fprintf(w, "  domains       %d kept of %d\n", s.DomainsKept, s.DomainsTotal)
	fmt.Fprintf(w, "  mailboxes     %d kept of %d enumerated", s.MailboxesKept, s.MailboxesEnumerated)
	if s.MailboxesRemoved > 0 {
		fmt.Fprintf(w, ", %d removed", s.MailboxesRemoved)
	}
	if len(s.RemovalRefused) > 0 {
		fmt.Fprintf(w, ", removal of %d refused by the guard", len(s.RemovalRefused))
	}
	fmt.Fprintln(w)
	keys := make([]string, 0, len(s.Excluded))
	for k := range s.Excluded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "    excluded    %d: %s\n", s.Excluded[k], k)
	}
	fmt.Fprintf(w, "  views         %d complete, %d failed, %d interrupted\n", s.ViewsComplete, s.ViewsFailed, s.ViewsInterrupted)
	fmt.Fprintf(w, "  messages      %d indexed (%.1f/s), %d already indexed, %d excluded by subject\n", s.Messages, rate, s.Skipped, s.ExcludedSubjects)
	fmt.Fprintf(w, "  attachments   %d indexed (%d taken from the message, no download), %d over the size cap (metadata only), %d excluded by name\n",
		s.Attachments, s.FromMessage, s.Oversize, s.ExcludedNames)
	fmt.Fprintf(w, "  downloaded    %s; indexed %s in %d bulk requests\n", humanBytes(s.Bytes), humanBytes(s.BytesIndexed), s.BulkRequests)
	if s.Deleted > 0 || s.Full {
		fmt.Fprintf(w, "  deleted       %d documents no longer in the archive or no longer kept\n", s.Deleted)
	}
	if s.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "  memory        %s peak resident\n", humanBytes(s.PeakRSSBytes))
	}
	fmt.Fprintf(w, "  quota         %s\n", s.quotaText())
	fmt.Fprintf(w, "  api           %d requests (%d quota-counted calls, %d downloads, %d token requests), %d answered 429",
		s.APICalls, s.APIQuotaCalls, s.APIDownloads, s.APITokenRequests, s.APIRateLimited)
	if len(s.APIErrors) > 0 {
		codes := make([]int, 0, len(s.APIErrors))
		for c := range s.APIErrors {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%d×%d", s.APIErrors[c], c))
		}
		fmt.Fprintf(w, ", errors %s", strings.Join(parts, " "))
	}
	fmt.Fprintln(w)
	if s.APIConcurrency != "" {
		fmt.Fprintf(w, "  concurrency   %s, %d → %d (avg %.1f, highest %d), max in flight %d\n",
			s.APIConcurrency, s.APIConcurrencyInitial, s.APIConcurrencyLimit, s.APIConcurrencyLimitAvg, s.APIConcurrencyLimitMax, s.APIInflightMax)
	}
	fmt.Fprintf(w, "  failures      %d documents rejected, %d messages not fetched, %d listed messages unusable, %d bodies unparseable\n",
		s.DocsFailed, s.FetchFailed, s.InvalidListed, s.MalformedBodies)
	if s.NotIndexed > 0 {
		fmt.Fprintf(w, "  not indexed   %d documents did not reach Elasticsearch; the next run sends them again\n", s.NotIndexed)
	}
	show := func(title string, lines []string) {
		for i, l := range lines {
			if i == 8 {
				fmt.Fprintf(w, "    … and %d more (see `mimecrawl status`)\n", len(lines)-i)
				break
			}
			fmt.Fprintf(w, "    %s %s\n", title, l)
		}
	}
	show("view", s.FailedViews)
	show("document", s.FailedDocuments)
	if s.Error != "" {
		fmt.Fprintf(w, "  error         %s\n", s.Error)
	}
	fmt.Fprintf(w, "  exit code     %d\n", s.ExitCode)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
