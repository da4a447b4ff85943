package simulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// fakeClock is an injectable clock for token expiry, rate limits and download expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a simulator behind a real socket plus a fake clock.
type harness struct {
	t     testing.TB
	sim   *Server
	srv   *httptest.Server
	clock *fakeClock
}

func newHarness(t testing.TB, o Options) *harness {
	t.Helper()
	clock := newFakeClock()
	if o.Now == nil {
		o.Now = clock.Now
	}
	sim, err := New(o)
	if err != nil {
		t.Fatalf("new simulator: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, srv: srv, clock: clock}
}

// result is a decoded HTTP answer.
type result struct {
	status int
	header http.Header
	body   []byte
	env    api.Response
}

func (h *harness) do(method, path, token, contentType string, body []byte) result {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("build request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read %s: %v", path, err)
	}
	r := result{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		_ = json.Unmarshal(b, &r.env)
	}
	return r
}

func (h *harness) tokenFor(id, secret string) (result, api.Token) {
	h.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	r := h.do(http.MethodPost, "/oauth/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	var tok api.Token
	_ = json.Unmarshal(r.body, &tok)
	return r, tok
}

func (h *harness) token() string {
	h.t.Helper()
	r, tok := h.tokenFor(h.sim.opts.ClientID, h.sim.opts.ClientSecret)
	if r.status != http.StatusOK || tok.AccessToken == "" {
		h.t.Fatalf("token: status %d body %s", r.status, r.body)
	}
	return tok.AccessToken
}

// call posts a legacy envelope {meta.pagination, data} to an /api path.
func (h *harness) call(token, path string, pageSize int, pageToken string, data ...any) result {
	h.t.Helper()
	req := map[string]any{"data": data}
	if data == nil {
		req["data"] = []any{}
	}
	if pageSize != 0 || pageToken != "" {
		req["meta"] = map[string]any{"pagination": map[string]any{"pageSize": pageSize, "pageToken": pageToken}}
	}
	b, err := json.Marshal(req)
	if err != nil {
		h.t.Fatalf("marshal: %v", err)
	}
	return h.do(http.MethodPost, path, token, "application/json", b)
}

func decodeData[T any](t testing.TB, r result) []T {
	t.Helper()
	out := make([]T, len(r.env.Data))
	for i, raw := range r.env.Data {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatalf("decode data[%d] %s: %v", i, raw, err)
		}
	}
	return out
}

func flatCode(t testing.TB, r result) string {
	t.Helper()
	var body struct {
		Fail []api.Fail `json:"fail"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Fail) == 0 {
		t.Fatalf("want a flat fail body, got %d %q (%v)", r.status, r.body, err)
	}
	return body.Fail[0].Code
}

func itemCode(t testing.TB, r result) string {
	t.Helper()
	if len(r.env.Fail) == 0 || len(r.env.Fail[0].Errors) == 0 {
		t.Fatalf("want fail[0].errors, got %d %s", r.status, r.body)
	}
	return r.env.Fail[0].Errors[0].Code
}

// firstMailbox is a real mailbox of the truth that has messages.
func firstMailbox(t testing.TB, tr Truth) TruthMailbox {
	t.Helper()
	for _, mb := range tr.Mailboxes {
		if mb.Type == TypeMailbox && len(mb.Messages) > 0 {
			return mb
		}
	}
	t.Fatal("no mailbox with messages")
	return TruthMailbox{}
}
