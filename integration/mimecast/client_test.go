package mimecast_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

const (
	testClientID = "test-client"
	testSecret   = "s3cr3t-value-that-must-never-leak"
)

// clock is a settable clock shared by the simulator and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(d time.Duration, from time.Time) {
	c.mu.Lock()
	c.t = from.Add(d)
	c.mu.Unlock()
}

// fastClock runs speed times faster than real time, so that the simulator's per-minute rate
// limit refills within milliseconds.
func fastClock(speed int) func() time.Time {
	start := time.Now()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Since(start) * time.Duration(speed)) }
}

// recorder is a base transport that remembers every Authorization header it carried, by
// path kind, so tests can check where the bearer token went and what its values were.
type recorder struct {
	mu            sync.Mutex
	tokens        []string // bearer values sent to the API
	bearerOnOther int      // requests outside /api and /oauth that carried Authorization
	downloads     int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	auth := req.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(req.URL.Path, "/api/"):
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && !slices.Contains(r.tokens, tok) {
			r.tokens = append(r.tokens, tok)
		}
	case req.URL.Path == "/oauth/token":
	default:
		r.downloads++
		if auth != "" {
			r.bearerOnOther++
		}
	}
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

type env struct {
	sim  *simulator.Server
	srv  *httptest.Server
	rec  *recorder
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, opts simulator.Options) *env {
	t.Helper()
	opts.ClientID, opts.ClientSecret = testClientID, testSecret
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	sim, err := simulator.New(opts)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, rec: &recorder{}, logs: &syncBuffer{}}
}

