package alerts

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// fakeMailArchive is an archive of messages by mailbox and view, with their details.
type fakeMailArchive struct {
	mu      sync.Mutex
	msgs    map[string][]fakeMail // mailbox/view → messages
	forbid  string                // "list" or "detail": that endpoint answers 403
	lists   int
	details int
	filters []api.MessageListFilter
}

type fakeMail struct {
	id, mid, subject string
	received         time.Time
	attachments      []string
}

func (f *fakeMailArchive) ListMessages(ctx context.Context, flt api.MessageListFilter, pageSize int, fn func([]api.MessageSummary) error) error {
	f.mu.Lock()
	f.lists++
	f.filters = append(f.filters, flt)
	forbid := f.forbid == "list"
	var page []api.MessageSummary
	start, _ := api.ParseTime(flt.Start)
	end, _ := api.ParseTime(flt.End)
	for _, m := range f.msgs[flt.Mailbox+"/"+flt.View] {
		if !m.received.Before(start) && !m.received.After(end) {
			page = append(page, api.MessageSummary{ID: m.id, Subject: m.subject, Received: api.FormatTime(m.received)})
		}
	}
	f.mu.Unlock()
	if forbid {
		return &mimecast.Error{Op: "POST /api/archive/get-message-list", Status: 403, Permission: "Archive | Search | Read"}
	}
	if len(page) == 0 {
		return nil
	}
	return fn(page)
}

