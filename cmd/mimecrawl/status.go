package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mimecrawl/mimecrawl/internal/job"
)

// status reads the state file only, and needs no credentials. bbolt lets one writer hold the
// file, so while a crawl runs status reads the snapshot the crawl writes at each checkpoint
// (see job.Status) and says how old it is.
func (a *app) status(asJSON bool) int {
	rep, code, err := job.Status(a.cfg, a.shard)
	exit := int(code)
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl status: %v\n", err)
		return exitFatal
	}
	if rep.Damage != "" {
		fmt.Fprintf(a.stderr, "mimecrawl status: %s\n", sanitize(rep.Damage))
	}
	// The alerts state file is the poller's, apart from the crawl's (job.StatusAlerts).
	exit = worst(exit, int(job.StatusAlerts(a.cfg, &rep)))
	if rep.AlertsError != "" {
		fmt.Fprintf(a.stderr, "mimecrawl status: alerts: %s\n", sanitize(rep.AlertsError))
	}
	rep.EmptyLists()
	if asJSON {
		// encoding/json makes every string valid UTF-8, those of the run records too (decoded
		// by the state package).
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(a.stderr, "mimecrawl status: encode the report: %v\n", err)
			return exitFatal
		}
		return exit
	}
	a.printStatus(rep)
	printAlertsStatus(a.stdout, a.cfg.AlertsStatePath(), rep.Alerts)
	if rep.AlertsNote != "" {
		fmt.Fprintf(a.stdout, "\nalerts: %s\n", rep.AlertsNote)
	}
	if rep.AlertsError != "" {
		fmt.Fprintf(a.stdout, "\nalerts (%s): cannot be read: %s\n", a.cfg.AlertsStatePath(), sanitize(rep.AlertsError))
	}
	return exit
}

// sanitize makes text from the state file safe to print: valid UTF-8, without control
// characters that would move the cursor or rewrite the terminal.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' {
			return '\uFFFD'
		}
		return r
	}, s)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *app) printStatus(rep job.StatusReport) {
	if rep.Shard != "" {
		fmt.Fprintf(a.stdout, "shard %s\n", rep.Shard)
	}
	if rep.NoCrawlYet && rep.Snapshot == nil {
		fmt.Fprintf(a.stdout, "no crawl has run yet (state file %s). `mimecrawl plan` shows what the first crawl would do.\n", rep.StatePath)
		return
	}
	if sn := rep.Snapshot; sn != nil {
		fmt.Fprintf(a.stdout, "a crawl is running (pid %d holds the state file): this is its snapshot of %s, %s old\n",
			sn.PID, sn.Written.UTC().Format(time.RFC3339), sn.Age)
		if sn.ViewsTotal > 0 {
			fmt.Fprintf(a.stdout, "running crawl: views %d/%d, %d messages indexed so far\n", sn.ViewsDone, sn.ViewsTotal, sn.Messages)
		}
	}
	fmt.Fprintf(a.stdout, "state file %s: %d mailbox views, %d failed documents\n", rep.StatePath, len(rep.Views), len(rep.Failures))
	if rep.FullSince != nil {
		fmt.Fprintf(a.stdout, "full re-crawl pending since %s: the next crawl goes on with it\n", fmtTime(rep.FullSince))
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	// DOCUMENTS counts what each view indexed over all runs, messages and attachments alike;
	// the per-run numbers are under "recent runs".
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tDELTA TOKEN\tLAST RUN\tDOCUMENTS\tFAILURES\tPENDING")
	for _, v := range rep.Views {
		pending := "-"
		if v.PassPending {
			pending = "pass"
			if v.FullPending {
				pending = "full pass"
			}
			if v.ResumeAt != nil {
				pending += " (resume at " + fmtTime(v.ResumeAt) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", sanitize(v.Mailbox), sanitize(v.View), fmtTime(v.Token), fmtTime(v.LastRun), v.Indexed, v.Failures, pending)
	}
	tw.Flush()
	fmt.Fprintln(a.stdout, "(DOCUMENTS: messages and attachments indexed over all runs)")
	if len(rep.Failures) > 0 {
		fmt.Fprintln(a.stdout, "\nfailed documents:")
		for _, f := range rep.Failures {
			what := "message"
			if f.AttachmentID != "" {
				what = "attachment " + f.AttachmentID + " of message"
			}
			fmt.Fprintln(a.stdout, sanitize(fmt.Sprintf("  %s %s %s %s: %d %s (%s)", f.Key.Mailbox, f.Key.View, what, f.MessageID, f.Status, f.Reason, f.At.Format(time.RFC3339))))
		}
	}
	if len(rep.Runs) > 0 {
		fmt.Fprintln(a.stdout, "\nrecent runs:")
		for _, r := range rep.Runs {
			s := job.SummaryOf(r)
			fmt.Fprintf(a.stdout, "  %s  %-5s full=%-5v %6.1fs  exit %d  %s\n", s.Started.Format(time.RFC3339), s.Command, s.Full, s.Seconds, s.ExitCode, runLine(s))
			if s.TextFailed > 0 {
				fmt.Fprintf(a.stdout, "    %s\n", textMissLine(s.TextFailed, s.TextMisses))
			}
			fmt.Fprintf(a.stdout, "    quota %s\n", sanitize(strings.Join(quotaParts(s.Seconds, s.APIQuotaCalls, s.APIQuotaGroups, s.APIQuotaWaitSeconds), ", ")))
		}
	}
}

// runLine describes one recorded run: what it indexed and how its views ended. A run stopped
// by a signal reads "interrupted", not the cancellation error that stopping it produced.
func runLine(s job.Summary) string {
	var b strings.Builder
	if s.Interrupted {
		b.WriteString("interrupted, ")
	}
	fmt.Fprintf(&b, "%d messages, %s, %d deleted, views %d complete, %d failed, %d interrupted",
		s.Messages, job.Plural(s.Attachments, "attachment"), s.Deleted, s.ViewsComplete, s.ViewsFailed, s.ViewsInterrupted)
	if s.Error != "" && !s.Interrupted {
		fmt.Fprintf(&b, "; error: %s", sanitize(s.Error))
	}
	return b.String()
}
