package crawler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/internal/hostile"
)

// The tests of this file run the crawler's per-message path on hostile messages generated
// lazily, so that the test holds none of their hundreds of megabytes, and assert the heap it
// takes, sampled while the message is read and while its documents are built.

// repeat is hostile.Repeat: a lazily generated stream of n bytes.
var repeat = hostile.Repeat

// heapProbe samples the heap in use above a baseline: every few megabytes a stream passes
// through it, and whenever sample is called.
type heapProbe struct {
	mu         sync.Mutex
	base, peak uint64
	samples    int
}

func newHeapProbe() *heapProbe {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapProbe{base: ms.HeapAlloc}
}

func (h *heapProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples++
	if ms.HeapAlloc > h.base && ms.HeapAlloc-h.base > h.peak {
		h.peak = ms.HeapAlloc - h.base
	}
}

// probed counts what is read of a stream and samples the heap every 2 MiB.
type probed struct {
	r    io.Reader
	h    *heapProbe
	read int64
	next int64
}

func (p *probed) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if p.read >= p.next {
		p.h.sample()
		p.next = p.read + 2<<20
	}
	return n, err
}

func (p *probed) Close() error { return nil }

// hostileArchive serves one message, whose RFC 822 form is generated on each GetFile, and
// attachments (counted: a kept attachment must not be downloaded again).
type hostileArchive struct {
	detail    *api.MessageDetail
	rfc822    func() io.Reader
	attach    map[string]func() io.Reader
	probe     *heapProbe
	mu        sync.Mutex
	body      *probed
	downloads int
}

func (a *hostileArchive) ListMessages(context.Context, api.MessageListFilter, int, func([]api.MessageSummary) error) error {
	return errors.New("hostileArchive does not list")
}

func (a *hostileArchive) MessageDetail(context.Context, string) (*api.MessageDetail, error) {
	return a.detail, nil
}

func (a *hostileArchive) GetFile(_ context.Context, id string) (io.ReadCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id == a.detail.ID {
		a.body = &probed{r: a.rfc822(), h: a.probe, next: 2 << 20}
		return a.body, nil
	}
	if f, ok := a.attach[id]; ok {
		a.downloads++
		return &probed{r: f(), h: a.probe, next: 2 << 20}, nil
	}
	return nil, fmt.Errorf("no file %s", id)
}

// doc is what recordingSink keeps of a document: no bodies, so that it costs no memory itself.
type doc struct {
	kind       index.Kind
	oversize   bool
	body       string // message body, cut to 200 bytes
	sha256     string
	size       int64
	contentLen int
}

// recordingSink acknowledges every document at once and keeps a summary of it.
type recordingSink struct {
	probe *heapProbe
	mu    sync.Mutex
	docs  map[string]doc
}

func (s *recordingSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	s.probe.sample()
	r := doc{kind: d.Kind}
	switch b := d.Body.(type) {
	case *index.MessageDoc:
		r.oversize, r.body = b.Mimecast.Oversize, b.Mimecast.Body[:min(len(b.Mimecast.Body), 200)]
	case *index.AttachmentDoc:
		f := b.AttachedFile()
		r.oversize, r.size, r.contentLen = b.Mimecast.Oversize, f.Size, len(b.Mimecast.Content)
		if f.Hash != nil {
			r.sha256 = f.Hash.SHA256
		}
	}
	s.mu.Lock()
	s.docs[d.ID] = r
	s.mu.Unlock()
	done(index.Result{Status: http.StatusCreated})
	return nil
}

// hostileRun is one message through the crawler's per-message path.
type hostileRun struct {
	msg      doc
	atts     map[string]doc
	arc      *hostileArchive
	probe    *heapProbe
	malform  int64
	finished bool // the tracker finished the message without failure
}

func runHostile(t *testing.T, arc *hostileArchive, listed int64, limits MessageLimits) hostileRun {
	t.Helper()
	probe := newHeapProbe()
	arc.probe = probe
	sink := &recordingSink{probe: probe, docs: map[string]doc{}}
	var logs strings.Builder
	lg := zerolog.New(zerolog.SyncWriter(&logs))
	c := New(arc, nil, sink, nil, Options{ExtractAttachments: true, MaxAttachmentBytes: 25_000_000,
		Logger: lg, Limits: limits})
	m := api.MessageSummary{ID: arc.detail.ID, Subject: "hostile", Size: listed}
	// The sink answers at once; crawlOneMessage waits until the hand-off has added the message
	// document and it was answered too.
	failed := crawlOneMessage(t, c, Mailbox{Address: "user@example.com", Domain: "example.com"}, m, lg)
	probe.sample()

	r := hostileRun{atts: map[string]doc{}, arc: arc, probe: probe, malform: c.counts.malformed.Load(),
		finished: failed == 0}
	for id, d := range sink.docs {
		if d.kind == index.Messages {
			r.msg = d
		} else {
			r.atts[id] = d
		}
	}
	if !r.finished {
		t.Logf("crawler log:\n%s", logs.String())
	}
	t.Logf("peak heap %.1f MiB over %d samples; message stream read %.1f MiB; %d attachment downloads",
		float64(probe.peak)/(1<<20), probe.samples, float64(arc.body.read)/(1<<20), arc.downloads)
	return r
}

