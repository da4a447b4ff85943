package crawler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

func TestParseAddresses(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   []api.Address
	}{
		{"plain", []string{"a@example.com"}, []api.Address{{EmailAddress: "a@example.com"}}},
		{"name and list", []string{`Ann Lee <ann@example.com>, "Lee, Bob" <bob@example.com>`},
			[]api.Address{addr("ann@example.com", "Ann Lee"), addr("bob@example.com", "Lee, Bob")}},
		{"encoded name with a comma", []string{"=?utf-8?q?M=C3=BCller=2C_J=C3=BCrgen?= <j@example.de>"},
			[]api.Address{addr("j@example.de", "Müller, Jürgen")}},
		{"latin-1 encoded name", []string{"=?iso-8859-1?q?Jos=E9?= <jose@example.es>"},
			[]api.Address{addr("jose@example.es", "José")}},
		{"group", []string{"team: a@example.com, b@example.com;"},
			[]api.Address{{EmailAddress: "a@example.com"}, {EmailAddress: "b@example.com"}}},
		{"empty group", []string{"undisclosed-recipients:;"}, nil},
		{"bad entry among good ones", []string{`Ann <ann@example.com>, broken <<x>, Bob Smith bob@example.com, "unclosed <c@example.com>`},
			[]api.Address{addr("ann@example.com", "Ann"), {EmailAddress: "bob@example.com"}, addr("c@example.com", "unclosed")}},
		{"bounce", []string{"<>"}, nil},
		{"angle only", []string{"<bounce@example.com>"}, []api.Address{{EmailAddress: "bounce@example.com"}}},
		{"nothing usable", []string{"not an address", ""}, nil},
		{"several values", []string{"a@example.com", "b@example.com"},
			[]api.Address{{EmailAddress: "a@example.com"}, {EmailAddress: "b@example.com"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseAddresses(tc.values); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseAddresses(%q) = %+v, want %+v", tc.values, got, tc.want)
			}
		})
	}
}

func addr(address, name string) api.Address {
	return api.Address{EmailAddress: address, DisplayableName: name}
}

func TestParseAddressesBounded(t *testing.T) {
	list := strings.Repeat("x@example.com, ", 5000)
	if got := parseAddresses([]string{list}); len(got) != maxAddresses {
		t.Errorf("%d addresses read, want the cap %d", len(got), maxAddresses)
	}
}

// fileArchive serves one message: its RFC 822 form and, when detail is set, its detail; it
// counts the calls, as quota is counted.
type fileArchive struct {
	id      string
	rfc822  []byte
	detail  *api.MessageDetail
	attach  map[string][]byte
	mu      sync.Mutex
	details int
	files   int
}

func (a *fileArchive) ListMessages(context.Context, api.MessageListFilter, int, func([]api.MessageSummary) error) error {
	return fmt.Errorf("fileArchive does not list")
}

func (a *fileArchive) MessageDetail(_ context.Context, id string) (*api.MessageDetail, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.details++
	if a.detail == nil || id != a.id {
		return nil, fmt.Errorf("no detail for %s", id)
	}
	return a.detail, nil
}

func (a *fileArchive) GetFile(_ context.Context, id string) (io.ReadCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files++
	if id == a.id {
		return io.NopCloser(bytes.NewReader(a.rfc822)), nil
	}
	if b, ok := a.attach[id]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return nil, fmt.Errorf("no file %s", id)
}

// docSink keeps every document and acknowledges it at once.
type docSink struct {
	mu   sync.Mutex
	docs map[string]index.Doc
}

func (s *docSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	s.mu.Lock()
	s.docs[d.ID] = d
	s.mu.Unlock()
	done(index.Result{Status: http.StatusCreated})
	return nil
}

const testMailbox = "user@example.com"

// runMessage sends one message through the crawler's per-message path and returns its
// message document and its attachment documents by id.
func runMessage(t *testing.T, arc *fileArchive, tweak func(*Options)) (*index.MessageDoc, map[string]*index.AttachmentDoc) {
	t.Helper()
	msg, atts, failed := sendMessage(t, arc, tweak)
	if failed != 0 {
		t.Fatalf("message not indexed")
	}
	if msg == nil {
		t.Fatalf("no message document")
	}
	return msg, atts
}

