package crawler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// The fakes of this file stand in for the crawler's own interfaces (deps.go), so that the core
// runs in unit tests without Mimecast or Elasticsearch.

// fakeArchive serves listed messages of mailbox views from memory.
type fakeArchive struct {
	mu    sync.Mutex
	views map[state.Key][]api.MessageSummary // listing order as given
	// fetchErr, when set, decides the error of a detail or file call for a message id.
	fetchErr func(id string) error
	fileErr  func(id string) error // likewise for get-file only
	fetches  atomic.Int64          // get-file calls: messages fetched
	details  atomic.Int64          // detail calls
	lists    atomic.Int64
	pages    atomic.Int64  // pages handed to the crawler
	onPage   func(n int64) // called before the crawler gets the nth page (from 1), if set
}

func newFakeArchive() *fakeArchive {
	return &fakeArchive{views: map[state.Key][]api.MessageSummary{}}
}

// add lists n messages in a view, newest first, received one minute apart ending at newest.
func (a *fakeArchive) add(k state.Key, n int, newest time.Time) []api.MessageSummary {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range n {
		id := fmt.Sprintf("%s-%s-%d", k.Mailbox, k.View, len(a.views[k])+i)
		a.views[k] = append(a.views[k], api.MessageSummary{ID: id, Subject: "subject " + id,
			Received: api.FormatTime(newest.Add(-time.Duration(i) * time.Minute))})
	}
	return a.views[k]
}

func (a *fakeArchive) ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func([]api.MessageSummary) error) error {
	a.lists.Add(1)
	start, err := api.ParseTime(f.Start)
	if err != nil {
		return err
	}
	end, err := api.ParseTime(f.End)
	if err != nil {
		return err
	}
	a.mu.Lock()
	var in []api.MessageSummary
	for _, m := range a.views[state.Key{Mailbox: f.Mailbox, View: f.View}] {
		t, err := api.ParseTime(m.Received)
		if err != nil || (!t.Before(start) && !t.After(end)) {
			in = append(in, m) // an unreadable time is listed: the crawler must cope
		}
	}
	a.mu.Unlock()
	for len(in) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(pageSize, len(in))
		if p := a.pages.Add(1); a.onPage != nil {
			a.onPage(p)
		}
		if err := fn(in[:n]); err != nil {
			return err
		}
		in = in[n:]
	}
	return nil
}

func (a *fakeArchive) MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error) {
	a.details.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.fetchErr != nil {
		if err := a.fetchErr(id); err != nil {
			return nil, err
		}
	}
	return &api.MessageDetail{ID: id, Subject: "subject " + id}, nil
}

func (a *fakeArchive) GetFile(ctx context.Context, id string) (io.ReadCloser, error) {
	a.fetches.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.fetchErr != nil {
		if err := a.fetchErr(id); err != nil {
			return nil, err
		}
	}
	if a.fileErr != nil {
		if err := a.fileErr(id); err != nil {
			return nil, err
		}
	}
	return io.NopCloser(strings.NewReader("Subject: hello\r\nContent-Type: text/plain\r\n\r\nbody of " + id + "\r\n")), nil
}

// fakeIndex models Elasticsearch's visibility: a written document is seen at once by Existing
// (like _mget, which is realtime) but by searches (DeleteWhere, Count) only after Refresh.
type fakeIndex struct {
	mu        sync.Mutex
	docs      map[string]fakeDoc // every acknowledged document
	visible   map[string]bool    // ids a search sees
	refreshes atomic.Int64
}

type fakeDoc struct {
	kind          index.Kind
	mailbox, view string
	generation    int64
	messageID     string
}

func newFakeIndex() *fakeIndex {
	return &fakeIndex{docs: map[string]fakeDoc{}, visible: map[string]bool{}}
}

func (x *fakeIndex) put(d index.Doc) {
	fd := fakeDoc{kind: d.Kind}
	switch b := d.Body.(type) {
	case *index.MessageDoc:
		fd.mailbox, fd.view, fd.generation, fd.messageID = b.Mimecast.Mailbox, b.Mimecast.View, b.Mimecast.Generation, b.Mimecast.ID
	case *index.AttachmentDoc:
		fd.mailbox, fd.view, fd.generation, fd.messageID = b.Mimecast.Mailbox, b.Mimecast.View, b.Mimecast.Generation, b.Mimecast.ID
	}
	x.mu.Lock()
	x.docs[d.ID] = fd
	delete(x.visible, d.ID) // the new version is not searchable before a refresh
	x.mu.Unlock()
}

func (x *fakeIndex) Existing(_ context.Context, k index.Kind, ids []string) (map[string]bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if d, ok := x.docs[id]; ok && d.kind == k {
			out[id] = true
		}
	}
	return out, nil
}

func (x *fakeIndex) Refresh(context.Context) error {
	x.refreshes.Add(1)
	x.mu.Lock()
	defer x.mu.Unlock()
	for id := range x.docs {
		x.visible[id] = true
	}
	return nil
}