const hugeLine = 200 << 20

func TestHostileHeaderLineCostsBoundedMemory(t *testing.T) {
	const bound = 64 << 20
	cases := []struct {
		name   string
		rfc822 func() io.Reader
		listed int64
		text   string
	}{
		{
			name: "top level, listed at 15 KB",
			rfc822: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nSubject: "), repeat("a", hugeLine))
			},
			listed: 15_000,
		},
		{
			name: "in a part, no listed size",
			rfc822: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
					"--b\r\nContent-Type: text/plain\r\n\r\nhello before\r\n--b\r\nX-Long: "),
					repeat("a", hugeLine), strings.NewReader("\r\n\r\nhidden\r\n--b--\r\n"))
			},
			text: "hello before",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arc := &hostileArchive{detail: &api.MessageDetail{ID: "m1", Subject: "hostile"}, rfc822: tc.rfc822}
			r := runHostile(t, arc, tc.listed, MessageLimits{SpillDir: t.TempDir()})
			if !r.finished {
				t.Errorf("message not finished as indexed")
			}
			if r.msg.kind != index.Messages || r.msg.body != tc.text || r.msg.oversize {
				t.Errorf("message document %+v, want body %q, not oversize", r.msg, tc.text)
			}
			if r.malform != 1 {
				t.Errorf("malformed counted %d times, want 1", r.malform)
			}
			if arc.body.read > 4<<20 {
				t.Errorf("read %d bytes of the message, want the reading to stop near the 1 MiB header cap", arc.body.read)
			}
			if r.probe.peak > bound {
				t.Errorf("peak heap %.1f MiB, want under %d MiB", float64(r.probe.peak)/(1<<20), bound>>20)
			}
		})
	}
}

func TestHostileMessageLargerThanItsLimit(t *testing.T) {
	const bound = 64 << 20
	// A text body and then one endless base64 attachment, 300 MiB in all.
	rfc822 := func() io.Reader {
		return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
			"--b\r\nContent-Type: text/plain\r\n\r\nthe text comes first\r\n"+
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"+
			"Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n"),
			repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n", 300<<20))
	}
	cases := []struct {
		name   string
		listed int64
		limits MessageLimits
		want   int64 // bytes of the stream read: the limit, and the one byte that proves it exceeded
	}{
		{"listed at 15 KB", 15_000, MessageLimits{}, 2*15_000 + listedSlack + 1},
		{"no listed size, configured cap", 0, MessageLimits{MaxMessageBytes: 8 << 20}, 8<<20 + 1},
		{"listed size above the cap", 1 << 40, MessageLimits{MaxMessageBytes: 8 << 20}, 8<<20 + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.limits.SpillDir = t.TempDir()
			arc := &hostileArchive{rfc822: rfc822, detail: &api.MessageDetail{ID: "m1", Subject: "big",
				Attachments: []api.Attachment{{ID: "a1", Filename: "big.bin", Size: 300 << 20}}}}
			r := runHostile(t, arc, tc.listed, tc.limits)
			if !r.finished {
				t.Errorf("message not finished as indexed: an oversize message is final, not retried")
			}
			if !r.msg.oversize || r.msg.body != "the text comes first" {
				t.Errorf("message document %+v, want oversize with the text read before the limit", r.msg)
			}
			if arc.body.read != tc.want {
				t.Errorf("read %d bytes of the message, want %d", arc.body.read, tc.want)
			}
			// Without the detail the attachment is known from the part read up to the limit.
			if len(r.atts) != 1 {
				t.Errorf("attachment documents %+v, want one", r.atts)
			}
			for _, a := range r.atts {
				if !a.oversize {
					t.Errorf("attachment document %+v, want it indexed as oversize", a)
				}
			}
			if r.malform != 1 {
				t.Errorf("malformed counted %d times, want 1", r.malform)
			}
			if r.probe.peak > bound {
				t.Errorf("peak heap %.1f MiB, want under %d MiB", float64(r.probe.peak)/(1<<20), bound>>20)
			}
		})
	}
}

