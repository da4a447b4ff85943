package crawler_test

import (
	"context"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// hostileFiles serves the simulator's archive, except that the RFC 822 form of chosen
// messages is replaced by a hostile stream generated on the fly. It counts what the crawler
// read of those streams and samples the heap as they are read.
type hostileFiles struct {
	crawler.Archive
	streams map[string]func() io.Reader // by Mimecast message id

	mu    sync.Mutex
	calls map[string]int
	read  map[string]int64
	base  uint64
	peak  uint64
}

func (h *hostileFiles) GetFile(ctx context.Context, id string) (io.ReadCloser, error) {
	gen, ok := h.streams[id]
	if !ok {
		return h.Archive.GetFile(ctx, id)
	}
	h.mu.Lock()
	h.calls[id]++
	h.mu.Unlock()
	return &hostileStream{r: gen(), h: h, id: id}, nil
}

func (h *hostileFiles) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ms.HeapAlloc > h.base && ms.HeapAlloc-h.base > h.peak {
		h.peak = ms.HeapAlloc - h.base
	}
}

type hostileStream struct {
	r    io.Reader
	h    *hostileFiles
	id   string
	n    int64
	next int64
}

func (s *hostileStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n >= s.next {
		s.h.sample()
		s.next = s.n + 2<<20
	}
	return n, err
}

func (s *hostileStream) Close() error {
	s.h.mu.Lock()
	s.h.read[s.id] += s.n
	s.h.mu.Unlock()
	return nil
}

// endless yields n bytes of pattern.
type endless struct {
	pattern string
	n, off  int64
}

func (r *endless) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := 0; i < len(p); {
		c := copy(p[i:], r.pattern[r.off%int64(len(r.pattern)):])
		i += c
		r.off += int64(c)
	}
	return len(p), nil
}

