package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mimecrawl/mimecrawl/internal/job"
)

// plan is a dry run of a crawl (job.Plan), printed as text or (--json) JSON.
func (a *app) plan(ctx context.Context, asJSON bool) int {
	fail := func(err error) int {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	rep, err := job.Plan(ctx, a.env())
	if err != nil {
		return fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(fmt.Errorf("encode the plan: %w", err))
		}
		return exitOK
	}
	a.printPlan(rep)
	return exitOK
}

func (a *app) printPlan(rep job.PlanReport) {
	w := a.stdout
	if rep.Shard != "" {
		fmt.Fprintf(w, "shard %s: only the mailboxes of this shard are kept\n\n", rep.Shard)
	}
	if rep.FirstCrawl {
		fmt.Fprintf(w, "no crawl has run yet (state file %s): the first crawl creates what does not exist\n"+
			"(the state file, index templates and indices) and indexes every kept mailbox view from\n"+
			"messages.start_date.\n\n", rep.StatePath)
	}
	if sn := rep.Snapshot; sn != nil {
		fmt.Fprintf(w, "a crawl is running (pid %d holds the state file): this plan starts from its snapshot of %s\n\n",
			sn.PID, sn.Written.UTC().Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tDECISION\tWHY")
	for _, d := range rep.Domains {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, keptWord(d.Kept), d.Reason)
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "MAILBOX\tDECISION\tWHY")
	for _, m := range rep.Mailboxes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, keptWord(m.Kept), m.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nmailboxes with indexed data that are no longer kept: %d of %d known\n", len(rep.Removal.Gone), len(rep.Removal.Known))
	for _, m := range rep.Removal.Gone {
		fmt.Fprintf(w, "  would remove %s\n", m)
	}
	if rep.RemovalRefuse != "" {
		fmt.Fprintf(w, "  but the guard would refuse: %s\n", rep.RemovalRefuse)
	}
	if n := len(rep.Removal.OtherShards); n > 0 {
		fmt.Fprintf(w, "  %d mailboxes of this state file now belong to another shard: never removed by this one\n", n)
	}
	if rep.FullSince != nil {
		fmt.Fprintf(w, "\na full re-crawl started %s is unfinished; views it has not done are re-crawled in full\n", rep.FullSince.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "\nmessages per mailbox view in the window a crawl would list (from list calls):")
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tPASS\tFROM\tTO\tMESSAGES")
	for _, v := range rep.Views {
		for _, d := range v.Damaged {
			fmt.Fprintf(a.stderr, "mimecrawl plan: %s %s: %s lies in the future; a crawl falls back to a safe position\n", v.Mailbox, v.View, d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", v.Mailbox, v.View, v.Pass, v.From.Format(time.RFC3339), v.To.Format(time.RFC3339), v.Messages)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d mailboxes kept, %d messages listed in all (those already indexed are skipped); nothing was changed\n", rep.MailboxesKept, rep.Messages)
}

func keptWord(k bool) string {
	if k {
		return "keep"
	}
	return "exclude"
}
