package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// env is one test's view of the real cluster: its base URL and a unique prefix.
type env struct {
	base   string
	prefix string
}

func newEnv(t testing.TB) env {
	base := indextest.URL(t)
	return env{base: base, prefix: indextest.Prefix(t, base)}
}

// config returns a Config for the test cluster (or addr, e.g. a proxy) with millisecond timings.
func (e env) config(t testing.TB, addr string) index.Config {
	if addr == "" {
		addr = e.base
	}
	zero := 0
	return index.Config{
		Addresses:     []string{addr},
		IndexPrefix:   e.prefix,
		Namespace:     indextest.Namespace(e.prefix),
		Replicas:      &zero,
		BulkWorkers:   2,
		FlushInterval: 20 * time.Millisecond,
		RetryBackoff:  func(int) time.Duration { return time.Millisecond },
		MaxRetries:    2,
		Logger:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
}

// open connects with cfg and runs Setup.
func open(t testing.TB, cfg index.Config) *index.Cluster {
	t.Helper()
	c, err := index.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := c.Setup(context.Background()); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return c
}

// results collects the callbacks of a writer and checks that each document got exactly one.
type results struct {
	t  testing.TB
	mu sync.Mutex
	by map[string][]index.Result
}

func newResults(t testing.TB) *results { return &results{t: t, by: map[string][]index.Result{}} }

func (r *results) done(id string) func(index.Result) {
	return func(res index.Result) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.by[id] = append(r.by[id], res)
	}
}

// one returns the single result of id, failing the test when there is not exactly one.
func (r *results) one(id string) index.Result {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.by[id]); n != 1 {
		r.t.Fatalf("document %s got %d callbacks, want 1", id, n)
	}
	return r.by[id][0]
}

// write adds docs through a fresh writer, closes it and refreshes, returning the results.
func write(t testing.TB, c *index.Cluster, docs ...index.Doc) *results {
	t.Helper()
	w, err := c.NewWriter()
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	res := newResults(t)
	for _, d := range docs {
		if err := w.Add(context.Background(), d, res.done(d.ID)); err != nil {
			t.Fatalf("add %s: %v", d.ID, err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return res
}

func message(id, mailbox, view string, generation int64) index.Doc {
	received := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	return index.Doc{Kind: index.Messages, ID: id, Body: index.MessageDoc{
		Timestamp: received, ECS: index.ECS{Version: index.ECSVersion}, Event: index.NewEvent(time.Now().UTC()),
		Email: index.Email{
			MessageID: "<" + id + "@example.com>", LocalID: "m-" + id, Subject: "subject of " + id,
			From: index.AddressGroup("alice@example.com"), To: index.AddressGroup(mailbox),
			Direction: index.Direction(view), DeliveryTimestamp: received,
		},
		User: index.User{Email: mailbox},
		Mimecast: index.MessageMeta{
			ID: "m-" + id, Mailbox: mailbox, Domain: "example.com", View: view, From: index.NameGroup("Alice"),
			Headers: map[string][]string{"x-mailer": {"test"}}, Body: "hello " + id, Size: 123, Generation: generation,
		},
	}}
}

func attachment(id, mailbox string, generation int64) index.Doc {
	received := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	d := index.AttachmentDoc{
		Timestamp: received, ECS: index.ECS{Version: index.ECSVersion}, Event: index.NewEvent(time.Now().UTC()),
		Email: index.Email{LocalID: "m-" + id, Subject: "s", Direction: "inbound", DeliveryTimestamp: received,
			Attachments: []index.EmailAttachment{{File: index.File{Name: "report.txt", MimeType: "text/plain",
				Extension: "txt", Size: 5, Hash: &index.Hash{SHA256: strings.Repeat("ab", 32)}}}}},
		User: index.User{Email: mailbox},
		Mimecast: index.AttachmentMeta{ID: "m-" + id, Mailbox: mailbox, Domain: "example.com", View: "INBOX",
			MessageDocID: "doc-" + id, AttachmentID: "a-" + id, Content: "hello", Generation: generation},
	}
	d.SetPivots() // as the crawler sends it
	return index.Doc{Kind: index.Attachments, ID: id, Body: d}
}

func count(t testing.TB, c *index.Cluster, k index.Kind, f index.Filter) int64 {
	t.Helper()
	n, err := c.Count(context.Background(), k, f)
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// getJSON reads a JSON answer from the real cluster.
func getJSON(t testing.TB, url string, out any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}