// client returns a Client on the simulator with millisecond timings; edit adjusts the config.
func (e *env) client(t *testing.T, edit func(*mimecast.Config)) *mimecast.Client {
	t.Helper()
	cfg := mimecast.Config{
		BaseURL:        e.srv.URL,
		ClientID:       testClientID,
		ClientSecret:   testSecret,
		MaxRetries:     4,
		MinBackoff:     time.Millisecond,
		MaxBackoff:     10 * time.Millisecond,
		MaxWait:        50 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
		HTTPClient:     &http.Client{Transport: e.rec},
		Logger:         zerolog.New(e.logs),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := mimecast.New(cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func requests(s simulator.Stats, path string, status int) int64 { return s.Requests[path][status] }

func TestNewValidatesURLs(t *testing.T) {
	cases := []struct {
		name    string
		base    string
		auth    string
		wantErr string
	}{
		{name: "relative base", base: "/api", wantErr: "BaseURL"},
		{name: "ftp base", base: "ftp://x", wantErr: "BaseURL"},
		{name: "empty base", base: "", wantErr: "BaseURL"},
		{name: "bad auth", base: "https://api.services.mimecast.com", auth: "oauth/token", wantErr: "AuthURL"},
		{name: "good", base: "https://api.services.mimecast.com"},
		{name: "good with auth", base: "https://us-api.services.mimecast.com", auth: "https://us-api.services.mimecast.com/oauth/token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mimecast.New(mimecast.Config{BaseURL: tc.base, AuthURL: tc.auth, ClientID: "id", ClientSecret: "secret"})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestParseTraceLevel(t *testing.T) {
	cases := []struct {
		in      string
		want    mimecast.TraceLevel
		wantErr bool
	}{
		{in: "none", want: mimecast.TraceNone},
		{in: "calls", want: mimecast.TraceCalls},
		{in: "ALL", want: mimecast.TraceAll},
		{in: "verbose", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := mimecast.ParseTraceLevel(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseTraceLevel(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

// The token is reused until expiry + offset measured on the injected clock, and no earlier:
// oauth2's own 10 s early expiry must not add to the offset.
func TestTokenReuseHonoursOffset(t *testing.T) {
	const ttl = 100 * time.Second
	cases := []struct {
		name       string
		offset     time.Duration
		at         time.Duration // clock position of the second call, from the first fetch
		wantFetchs int64
	}{
		{name: "early refresh not yet due", offset: -10 * time.Second, at: 89 * time.Second, wantFetchs: 1},
		{name: "early refresh due", offset: -10 * time.Second, at: 91 * time.Second, wantFetchs: 2},
		{name: "zero offset keeps token past oauth2 delta", offset: 0, at: 95 * time.Second, wantFetchs: 1},
		{name: "zero offset at expiry", offset: 0, at: 100 * time.Second, wantFetchs: 2},
		{name: "late offset keeps token", offset: 5 * time.Second, at: 99 * time.Second, wantFetchs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			start := clk.Now()
			e := newEnv(t, simulator.Options{TokenTTL: ttl, Now: clk.Now, Mailboxes: 1, Messages: 1})
			c := e.client(t, func(cfg *mimecast.Config) {
				cfg.AuthTokenOffset = tc.offset
				cfg.Now = clk.Now
			})
			ctx := context.Background()
			for range 3 {
				if _, err := c.InternalDomains(ctx); err != nil {
					t.Fatalf("domains: %v", err)
				}
			}
			if got := e.sim.Stats().TokensIssued; got != 1 {
				t.Fatalf("tokens issued after 3 calls = %d, want 1 (reuse)", got)
			}
			clk.Set(tc.at, start)
			if _, err := c.InternalDomains(ctx); err != nil {
				t.Fatalf("domains at %s: %v", tc.at, err)
			}
			st := e.sim.Stats()
			if st.TokensIssued != tc.wantFetchs {
				t.Errorf("tokens issued = %d, want %d", st.TokensIssued, tc.wantFetchs)
			}
			if n := requests(st, "/api/domain/get-internal-domain", 401); n != 0 {
				t.Errorf("401 answers = %d, want 0: the client should refresh before expiry", n)
			}
			if got := c.Stats().TokenRefreshes; got != tc.wantFetchs {
				t.Errorf("client TokenRefreshes = %d, want %d", got, tc.wantFetchs)
			}
		})
	}
}

func TestReauthAfterTokenExpired(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
	c := e.client(t, nil)
	ctx := context.Background()
	if err := c.Authenticate(ctx); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	e.sim.ExpireTokens()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := c.InternalDomains(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("domains after expiry: %v", err)
		}
	}
	st := e.sim.Stats()
	if n := requests(st, "/api/domain/get-internal-domain", 401); n < 1 {
		t.Errorf("401 answers = %d, want at least 1", n)
	}
	// One fetch at start and one shared replacement, not one per goroutine.
	if st.TokensIssued != 2 {
		t.Errorf("tokens issued = %d, want 2", st.TokensIssued)
	}
}

func TestBadCredentialsAreAuthErrors(t *testing.T) {
	for _, status := range []int{400, 401} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, simulator.Options{TokenErrorStatus: status, Mailboxes: 1, Messages: 1})
			c := e.client(t, func(cfg *mimecast.Config) { cfg.ClientSecret = "wrong-secret-value" })
			err := c.Authenticate(context.Background())
			if !mimecast.IsAuth(err) || mimecast.IsRetryable(err) {
				t.Fatalf("error = %v; want a permanent auth error", err)
			}
			msg := err.Error()
			for _, want := range []string{e.srv.URL + "/oauth/token", fmt.Sprint(status), "InvalidClientIdentifier"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "wrong-secret-value") {
				t.Errorf("error %q contains the secret", msg)
			}
			if n := requests(e.sim.Stats(), "/oauth/token", status); n != 1 {
				t.Errorf("token requests = %d, want 1 (no retry of a refusal)", n)
			}
		})
	}
}

// A second 401 after a fresh token is final; a tiny server that refuses every token.
func TestSecond401IsPermanent(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth/token" {
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":1799}`, n)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"fail":[{"code":"token_verification_failed","message":"The access token could not be verified"}]}`)
	}))
	defer srv.Close()
	c, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret-xyz", MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.MessageDetail(context.Background(), "abc")
	if !mimecast.IsAuth(err) || mimecast.IsRetryable(err) {
		t.Fatalf("error = %v; want a permanent auth error", err)
	}
	if !strings.Contains(err.Error(), "POST /api/archive/get-message-detail: 401 token_verification_failed") {
		t.Errorf("error text %q", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["/oauth/token"] != 2 || calls["/api/archive/get-message-detail"] != 2 {
		t.Errorf("calls = %v; want 2 token fetches and 2 attempts", calls)
	}
}

func TestInternalUsersWalksPages(t *testing.T) {
	for _, emptyLast := range []bool{false, true} {
		t.Run(fmt.Sprintf("emptyLastPage=%v", emptyLast), func(t *testing.T) {
			e := newEnv(t, simulator.Options{Domains: 2, Mailboxes: 12, Messages: 1, EmptyLastPage: emptyLast})
			c := e.client(t, nil)
			ctx := context.Background()
			doms, err := c.InternalDomains(ctx)
			if err != nil {
				t.Fatalf("domains: %v", err)
			}
			truth := e.sim.Truth()
			if len(doms) != len(truth.Domains) {
				t.Fatalf("domains = %d, truth %d", len(doms), len(truth.Domains))
			}
			for _, d := range truth.Domains {
				want := map[string]bool{}
				rows := 0
				for _, mb := range truth.Mailboxes {
					if mb.Domain != d.Domain {
						continue
					}
					rows++
					if !mb.Alias && mb.AddressType != api.AddressTypeDistributionList {
						want[strings.ToLower(mb.Address)] = true
					}
				}
				users, err := c.InternalUsers(ctx, d.Domain, 2)
				if err != nil {
					t.Fatalf("users of %s: %v", d.Domain, err)
				}
				got := map[string]bool{}
				for _, u := range users {
					if u.Alias || u.AddressType == api.AddressTypeDistributionList {
						t.Errorf("users of %s include %s (alias or list)", d.Domain, u.EmailAddress)
					}
					got[strings.ToLower(u.EmailAddress)] = true
				}
				if len(got) != len(want) {
					t.Errorf("users of %s = %v, want %v", d.Domain, got, want)
				}
				for a := range want {
					if !got[a] {
						t.Errorf("users of %s lack %s", d.Domain, a)
					}
				}
				if rows > 2 && requests(e.sim.Stats(), "/api/user/get-internal-users", 200) < 2 {
					t.Errorf("users of %s came in one page with pageSize 2", d.Domain)
				}
			}
		})
	}
}

func TestListMessagesPagesWithFilter(t *testing.T) {
	e := newEnv(t, simulator.Options{Domains: 1, Mailboxes: 1, Messages: 40, EmptyLastPage: true})
	c := e.client(t, nil)
	var mb simulator.TruthMailbox
	for _, m := range e.sim.Truth().Mailboxes {
		if !m.Alias && len(m.Messages) > 0 {
			mb = m
			break
		}
	}
	// A window that cuts the archive: the filter must be resent with every page token.
	var inbox []simulator.TruthMessage
	for _, m := range mb.Messages {
		if m.View == api.ViewInbox {
			inbox = append(inbox, m)
		}
	}
	if len(inbox) < 10 {
		t.Fatalf("mailbox %s has %d inbox messages; want >= 10", mb.Address, len(inbox))
	}
	// Truth is newest first; take the window spanning the middle of the inbox.
	end, start := inbox[2].Received, inbox[len(inbox)-3].Received
	var want []string
	for _, m := range inbox {
		if m.Received >= start && m.Received <= end {
			want = append(want, m.ID)
		}
	}
	f := api.MessageListFilter{View: api.ViewInbox, Mailbox: mb.Address, Start: start, End: end}
	var got []string
	pages := 0
	err := c.ListMessages(context.Background(), f, 3, func(page []api.MessageSummary) error {
		pages++
		if len(page) == 0 || len(page) > 3 {
			t.Errorf("page %d has %d messages", pages, len(page))
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d ids, want %d in truth order\n got %v\nwant %v", len(got), len(want), got, want)
	}
	if wantPages := (len(want) + 2) / 3; pages != wantPages {
		t.Errorf("pages = %d, want %d", pages, wantPages)
	}

	// An error from fn stops the walk and comes back unchanged.
	stop := errors.New("stop here")
	calls := 0
	err = c.ListMessages(context.Background(), f, 3, func([]api.MessageSummary) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("ListMessages with failing fn = %v after %d calls; want the same error after 1", err, calls)
	}
}

// Several workers share one client against a tight per-minute quota. Whatever the headers,
// all work completes and the shared pacer keeps the 429s few: after a 429 every worker waits.
func TestRateLimitSlowsAllWorkers(t *testing.T) {
	const (
		workers = 8
		perW    = 30
		speed   = 200 // the simulator clock runs 200x faster than real time
	)
	cases := []string{
		simulator.HeadersOn429, simulator.HeadersAlways, simulator.HeadersNone,
		simulator.HeadersRetryAfter, simulator.HeadersEpoch,
	}
	for _, mode := range cases {
		t.Run(mode, func(t *testing.T) {
			now := fastClock(speed)
			// A burst of 10, then one call per simulated 6 s: 30 ms of real time per call.
			e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1, RateLimit: 10, RateLimitHeaders: mode, Now: now})
			c := e.client(t, func(cfg *mimecast.Config) {
				cfg.Now = now
				cfg.RetryAfterMultiplier = 1.0 / speed // hints are in simulated time
				cfg.MaxRetries = 50
				cfg.MinBackoff = 20 * time.Millisecond
				cfg.MaxBackoff = 200 * time.Millisecond
				cfg.MaxWait = time.Second
			})
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for range perW / 10 {
						if _, err := c.InternalDomains(context.Background()); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("worker: %v", err)
			}
			st := e.sim.Stats()
			ok := requests(st, "/api/domain/get-internal-domain", 200)
			if ok != workers*perW/10 {
				t.Errorf("successful calls = %d, want %d", ok, workers*perW/10)
			}
			if st.RateLimited == 0 {
				t.Fatalf("no 429 at all; the test does not exercise the limit")
			}
			// Without a shared pacer each worker would hammer on its own; with it the 429s
			// stay of the order of the successful calls that had to wait, plus the dense run
			// of 429s (20 of 100 answers) that tells the pacer the quota binds.
			if st.RateLimited > ok+20 {
				t.Errorf("429 answers = %d for %d successes; the pacer does not hold workers back", st.RateLimited, ok)
			}
			cs := c.Stats()
			const ep = "POST /api/domain/get-internal-domain"
			if got := cs.ByEndpoint[mimecast.EndpointStatus{Endpoint: ep, Status: 200}]; got != ok {
				t.Errorf("client counts %d answers 200 of %s, the simulator %d", got, ep, ok)
			}
			if got := cs.ByEndpoint[mimecast.EndpointStatus{Endpoint: ep, Status: 429}]; got != st.RateLimited {
				t.Errorf("client counts %d answers 429 of %s, the simulator %d", got, ep, st.RateLimited)
			}
			if cs.QuotaWait <= 0 {
				t.Errorf("QuotaWait = %s after %d answers 429; want the time calls waited for the pacer", cs.QuotaWait, st.RateLimited)
			}
			t.Logf("%s: %d ok, %d rate limited, client retries %d, quota wait %s", mode, ok, st.RateLimited, cs.Retries, cs.QuotaWait)
		})
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
	c := e.client(t, nil)
	id := firstMessage(t, e.sim).ID
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/get-message-detail", Status: 503, Count: 2}})
	d, err := c.MessageDetail(context.Background(), id)
	if err != nil {
		t.Fatalf("detail after two 503s: %v", err)
	}
	if d.ID != id {
		t.Errorf("detail id = %q, want %q", d.ID, id)
	}
	if n := requests(e.sim.Stats(), "/api/archive/get-message-detail", 503); n != 2 {
		t.Errorf("503 answers = %d, want 2", n)
	}
	if got := c.Stats().Retries; got != 2 {
		t.Errorf("client retries = %d, want 2", got)
	}
}

func TestRetriesExhaustedIsRetryable(t *testing.T) {
	for _, fault := range []simulator.Fault{
		{PathPrefix: "/api/archive/get-message-detail", Status: 500},
		{PathPrefix: "/api/archive/get-message-detail", Status: 502, EmptyBody: true},
	} {
		t.Run(fmt.Sprint(fault.Status), func(t *testing.T) {
			e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
			c := e.client(t, func(cfg *mimecast.Config) { cfg.MaxRetries = 3 })
			id := firstMessage(t, e.sim).ID
			e.sim.SetFaults([]simulator.Fault{fault})
			_, err := c.MessageDetail(context.Background(), id)
			if !mimecast.IsRetryable(err) {
				t.Fatalf("error = %v; want retryable", err)
			}
			var me *mimecast.Error
			if !errors.As(err, &me) || me.Status != fault.Status || me.Op != "POST /api/archive/get-message-detail" {
				t.Errorf("error = %#v", me)
			}
			if !strings.Contains(err.Error(), "gave up after 4 attempts") {
				t.Errorf("error %q does not say how often it tried", err)
			}
			if n := requests(e.sim.Stats(), "/api/archive/get-message-detail", fault.Status); n != 4 {
				t.Errorf("attempts = %d, want 1 + 3 retries", n)
			}
		})
	}
}

// MaxRetries counts retries, and its zero is a setting: no retry at all, for a 5xx, a 429
// and the token endpoint alike (performance.max_retries: 0).
func TestMaxRetriesZeroMeansNone(t *testing.T) {
	cases := []struct {
		name       string
		maxRetries int
		status     int
		want       int64 // attempts
	}{
		{name: "0, 503", maxRetries: 0, status: 503, want: 1},
		{name: "0, 429", maxRetries: 0, status: 429, want: 1},
		{name: "negative, 503", maxRetries: -1, status: 503, want: 1},
		{name: "1, 503", maxRetries: 1, status: 503, want: 2},
		{name: "default, 503", maxRetries: mimecast.DefaultMaxRetries, status: 503, want: 1 + mimecast.DefaultMaxRetries},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
			c := e.client(t, func(cfg *mimecast.Config) { cfg.MaxRetries = tc.maxRetries })
			id := firstMessage(t, e.sim).ID
			e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/get-message-detail", Status: tc.status, ResetMS: 1}})
			_, err := c.MessageDetail(context.Background(), id)
			if !mimecast.IsRetryable(err) {
				t.Fatalf("error = %v; want the retryable error of the last attempt", err)
			}
			if n := requests(e.sim.Stats(), "/api/archive/get-message-detail", tc.status); n != tc.want {
				t.Errorf("attempts = %d, want %d", n, tc.want)
			}
			if got, want := c.Stats().Retries, tc.want-1; got != want {
				t.Errorf("client retries = %d, want %d", got, want)
			}
		})
	}
	t.Run("0, token endpoint", func(t *testing.T) {
		e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
		c := e.client(t, func(cfg *mimecast.Config) { cfg.MaxRetries = 0 })
		e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/oauth/token", Status: 503}})
		if err := c.Authenticate(context.Background()); !mimecast.IsRetryable(err) {
			t.Fatalf("authenticate = %v; want the retryable error", err)
		}
		if n := requests(e.sim.Stats(), "/oauth/token", 503); n != 1 {
			t.Errorf("token requests = %d, want 1", n)
		}
	})
}

// Statistics tell the calls the quota counts (by quota group) from downloads and token
// requests, and say how long calls waited for the quota; the statistics line carries them.
func TestStatsSplitQuotaCallsFromDownloads(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 3})
	var buf syncBuffer
	c := e.client(t, func(cfg *mimecast.Config) { cfg.Logger = zerolog.New(&buf) })
	// One 429 with a hint of 20 ms: the call waits it, and that is quota wait.
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/get-file", Status: 429, Count: 1, ResetMS: 20}})
	ids := messageIDs(e.sim)
	for _, id := range ids {
		rc, err := c.GetFile(context.Background(), id)
		if err != nil {
			t.Fatalf("get file: %v", err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	st := c.Stats()
	sim := e.sim.Stats()
	wantAPI := requests(sim, "/api/archive/get-file", 200) + requests(sim, "/api/archive/get-file", 429)
	if st.APICalls != wantAPI || st.APICalls != int64(len(ids))+1 {
		t.Errorf("APICalls = %d, want %d (every get-file attempt, no download, no token request)", st.APICalls, wantAPI)
	}
	if want := requests(sim, "/_download", 200); st.DownloadRequests != want || want != int64(len(ids)) {
		t.Errorf("DownloadRequests = %d, want %d", st.DownloadRequests, want)
	}
	if st.TokenRequests != 1 || st.Calls != st.APICalls+st.DownloadRequests+st.TokenRequests {
		t.Errorf("TokenRequests = %d, Calls = %d: want 1, and Calls the sum of the three kinds", st.TokenRequests, st.Calls)
	}
	g := st.Groups["account"]
	if g.Calls != st.APICalls || g.RateLimited != 1 || g.QuotaWait < 20*time.Millisecond {
		t.Errorf("account group = %+v; want %d calls, 1 answered 429, at least the 20 ms asked for", g, st.APICalls)
	}
	if len(st.Groups) != 1 {
		t.Errorf("groups %v: want only account", st.Groups)
	}
	c.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var got struct {
		APICalls    int64 `json:"api_calls"`
		Downloads   int64 `json:"download_requests"`
		QuotaGroups map[string]struct {
			Calls       int64   `json:"calls"`
			RateLimited int64   `json:"rate_limited"`
			Wait        float64 `json:"quota_wait_seconds"`
		} `json:"quota_groups"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatal(err)
	}
	if got.APICalls != st.APICalls || got.Downloads != st.DownloadRequests || got.QuotaGroups["account"].RateLimited != 1 {
		t.Errorf("statistics line %s: want api_calls %d, download_requests %d, quota_groups.account.rate_limited 1", lines[len(lines)-1], st.APICalls, st.DownloadRequests)
	}
}

func TestForbiddenNamesEndpointAndPermission(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
	c := e.client(t, nil)
	id := firstMessage(t, e.sim).ID
	e.sim.SetForbidden([]string{"/api/archive/get-file"})
	_, err := c.GetFile(context.Background(), id)
	if !mimecast.IsForbidden(err) || mimecast.IsRetryable(err) || mimecast.IsAuth(err) {
		t.Fatalf("error = %v; want permanent forbidden", err)
	}
	for _, want := range []string{"POST /api/archive/get-file: 403 app_forbidden", `"Archive | Search Content View"`, "role"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var me *mimecast.Error
	if errors.As(err, &me) && me.Permission != "Archive | Search Content View" {
		t.Errorf("Permission = %q", me.Permission)
	}
	// Other endpoints still work: 403 is per endpoint.
	if _, err := c.MessageDetail(context.Background(), id); err != nil {
		t.Errorf("detail next to a forbidden get-file: %v", err)
	}
	by := c.Stats().ByEndpoint
	if n := by[mimecast.EndpointStatus{Endpoint: "POST /api/archive/get-file", Status: 403}]; n != 1 {
		t.Errorf("403 answers of get-file counted %d, want 1 (all: %v)", n, by)
	}
	if n := by[mimecast.EndpointStatus{Endpoint: mimecast.EndpointToken, Status: 200}]; n < 1 {
		t.Errorf("token requests are not counted under %q: %v", mimecast.EndpointToken, by)
	}
}

// TestStatsLineShortRun checks the statistics line of a run of milliseconds: one component
// key (the caller names it) and no calls_per_minute extrapolated from a few milliseconds.
func TestStatsLineShortRun(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
	var buf syncBuffer
	c := e.client(t, func(cfg *mimecast.Config) {
		cfg.Logger = zerolog.New(&buf).With().Str("component", "mimecast").Logger()
	})
	if _, err := c.InternalDomains(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	line := strings.TrimSpace(buf.String())
	if strings.Count(line, `"component"`) != 1 {
		t.Errorf("the statistics line names its component %d times, want once: %s", strings.Count(line, `"component"`), line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("statistics line: %v: %s", err, line)
	}
	if got["message"] != "api call statistics" {
		t.Fatalf("last line is not the statistics: %s", line)
	}
	if v, ok := got["calls_per_minute"]; ok {
		t.Errorf("calls_per_minute = %v after a run of %v s; want it left out below %s", v, got["elapsed_seconds"], mimecast.RateWindow)
	}
	if got["calls"] == nil || got["calls"].(float64) < 2 {
		t.Errorf("calls = %v, want the token request and the call", got["calls"])
	}
}

func TestFailOn200IsAnError(t *testing.T) {
	cases := []struct {
		name     string
		fault    *simulator.Fault
		id       string
		wantCode string
	}{
		{name: "foreign id", id: "eNotARealId", wantCode: "xdk_failure"},
		{name: "validation", fault: &simulator.Fault{PathPrefix: "/api/archive/get-message-detail", FailItems: true}, wantCode: "err_validation_null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
			c := e.client(t, nil)
			id := tc.id
			if id == "" {
				id = firstMessage(t, e.sim).ID
			}
			if tc.fault != nil {
				e.sim.SetFaults([]simulator.Fault{*tc.fault})
			}
			_, err := c.MessageDetail(context.Background(), id)
			var me *mimecast.Error
			if !errors.As(err, &me) || me.Status != 200 || me.Code != tc.wantCode || me.Retryable {
				t.Fatalf("error = %v (%#v); want permanent fail[] with %s", err, me, tc.wantCode)
			}
			if !strings.Contains(err.Error(), "POST /api/archive/get-message-detail: rejected") {
				t.Errorf("error text %q", err)
			}
			if n := requests(e.sim.Stats(), "/api/archive/get-message-detail", 200); n != 1 {
				t.Errorf("attempts = %d, want 1 (not retried)", n)
			}
		})
	}
}

func TestGetFileMatchesTruth(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			e := newEnv(t, simulator.Options{Mailboxes: 2, Messages: 30, StreamFiles: stream})
			c := e.client(t, nil)
			ctx := context.Background()
			var msg simulator.TruthMessage
			for _, mb := range e.sim.Truth().Mailboxes {
				for _, m := range mb.Messages {
					if len(m.Attachments) > 0 && msg.ID == "" {
						msg = m
					}
				}
			}
			if msg.ID == "" {
				t.Fatal("no message with attachments in the truth")
			}
			for _, a := range msg.Attachments {
				data := readAll(t, c, a.ID)
				sum := sha256.Sum256(data)
				if got := hex.EncodeToString(sum[:]); got != a.SHA256 || int64(len(data)) != a.Size {
					t.Errorf("attachment %s: sha256 %s size %d, want %s size %d", a.Filename, got, len(data), a.SHA256, a.Size)
				}
			}
			raw := readAll(t, c, msg.ID)
			if int64(len(raw)) != msg.Size || !bytes.Contains(raw, []byte(msg.BodyToken)) {
				t.Errorf("message: %d bytes (want %d), body token present %v", len(raw), msg.Size, bytes.Contains(raw, []byte(msg.BodyToken)))
			}
			part, err := c.MessagePart(ctx, api.MessagePartRequest{ID: msg.ID, Mailbox: firstMailbox(e.sim, msg.ID), Type: api.PartRFC822})
			if err != nil {
				t.Fatalf("message part: %v", err)
			}
			pb, _ := io.ReadAll(part)
			part.Close()
			if !bytes.Equal(pb, raw) {
				t.Errorf("RFC822 part (%d bytes) differs from get-file (%d bytes)", len(pb), len(raw))
			}

			st := e.sim.Stats()
			if st.BearerOnDownload != 0 || e.rec.bearerOnOther != 0 {
				t.Errorf("bearer sent to the download host %d/%d times", st.BearerOnDownload, e.rec.bearerOnOther)
			}
			wantDownloads := 0
			if !stream {
				wantDownloads = len(msg.Attachments) + 2
			}
			if e.rec.downloads != wantDownloads {
				t.Errorf("download host requests = %d, want %d", e.rec.downloads, wantDownloads)
			}
			cs := c.Stats()
			if cs.Downloads != int64(len(msg.Attachments)+2) || cs.DownloadBytes < int64(2*len(raw)) {
				t.Errorf("client stats downloads %d bytes %d", cs.Downloads, cs.DownloadBytes)
			}
		})
	}
}

// An expired pre-signed URL is replaced by asking the API again.
func TestGetFileRenewsExpiredURL(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 2})
	c := e.client(t, nil)
	msg := firstMessage(t, e.sim)
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/_download/", Status: 403, Count: 1}})
	data := readAll(t, c, msg.ID)
	if int64(len(data)) != msg.Size {
		t.Errorf("size %d, want %d", len(data), msg.Size)
	}
	if n := requests(e.sim.Stats(), "/api/archive/get-file", 200); n != 2 {
		t.Errorf("get-file calls = %d, want 2 (one fresh URL)", n)
	}
}

func TestTraceAllRedactsSecrets(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 3})
	c := e.client(t, func(cfg *mimecast.Config) { cfg.Trace = mimecast.TraceAll })
	ctx := context.Background()
	msg := firstMessage(t, e.sim)
	if _, err := c.InternalDomains(ctx); err != nil {
		t.Fatal(err)
	}
	e.sim.ExpireTokens() // a second token, and a 401 body in the trace
	if _, err := c.MessageDetail(ctx, msg.ID); err != nil {
		t.Fatal(err)
	}
	readAll(t, c, msg.ID)
	c.Close()

	out := e.logs.String()
	if !strings.Contains(out, `"message":"api call"`) || !strings.Contains(out, `"/oauth/token"`) && !strings.Contains(out, "/oauth/token") {
		t.Fatalf("no call lines in the trace:\n%s", out)
	}
	for _, want := range []string{`"status":401`, `"grant_type":"client_credentials"`, `"client_secret":"<redacted>"`, `"access_token":"<redacted>"`, `"message":"api call statistics"`} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s", want)
		}
	}
	secrets := append([]string{testSecret}, e.rec.tokens...)
	if len(e.rec.tokens) != 2 {
		t.Errorf("bearer tokens seen = %d, want 2", len(e.rec.tokens))
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("trace contains secret %q", s)
		}
	}
	if strings.Contains(out, "/_download/") {
		t.Errorf("trace contains a pre-signed download path")
	}
	// The download line carries the size, never the bytes.
	downloads := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["method"] != "GET" {
			continue
		}
		downloads++
		if _, ok := rec["response"]; ok || rec["size"] != float64(msg.Size) {
			t.Errorf("download trace line %v: want its size and no body", rec)
		}
	}
	if downloads != 1 {
		t.Errorf("download trace lines = %d, want 1", downloads)
	}
}

// cancelOnAPI cancels the call's context as the first API request goes out, so the request
// is in flight when the context ends.
type cancelOnAPI struct {
	cancel context.CancelFunc
}

func (c cancelOnAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/api/") {
		c.cancel()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestCancelledContextIsNotRetried(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := e.client(t, func(cfg *mimecast.Config) { cfg.HTTPClient = &http.Client{Transport: cancelOnAPI{cancel}} })
	_, err := c.InternalDomains(ctx)
	if !errors.Is(err, context.Canceled) || mimecast.IsRetryable(err) {
		t.Fatalf("error = %v; want context.Canceled, not retryable", err)
	}
	if !strings.Contains(err.Error(), "POST /api/domain/get-internal-domain") {
		t.Errorf("error %q does not name the op", err)
	}
	if got := c.Stats().Retries; got != 0 {
		t.Errorf("retries = %d, want 0", got)
	}
	if strings.Contains(e.logs.String(), `"level":"error"`) {
		t.Errorf("cancellation was logged as an error")
	}
}

// Malformed answers name the op. The simulator does not send broken JSON, so a tiny server
// plays the API here.
func TestMalformedResponses(t *testing.T) {
	cases := []struct {
		name string
		body string
		ct   string
		want string
	}{
		{name: "truncated", body: `{"meta":{"status":200},"data":[{"id":`, ct: "application/json", want: "malformed response from POST /api/archive/get-message-detail"},
		{name: "not an object", body: `[1,2]`, ct: "application/json", want: "want a JSON object"},
		{name: "html", body: `<html>oops</html>`, ct: "application/json", want: "malformed response"},
		{name: "no data", body: `{"meta":{"status":200}}`, ct: "application/json", want: "no data[0]"},
		{name: "wrong type", body: `{"meta":{"status":200},"data":["x"]}`, ct: "application/json", want: "data[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				if r.URL.Path == "/oauth/token" {
					io.WriteString(w, `{"access_token":"abcdefgh","token_type":"Bearer","expires_in":1799}`)
					return
				}
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret-xyz"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.MessageDetail(context.Background(), "x")
			if err == nil || !strings.Contains(err.Error(), tc.want) || mimecast.IsRetryable(err) {
				t.Fatalf("error = %v; want permanent, containing %q", err, tc.want)
			}
		})
	}
}

func firstMessage(t *testing.T, sim *simulator.Server) simulator.TruthMessage {
	t.Helper()
	for _, mb := range sim.Truth().Mailboxes {
		if len(mb.Messages) > 0 {
			return mb.Messages[0]
		}
	}
	t.Fatal("simulator has no messages")
	return simulator.TruthMessage{}
}

func firstMailbox(sim *simulator.Server, id string) string {
	for _, mb := range sim.Truth().Mailboxes {
		for _, m := range mb.Messages {
			if m.ID == id {
				return mb.Address
			}
		}
	}
	return ""
}

func readAll(t *testing.T, c *mimecast.Client, id string) []byte {
	t.Helper()
	rc, err := c.GetFile(context.Background(), id)
	if err != nil {
		t.Fatalf("get file %s: %v", id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read file %s: %v", id, err)
	}
	return data
}

// An overloaded token endpoint is retried like any other call and is not an auth failure.
func TestTokenEndpointErrorsAreRetried(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
	c := e.client(t, nil)
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/oauth/token", Status: 503, Count: 2}})
	if _, err := c.InternalDomains(context.Background()); err != nil {
		t.Fatalf("domains after two token 503s: %v", err)
	}
	st := e.sim.Stats()
	if requests(st, "/oauth/token", 503) != 2 || st.TokensIssued != 1 {
		t.Errorf("token answers = %v", st.Requests["/oauth/token"])
	}

	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/oauth/token", Status: 503}})
	err := c.Authenticate(context.Background())
	if !mimecast.IsRetryable(err) || mimecast.IsAuth(err) {
		t.Fatalf("error = %v; want retryable, not auth", err)
	}
}

// Trace level calls logs one line per attempt without any body.
func TestTraceCallsLogsNoBodies(t *testing.T) {
	e := newEnv(t, simulator.Options{Mailboxes: 1, Messages: 1})
	c := e.client(t, func(cfg *mimecast.Config) { cfg.Trace = mimecast.TraceCalls })
	if _, err := c.InternalDomains(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["message"] != "api call" {
			continue
		}
		lines++
		for _, k := range []string{"method", "url", "status", "took"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("call line lacks %s: %v", k, rec)
			}
		}
		for _, k := range []string{"form", "request", "response"} {
			if _, ok := rec[k]; ok {
				t.Errorf("call line has %s at level calls: %v", k, rec)
			}
		}
	}
	if lines != 2 { // token + domains
		t.Errorf("call lines = %d, want 2", lines)
	}
}

// get-file answers with a JSON Content-Type are either an envelope (download URLs or a
// failure) or a JSON file served as itself: only an object with meta, data or fail is an
// envelope.
func TestGetFileTellsJSONFilesFromEnvelopes(t *testing.T) {
	const file = "the file's bytes"
	cases := []struct {
		name, body string
		want       string // the file read, or a part of the error
	}{
		{name: "envelope with urls", body: `{"meta":{"status":200},"data":[{"urls":["%s/dl"]}],"fail":[]}`, want: file},
		{name: "json object file", body: `{"name":"report","rows":[1,2]}`, want: `{"name":"report","rows":[1,2]}`},
		{name: "json array file", body: `[{"data":1}]`, want: `[{"data":1}]`},
		{name: "null data is no envelope", body: `{"data":null,"x":1}`, want: `{"data":null,"x":1}`},
		{name: "meta only", body: `{"meta":{"status":200}}`, want: "no data[0]"},
		{name: "empty data", body: `{"meta":{"status":200},"data":[]}`, want: "no data[0]"},
		{name: "data not an array", body: `{"data":{"urls":["x"]}}`, want: "malformed response from POST /api/archive/get-file"},
		{name: "failure", body: `{"meta":{"status":200},"data":[],"fail":[{"code":"err_file_gone","message":"gone"}]}`, want: "err_file_gone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/oauth/token":
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"access_token":"abcdefgh","token_type":"Bearer","expires_in":1799}`)
				case "/dl":
					w.Header().Set("Content-Type", "message/rfc822")
					io.WriteString(w, file)
				default:
					w.Header().Set("Content-Type", "application/json")
					body := tc.body
					if strings.Contains(body, "%s") {
						body = fmt.Sprintf(body, srv.URL)
					}
					io.WriteString(w, body)
				}
			}))
			defer srv.Close()
			c, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret-xyz"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.GetFile(context.Background(), "x")
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error = %v; want the answer %q", err, tc.want)
				}
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != tc.want {
				t.Errorf("read %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
