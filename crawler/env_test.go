package crawler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/internal/rule"
	"github.com/mimecrawl/mimecrawl/state"
)

var prefixSeq atomic.Int64

// env is one test's world: a simulator over a real socket, a real Elasticsearch with an index
// prefix of its own, and a bbolt state file in a temporary directory.
type env struct {
	t         *testing.T
	sim       *simulator.Server
	simSrv    *httptest.Server
	esURL     string
	esAddr    string // where the crawler sends index traffic (ES itself or a fault proxy)
	prefix    string
	statePath string
	log       *bytes.Buffer
	lg        zerolog.Logger
	client    *mimecast.Client
}

func newEnv(t *testing.T, opts simulator.Options) *env {
	t.Helper()
	esURL := indextest.URL(t)
	if os.Getenv("MIMECRAWL_TEST_SHAPE_VARIANTS") == "1" {
		// The whole suite again against the shapes the public sources disagree on (make test
		// does this): every crawl must still end with the index equal to the truth.
		opts.ShapeVariants = true
	}
	sim, err := simulator.New(opts)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, sim: sim, simSrv: srv, esURL: esURL, esAddr: esURL,
		prefix:    fmt.Sprintf("mctest-%d-%d", os.Getpid(), prefixSeq.Add(1)),
		statePath: filepath.Join(t.TempDir(), "state.db"), log: &bytes.Buffer{}}
	e.lg = zerolog.New(zerolog.SyncWriter(e.log)).Level(zerolog.DebugLevel)
	e.client = e.newClient(-time.Second)
	t.Cleanup(func() {
		e.client.Close()
		indextest.Remove(t, esURL, e.prefix)
	})
	return e
}

// logger returns the test's logger; every component shares one writer lock on the buffer.
func (e *env) logger() zerolog.Logger { return e.lg }

// newClient returns a client that refreshes tokens at expiry + offset.
func (e *env) newClient(offset time.Duration) *mimecast.Client {
	c, err := mimecast.New(mimecast.Config{
		BaseURL: e.simSrv.URL, ClientID: defaultID(e), ClientSecret: defaultSecret(e),
		AuthTokenOffset: offset, RetryAfterMultiplier: 1, MaxRetries: 10,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxWait: 200 * time.Millisecond,
		Logger: e.logger(),
	})
	if err != nil {
		e.t.Fatalf("mimecast client: %v", err)
	}
	return c
}

func defaultID(*env) string     { return "demo-client" }
func defaultSecret(*env) string { return "demo-secret" }

func (e *env) cluster(ctx context.Context) *index.Cluster {
	e.t.Helper()
	zero := 0
	c, err := index.Open(ctx, index.Config{Addresses: []string{e.esAddr}, IndexPrefix: e.prefix,
		BulkWorkers: 2, FlushBytes: 1 << 20, FlushInterval: 50 * time.Millisecond, MaxItemRetries: 3,
		RetryBackoff: func(int) time.Duration { return 20 * time.Millisecond }, Replicas: &zero, Logger: e.logger()})
	if err != nil {
		e.t.Fatalf("open cluster: %v", err)
	}
	if err := c.Setup(ctx); err != nil {
		e.t.Fatalf("setup cluster: %v", err)
	}
	return c
}

// run is one crawl, as `mimecrawl crawl` does it: enumerate, crawl, flush, close.
type run struct {
	results []crawler.ViewResult
	err     error // what Run returned
	totals  crawler.Totals
	enum    *crawler.Enumeration
	writer  index.WriterStats
}

func (r run) complete() bool {
	for _, v := range r.results {
		if v.Outcome != crawler.Complete {
			return false
		}
	}
	return true
}

func (e *env) crawl(ctx context.Context, rules crawler.Rules, tweak func(*crawler.Options)) run {
	e.t.Helper()
	store, err := state.Open(e.statePath, state.Options{LockTimeout: time.Second})
	if err != nil {
		e.t.Fatalf("open state: %v", err)
	}
	defer store.Close()
	cl := e.cluster(ctx)
	w, err := cl.NewWriter()
	if err != nil {
		e.t.Fatalf("writer: %v", err)
	}
	enum, err := crawler.Enumerate(ctx, e.client, rules, 50, 2)
	if err != nil {
		w.Close(context.Background())
		e.t.Fatalf("enumerate: %v", err)
	}
	opts := crawler.DefaultOptions()
	opts.PageSize, opts.ListingSlots, opts.MessageWorkers = 7, 3, 2
	opts.ExtractAttachments, opts.MaxAttachmentBytes, opts.AttachmentPipeline = true, 1<<20, cl.AttachmentProcessor()
	opts.CheckpointInterval, opts.ShutdownGrace = 10*time.Millisecond, 5*time.Second
	opts.Logger, opts.InternalDomains = e.logger(), enum.InternalDomains
	if tweak != nil {
		tweak(&opts)
	}
	cr := crawler.New(e.client, cl, w, store, opts)
	res, runErr := cr.Run(ctx, enum.Kept, nil)
	if err := w.Close(context.Background()); err != nil {
		e.t.Errorf("close writer: %v", err)
	}
	return run{results: res, err: runErr, totals: cr.Totals(), enum: enum, writer: w.Stats()}
}