// sendMessage is runMessage that also returns how many messages the tracker saw fail.
func sendMessage(t *testing.T, arc *fileArchive, tweak func(*Options)) (*index.MessageDoc, map[string]*index.AttachmentDoc, int) {
	t.Helper()
	opts := Options{ExtractAttachments: true, MaxAttachmentBytes: 1 << 20, Logger: zerolog.Nop(),
		Now:    func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) },
		Limits: MessageLimits{SpillDir: t.TempDir()}}
	if tweak != nil {
		tweak(&opts)
	}
	sink := &docSink{docs: map[string]index.Doc{}}
	c := New(arc, nil, sink, nil, opts)
	m := api.MessageSummary{ID: arc.id, Subject: "listed subject", From: api.Address{EmailAddress: "listed@example.com"}}
	failed := crawlOneMessage(t, c, Mailbox{Address: testMailbox, Domain: "example.com"}, m, zerolog.Nop())
	var msg *index.MessageDoc
	atts := map[string]*index.AttachmentDoc{}
	for id, d := range sink.docs {
		switch b := d.Body.(type) {
		case *index.MessageDoc:
			if id != MessageDocID(testMailbox, api.ViewInbox, arc.id) {
				t.Errorf("message document id %s", id)
			}
			msg = b
		case *index.AttachmentDoc:
			atts[id] = b
		}
	}
	return msg, atts, failed
}

// An attachment whose bytes the temporary file could not take is not the message's fault:
// the message is not indexed without it, and the next run fetches it again.
func TestMessageWhoseAttachmentsCouldNotBeKeptIsRetried(t *testing.T) {
	raw, _, _ := twinMessage()
	msg, _, failed := sendMessage(t, &fileArchive{id: "m1", rfc822: raw}, func(o *Options) {
		o.Limits = MessageLimits{KeepMemory: 1, SpillDir: t.TempDir() + "/missing"}
	})
	if failed != 1 || msg != nil {
		t.Errorf("%d failed, message document %v; want the message failed and not indexed", failed, msg != nil)
	}
	// With text off, no bytes are needed: the parts' digests and sizes make the documents.
	msg, atts, failed := sendMessage(t, &fileArchive{id: "m1", rfc822: raw}, func(o *Options) {
		o.Limits = MessageLimits{KeepMemory: 1, SpillDir: t.TempDir() + "/missing"}
		o.NoAttachmentText = true
	})
	if failed != 0 || msg == nil || len(atts) != 3 {
		t.Errorf("without text: %d failed, %d attachments", failed, len(atts))
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// twinMessage has three attachments: the same bytes twice (at positions 0 and 2) and another
// file between them.
func twinMessage() (raw []byte, twin, other []byte) {
	twin, other = []byte("same bytes in two places\r\n"), []byte("something else\r\n")
	var b strings.Builder
	b.WriteString("Return-Path: <bounce@lists.example.org>\r\n" +
		"From: =?utf-8?q?M=C3=BCller=2C_J=C3=BCrgen?= <j@example.de>\r\n" +
		"To: Ann Lee <ann@example.com>, \"Lee, Bob\" <bob@example.com>, broken <<x>\r\n" +
		"Cc: undisclosed-recipients:;\r\n" +
		"Reply-To: replies@example.de\r\n" +
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Message-ID: <twin.1@example.de>\r\n" +
		"Date: Tue, 30 Apr 2024 14:00:00 +0200\r\n" +
		"Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=example.de; dkim=fail\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
	for i, data := range [][]byte{twin, other, twin} {
		fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"f%d.txt\"\r\n\r\n%s\r\n", i, data)
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String()), twin, other
}

func TestMessageFromRFC822Alone(t *testing.T) {
	raw, twin, other := twinMessage()
	arc := &fileArchive{id: "m1", rfc822: raw}
	msg, atts := runMessage(t, arc, nil)
	if arc.details != 0 || arc.files != 1 {
		t.Errorf("%d detail and %d get-file calls, want 0 and 1", arc.details, arc.files)
	}
	e := msg.Email
	if e.Subject != "Grüße" || e.MessageID != "<twin.1@example.de>" {
		t.Errorf("subject %q, message id %q", e.Subject, e.MessageID)
	}
	check := func(what string, got any, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want %+v", what, got, want)
		}
	}
	check("from", e.From, &index.Addresses{Address: []string{"j@example.de"}})
	check("from names", msg.Mimecast.From, &index.Names{Name: []string{"Müller, Jürgen"}})
	check("to", e.To, &index.Addresses{Address: []string{"ann@example.com", "bob@example.com"}})
	check("to names", msg.Mimecast.To, &index.Names{Name: []string{"Ann Lee", "Lee, Bob"}})
	check("cc", e.Cc, (*index.Addresses)(nil))
	check("reply-to", e.ReplyTo, &index.Addresses{Address: []string{"replies@example.de"}})
	check("sender", e.Sender, &index.Addresses{Address: []string{"bounce@lists.example.org"}})
	check("auth", msg.Mimecast.Auth, &index.Auth{SPF: []string{"pass"}, DKIM: []string{"fail"}})
	if want := time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC); e.OriginationTimestamp == nil || !e.OriginationTimestamp.Equal(want) {
		t.Errorf("origination %v, want %v", e.OriginationTimestamp, want)
	}
	check("subject header", msg.Mimecast.Headers["Subject"], []string{"Grüße"})
	check("size", msg.Mimecast.Size, int64(len(raw)))
	check("attachment count", msg.Mimecast.AttachmentCount, 3)
	if msg.Mimecast.Smash != "" {
		t.Errorf("smash %q without the detail", msg.Mimecast.Smash)
	}

	// Identical bytes at different positions are two documents; the ids follow the one rule.
	wantIDs := []string{
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 0, sha(twin)),
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 1, sha(other)),
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 2, sha(twin)),
	}
	if len(atts) != 3 || wantIDs[0] == wantIDs[2] {
		t.Fatalf("%d attachment documents, want 3 with distinct ids", len(atts))
	}
	for i, id := range wantIDs {
		a, ok := atts[id]
		if !ok {
			t.Errorf("attachment %d: no document %s", i, id)
			continue
		}
		f := a.Email.Attachments[0].File
		data := [][]byte{twin, other, twin}[i]
		if f.Name != fmt.Sprintf("f%d.txt", i) || f.MimeType != "text/plain" || f.Extension != "txt" ||
			f.Size != int64(len(data)) || f.Hash == nil || f.Hash.SHA256 != sha(data) {
			t.Errorf("attachment %d: file %+v", i, f)
		}
		if a.Mimecast.Content != strings.TrimSpace(string(data)) || a.Mimecast.AttachmentID != "" {
			t.Errorf("attachment %d: content %q, attachment id %q", i, a.Mimecast.Content, a.Mimecast.AttachmentID)
		}
	}

	// The same message again: the same ids.
	_, again := runMessage(t, &fileArchive{id: "m1", rfc822: raw}, nil)
	for id := range atts {
		if _, ok := again[id]; !ok {
			t.Errorf("attachment document %s not written again under the same id", id)
		}
	}
}

