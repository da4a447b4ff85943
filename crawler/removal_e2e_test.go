package crawler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// removeGone does what `mimecrawl crawl` does before crawling: it removes the mailboxes the
// state file knows and enumeration no longer keeps.
func (e *env) removeGone(ctx context.Context, rules crawler.Rules) (int, error) {
	e.t.Helper()
	store, err := state.Open(e.statePath, state.Options{LockTimeout: time.Second})
	if err != nil {
		e.t.Fatalf("open state: %v", err)
	}
	defer store.Close()
	enum, err := crawler.Enumerate(ctx, e.client, rules, 50, 2)
	if err != nil {
		e.t.Fatalf("enumerate: %v", err)
	}
	plan, err := crawler.PlanRemoval(store, enum.Kept, rules.Shard, 1, true)
	if err != nil {
		e.t.Fatalf("plan removal: %v", err)
	}
	n, _, err := crawler.RemoveMailboxes(ctx, e.cluster(ctx), store, plan.Gone, 2)
	return n, err
}

// Crawl, then at once (no refresh, no pause) remove a mailbox and a message upstream, and run
// the removal and a --full or a plain crawl: the documents just indexed must be seen by the
// removal and the sweep. Twenty rounds in one test, alternating full and plain.
func TestRemovalAndSweepSeeJustIndexedDocuments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, simulator.Options{Seed: 5, Domains: 1, Mailboxes: 3, Messages: 6})
	if r := e.crawl(ctx, crawler.Rules{}, nil); !r.complete() {
		t.Fatalf("first crawl incomplete: %+v", r.results)
	}
	var keeper, domain string
	for _, mb := range e.sim.Truth().Mailboxes {
		if mb.Type == simulator.TypeMailbox && !mb.Local && !mb.Alias {
			keeper, domain = mb.Address, mb.Domain
			break
		}
	}
	if keeper == "" {
		t.Fatal("no mailbox to add messages to")
	}
	for i := range 20 {
		full := i%2 == 0
		gone := fmt.Sprintf("gone%d@%s", i, strings.ToLower(domain))
		if err := e.sim.AddMailbox(gone); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sim.AddMessages(gone, 4); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.sim.AddMessages(keeper, 2)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.crawl(ctx, crawler.Rules{}, nil); !r.complete() {
			t.Fatalf("round %d: crawl incomplete: %+v", i, r.results)
		}
		// At once: the documents just written are not refreshed yet.
		if err := e.sim.DeleteMailbox(gone); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.DeleteMessage(fresh[0]); err != nil {
			t.Fatal(err)
		}
		if n, err := e.removeGone(ctx, crawler.Rules{}); err != nil || n != 1 {
			t.Fatalf("round %d: removed %d mailboxes, err %v; want 1", i, n, err)
		}
		if r := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { o.Full = full }); !r.complete() {
			t.Fatalf("round %d (full=%v): crawl incomplete: %+v", i, full, r.results)
		}
		if p := e.position(state.Key{Mailbox: gone, View: "INBOX"}); !p.Token.IsZero() || p.Pass != nil {
			t.Errorf("round %d: state of removed mailbox %s remains: %+v", i, gone, p)
		}
		ex := e.expect(truthFilter{})
		if full {
			e.assertIndexEquals(ex)
		} else {
			// A plain crawl does not see deleted messages; everything else must hold.
			for kind, want := range map[string]map[string]bool{"messages": keys(ex.messages), "attachments": keys(ex.attachments)} {
				got := e.indexed(kind)
				for id := range want {
					if _, ok := got[id]; !ok {
						t.Errorf("round %d: %s %s missing", i, kind, id)
					}
				}
				for id, src := range got {
					if src["mimecast.mailbox"] == gone {
						t.Errorf("round %d: %s %s of removed mailbox %s remains", i, kind, id, gone)
					}
				}
			}
		}
		if t.Failed() {
			t.Fatalf("round %d (full=%v) failed", i, full)
		}
	}
}