// indexed returns every document of kind k ("messages" or "attachments") by id, its source
// flattened to dotted field names (see flatten).
func (e *env) indexed(kind string) map[string]map[string]any {
	e.t.Helper()
	e.es(http.MethodPost, "/"+e.prefix+"-"+kind+"/_refresh", "", nil)
	var out struct {
		Hits struct {
			Hits []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	e.es(http.MethodPost, "/"+e.prefix+"-"+kind+"/_search?size=10000", `{"query":{"match_all":{}}}`, &out)
	m := map[string]map[string]any{}
	for _, h := range out.Hits.Hits {
		if _, dup := m[h.ID]; dup {
			e.t.Errorf("document %s returned twice", h.ID)
		}
		m[h.ID] = flatten(h.Source)
	}
	return m
}

// flatten turns a document source into its dotted field names ("email.subject"), as
// mappings and queries name them. A list of exactly one object (an attachment document's
// email.attachments) is entered like an object; other lists are values.
func flatten(src map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(prefix+k+".", e)
			}
			return
		case []any:
			if len(x) == 1 {
				if o, ok := x[0].(map[string]any); ok {
					walk(prefix, o)
					return
				}
			}
		}
		out[strings.TrimSuffix(prefix, ".")] = v
	}
	walk("", src)
	return out
}

// indexingTotal is how many index operations Elasticsearch performed on the test's indices:
// it proves "no document was rewritten" from Elasticsearch's side.
func (e *env) indexingTotal() int64 {
	var out struct {
		All struct {
			Primaries struct {
				Indexing struct {
					IndexTotal int64 `json:"index_total"`
				} `json:"indexing"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	e.es(http.MethodGet, "/"+e.prefix+"-*/_stats/indexing", "", &out)
	return out.All.Primaries.Indexing.IndexTotal
}

func (e *env) es(method, path, body string, out any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.esURL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// expectation is what the index must hold for the truth under the given rules.
type expectation struct {
	messages    map[string]simulator.TruthMessage // doc id → message
	mailboxOf   map[string]string                 // doc id → mailbox
	attachments map[string]simulator.TruthAttachment
}

type truthFilter struct {
	rules           crawler.Rules
	excludeSubjects []rule.Regexp
	excludeNames    []rule.Regexp
	blankName       string
	start           time.Time
	views           []string
}

func (e *env) expect(f truthFilter) expectation {
	e.t.Helper()
	if f.blankName == "" {
		f.blankName = "unnamed-attachment"
	}
	if len(f.views) == 0 {
		f.views = []string{"INBOX", "SENT"}
	}
	ex := expectation{messages: map[string]simulator.TruthMessage{}, mailboxOf: map[string]string{},
		attachments: map[string]simulator.TruthAttachment{}}
	truth := e.sim.Truth()
	domainLocal := map[string]bool{}
	for _, mb := range truth.Mailboxes {
		if mb.Local {
			domainLocal[mb.Domain] = true
		}
	}
	for _, mb := range truth.Mailboxes {
		if mb.Alias || isDL(mb) {
			continue
		}
		addr := strings.ToLower(mb.Address)
		if !f.rules.DomainDecision(strings.ToLower(mb.Domain), domainLocal[mb.Domain]).Kept || !f.rules.MailboxDecision(addr).Kept {
			continue
		}
		for _, m := range mb.Messages {
			if !contains(f.views, m.View) || matches(f.excludeSubjects, m.Subject) {
				continue
			}
			if !f.start.IsZero() {
				if t, err := time.Parse("2006-01-02T15:04:05-0700", m.Received); err == nil && t.Before(f.start) {
					continue
				}
			}
			id := crawler.MessageDocID(addr, m.View, m.ID)
			ex.messages[id] = m
			ex.mailboxOf[id] = addr
			for i, a := range m.Attachments {
				name := a.Filename
				if strings.TrimSpace(name) == "" {
					name = f.blankName
				}
				if matches(f.excludeNames, name) {
					continue
				}
				// The simulator writes every attachment as an attachment-like part, in order.
				ex.attachments[crawler.AttachmentDocID(addr, m.View, m.ID, i, a.SHA256)] = a
			}
		}
	}
	return ex
}

// assertIndexEquals compares the index with the expectation id by id, both ways.
func (e *env) assertIndexEquals(ex expectation, except ...string) {
	e.t.Helper()
	skip := map[string]bool{}
	for _, id := range except {
		skip[id] = true
	}
	for kind, want := range map[string]map[string]bool{"messages": keys(ex.messages), "attachments": keys(ex.attachments)} {
		got := e.indexed(kind)
		missing, extra := 0, 0
		for id := range want {
			if _, ok := got[id]; !ok && !skip[id] {
				missing++
				if missing <= 5 {
					e.t.Errorf("%s: document %s missing from the index", kind, id)
				}
			}
		}
		for id := range got {
			if !want[id] || skip[id] {
				extra++
				if extra <= 5 {
					e.t.Errorf("%s: document %s in the index but not expected", kind, id)
				}
			}
		}
		if missing+extra > 0 {
			e.t.Errorf("%s: %d missing, %d unexpected (want %d, got %d)", kind, missing, extra, len(want), len(got))
		}
	}
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func matches(rs []rule.Regexp, s string) bool {
	_, ok := rule.MatchAny(rs, s)
	return ok
}

func requests(st simulator.Stats, path string) int64 {
	var n int64
	for _, c := range st.Requests[path] {
		n += c
	}
	return n
}

func isDL(mb simulator.TruthMailbox) bool { return mb.Type == simulator.TypeDistributionList }

func (e *env) position(k state.Key) state.Position {
	e.t.Helper()
	st, err := state.Open(e.statePath, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	pos, _, err := st.Position(k)
	if err != nil {
		e.t.Fatal(err)
	}
	return pos
}
