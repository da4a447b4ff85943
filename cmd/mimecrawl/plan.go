package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// plan is a dry run: it reads the state file and calls only listing endpoints, and writes
// nothing anywhere.
func (a *app) plan(ctx context.Context) int {
	st, err := a.openStore(true)
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	defer st.Close()
	client, err := a.mimecastClient()
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	defer client.Close()
	enum, err := crawler.Enumerate(ctx, client, a.rules(), a.cfg.Performance.PageSize, a.cfg.Parallelism.Mailboxes)
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	w := a.stdout
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tDECISION\tWHY")
	for _, d := range enum.Domains {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, keptWord(d.Kept), d.Reason)
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "MAILBOX\tDECISION\tWHY")
	for _, m := range enum.Mailboxes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, keptWord(m.Kept), m.Reason)
	}
	tw.Flush()

	removal, rerr := crawler.PlanRemoval(st, enum.Kept, a.cfg.Safety.MaxMailboxRemovalRatio, false)
	if rerr != nil && !errors.Is(rerr, crawler.ErrRemovalRefused) {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", rerr)
		return exitFatal
	}
	fmt.Fprintf(w, "\nmailboxes with indexed data that are no longer kept: %d of %d known\n", len(removal.Gone), len(removal.Known))
	for _, m := range removal.Gone {
		fmt.Fprintf(w, "  would remove %s\n", m)
	}
	if rerr != nil {
		fmt.Fprintf(w, "  but the guard would refuse: %v\n", rerr)
	}

	// The same window rule as crawl (crawler.PlanPass): resume points, an unfinished full
	// re-crawl and damaged positions are taken into account exactly as a crawl would.
	fullSince, fullPending, err := st.FullSince()
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	wo := crawler.WindowOptions{StartDate: a.cfg.Messages.StartDate.Time, DeltaTokenOffset: a.cfg.Performance.DeltaTokenOffset.D(),
		Full: fullPending, FullSince: fullSince}
	if fullPending {
		fmt.Fprintf(w, "\na full re-crawl started %s is unfinished; views it has not done are re-crawled in full\n", fullSince.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "\nmessages per mailbox view in the window a crawl would list (from list calls):")
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tPASS\tFROM\tTO\tMESSAGES")
	now := time.Now().UTC()
	total := 0
	for _, m := range enum.Kept {
		for _, view := range a.cfg.Messages.Views {
			key := state.Key{Mailbox: m.Address, View: view}
			pos, _, err := st.Position(key)
			if err != nil {
				fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
				return exitFatal
			}
			failed, err := st.FailedMessageIDs(key)
			if err != nil {
				fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
				return exitFatal
			}
			pp := crawler.PlanPass(pos, len(failed) > 0, wo, now)
			for _, d := range pp.Damaged {
				fmt.Fprintf(a.stderr, "mimecrawl plan: %s %s: %s lies in the future; a crawl falls back to a safe position\n", m.Address, view, d)
			}
			n := 0
			if !pp.To.Before(pp.From) {
				f := api.MessageListFilter{View: view, Mailbox: m.Address, Start: api.FormatTime(pp.From), End: api.FormatTime(pp.To)}
				err = client.ListMessages(ctx, f, a.cfg.Performance.PageSize, func(page []api.MessageSummary) error {
					n += len(page)
					return nil
				})
				if err != nil {
					fmt.Fprintf(a.stderr, "mimecrawl plan: list %s %s: %v\n", m.Address, view, err)
					return exitFatal
				}
			}
			total += n
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", m.Address, view, passWord(pp), pp.From.Format(time.RFC3339), pp.To.Format(time.RFC3339), n)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d mailboxes kept, %d messages listed in all (those already indexed are skipped); nothing was changed\n", len(enum.Kept), total)
	return exitOK
}

func keptWord(k bool) string {
	if k {
		return "keep"
	}
	return "exclude"
}

// passWord names the kind of pass a crawl would run.
func passWord(pp crawler.PassPlan) string {
	kind := "incremental"
	if pp.Pass.Full {
		kind = "full"
	}
	switch {
	case pp.Resumed:
		return kind + ", resumed"
	case pp.Blocked:
		return kind + ", retrying failures"
	}
	return kind
}