// TestHostileMessagesCostBoundedMemoryAndAreIndexedOnce crawls an archive in which three
// messages are hostile: a 200 MB header line at the top, a 200 MB header line in a part, and a
// 300 MB message listed at a few kilobytes. The crawl completes, every message and attachment
// is indexed, the hostile downloads stop early, the heap stays bounded, and a second crawl
// does not fetch them again.
func TestHostileMessagesCostBoundedMemoryAndAreIndexedOnce(t *testing.T) {
	e := newEnv(t, smallArchive())
	ex := e.expect(truthFilter{})
	ids := make([]string, 0, len(ex.messages))
	for id := range ex.messages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) < 3 {
		t.Fatalf("the archive under test has %d messages; the test needs 3", len(ids))
	}
	topLine, partLine, oversize := ex.messages[ids[0]], ex.messages[ids[1]], ex.messages[ids[2]]
	const huge = 200 << 20
	files := &hostileFiles{Archive: e.client, calls: map[string]int{}, read: map[string]int64{},
		streams: map[string]func() io.Reader{
			topLine.ID: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nSubject: "), &endless{pattern: "a", n: huge})
			},
			partLine.ID: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
					"--b\r\nContent-Type: text/plain\r\n\r\nhello before\r\n--b\r\nX-Long: "),
					&endless{pattern: "a", n: huge}, strings.NewReader("\r\n\r\nhidden\r\n--b--\r\n"))
			},
			oversize.ID: func() io.Reader {
				// Attachments are read whole (to hash them), so this one is read up to the limit.
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
					"--b\r\nContent-Type: text/plain\r\n\r\nfirst words\r\n"+
					"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
					&endless{pattern: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n", n: 300 << 20})
			},
		}}
	// The hostile bodies stand in for the messages' own, so their attachments are what those
	// bodies hold: none in the first two, and in the third the one cut off at the limit.
	for _, id := range ids[:3] {
		m := ex.messages[id]
		for i, a := range m.Attachments {
			delete(ex.attachments, crawler.AttachmentDocID(ex.mailboxOf[id], m.View, m.ID, i, a.SHA256))
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	files.base = ms.HeapAlloc

	first := hostileCrawl(t, e, files)
	if !first.complete() {
		t.Fatalf("crawl incomplete: %+v\n%s", first.results, e.log)
	}
	var cut []string
	for id, src := range e.indexed("attachments") {
		if src["mimecast.message_doc_id"] == ids[2] {
			cut = append(cut, id)
			if src["mimecast.oversize"] != true {
				t.Errorf("the attachment cut off at the download limit is not oversize: %v", src)
			}
		}
	}
	if len(cut) != 1 {
		t.Errorf("the oversize message has %d attachment documents, want the one it was cut off in", len(cut))
	}
	for _, id := range cut {
		ex.attachments[id] = simulator.TruthAttachment{}
	}
	e.assertIndexEquals(ex)
	got := e.indexed("messages")
	for _, c := range []struct {
		name     string
		m        simulator.TruthMessage
		id       string
		oversize bool
		body     string
		maxRead  int64
	}{
		{"header line at the top", topLine, ids[0], false, "", 4 << 20},
		{"header line in a part", partLine, ids[1], false, "hello before", 4 << 20},
		{"larger than its listing allows", oversize, ids[2], true, "first words", 2*oversize.Size + 16<<20 + 1},
	} {
		src := got[c.id]
		if src["mimecast.oversize"] != c.oversize || !strings.HasPrefix(src["mimecast.body"].(string), c.body) {
			t.Errorf("%s: oversize %v, body %.80q; want oversize %t, body starting %q", c.name, src["mimecast.oversize"], src["mimecast.body"], c.oversize, c.body)
		}
		t.Logf("%s: %d bytes downloaded", c.name, files.read[c.m.ID])
		if r := files.read[c.m.ID]; r > c.maxRead {
			t.Errorf("%s: %d bytes downloaded, want at most %d", c.name, r, c.maxRead)
		}
	}
	if first.totals.MalformedBodies < 3 {
		t.Errorf("malformed bodies %d, want at least the 3 hostile messages", first.totals.MalformedBodies)
	}
	// Three such messages took 1.7 GiB before their cost was bounded.
	const bound = 128 << 20
	t.Logf("peak heap while reading hostile messages %.1f MiB", float64(files.peak)/(1<<20))
	if files.peak > bound {
		t.Errorf("peak heap %.1f MiB, want under %d MiB", float64(files.peak)/(1<<20), bound>>20)
	}

	calls := map[string]int{}
	for id, n := range files.calls {
		calls[id] = n
	}
	second := hostileCrawl(t, e, files)
	if !second.complete() {
		t.Fatalf("second crawl incomplete: %+v\n%s", second.results, e.log)
	}
	for id, n := range files.calls {
		if n != calls[id] {
			t.Errorf("message %s fetched again by the second crawl (%d, then %d times)", id, calls[id], n)
		}
	}
	e.assertIndexEquals(ex)
}

// hostileCrawl is env.crawl with the archive replaced.
func hostileCrawl(t *testing.T, e *env, arc crawler.Archive) run {
	t.Helper()
	ctx := context.Background()
	store, err := state.Open(e.statePath, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	defer store.Close()
	cl := e.cluster(ctx)
	w, err := cl.NewWriter()
	if err != nil {
		t.Fatalf("writer: %v", err)
	}
	enum, err := crawler.Enumerate(ctx, e.client, crawler.Rules{}, 50, 2)
	if err != nil {
		w.Close(context.Background())
		t.Fatalf("enumerate: %v", err)
	}
	opts := crawler.DefaultOptions()
	opts.PageSize, opts.ListingSlots, opts.MessageWorkers = 7, 3, 2
	opts.ExtractAttachments, opts.MaxAttachmentBytes, opts.AttachmentPipeline = true, 1<<20, cl.AttachmentProcessor()
	opts.CheckpointInterval, opts.ShutdownGrace = 10*time.Millisecond, 5*time.Second
	opts.Logger, opts.Limits.SpillDir = e.logger(), t.TempDir()
	cr := crawler.New(arc, cl, w, store, opts)
	res, runErr := cr.Run(ctx, enum.Kept, nil)
	if runErr != nil {
		t.Errorf("crawl: %v", runErr)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("close writer: %v", err)
	}
	return run{results: res, totals: cr.Totals(), enum: enum, writer: w.Stats()}
}
