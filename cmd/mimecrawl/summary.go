package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

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
func (s *Summary) quotaText() string { return strings.Join(s.quotaParts(), ", ") }

// quotaParts are the phrases of the quota line: the calls and their rate, each quota group's
// calls, 429s and wait, and the wait in all.
func (s *Summary) quotaParts() []string {
	perMinute := 0.0
	if s.Seconds > 0 {
		perMinute = float64(s.APIQuotaCalls) / s.Seconds * 60
	}
	parts := []string{fmt.Sprintf("%d calls (%.0f/min)", s.APIQuotaCalls, perMinute)}
	groups := make([]string, 0, len(s.APIQuotaGroups))
	for g := range s.APIQuotaGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		q := s.APIQuotaGroups[g]
		parts = append(parts, fmt.Sprintf("%s %d (%d answered 429, waited %.1fs)", g, q.Calls, q.RateLimited, q.WaitSeconds))
	}
	return append(parts, fmt.Sprintf("waited %.1fs in all", s.APIQuotaWaitSeconds))
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

// Print writes the summary for a person: one screen at most, each line within 80 columns
// (see row).
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
	row(w, "domains", fmt.Sprintf("%d kept of %d", s.DomainsKept, s.DomainsTotal))
	s.printExcluded(w, "domain ")
	mailboxes := []string{fmt.Sprintf("%d kept of %d enumerated", s.MailboxesKept, s.MailboxesEnumerated)}
	if s.MailboxesRemoved > 0 {
		mailboxes = append(mailboxes, fmt.Sprintf("%d removed", s.MailboxesRemoved))
	}
	if len(s.RemovalRefused) > 0 {
		mailboxes = append(mailboxes, fmt.Sprintf("removal of %d refused by the guard", len(s.RemovalRefused)))
	}
	row(w, "mailboxes", mailboxes...)
	s.printExcluded(w, "mailbox ")
	views := []string{fmt.Sprintf("%d complete", s.ViewsComplete), fmt.Sprintf("%d failed", s.ViewsFailed), fmt.Sprintf("%d interrupted", s.ViewsInterrupted)}
	if n := s.ViewsTotal - s.ViewsComplete - s.ViewsFailed - s.ViewsInterrupted; n > 0 {
		views = append(views, fmt.Sprintf("%d not started", n))
	}
	row(w, "views", views...)
	row(w, "messages", fmt.Sprintf("%d indexed (%.1f/s)", s.Messages, rate), fmt.Sprintf("%d already indexed", s.Skipped),
		fmt.Sprintf("%d excluded by subject", s.ExcludedSubjects))
	row(w, "attachments", fmt.Sprintf("%d indexed (%d taken from the message, no download)", s.Attachments, s.FromMessage),
		fmt.Sprintf("%d over the size cap (metadata only)", s.Oversize), fmt.Sprintf("%d excluded by name", s.ExcludedNames))
	if s.TextFailed > 0 {
		row(w, "no text", textMissLine(s.TextFailed, s.TextMisses))
	}
	row(w, "downloaded", humanBytes(s.Bytes), fmt.Sprintf("indexed %s in %s", humanBytes(s.BytesIndexed), plural(s.BulkRequests, "bulk request")))
	if s.Deleted > 0 || s.Full {
		row(w, "deleted", fmt.Sprintf("%s no longer in the archive or no longer kept", plural(s.Deleted, "document")))
	}
	if s.PeakRSSBytes > 0 {
		row(w, "memory", humanBytes(s.PeakRSSBytes)+" peak resident")
	}
	row(w, "quota", s.quotaParts()...)
	api := []string{plural(s.APICalls, "request"), fmt.Sprintf("%d quota-counted", s.APIQuotaCalls), plural(s.APIDownloads, "download"),
		plural(s.APITokenRequests, "token request"), fmt.Sprintf("%d answered 429", s.APIRateLimited)}
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
		api = append(api, "errors "+strings.Join(parts, " "))
	}
	row(w, "api", api...)
	if s.APIConcurrency != "" {
		row(w, "concurrency", fmt.Sprintf("%s, %d → %d (avg %.1f, highest %d)", s.APIConcurrency, s.APIConcurrencyInitial, s.APIConcurrencyLimit, s.APIConcurrencyLimitAvg, s.APIConcurrencyLimitMax),
			fmt.Sprintf("max in flight %d", s.APIInflightMax))
	}
	row(w, "failures", fmt.Sprintf("%d documents rejected", s.DocsFailed), fmt.Sprintf("%d messages not fetched", s.FetchFailed),
		fmt.Sprintf("%d listed messages unusable", s.InvalidListed), fmt.Sprintf("%d bodies unparseable", s.MalformedBodies))
	if s.NotIndexed > 0 {
		row(w, "not indexed", fmt.Sprintf("%d documents did not reach Elasticsearch; the next run sends them again", s.NotIndexed))
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
		row(w, "error", s.Error)
	}
	row(w, "exit code", fmt.Sprint(s.ExitCode))
}

// printExcluded writes the exclusions whose reason starts with prefix ("domain ", "mailbox ")
// under the line they belong to.
func (s *Summary) printExcluded(w io.Writer, prefix string) {
	keys := make([]string, 0, len(s.Excluded))
	for k := range s.Excluded {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		row(w, "  excluded", fmt.Sprintf("%d: %s", s.Excluded[k], strings.TrimPrefix(k, prefix)))
	}
}

// summaryWidth is the width summary lines keep to: a terminal's default.
const summaryWidth = 80

// row writes one summary line: the label in its column, then parts joined by ", ". A line
// that would pass summaryWidth goes on under the first part, broken between parts, never in
// the middle of one.
func row(w io.Writer, label string, parts ...string) {
	const indent = 16 // "  " + the label column
	var b strings.Builder
	fmt.Fprintf(&b, "  %-13s %s", label, parts[0])
	col := utf8.RuneCountInString(b.String())
	for _, p := range parts[1:] {
		n := utf8.RuneCountInString(p)
		if col+2+n > summaryWidth {
			b.WriteString(",\n" + strings.Repeat(" ", indent))
			col = indent
		} else {
			b.WriteString(", ")
			col += 2
		}
		b.WriteString(p)
		col += n
	}
	fmt.Fprintln(w, b.String())
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

// plural writes n and noun, with an s unless n is one: "1 attachment", "2 attachments".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// textMissLine says how many attachments were indexed without text and why, by reason and
// format: "3 attachments indexed without text: 2 no_text_layer pdf, 1 corrupt docx".
func textMissLine(total int64, misses []crawler.TextMiss) string {
	parts := make([]string, 0, len(misses))
	for _, m := range misses {
		parts = append(parts, fmt.Sprintf("%d %s %s", m.Count, m.Reason, m.Format))
	}
	line := plural(total, "attachment") + " indexed without text"
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	return line
}
