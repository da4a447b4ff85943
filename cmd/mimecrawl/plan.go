package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// planState is what plan reads from the state file: a *state.Store, or noState before the
// first crawl.
type planState interface {
	crawler.MailboxStore
	Position(k state.Key) (state.Position, bool, error)
	FailedMessageIDs(k state.Key) (map[string]bool, error)
	FullSince() (time.Time, bool, error)
}

// noState is the state of an install where no crawl has run: no mailbox known, no position.
type noState struct{}

func (noState) Mailboxes() ([]string, error) { return nil, nil }
func (noState) DeleteMailbox(string) error   { return state.ErrReadOnly }
func (noState) Position(state.Key) (state.Position, bool, error) {
	return state.Position{}, false, nil
}
func (noState) FailedMessageIDs(state.Key) (map[string]bool, error) { return nil, nil }
func (noState) FullSince() (time.Time, bool, error)                 { return time.Time{}, false, nil }

// snapshotState is the state of a running crawl as its status snapshot shows it: the
// positions, failures and unfinished full re-crawl a plan needs.
type snapshotState struct {
	positions map[state.Key]state.Position
	failed    map[state.Key]map[string]bool
	mailboxes []string
	fullSince time.Time
}

func newSnapshotState(rep statusReport) snapshotState {
	s := snapshotState{positions: map[state.Key]state.Position{}, failed: map[state.Key]map[string]bool{}}
	seen := map[string]bool{}
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	for _, v := range rep.Views {
		p := state.Position{Token: at(v.Token), LastRun: at(v.LastRun), Indexed: v.Indexed, FullDone: at(v.FullDone)}
		if v.PassPending {
			p.Pass = &state.Pass{End: at(v.PassEnd), Low: at(v.ResumeAt), Full: v.FullPending}
		}
		s.positions[state.Key{Mailbox: v.Mailbox, View: v.View}] = p
		if !seen[v.Mailbox] {
			seen[v.Mailbox] = true
			s.mailboxes = append(s.mailboxes, v.Mailbox)
		}
	}
	for _, f := range rep.Failures {
		if s.failed[f.Key] == nil {
			s.failed[f.Key] = map[string]bool{}
		}
		s.failed[f.Key][f.MessageID] = true
	}
	s.fullSince = at(rep.FullSince)
	return s
}

func (s snapshotState) Mailboxes() ([]string, error) { return s.mailboxes, nil }
func (snapshotState) DeleteMailbox(string) error     { return state.ErrReadOnly }
func (s snapshotState) Position(k state.Key) (state.Position, bool, error) {
	p, ok := s.positions[k]
	return p, ok, nil
}
func (s snapshotState) FailedMessageIDs(k state.Key) (map[string]bool, error) {
	return s.failed[k], nil
}
func (s snapshotState) FullSince() (time.Time, bool, error) {
	return s.fullSince, !s.fullSince.IsZero(), nil
}