func TestMessageWithMissingHeaders(t *testing.T) {
	raw := []byte("X-Other: 1\r\n\r\nbody only\r\n")
	msg, atts := runMessage(t, &fileArchive{id: "m2", rfc822: raw}, nil)
	e := msg.Email
	if e.Subject != "listed subject" || e.MessageID != "" || e.OriginationTimestamp != nil ||
		e.To != nil || e.Sender != nil || e.ReplyTo != nil || len(atts) != 0 || msg.Mimecast.AttachmentCount != 0 {
		t.Errorf("email %+v, %d attachments", e, len(atts))
	}
	// The listing's sender stands in for a missing From.
	if e.From == nil || e.From.Address[0] != "listed@example.com" || msg.Mimecast.Body != "body only" {
		t.Errorf("from %+v, body %q", e.From, msg.Mimecast.Body)
	}
}

func TestMessageWithDetail(t *testing.T) {
	raw, twin, other := twinMessage()
	detail := &api.MessageDetail{ID: "m1", Smash: "abc123", Subject: "detail subject",
		EnvelopeFrom: api.Address{EmailAddress: "envelope@example.de"},
		Attachments: []api.Attachment{
			// Listed out of order: matched by hash, then by name, then by position.
			{ID: "att-other", Filename: "f1.txt", SHA256: strings.ToUpper(sha(other))},
			{ID: "att-twin-b", Filename: "f2.txt"},
			{ID: "att-twin-a", Filename: "renamed.txt", SHA256: sha(twin)},
			{ID: "att-only-in-detail", Filename: "gone.pdf", ContentType: "application/pdf", Size: 4},
		}}
	arc := &fileArchive{id: "m1", rfc822: raw, detail: detail, attach: map[string][]byte{"att-only-in-detail": []byte("%PDF")}}
	msg, atts := runMessage(t, arc, func(o *Options) { o.MessageDetail = true })
	// One detail call, the message, and the attachment the message lacks.
	if arc.details != 1 || arc.files != 2 {
		t.Errorf("%d detail and %d get-file calls, want 1 and 2", arc.details, arc.files)
	}
	// The header comes from the message; the detail adds the envelope sender and the smash.
	if msg.Email.Subject != "Grüße" || msg.Mimecast.Smash != "abc123" || msg.Mimecast.AttachmentCount != 4 ||
		!reflect.DeepEqual(msg.Email.Sender, &index.Addresses{Address: []string{"envelope@example.de"}}) {
		t.Errorf("subject %q, smash %q, count %d, sender %+v", msg.Email.Subject, msg.Mimecast.Smash, msg.Mimecast.AttachmentCount, msg.Email.Sender)
	}
	want := map[string]string{
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 0, sha(twin)):               "att-twin-a",
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 1, sha(other)):              "att-other",
		AttachmentDocID(testMailbox, api.ViewInbox, "m1", 2, sha(twin)):               "att-twin-b",
		DetailAttachmentDocID(testMailbox, api.ViewInbox, "m1", "att-only-in-detail"): "att-only-in-detail",
	}
	if len(atts) != len(want) {
		t.Errorf("%d attachment documents, want %d", len(atts), len(want))
	}
	for id, attID := range want {
		if a, ok := atts[id]; !ok || a.Mimecast.AttachmentID != attID {
			t.Errorf("document %s: %+v, want attachment id %s", id, a, attID)
		}
	}
	if a := atts[DetailAttachmentDocID(testMailbox, api.ViewInbox, "m1", "att-only-in-detail")]; a != nil {
		if f := a.Email.Attachments[0].File; f.Name != "gone.pdf" || f.Size != 4 || f.Hash == nil || f.Hash.SHA256 != sha([]byte("%PDF")) {
			t.Errorf("detail-only attachment: file %+v", f)
		}
	}

	// Without the detail, the attachments in the message keep their ids.
	_, plain := runMessage(t, &fileArchive{id: "m1", rfc822: raw}, nil)
	for id := range plain {
		if _, ok := atts[id]; !ok {
			t.Errorf("document %s without the detail has another id with it", id)
		}
	}
}