func (x *fakeIndex) match(id string, d fakeDoc, k index.Kind, f index.Filter) bool {
	if d.kind != k || !x.visible[id] {
		return false
	}
	if m, ok := f.Terms[index.FieldMailbox]; ok && d.mailbox != m {
		return false
	}
	if v, ok := f.Terms[index.FieldView]; ok && d.view != v {
		return false
	}
	return f.GenerationBelow == 0 || d.generation < f.GenerationBelow
}

func (x *fakeIndex) DeleteWhere(_ context.Context, k index.Kind, f index.Filter) (int64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var n int64
	for id, d := range x.docs {
		if x.match(id, d, k, f) {
			delete(x.docs, id)
			delete(x.visible, id)
			n++
		}
	}
	return n, nil
}

func (x *fakeIndex) Count(_ context.Context, k index.Kind, f index.Filter) (int64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var n int64
	for id, d := range x.docs {
		if x.match(id, d, k, f) {
			n++
		}
	}
	return n, nil
}

// ids returns the ids of every document of a kind, visible or not.
func (x *fakeIndex) ids(k index.Kind) map[string]bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]bool{}
	for id, d := range x.docs {
		if d.kind == k {
			out[id] = true
		}
	}
	return out
}

// fakeSink acknowledges documents from its own goroutines, as the bulk indexer does. answer
// decides each result; hold=true keeps the document unanswered (a stalled Elasticsearch).
type fakeSink struct {
	idx    *fakeIndex
	answer func(d index.Doc) (r index.Result, hold bool)
	// onFlush=true answers documents only when Flush is called, as a bulk writer with no timer
	// and requests never full would.
	onFlush bool
	queued  []func()
	wg      sync.WaitGroup
	added   atomic.Int64
	flushes atomic.Int64
	mu      sync.Mutex
	held    int
}

func (s *fakeSink) Add(ctx context.Context, d index.Doc, done func(index.Result)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.added.Add(1)
	var r index.Result
	if s.answer != nil {
		var hold bool
		if r, hold = s.answer(d); hold {
			s.mu.Lock()
			s.held++
			s.mu.Unlock()
			return nil
		}
	}
	answer := func() {
		if r.Err == nil && !r.Permanent {
			s.idx.put(d)
		}
		done(r)
	}
	if s.onFlush {
		s.mu.Lock()
		s.queued = append(s.queued, answer)
		s.mu.Unlock()
		return nil
	}
	s.wg.Go(answer)
	return nil
}

// Flush counts the flushes asked for; documents are answered as they come anyway.
func (s *fakeSink) Flush(ctx context.Context) error {
	s.flushes.Add(1)
	s.mu.Lock()
	q := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, answer := range q {
		answer()
	}
	return ctx.Err()
}

// fakeStore is an in-memory state store that checks what state.Store checks on commit.
type fakeStore struct {
	mu       sync.Mutex
	pos      map[state.Key]state.Position
	failures map[string]state.Failure
	gen      int64
	deleted  []string
}

func newFakeStore() *fakeStore {
	return &fakeStore{pos: map[state.Key]state.Position{}, failures: map[string]state.Failure{}}
}

func (s *fakeStore) Position(k state.Key) (state.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pos[k]
	if p.Pass != nil {
		ps := *p.Pass
		p.Pass = &ps
	}
	return p, ok, nil
}

func (s *fakeStore) Commit(updates map[state.Key]state.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range updates {
		if p.Pass != nil && !p.Pass.Low.IsZero() && p.Pass.Low.After(p.Pass.End) {
			return fmt.Errorf("%v: resume point after the end of the pass", k)
		}
		if p.Pass != nil {
			ps := *p.Pass
			p.Pass = &ps
		}
		s.pos[k] = p
	}
	return nil
}

func (s *fakeStore) NextGeneration() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	return s.gen, nil
}

func (s *fakeStore) RecordFailure(f state.Failure) error {
	if f.DocID == "" {
		return errors.New("empty document id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[f.DocID] = f
	return nil
}

func (s *fakeStore) ClearFailure(docID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, docID)
	return nil
}

func (s *fakeStore) FailedMessageIDs(k state.Key) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, f := range s.failures {
		if f.Key == k {
			out[f.MessageID] = true
		}
	}
	return out, nil
}

func (s *fakeStore) Failures(k *state.Key) ([]state.Failure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []state.Failure
	for _, f := range s.failures {
		if k == nil || f.Key == *k {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DocID < out[j].DocID })
	return out, nil
}

func (s *fakeStore) Mailboxes() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for k := range s.pos {
		if !seen[k.Mailbox] {
			seen[k.Mailbox] = true
			out = append(out, k.Mailbox)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *fakeStore) DeleteMailbox(m string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.pos {
		if k.Mailbox == m {
			delete(s.pos, k)
		}
	}
	s.deleted = append(s.deleted, m)
	return nil
}

var (
	_ Archive      = (*fakeArchive)(nil)
	_ Index        = (*fakeIndex)(nil)
	_ RemovalIndex = (*fakeIndex)(nil)
	_ Sink         = (*fakeSink)(nil)
	_ Store        = (*fakeStore)(nil)
	_ MailboxStore = (*fakeStore)(nil)
)