func (f *fakeMailArchive) MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.details++
	if f.forbid == "detail" {
		return nil, &mimecast.Error{Op: "POST /api/archive/get-message-detail", Status: 403, Permission: "Archive | Search Content View"}
	}
	for key, ms := range f.msgs {
		for _, m := range ms {
			if m.id == id {
				d := &api.MessageDetail{ID: m.id, MimeMessageID: m.mid, Subject: m.subject,
					From: api.Address{EmailAddress: "Evil@Bad.example"}, To: []api.Address{{EmailAddress: strings.SplitN(key, "/", 2)[0]}}}
				for _, a := range m.attachments {
					d.Attachments = append(d.Attachments, api.Attachment{Filename: a})
				}
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("fake: no message %s", id)
}

// mailbox fills ann@corp.example's INBOX with n decoys around t0 (same subject "Invoice"
// for the first subjectDecoys of them) and the message itself at t0+2m.
func contentArchive(n, subjectDecoys int) *fakeMailArchive {
	var ms []fakeMail
	for i := range n {
		subj := "Other"
		if i < subjectDecoys {
			subj = "Invoice"
		}
		ms = append(ms, fakeMail{id: fmt.Sprintf("decoy-%d", i), mid: fmt.Sprintf("<decoy-%d@x>", i), subject: subj, received: t0.Add(time.Duration(i-n/2) * time.Minute)})
	}
	ms = append(ms, fakeMail{id: "arch-1", mid: "<M1@bad.example>", subject: "Invoice", received: t0.Add(2 * time.Minute), attachments: []string{"invoice.xlsm"}})
	return &fakeMailArchive{msgs: map[string][]fakeMail{"ann@corp.example/INBOX": ms}}
}

func contentEnricher(t *testing.T, m MessageArchive, log zerolog.Logger) *enricher {
	t.Helper()
	e := newEnricher(nil, &fakeDirectory{}, nil, time.Hour, 100, func() time.Time { return t0 }, log)
	e.content = newContentViewer(m, 0, 0, 100, log)
	return e
}

// The message is found among the candidates (subject matches first), its detail fills the
// enrichment, and a second lookup of the same message asks nothing more.
func TestContentViewFindsMessage(t *testing.T) {
	arch := contentArchive(8, 0)
	e := contentEnricher(t, arch, zerolog.Nop())
	a := Alert{ID: "1", Time: t0, Route: "inbound", Sender: "evil@bad.example", Recipients: []string{"Ann@corp.example"},
		MessageID: "<m1@bad.example>", Subject: "Invoice"}
	got := e.lookup(context.Background(), []Alert{a})[0]
	if got.ArchiveID != "arch-1" || got.ArchiveSubject != "Invoice" || got.ArchiveFrom != "evil@bad.example" ||
		len(got.ArchiveTo) != 1 || got.ArchiveTo[0] != "ann@corp.example" || len(got.ArchiveAttachments) != 1 {
		t.Errorf("enrichment = %+v; want the archived message's detail", got)
	}
	if arch.lists != 1 || arch.details != 1 {
		t.Errorf("%d lists and %d details; want 1 and 1 (the subject match first)", arch.lists, arch.details)
	}
	f := arch.filters[0]
	if f.Mailbox != "ann@corp.example" || f.View != api.ViewInbox || f.Start != api.FormatTime(t0.Add(-10*time.Minute)) || f.End != api.FormatTime(t0.Add(10*time.Minute)) {
		t.Errorf("list filter = %+v; want the recipient's INBOX within 10 minutes of the alert", f)
	}
	e.lookup(context.Background(), []Alert{a})
	if arch.lists != 1 || arch.details != 1 {
		t.Errorf("second lookup: %d lists and %d details; want the cached result", arch.lists, arch.details)
	}
	// An alert whose record lacks the subject gets the archive's in email.subject.
	a.Subject = ""
	body := AlertDocument(&a, got)
	if email, _ := body["email"].(map[string]any); email == nil || email["subject"] != "Invoice" {
		t.Errorf("email = %v; want the archive's subject", body["email"])
	}
	// Outbound: the sender's SENT view.
	out := Alert{ID: "2", Time: t0, Route: "outbound", Sender: "ann@corp.example", Recipients: []string{"x@outside.example"}, MessageID: "<o@corp.example>"}
	e.lookup(context.Background(), []Alert{out})
	if f := arch.filters[len(arch.filters)-1]; f.Mailbox != "ann@corp.example" || f.View != api.ViewSent {
		t.Errorf("outbound list filter = %+v; want the sender's SENT view", f)
	}
	// Neither end internal: no call.
	n := arch.lists
	e.lookup(context.Background(), []Alert{{ID: "3", Time: t0, Route: "inbound", Recipients: []string{"x@outside.example"}, MessageID: "<z@x>"}})
	if arch.lists != n {
		t.Errorf("an alert without an internal mailbox was looked up")
	}
}

// More candidates than the bound, none the message: at most 5 details, and nothing found.
func TestContentViewBoundedCandidates(t *testing.T) {
	arch := contentArchive(12, 12)
	arch.msgs["ann@corp.example/INBOX"] = arch.msgs["ann@corp.example/INBOX"][:12] // without the message
	e := contentEnricher(t, arch, zerolog.Nop())
	a := Alert{ID: "1", Time: t0, Route: "inbound", Recipients: []string{"ann@corp.example"}, MessageID: "<m1@bad.example>", Subject: "Invoice"}
	got := e.lookup(context.Background(), []Alert{a})[0]
	if got.ArchiveID != "" || got.ArchiveSubject != "" {
		t.Errorf("enrichment = %+v; want nothing found", got)
	}
	if arch.details != defaultContentCandidates {
		t.Errorf("%d details asked; want the bound, %d", arch.details, defaultContentCandidates)
	}
}

// A 403 on the list or the detail warns once, naming the permission, and turns content
// view off: later alerts cost no call, and every alert still gets its enrichment.
func TestContentViewForbiddenWarnsOnce(t *testing.T) {
	for _, which := range []string{"list", "detail"} {
		t.Run(which, func(t *testing.T) {
			arch := contentArchive(4, 0)
			arch.forbid = which
			var buf bytes.Buffer
			log := zerolog.New(&buf).Level(zerolog.WarnLevel)
			e := contentEnricher(t, arch, log)
			page := []Alert{
				{ID: "1", Time: t0, Route: "inbound", Recipients: []string{"ann@corp.example"}, MessageID: "<m1@bad.example>", Subject: "Invoice"},
				{ID: "2", Time: t0, Route: "inbound", Recipients: []string{"ann@corp.example"}, MessageID: "<m2@bad.example>"},
			}
			for range 2 {
				e.startPass()
				if got := e.lookup(context.Background(), page); len(got) != 2 || got[0].RecipientName != "Ann Example" {
					t.Errorf("enrichment = %+v; want both alerts enriched from the directory", got)
				}
			}
			calls := arch.lists + arch.details
			if calls != 1+btoi(which == "detail") {
				t.Errorf("%d calls; want content view off after the first 403", calls)
			}
			if n := strings.Count(buf.String(), "content view not permitted"); n != 1 {
				t.Errorf("%d warnings; want exactly one:\n%s", n, buf.String())
			}
			if !strings.Contains(buf.String(), "Archive | Search") {
				t.Errorf("the warning does not name the permission:\n%s", buf.String())
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
