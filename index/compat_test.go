package index_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mimecrawl/mimecrawl/index"
)

// headerRecorder passes requests on and remembers every Accept and Content-Type they carried,
// and every Warning header of the answers: Elasticsearch warns there when a request uses
// something deprecated.
type headerRecorder struct {
	mu       sync.Mutex
	next     http.RoundTripper
	headers  []string
	warnings []string
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	what := r.Method + " " + r.URL.Path
	h.mu.Lock()
	h.headers = append(h.headers, what+" accept="+r.Header.Get("Accept")+" content-type="+r.Header.Get("Content-Type"))
	h.mu.Unlock()
	res, err := h.next.RoundTrip(r)
	if err == nil {
		h.mu.Lock()
		for _, w := range res.Header.Values("Warning") {
			h.warnings = append(h.warnings, what+": "+w)
		}
		h.mu.Unlock()
	}
	return res, err
}

// exercise runs what mimecrawl asks of a cluster: setup, bulk writes, lookups by id and by
// term, a count and a deletion by query.
func exercise(t *testing.T, c *index.Cluster) {
	t.Helper()
	ctx := context.Background()
	res := write(t, c, message("m1", "anna@example.com", "INBOX", 1), message("m2", "anna@example.com", "SENT", 1),
		attachment("a1", "anna@example.com", 1))
	for _, id := range []string{"m1", "m2", "a1"} {
		if r := res.one(id); r.Err != nil {
			t.Fatalf("write %s: %v", id, r.Err)
		}
	}
	got, err := c.Existing(ctx, index.Messages, []string{"m1", "m2", "nope"})
	if err != nil || !got["m1"] || !got["m2"] || got["nope"] {
		t.Fatalf("existing = %v, %v", got, err)
	}
	if n := count(t, c, index.Messages, index.Filter{Terms: map[string]string{index.FieldView: "SENT"}}); n != 1 {
		t.Errorf("count of SENT = %d, want 1", n)
	}
	hits, err := c.FindByTerms(ctx, index.Attachments, "file.hash.sha256", []string{strings.Repeat("ab", 32)}, []string{"mimecast.id"}, 10)
	if err != nil || len(hits) != 1 {
		t.Errorf("find by the attachment's hash: %d hits, %v", len(hits), err)
	}
	n, err := c.DeleteWhere(ctx, index.Messages, index.Filter{Terms: map[string]string{index.FieldMailbox: "anna@example.com"}})
	if err != nil || n != 2 {
		t.Errorf("delete = %d, %v; want 2", n, err)
	}
}

// exerciseRecorded runs exercise on a cluster of its own, with ELASTIC_CLIENT_APIVERSIONING set
// to versioning, through a headerRecorder.
func exerciseRecorded(t *testing.T, versioning string) (*index.Cluster, *headerRecorder) {
	t.Helper()
	t.Setenv("ELASTIC_CLIENT_APIVERSIONING", versioning)
	e := newEnv(t)
	rec := &headerRecorder{next: http.DefaultTransport}
	cfg := e.config(t, "")
	cfg.Transport = rec
	c := open(t, cfg)
	exercise(t, c)
	return c, rec
}

// Nothing mimecrawl sends is deprecated on the cluster under test (8.x or 9.x): no answer
// carries a Warning header, so the next major will not remove it from under us unannounced.
func TestNoDeprecationWarnings(t *testing.T) {
	c, rec := exerciseRecorded(t, "false")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, w := range rec.warnings {
		t.Errorf("Elasticsearch %s warned: %s", c.Version(), w)
	}
	t.Logf("%d requests to Elasticsearch %s, no warning", len(rec.headers), c.Version())
}

// The v8 client sends REST compatibility headers (compatible-with=8, for JSON and bulk bodies
// alike) when ELASTIC_CLIENT_APIVERSIONING is true in the environment, which an operator may
// have set for other tools. 8.x takes them as its own version, 9.x answers as 8.x would: setup,
// bulk writes, lookups, counts and deletion work the same with them on either major.
func TestCompatibilityHeaders(t *testing.T) {
	c, rec := exerciseRecorded(t, "true")

	// The headers were really sent: every request asked for version 8 answers.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.headers {
		if !strings.Contains(h, "accept=application/vnd.elasticsearch+json;compatible-with=8") {
			t.Errorf("request without the compatibility header: %s", h)
		}
	}
	t.Logf("%d requests to Elasticsearch %s with compatibility headers", len(rec.headers), c.Version())
}