// planView is what a crawl would do with one mailbox view.
type planView struct {
	Mailbox  string    `json:"mailbox"`
	View     string    `json:"view"`
	Pass     string    `json:"pass"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Messages int       `json:"messages"`
	// Damaged lists positions found in the future; a crawl falls back to a safe position.
	Damaged []string `json:"damaged,omitempty"`
}

// planReport is the outcome of plan, printed as text or (--json) JSON.
type planReport struct {
	StatePath     string             `json:"state_path"`
	Shard         string             `json:"shard,omitempty"`
	FirstCrawl    bool               `json:"first_crawl"`
	Domains       []crawler.Decision `json:"domains"`
	Mailboxes     []crawler.Decision `json:"mailboxes"`
	Removal       crawler.Removal    `json:"removal"`
	RemovalRefuse string             `json:"removal_refused,omitempty"`
	FullSince     *time.Time         `json:"full_recrawl_pending_since,omitempty"`
	Views         []planView         `json:"views"`
	MailboxesKept int                `json:"mailboxes_kept"`
	Messages      int                `json:"messages"`
	// Snapshot is set when a running crawl held the state file and the plan was made from the
	// snapshot that crawl wrote (as status shows it).
	Snapshot *snapshotInfo `json:"snapshot,omitempty"`
}

// plan is a dry run: it reads the state file and calls only listing endpoints, and writes
// nothing anywhere. Before the first crawl (no state file) it plans that first crawl.
func (a *app) plan(ctx context.Context, asJSON bool) int {
	fail := func(err error) int {
		fmt.Fprintf(a.stderr, "mimecrawl plan: %v\n", err)
		return exitFatal
	}
	rep := planReport{StatePath: a.cfg.State.Path, Shard: a.shard.String()}
	// plan reads what status reads: the state file, or, while a crawl holds it, that crawl's
	// snapshot; and "no crawl has run yet" means the same to both.
	srep, _, err := a.statusReport()
	if err != nil {
		return fail(err)
	}
	var st planState = noState{}
	switch {
	case srep.NoCrawlYet:
		rep.FirstCrawl = true
	case srep.Snapshot != nil:
		rep.Snapshot = srep.Snapshot
		st = newSnapshotState(srep)
	default:
		store, err := a.openStore(true)
		if errors.Is(err, state.ErrLocked) {
			// A crawl took the file between the two opens: read its snapshot as status would.
			if srep, _, err = a.statusReport(); err == nil && srep.Snapshot != nil {
				rep.Snapshot = srep.Snapshot
				st = newSnapshotState(srep)
				break
			}
		}
		if err != nil {
			return fail(err)
		}
		defer store.Close()
		st = store
	}
	client, err := a.mimecastClient()
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	enum, err := crawler.Enumerate(ctx, client, a.rules(), a.cfg.Performance.PageSize, a.cfg.Parallelism.Mailboxes)
	if err != nil {
		return fail(err)
	}
	rep.Domains, rep.Mailboxes, rep.MailboxesKept = enum.Domains, enum.Mailboxes, len(enum.Kept)

	removal, rerr := crawler.PlanRemoval(st, enum.Kept, a.shard, a.cfg.Safety.MaxMailboxRemovalRatio, false)
	if rerr != nil && !errors.Is(rerr, crawler.ErrRemovalRefused) {
		return fail(rerr)
	}
	rep.Removal = removal
	if rerr != nil {
		rep.RemovalRefuse = rerr.Error()
	}

	// The same window rule as crawl (crawler.PlanPass): resume points, an unfinished full
	// re-crawl and damaged positions are taken into account exactly as a crawl would.
	fullSince, fullPending, err := st.FullSince()
	if err != nil {
		return fail(err)
	}
	if fullPending {
		rep.FullSince = &fullSince
	}
	wo := crawler.WindowOptions{StartDate: a.cfg.Messages.StartDate.Time, DeltaTokenOffset: a.cfg.Performance.DeltaTokenOffset.D(),
		Full: fullPending, FullSince: fullSince}
	now := time.Now().UTC()
	for _, m := range enum.Kept {
		for _, view := range a.cfg.Messages.Views {
			key := state.Key{Mailbox: m.Address, View: view}
			pos, _, err := st.Position(key)
			if err != nil {
				return fail(err)
			}
			failed, err := st.FailedMessageIDs(key)
			if err != nil {
				return fail(err)
			}
			pp := crawler.PlanPass(pos, len(failed) > 0, wo, now)
			v := planView{Mailbox: m.Address, View: view, Pass: passWord(pp), From: pp.From, To: pp.To}
			for _, d := range pp.Damaged {
				v.Damaged = append(v.Damaged, fmt.Sprint(d))
			}
			if !pp.To.Before(pp.From) {
				f := api.MessageListFilter{View: view, Mailbox: m.Address, Start: api.FormatTime(pp.From), End: api.FormatTime(pp.To)}
				err = client.ListMessages(ctx, f, a.cfg.Performance.PageSize, func(page []api.MessageSummary) error {
					v.Messages += len(page)
					return nil
				})
				if err != nil {
					return fail(fmt.Errorf("list %s %s: %w", m.Address, view, err))
				}
			}
			rep.Messages += v.Messages
			rep.Views = append(rep.Views, v)
		}
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

func (a *app) printPlan(rep planReport) {
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

// passWord names the kind of pass a crawl would run.
func passWord(pp crawler.PassPlan) string {
	kind := "incremental"
	switch {
	case pp.Position.Token.IsZero() && pp.Position.LastRun.IsZero():
		// No pass of this view ever completed: whatever the flags, the whole window is new.
		kind = "first"
	case pp.Pass.Full:
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