func TestMessageWithUnreadableHeaderTakesTheDetail(t *testing.T) {
	detail := &api.MessageDetail{ID: "m3", Subject: "from the detail", MimeMessageID: "<d@example.com>",
		From: api.Address{EmailAddress: "d@example.com", DisplayableName: "D"}, To: []api.Address{{EmailAddress: "to@example.com"}},
		HeaderDate: "Tue, 30 Apr 2024 14:00:00 +0200", Headers: []api.Header{{Name: "x-custom", Values: []string{"1"}}}}
	arc := &fileArchive{id: "m3", rfc822: []byte{}, detail: detail}
	msg, _ := runMessage(t, arc, func(o *Options) { o.MessageDetail = true })
	e := msg.Email
	if e.Subject != "from the detail" || e.MessageID != "<d@example.com>" || e.From.Address[0] != "d@example.com" ||
		e.To.Address[0] != "to@example.com" || e.OriginationTimestamp == nil || msg.Mimecast.Headers["X-Custom"][0] != "1" {
		t.Errorf("email %+v, headers %v", e, msg.Mimecast.Headers)
	}
}

func TestMatchAttachments(t *testing.T) {
	parts := []body.Part{{Filename: "a", SHA256: "h1"}, {Filename: "b", SHA256: "h2"}, {Filename: "c", SHA256: "h1"}}
	listed := []api.Attachment{{ID: "x", SHA256: "H1"}, {ID: "y", Filename: "c"}, {ID: "z"}, {ID: "w"}}
	got := matchAttachments(parts, listed)
	var ids []string
	for _, a := range got {
		id := "-"
		if a.listed != nil {
			id = a.listed.ID
		}
		ids = append(ids, fmt.Sprintf("%d:%s", a.position, id))
	}
	// x by hash (first h1), y by name (c), z by position (1), w only in the detail.
	if want := []string{"0:x", "1:z", "2:y", "-1:w"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("matched %v, want %v", ids, want)
	}
}

func (s *docSink) Flush(context.Context) error { return nil }
