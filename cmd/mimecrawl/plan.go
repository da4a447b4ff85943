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

	fmt.Fprintln(w, "\nnew messages per mailbox view (from list calls):")
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tSINCE\tNEW")
	now := time.Now().UTC()
	total := 0
	for _, m := range enum.Kept {
		for _, view := range a.cfg.Messages.Views {
			pos, _, err := st.Position(state.Key{Mailbox: m.Address, View: view})
			if err != nil {
				fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
				return exitFatal
			}
			from := a.cfg.Messages.StartDate.Time.UTC()
			if !pos.Token.IsZero() {
				if t := pos.Token.Add(a.cfg.Performance.DeltaTokenOffset.D()); t.After(from) {
					from = t
				}
			}
			n := 0
			f := api.MessageListFilter{View: view, Mailbox: m.Address, Start: api.FormatTime(from), End: api.FormatTime(now)}
			err = client.ListMessages(ctx, f, a.cfg.Performance.PageSize, func(page []api.MessageSummary) error {
				for _, msg := range page {
					// The overlap re-lists messages at or before the token; they are not new.
					if t, err := api.ParseTime(msg.Received); err != nil || pos.Token.IsZero() || t.After(pos.Token) {
						n++
					}
				}
				return nil
			})
			if err != nil {
				fmt.Fprintf(a.stderr, "mimecrawl plan: list %s %s: %v\n", m.Address, view, err)
				return exitFatal
			}
			total += n
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", m.Address, view, from.Format(time.RFC3339), n)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d mailboxes kept, %d new messages in all; nothing was changed\n", len(enum.Kept), total)
	return exitOK
}

func keptWord(k bool) string {
	if k {
		return "keep"
	}
	return "exclude"
}
