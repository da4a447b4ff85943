package job

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// mapState is a planState of fixed positions and failures.
type mapState struct {
	noState
	positions map[state.Key]state.Position
	failed    map[state.Key]map[string]bool
}

func (s mapState) Position(k state.Key) (state.Position, bool, error) {
	p, ok := s.positions[k]
	return p, ok, nil
}
func (s mapState) FailedMessageIDs(k state.Key) (map[string]bool, error) { return s.failed[k], nil }

// TestPlanInParallelGivesTheSerialAnswer: on the simulator, the views planned in parallel are
// those the serial loop plan used to run gives, in the same order, message counts included.
func TestPlanInParallelGivesTheSerialAnswer(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim, err := simulator.New(simulator.Options{Seed: 7, Mailboxes: 9, Messages: 40, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	client, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "demo-client", ClientSecret: "demo-secret", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	cfg := config.Default()
	cfg.Messages.StartDate = config.Date{Time: epoch.AddDate(-2, 0, 0)}
	cfg.Parallelism.Mailboxes = 3
	cfg.Performance.PageSize = 7 // several pages per view
	enum, err := crawler.Enumerate(ctx, client, Rules(cfg, crawler.Shard{}), cfg.Performance.PageSize, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(enum.Kept) < 4 {
		t.Fatalf("%d mailboxes kept, want several", len(enum.Kept))
	}
	// Some views done up to a token, one resuming, one with a failure: windows differ per view.
	st := mapState{positions: map[state.Key]state.Position{}, failed: map[state.Key]map[string]bool{}}
	for i, m := range enum.Kept {
		k := state.Key{Mailbox: m.Address, View: "INBOX"}
		switch i % 3 {
		case 0:
			st.positions[k] = state.Position{Token: epoch.AddDate(0, -2, 0), LastRun: epoch}
		case 1:
			st.positions[k] = state.Position{Token: epoch.AddDate(0, -6, 0), LastRun: epoch,
				Pass: &state.Pass{End: epoch.AddDate(0, -1, 0), Low: epoch.AddDate(0, -3, 0)}}
			st.failed[state.Key{Mailbox: m.Address, View: "SENT"}] = map[string]bool{"x": true}
		}
	}
	wo := crawler.WindowOptions{StartDate: cfg.Messages.StartDate.Time, DeltaTokenOffset: cfg.Performance.DeltaTokenOffset.D()}
	now := epoch.Add(time.Hour)

	// The loop plan ran before it listed in parallel.
	var serial []PlanView
	for _, m := range enum.Kept {
		for _, view := range cfg.Messages.Views {
			v, err := planView(ctx, client, st, m.Address, view, cfg.Performance.PageSize, wo, now)
			if err != nil {
				t.Fatal(err)
			}
			serial = append(serial, v)
		}
	}
	parallel, err := planViews(ctx, client, st, enum.Kept, cfg, wo, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parallel, serial) {
		t.Errorf("parallel plan\n%+v\nserial plan\n%+v", parallel, serial)
	}
	total := 0
	for _, v := range serial {
		total += v.Messages
	}
	if total == 0 {
		t.Error("no view has messages to list: the comparison proves nothing")
	}
}

// gateLister lets listings through in groups of limit at once (the last group smaller): a plan
// that lists one view at a time never fills a group and fails after a while instead of
// hanging; one that lists more than limit at once is counted.
type gateLister struct {
	limit, total int

	mu                     sync.Mutex
	started, inflight, max int
	gate                   chan struct{}
}

func (l *gateLister) ListMessages(ctx context.Context, f api.MessageListFilter, _ int, fn func([]api.MessageSummary) error) error {
	l.mu.Lock()
	l.started++
	l.inflight++
	l.max = max(l.max, l.inflight)
	if l.gate == nil {
		l.gate = make(chan struct{})
	}
	g := l.gate
	if l.inflight == l.limit || l.started == l.total {
		close(g)
		l.gate = nil
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inflight--
		l.mu.Unlock()
	}()
	select {
	case <-g:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second): // not a timing assertion: the alternative is a hang
		return errors.New("views listed fewer than parallelism.mailboxes at a time")
	}
	return fn([]api.MessageSummary{{ID: f.Mailbox + "/" + f.View}})
}

// TestPlanListsParallelismMailboxesViewsAtOnce: plan lists views in parallel, at most
// parallelism.mailboxes at a time, as a crawl does.
func TestPlanListsParallelismMailboxesViewsAtOnce(t *testing.T) {
	cfg := config.Default()
	cfg.Parallelism.Mailboxes = 3
	var kept []crawler.Mailbox
	for i := range 5 {
		kept = append(kept, crawler.Mailbox{Address: fmt.Sprintf("m%d@example.com", i)})
	}
	l := &gateLister{limit: 3, total: len(kept) * len(cfg.Messages.Views)}
	wo := crawler.WindowOptions{StartDate: cfg.Messages.StartDate.Time}
	views, err := planViews(context.Background(), l, noState{}, kept, cfg, wo, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if l.max != 3 {
		t.Errorf("at most %d views listed at once, want parallelism.mailboxes = 3", l.max)
	}
	for i, v := range views {
		m, view := kept[i/2].Address, cfg.Messages.Views[i%2]
		if v.Mailbox != m || v.View != view || v.Messages != 1 {
			t.Errorf("view %d is %s %s with %d messages, want %s %s with 1", i, v.Mailbox, v.View, v.Messages, m, view)
		}
	}
}
