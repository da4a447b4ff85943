package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/state"
)

// TestFullCampaign: --full starts a re-crawl, or goes on with a pending one without moving its
// start; a plain run goes on with a pending one and starts none.
func TestFullCampaign(t *testing.T) {
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if full, since, err := fullCampaign(store, false); err != nil || full || !since.IsZero() {
		t.Fatalf("plain run, nothing pending: full %v since %v, %v", full, since, err)
	}
	full, since, err := fullCampaign(store, true)
	if err != nil || !full || since.IsZero() {
		t.Fatalf("--full: full %v since %v, %v", full, since, err)
	}
	for _, flag := range []bool{false, true} {
		f, s, err := fullCampaign(store, flag)
		if err != nil || !f || !s.Equal(since) {
			t.Errorf("--full=%v with a re-crawl pending since %v: full %v since %v, %v; want it to go on", flag, since, f, s, err)
		}
	}
}

// A state file found damaged by a view makes the run fatal; other view failures do not.
func TestCorruptStateIsFatal(t *testing.T) {
	plain := []crawler.ViewResult{{Outcome: crawler.Failed, Err: errors.New("list: 500")}}
	if err := corrupt(plain); err != nil {
		t.Errorf("a failed listing is taken for damage: %v", err)
	}
	damaged := fmt.Errorf("commit: %w", state.ErrCorrupt)
	if err := corrupt(append(plain, crawler.ViewResult{Outcome: crawler.Failed, Err: damaged})); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("damage found by a view: %v", err)
	}
}

// memMailboxes is a MailboxStore in memory; RemoveMailboxes deletes from several goroutines.
type memMailboxes struct {
	mu sync.Mutex
	m  map[string]bool
}

func (m *memMailboxes) Mailboxes() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memMailboxes) DeleteMailbox(mb string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, mb)
	return nil
}

// emptyIndex holds no document of any mailbox.
type emptyIndex struct{ fail error }

func (x emptyIndex) Refresh(context.Context) error { return x.fail }
func (emptyIndex) DeleteWhere(context.Context, index.Kind, index.Filter) (int64, error) {
	return 0, nil
}
func (emptyIndex) Count(context.Context, index.Kind, index.Filter) (int64, error) { return 0, nil }

// TestRemovalInTheSummary: what the removal guard decides reaches the summary and the exit
// code: a refusal names the mailboxes and exits 4 with nothing removed; an allowed removal
// counts them; an unfinished one is partial.
func TestRemovalInTheSummary(t *testing.T) {
	kept := []crawler.Mailbox{{Address: "a@x"}}
	known := func() *memMailboxes { return &memMailboxes{m: map[string]bool{"a@x": true, "b@x": true, "c@x": true}} }
	for _, tc := range []struct {
		name      string
		allowMass bool
		fail      error
		want      Code
		removed   int
		left      int
	}{
		{"refused", false, nil, CodeRefused, 0, 3},
		{"allowed", true, nil, CodeOK, 2, 1},
		{"incomplete", true, errors.New("refresh: 503"), CodePartial, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := known()
			c := &crawl{Env: Env{Config: config.Default(), Log: zerolog.New(io.Discard)}, args: CrawlArgs{AllowMassRemoval: tc.allowMass}, sum: &Summary{}}
			c.removeMailboxes(context.Background(), store, emptyIndex{fail: tc.fail}, kept)
			if got := c.sum.Outcome(); got != tc.want {
				t.Errorf("exit code %d, want %d (summary %+v)", got, tc.want, c.sum)
			}
			if left, _ := store.Mailboxes(); c.sum.MailboxesRemoved != tc.removed || len(left) != tc.left {
				t.Errorf("%d removed, %v left in the state; want %d removed, %d left", c.sum.MailboxesRemoved, left, tc.removed, tc.left)
			}
			if tc.want == CodeRefused && len(c.sum.RemovalRefused) != 2 {
				t.Errorf("refused removal names %v, want b@x and c@x", c.sum.RemovalRefused)
			}
		})
	}
}