func TestLimitedBodyPassesExactlyTheLimit(t *testing.T) {
	for _, tc := range []struct {
		size    int64
		tooLong bool
	}{{0, false}, {99, false}, {100, false}, {101, true}, {5000, true}} {
		b, err := io.ReadAll(newLimitedBody(repeat("x", tc.size), 100))
		var tl *tooLargeError
		if errors.As(err, &tl) != tc.tooLong || (!tc.tooLong && err != nil) {
			t.Errorf("size %d: err = %v, want too large %t", tc.size, err, tc.tooLong)
		}
		if want := min(tc.size, 100); int64(len(b)) != want {
			t.Errorf("size %d: read %d bytes, want %d", tc.size, len(b), want)
		}
	}
}

func TestDownloadLimit(t *testing.T) {
	for _, tc := range []struct {
		limits MessageLimits
		listed int64
		want   int64
	}{
		{MessageLimits{}, 0, DefaultMaxMessageBytes},
		{MessageLimits{}, 15_000, 30_000 + listedSlack},
		{MessageLimits{}, 100 << 20, DefaultMaxMessageBytes},
		{MessageLimits{MaxMessageBytes: 1 << 20}, 15_000, 1 << 20},
		{MessageLimits{MaxMessageBytes: 1 << 30}, 200 << 20, 400<<20 + listedSlack},
		{MessageLimits{}, -1, DefaultMaxMessageBytes},
	} {
		if got := tc.limits.downloadLimit(tc.listed); got != tc.want {
			t.Errorf("%+v, listed %d: limit %d, want %d", tc.limits, tc.listed, got, tc.want)
		}
	}
}

// manyAttachments is a message with n attachments of size bytes; every fifth is a text file,
// whose text the crawler extracts.
func manyAttachments(n int, size int64) (func() io.Reader, []api.Attachment) {
	var atts []api.Attachment
	for i := range n {
		h := sha256.New()
		io.Copy(h, repeat(attachmentPattern(i), size))
		a := api.Attachment{ID: fmt.Sprintf("a%03d", i), Filename: fmt.Sprintf("f%03d.bin", i),
			ContentType: "application/octet-stream", Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
		if i%5 == 0 {
			a.Filename, a.ContentType = fmt.Sprintf("f%03d.txt", i), "text/plain"
		}
		atts = append(atts, a)
	}
	gen := func() io.Reader {
		rs := []io.Reader{strings.NewReader("From: a@example.com\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n")}
		for i, a := range atts {
			rs = append(rs, strings.NewReader(fmt.Sprintf("--b\r\nContent-Type: %s\r\n"+
				"Content-Disposition: attachment; filename=%q\r\n\r\n", a.ContentType, a.Filename)),
				repeat(attachmentPattern(i), size), strings.NewReader("\r\n"))
		}
		return io.MultiReader(append(rs, strings.NewReader("--b--\r\n"))...)
	}
	return gen, atts
}

func attachmentPattern(i int) string {
	return fmt.Sprintf("attachment %03d: 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP\r\n", i)
}

func TestHostileManyAttachmentsCostBoundedMemory(t *testing.T) {
	const (
		n    = 100
		size = 2 << 20
		// What is live at once is the default memory cap of kept attachments (16 MiB), one
		// attachment being read and one being read back, and a document's text; the heap
		// sampled also holds garbage, up to about as much again before the collector runs.
		// Without the cap all 200 MiB were held at once.
		bound = 64 << 20
	)
	gen, atts := manyAttachments(n, size)
	dir := t.TempDir()
	arc := &hostileArchive{rfc822: gen, detail: &api.MessageDetail{ID: "m1", Subject: "many", Attachments: atts}}
	// 200 MiB is above the default download limit.
	r := runHostile(t, arc, n*size, MessageLimits{MaxMessageBytes: 512 << 20, SpillDir: dir})
	if !r.finished || r.msg.body != "see attached" || r.msg.oversize {
		t.Errorf("message document %+v, finished %t", r.msg, r.finished)
	}
	if arc.downloads != 0 {
		t.Errorf("%d attachments downloaded again, want every one taken from the message", arc.downloads)
	}
	if len(r.atts) != n {
		t.Fatalf("%d attachment documents, want %d", len(r.atts), n)
	}
	for i, a := range atts {
		d := r.atts[AttachmentDocID("user@example.com", api.ViewInbox, "m1", i, a.SHA256)]
		wantText := a.ContentType == "text/plain"
		if d.sha256 != a.SHA256 || d.size != size || d.oversize || (d.contentLen > 0) != wantText {
			t.Errorf("attachment %s: %+v, want sha256 %s, size %d, text %t", a.ID, d, a.SHA256, size, wantText)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if r.probe.peak > bound {
		t.Errorf("peak heap %.1f MiB, want under %d MiB", float64(r.probe.peak)/(1<<20), bound>>20)
	}
}

func (s *recordingSink) Flush(context.Context) error { return nil }
