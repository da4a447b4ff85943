package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// alertsRun runs the alerts poller (job.Alerts), printing every pass's summary, and with
// once pushes the metrics (a failure too).
func (a *app) alertsRun(ctx context.Context, once bool, listen string) int {
	m := a.newMetrics()
	args := job.AlertsArgs{Once: once, Metrics: m, Report: func(s *job.AlertsSummary) { a.printAlerts(a.stdout, s) }}
	if listen != "" {
		args.Serve = func(m *metrics.Metrics, h *metrics.Health) (func(), error) { return a.serveMetrics(listen, m, h) }
	}
	code := job.Alerts(ctx, a.env(), args)
	if once {
		a.pushMetrics(m, "alerts")
	}
	return int(code)
}

// printAlerts writes the one-screen summary of a pass.
func (a *app) printAlerts(w io.Writer, s *job.AlertsSummary) {
	if !a.textSummary {
		return // the pass's log line is its summary (see app.textSummary)
	}
	fmt.Fprintf(w, "\nmimecrawl alerts summary (%.1fs, %d API calls)\n", s.Seconds, s.APICalls)
	row(w, "quota", quotaParts(s.Seconds, s.APIQuotaCalls, s.APIQuotaGroups, s.QuotaWaitSeconds())...)
	if s.Error != "" {
		fmt.Fprintf(w, "  error         %s\n", s.Error)
	}
	for _, src := range s.Sources {
		fmt.Fprintf(w, "  %-22s ", src.Source)
		if src.Forbidden {
			fmt.Fprintf(w, "not permitted for this API application (needs %s)\n", src.Permission)
			continue
		}
		noun := "alerts"
		if sp, ok := alerts.Spec(src.Source); ok {
			noun = sp.Records.String()
		}
		fmt.Fprintf(w, "%d records, %d %s indexed, %d already there", src.Records, src.Indexed, noun, src.Existing)
		if n := total(src.Excluded); n > 0 {
			fmt.Fprintf(w, ", %d excluded (%s)", n, excludedText(src.Excluded))
		}
		if src.Malformed > 0 {
			fmt.Fprintf(w, ", %d malformed (%s)", src.Malformed, excludedText(src.MalformedReasons))
		}
		if src.FilterErrors > 0 {
			fmt.Fprintf(w, ", %d filter errors (kept)", src.FilterErrors)
		}
		if src.FilesSkipped > 0 {
			fmt.Fprintf(w, ", %d files skipped", src.FilesSkipped)
		}
		if src.FilesPending > 0 {
			fmt.Fprintf(w, ", %d files pending (read again next pass)", src.FilesPending)
		}
		if src.Repeats > 0 {
			fmt.Fprintf(w, ", %d repeats dropped", src.Repeats)
		}
		if src.Rejected > 0 {
			fmt.Fprintf(w, ", %d rejected by elasticsearch", src.Rejected)
		}
		if src.Pending > 0 {
			fmt.Fprintf(w, ", %d alerts pending (parked, tried again next pass)", src.Pending)
		}
		if src.PagesLooped > 0 {
			fmt.Fprintf(w, ", %d pages looped", src.PagesLooped)
		}
		if src.RecordsUnread > 0 {
			fmt.Fprintf(w, ", %d records unread", src.RecordsUnread)
		}
		if src.Groups > 0 {
			fmt.Fprintf(w, ", %s updated", job.Plural(int64(src.Groups), "group"))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  %-22s cursor %s\n", "", src.Cursor)
		if src.Error != "" {
			fmt.Fprintf(w, "  %-22s error: %s\n", "", src.Error)
		}
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func excludedText(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// printAlertsStatus writes the alerts section of status.
func printAlertsStatus(w io.Writer, path string, cs []alerts.CursorStatus) {
	if cs == nil {
		return
	}
	fmt.Fprintf(w, "\nalerts (%s):\n", path)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CURSOR\tPOSITION\tLATEST EVENT\tLAST POLL\tSTATE")
	for _, c := range cs {
		st := "ok"
		switch {
		case c.Forbidden:
			st = "not permitted for this API application (needs " + c.Permission + ")"
		case c.LastError != "":
			st = "error: " + c.LastError
		}
		if c.Pending > 0 {
			st += fmt.Sprintf(", %d alerts pending", c.Pending)
		}
		if c.FilesPending > 0 {
			st += fmt.Sprintf(", %d files pending", c.FilesPending)
		}
		// Text from the state file: sanitized like the rest of status.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sanitize(c.Name), sanitize(c.Position), fmtTime(c.Latest), fmtTime(c.LastPoll), sanitize(st))
	}
	tw.Flush()
}
