package crawler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The benchmarks of this file measure the crawler's own work per message, with the archive
// already in memory: MIME to text, building the documents, encoding them as the index writer
// does, ids and checkpoint tracking. Their inputs are real messages of the simulator, fetched
// once over HTTP, so sizes and structure are the ones the end-to-end benchmark crawls.

// memArchive serves messages fetched beforehand.
type memArchive struct {
	details map[string]*api.MessageDetail
	files   map[string][]byte
}

func (a *memArchive) ListMessages(context.Context, api.MessageListFilter, int, func([]api.MessageSummary) error) error {
	return errors.New("memArchive does not list")
}

func (a *memArchive) MessageDetail(_ context.Context, id string) (*api.MessageDetail, error) {
	d, ok := a.details[id]
	if !ok {
		return nil, fmt.Errorf("no detail for %s", id)
	}
	return d, nil
}

func (a *memArchive) GetFile(_ context.Context, id string) (io.ReadCloser, error) {
	b, ok := a.files[id]
	if !ok {
		return nil, fmt.Errorf("no file %s", id)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// encodingSink encodes every document as index.Writer.Add does and acknowledges it at once.
// Acknowledging on the caller's goroutine is safe here: the crawler holds no lock across Add.
type encodingSink struct{ bytes int64 }

func (s *encodingSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	b, err := json.Marshal(d.Body)
	if err != nil {
		return err
	}
	s.bytes += int64(len(b))
	done(index.Result{Status: http.StatusCreated})
	return nil
}

// benchMessages are real simulator messages by role.
type benchMessages struct {
	arc      *memArchive
	mailbox  Mailbox
	typical  api.MessageSummary // attachments, size nearest the median of those with attachments
	large    api.MessageSummary // the largest message
	textAtt  api.Attachment     // a text attachment (its text is extracted)
	binAtt   api.Attachment     // a binary attachment (hashed, metadata only)
	textMsg  api.MessageSummary
	binMsg   api.MessageSummary
	listings []api.MessageSummary
}

func loadBenchMessages(b *testing.B) *benchMessages {
	b.Helper()
	sim, client := simulatorClient(b, simulator.Options{Seed: 1, Domains: 1, Mailboxes: 1, Messages: 150})
	ctx := context.Background()
	var addr, domain string
	for _, mb := range sim.Truth().Mailboxes {
		if mb.Type == "mailbox" && !mb.Local {
			addr, domain = strings.ToLower(mb.Address), mb.Domain
			break
		}
	}
	bm := &benchMessages{arc: &memArchive{details: map[string]*api.MessageDetail{}, files: map[string][]byte{}},
		mailbox: Mailbox{Address: addr, Domain: domain}}
	f := api.MessageListFilter{View: api.ViewInbox, Mailbox: addr, Start: "2000-01-01T00:00:00+0000"}
	err := client.ListMessages(ctx, f, 100, func(page []api.MessageSummary) error {
		bm.listings = append(bm.listings, page...)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	fetch := func(id string) []byte {
		rc, err := client.GetFile(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	var withAtt []api.MessageSummary
	for _, m := range bm.listings {
		d, err := client.MessageDetail(ctx, m.ID)
		if err != nil {
			b.Fatal(err)
		}
		bm.arc.details[m.ID] = d
		bm.arc.files[m.ID] = fetch(m.ID)
		for _, a := range d.Attachments {
			bm.arc.files[a.ID] = fetch(a.ID)
			text := strings.HasPrefix(a.ContentType, "text/")
			if text && bm.textAtt.ID == "" {
				bm.textAtt, bm.textMsg = a, m
			}
			if !text && bm.binAtt.ID == "" {
				bm.binAtt, bm.binMsg = a, m
			}
		}
		if len(d.Attachments) > 0 {
			withAtt = append(withAtt, m)
		}
		if m.Size > bm.large.Size {
			bm.large = m
		}
	}
	if len(withAtt) == 0 || bm.textAtt.ID == "" || bm.binAtt.ID == "" {
		b.Fatal("the simulated mailbox lacks messages with text and binary attachments")
	}
	sort.Slice(withAtt, func(i, j int) bool { return withAtt[i].Size < withAtt[j].Size })
	bm.typical = withAtt[len(withAtt)/2]
	return bm
}

// newBenchPass returns a pass over the benchmark mailbox with the defaults of a crawl that
// extracts attachments, and a function that stops the crawler's hand-off goroutine.
func newBenchPass(bm *benchMessages, sink Sink) (*viewPass, func()) {
	c := New(bm.arc, nil, sink, nil, Options{ExtractAttachments: true, MaxAttachmentBytes: 25_000_000, Logger: zerolog.Nop()})
	return testPass(c, bm.mailbox, zerolog.Nop()), startServices(c)
}

func received(b *testing.B, m api.MessageSummary) time.Time {
	t, ok := receivedTime(m.Received)
	if !ok {
		b.Fatalf("message %s: bad received time %q", m.ID, m.Received)
	}
	return t
}

// BenchmarkBuildMessageDoc: RFC 822 bytes to an encoded message document (MIME parsing,
// text extraction, document fields, JSON). Bytes are the RFC 822 message.
func BenchmarkBuildMessageDoc(b *testing.B) {
	bm := loadBenchMessages(b)
	for _, tc := range []struct {
		name string
		m    api.MessageSummary
	}{{"typical", bm.typical}, {"large", bm.large}} {
		b.Run(tc.name, func(b *testing.B) {
			p, stop := newBenchPass(bm, &encodingSink{})
			defer stop()
			ctx := context.Background()
			at := received(b, tc.m)
			b.SetBytes(int64(len(bm.arc.files[tc.m.ID])))
			b.ReportAllocs()
			for b.Loop() {
				text, size, _, err := p.bodyText(ctx, tc.m.ID, tc.m.Size)
				if err != nil {
					b.Fatal(err)
				}
				msg := p.messageDoc(tc.m, nil, text, matchAttachments(text.Parts, nil), size, at)
				doc := index.Doc{Kind: index.Messages, ID: MessageDocID(p.mb.Address, p.view, tc.m.ID), Body: msg}
				text.Close()
				if _, err := json.Marshal(doc.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuildAttachmentDoc: attachment bytes, as taken from the message, to an encoded
// attachment document (hash, text extraction for text types, JSON). Bytes are the attachment.
func BenchmarkBuildAttachmentDoc(b *testing.B) {
	bm := loadBenchMessages(b)
	for _, tc := range []struct {
		name string
		m    api.MessageSummary
		a    api.Attachment
	}{{"text", bm.textMsg, bm.textAtt}, {"binary", bm.binMsg, bm.binAtt}} {
		b.Run(tc.name, func(b *testing.B) {
			p, stop := newBenchPass(bm, &encodingSink{})
			defer stop()
			ctx := context.Background()
			msg := p.messageDoc(tc.m, nil, &body.Text{}, nil, 0, received(b, tc.m))
			data := bm.arc.files[tc.a.ID]
			a := attachment{part: &body.Part{Filename: tc.a.Filename, ContentType: tc.a.ContentType,
				Size: int64(len(data)), SHA256: tc.a.SHA256, Data: data}}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				doc, ok, err := p.attachmentDoc(ctx, tc.m, msg, a, false, false)
				if err != nil || !ok {
					b.Fatalf("attachment document: ok %v, %v", ok, err)
				}
				if _, err := json.Marshal(doc.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessagePath runs the crawler's whole per-message path with the archive in memory
// and an index that acknowledges at once: body, attachments, every document encoded,
// the hand-off of the message document and the checkpoint tracker. Bytes are the RFC 822
// message and its attachments.
func BenchmarkMessagePath(b *testing.B) {
	bm := loadBenchMessages(b)
	for _, tc := range []struct {
		name string
		m    api.MessageSummary
	}{{"typical", bm.typical}, {"large", bm.large}} {
		b.Run(tc.name, func(b *testing.B) {
			p, stop := newBenchPass(bm, &encodingSink{})
			defer stop()
			ctx := context.Background()
			at := received(b, tc.m)
			size := len(bm.arc.files[tc.m.ID])
			for _, a := range bm.arc.details[tc.m.ID].Attachments {
				size += len(bm.arc.files[a.ID])
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				seq, err := p.tr.add(ctx, at)
				if err != nil {
					b.Fatal(err)
				}
				p.message(ctx, ctx, tc.m, seq, at)
				if failed, err := p.tr.wait(ctx); err != nil || failed > 0 {
					b.Fatalf("%d messages failed", failed)
				}
			}
		})
	}
}

// BenchmarkListedPage: the crawler's own work on one listed page of 100 messages before any
// fetch: a document id per message for the existence check, then one more per message as
// the page is walked.
func BenchmarkListedPage(b *testing.B) {
	bm := loadBenchMessages(b)
	page := bm.listings
	if len(page) > 100 {
		page = page[:100]
	}
	b.ReportAllocs()
	for b.Loop() {
		ids := make([]string, len(page))
		for i, m := range page {
			ids[i] = MessageDocID(bm.mailbox.Address, api.ViewInbox, m.ID)
		}
		for _, m := range page {
			_ = MessageDocID(bm.mailbox.Address, api.ViewInbox, m.ID)
			if _, ok := receivedTime(m.Received); !ok {
				b.Fatal("bad received time")
			}
		}
	}
}

// BenchmarkTracker: registering and finishing one page of 100 messages, acknowledged out of
// order as the bulk indexer does, and reading the resume point.
func BenchmarkTracker(b *testing.B) {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	order := make([]int, 100)
	for i := range order {
		order[i] = (i * 37) % 100 // a fixed permutation of 0..99
	}
	b.ReportAllocs()
	for b.Loop() {
		t := newTracker(1000, nil, nil)
		seqs := make([]int64, 100)
		for i := range seqs {
			seqs[i], _ = t.add(context.Background(), base.Add(-time.Duration(i)*time.Second))
		}
		for _, i := range order {
			t.finish(seqs[i], true)
		}
		if _, ok := t.resumePoint(); !ok {
			b.Fatal("no resume point")
		}
	}
}

func (s *encodingSink) Flush(context.Context) error { return nil }
