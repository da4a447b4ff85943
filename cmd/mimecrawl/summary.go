package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/internal/job"
)

// quotaParts are the phrases of a run's or a pass's quota line: the calls and their rate over
// seconds, each quota group's calls, 429s and wait, and the wait in all.
func quotaParts(seconds float64, calls int64, groups map[string]job.QuotaGroup, waitSeconds float64) []string {
	perMinute := 0.0
	if seconds > 0 {
		perMinute = float64(calls) / seconds * 60
	}
	parts := []string{fmt.Sprintf("%d calls (%.0f/min)", calls, perMinute)}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		q := groups[g]
		parts = append(parts, fmt.Sprintf("%s %d (%d answered 429, waited %.1fs)", g, q.Calls, q.RateLimited, q.WaitSeconds))
	}
	return append(parts, fmt.Sprintf("waited %.1fs in all", waitSeconds))
}

// printSummary writes the summary of a crawl for a person: one screen at most, each line
// within 80 columns (see row).
func printSummary(w io.Writer, s *job.Summary) {
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
	printExcluded(w, s, "domain ")
	mailboxes := []string{fmt.Sprintf("%d kept of %d enumerated", s.MailboxesKept, s.MailboxesEnumerated)}
	if s.MailboxesRemoved > 0 {
		mailboxes = append(mailboxes, fmt.Sprintf("%d removed", s.MailboxesRemoved))
	}
	if len(s.RemovalRefused) > 0 {
		mailboxes = append(mailboxes, fmt.Sprintf("removal of %d refused by the guard", len(s.RemovalRefused)))
	}
	row(w, "mailboxes", mailboxes...)
	printExcluded(w, s, "mailbox ")
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
	row(w, "downloaded", job.HumanBytes(s.Bytes), fmt.Sprintf("indexed %s in %s", job.HumanBytes(s.BytesIndexed), job.Plural(s.BulkRequests, "bulk request")))
	if s.Deleted > 0 || s.Full {
		row(w, "deleted", fmt.Sprintf("%s no longer in the archive or no longer kept", job.Plural(s.Deleted, "document")))
	}
	if s.PeakRSSBytes > 0 {
		row(w, "memory", job.HumanBytes(s.PeakRSSBytes)+" peak resident")
	}
	row(w, "quota", quotaParts(s.Seconds, s.APIQuotaCalls, s.APIQuotaGroups, s.APIQuotaWaitSeconds)...)
	api := []string{job.Plural(s.APICalls, "request"), fmt.Sprintf("%d quota-counted", s.APIQuotaCalls), job.Plural(s.APIDownloads, "download"),
		job.Plural(s.APITokenRequests, "token request"), fmt.Sprintf("%d answered 429", s.APIRateLimited)}
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
func printExcluded(w io.Writer, s *job.Summary, prefix string) {
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

// textMissLine says how many attachments were indexed without text and why, by reason and
// format: "3 attachments indexed without text: 2 no_text_layer pdf, 1 corrupt docx".
func textMissLine(total int64, misses []crawler.TextMiss) string {
	parts := make([]string, 0, len(misses))
	for _, m := range misses {
		parts = append(parts, fmt.Sprintf("%d %s %s", m.Count, m.Reason, m.Format))
	}
	line := job.Plural(total, "attachment") + " indexed without text"
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	return line
}
