package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mimecrawl/mimecrawl/config"
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

func newSnapshotState(rep StatusReport) snapshotState {
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

// PlanView is what a crawl would do with one mailbox view.
type PlanView struct {
	Mailbox  string    `json:"mailbox"`
	View     string    `json:"view"`
	Pass     string    `json:"pass"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Messages int       `json:"messages"`
	// Damaged lists positions found in the future; a crawl falls back to a safe position.
	Damaged []string `json:"damaged,omitempty"`
}

// PlanReport is what a crawl would do, as `plan` prints it (text or JSON).
type PlanReport struct {
	StatePath     string             `json:"state_path"`
	Shard         string             `json:"shard,omitempty"`
	FirstCrawl    bool               `json:"first_crawl"`
	Domains       []crawler.Decision `json:"domains"`
	Mailboxes     []crawler.Decision `json:"mailboxes"`
	Removal       crawler.Removal    `json:"removal"`
	RemovalRefuse string             `json:"removal_refused,omitempty"`
	FullSince     *time.Time         `json:"full_recrawl_pending_since,omitempty"`
	Views         []PlanView         `json:"views"`
	MailboxesKept int                `json:"mailboxes_kept"`
	Messages      int                `json:"messages"`
	// Snapshot is set when a running crawl held the state file and the plan was made from the
	// snapshot that crawl wrote (as status shows it).
	Snapshot *state.SnapshotInfo `json:"snapshot,omitempty"`
}

// Plan is a dry run of a crawl: it reads the state file and calls only listing endpoints, and
// writes nothing anywhere. Before the first crawl (no state file) it plans that first crawl.
// It decides each view's window by the rule a crawl uses (crawler.PlanPass) and removal by the
// guard a crawl uses (crawler.PlanRemoval).
func Plan(ctx context.Context, env Env) (PlanReport, error) {
	cfg := env.Config
	rep := PlanReport{StatePath: cfg.State.Path, Shard: env.Shard.String()}
	// plan reads what status reads: the state file, or, while a crawl holds it, that crawl's
	// snapshot; and "no crawl has run yet" means the same to both.
	srep, _, err := Status(cfg, env.Shard)
	if err != nil {
		return rep, err
	}
	var st planState = noState{}
	switch {
	case srep.NoCrawlYet:
		rep.FirstCrawl = true
	case srep.Snapshot != nil:
		rep.Snapshot = srep.Snapshot
		st = newSnapshotState(srep)
	default:
		store, err := state.Open(cfg.State.Path, StoreOptions(cfg, true))
		if errors.Is(err, state.ErrLocked) {
			// A crawl took the file between the two opens: read its snapshot as status would.
			if srep, _, err = Status(cfg, env.Shard); err == nil && srep.Snapshot != nil {
				rep.Snapshot = srep.Snapshot
				st = newSnapshotState(srep)
				break
			}
		}
		if err != nil {
			return rep, err
		}
		defer store.Close()
		st = store
	}
	client, err := archiveClient(cfg, env.Log)
	if err != nil {
		return rep, err
	}
	defer client.Close()
	enum, err := Enumerate(ctx, cfg, client, env.Shard)
	if err != nil {
		return rep, err
	}
	rep.Domains, rep.Mailboxes, rep.MailboxesKept = enum.Domains, enum.Mailboxes, len(enum.Kept)

	removal, rerr := crawler.PlanRemoval(st, enum.Kept, env.Shard, cfg.Safety.MaxMailboxRemovalRatio, false)
	if rerr != nil && !errors.Is(rerr, crawler.ErrRemovalRefused) {
		return rep, rerr
	}
	rep.Removal = removal
	if rerr != nil {
		rep.RemovalRefuse = rerr.Error()
	}

	// The same window rule as crawl (crawler.PlanPass): resume points, an unfinished full
	// re-crawl and damaged positions are taken into account exactly as a crawl would.
	fullSince, fullPending, err := st.FullSince()
	if err != nil {
		return rep, err
	}
	if fullPending {
		rep.FullSince = &fullSince
	}
	wo := crawler.WindowOptions{StartDate: cfg.Messages.StartDate.Time, DeltaTokenOffset: cfg.Performance.DeltaTokenOffset.D(),
		Full: fullPending, FullSince: fullSince}
	rep.Views, err = planViews(ctx, client, st, enum.Kept, cfg, wo, time.Now().UTC())
	if err != nil {
		return rep, err
	}
	for _, v := range rep.Views {
		rep.Messages += v.Messages
	}
	return rep, nil
}

// lister is the part of the Mimecast client plan calls.
type lister interface {
	ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func([]api.MessageSummary) error) error
}

// planViews plans every view of every kept mailbox, mailbox by mailbox, view by view in the
// report. Like a crawl it lists at most parallelism.mailboxes views at once, so that a plan of
// thousands of mailboxes takes about as long as a crawl with nothing new, not the sum of every
// listing; the first error stops the others and is returned.
func planViews(ctx context.Context, client lister, st planState, kept []crawler.Mailbox, cfg *config.Config, wo crawler.WindowOptions, now time.Time) ([]PlanView, error) {
	views := make([]PlanView, len(kept)*len(cfg.Messages.Views))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(cfg.Parallelism.Mailboxes, 1))
dispatch:
	for i, m := range kept {
		for j, view := range cfg.Messages.Views {
			if gctx.Err() != nil {
				break dispatch // a view failed, or ctx ended: start no more
			}
			n := i*len(cfg.Messages.Views) + j
			g.Go(func() error {
				v, err := planView(gctx, client, st, m.Address, view, cfg.Performance.PageSize, wo, now)
				views[n] = v
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return views, nil
}

// planView is what a crawl would do with one view: its pass and window, and the messages a
// listing of that window finds.
func planView(ctx context.Context, client lister, st planState, mailbox, view string, pageSize int, wo crawler.WindowOptions, now time.Time) (PlanView, error) {
	key := state.Key{Mailbox: mailbox, View: view}
	pos, _, err := st.Position(key)
	if err != nil {
		return PlanView{}, err
	}
	failed, err := st.FailedMessageIDs(key)
	if err != nil {
		return PlanView{}, err
	}
	pp := crawler.PlanPass(pos, len(failed) > 0, wo, now)
	v := PlanView{Mailbox: mailbox, View: view, Pass: passWord(pp), From: pp.From, To: pp.To}
	for _, d := range pp.Damaged {
		v.Damaged = append(v.Damaged, fmt.Sprint(d))
	}
	if !pp.To.Before(pp.From) {
		f := api.MessageListFilter{View: view, Mailbox: mailbox, Start: api.FormatTime(pp.From), End: api.FormatTime(pp.To)}
		err = client.ListMessages(ctx, f, pageSize, func(page []api.MessageSummary) error {
			v.Messages += len(page)
			return nil
		})
		if err != nil {
			return PlanView{}, fmt.Errorf("list %s %s: %w", mailbox, view, err)
		}
	}
	return v, nil
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
