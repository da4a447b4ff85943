package job

import (
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// The lag of a mailbox is its oldest view's; a view never completed leaves it without one.
func TestMailboxTokens(t *testing.T) {
	t1 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	ps := fakePositions{
		{Mailbox: "a@x", View: "INBOX"}: {Token: t1},
		{Mailbox: "a@x", View: "SENT"}:  {Token: t1.Add(-time.Hour)},
		{Mailbox: "b@x", View: "INBOX"}: {Token: t1},
	}
	got, err := MailboxTokens(ps, []crawler.Mailbox{{Address: "a@x"}, {Address: "b@x"}}, []string{"INBOX", "SENT"})
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.MailboxToken{{Mailbox: "a@x", Token: t1.Add(-time.Hour)}, {Mailbox: "b@x"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("tokens %v, want %v", got, want)
	}
}

type fakePositions map[state.Key]state.Position

func (f fakePositions) Positions() (map[state.Key]state.Position, error) { return f, nil }
