package simulator

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

const domainPath = "/api/domain/get-internal-domain"

func TestRateLimit(t *testing.T) {
	cases := []struct {
		mode      string
		on200     map[string]string // headers on the first 200 ("" = absent)
		on429     map[string]string
		epochWant bool
	}{
		{HeadersOn429,
			map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "", "Retry-After": ""},
			map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20000", "Retry-After": ""}, false},
		{HeadersAlways,
			map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "20000"},
			map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20000"}, false},
		{HeadersNone,
			map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Reset": "", "Retry-After": ""},
			map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "", "Retry-After": ""}, false},
		{HeadersRetryAfter,
			map[string]string{"X-RateLimit-Limit": "", "Retry-After": ""},
			map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Reset": "", "Retry-After": "20"}, false},
		{HeadersEpoch,
			map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Reset": ""},
			map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			h := newHarness(t, Options{Seed: 1, RateLimit: 3, RateLimitHeaders: tc.mode, ExtraClients: map[string]string{"other": "pw"}})
			tok := h.token()
			var first result
			for i := range 3 {
				r := h.call(tok, domainPath, 0, "")
				if r.status != 200 {
					t.Fatalf("request %d: %d", i, r.status)
				}
				if i == 0 {
					first = r
				}
			}
			for k, v := range tc.on200 {
				if got := first.header.Get(k); got != v {
					t.Errorf("200 header %s = %q, want %q", k, got, v)
				}
			}
			r := h.call(tok, domainPath, 0, "")
			if r.status != 429 || flatCode(t, r) != "rate_limit_exceeded" {
				t.Fatalf("4th request: %d %s", r.status, r.body)
			}
			for k, v := range tc.on429 {
				if got := r.header.Get(k); got != v {
					t.Errorf("429 header %s = %q, want %q", k, got, v)
				}
			}
			if tc.epochWant {
				want := strconv.FormatInt(h.clock.Now().Add(20*time.Second).Unix(), 10)
				if got := r.header.Get("X-RateLimit-Reset"); got != want {
					t.Errorf("epoch reset %q, want %q", got, want)
				}
			}

			// Other clients, the token endpoint and the control API are not limited.
			_, other := h.tokenFor("other", "pw")
			if r := h.call(other.AccessToken, domainPath, 0, ""); r.status != 200 {
				t.Errorf("other client: %d", r.status)
			}
			if r := h.do(http.MethodGet, "/_sim/stats", "", "", nil); r.status != 200 {
				t.Errorf("control api: %d", r.status)
			}
			// The bucket refills gradually: one call after 20 s, not before.
			h.clock.Advance(19 * time.Second)
			if r := h.call(tok, domainPath, 0, ""); r.status != 429 {
				t.Errorf("after 19s: %d", r.status)
			}
			h.clock.Advance(time.Second)
			if r := h.call(tok, domainPath, 0, ""); r.status != 200 {
				t.Errorf("after 20s: %d", r.status)
			}
			if r := h.call(tok, domainPath, 0, ""); r.status != 429 {
				t.Errorf("second call after 20s: %d", r.status)
			}
			st := h.sim.Stats()
			if st.RateLimited != 3 || st.Requests[domainPath][429] != 3 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestForbidden(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())
	h.sim.SetForbidden([]string{listPath, "/api/archive/create-search"})
	cases := []struct {
		name   string
		path   string
		data   any
		status int
	}{
		{"forbidden endpoint", listPath, wide(mb.Address, "INBOX"), 403},
		{"forbidden unimplemented endpoint", "/api/archive/create-search", map[string]string{}, 403},
		{"other endpoint works", domainPath, map[string]string{}, 200},
		{"detail works", "/api/archive/get-message-detail", map[string]string{"id": mb.Messages[0].ID}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(tok, tc.path, 0, "", tc.data)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 403 {
				var want = "Resource or method requested does not exist in any product assigned to the application"
				if flatCode(t, r) != "app_forbidden" || !bytes.Contains(r.body, []byte(want)) {
					t.Errorf("body %s", r.body)
				}
			}
		})
	}
	if r := h.do(http.MethodPut, "/_sim/forbidden", "", "application/json", []byte(`["/api/domain/get-internal-domain"]`)); r.status != 204 {
		t.Fatalf("PUT forbidden: %d", r.status)
	}
	if r := h.call(tok, domainPath, 0, ""); r.status != 403 {
		t.Errorf("after PUT: %d", r.status)
	}
	if r := h.call(tok, listPath, 0, "", wide(mb.Address, "INBOX")); r.status != 200 {
		t.Errorf("list after PUT replaced the set: %d", r.status)
	}
	if r := h.do(http.MethodPut, "/_sim/forbidden", "", "application/json", []byte(`{"path":1}`)); r.status != 400 {
		t.Errorf("bad JSON: %d", r.status)
	}
}

func TestFaults(t *testing.T) {
	h := newHarness(t, Options{Seed: 11})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())
	list := wide(mb.Address, "INBOX")

	t.Run("5xx with count", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/api/domain/", Status: 503, Count: 2}})
		defer h.sim.SetFaults(nil)
		for i, want := range []int{503, 503, 200, 200} {
			r := h.call(tok, domainPath, 0, "")
			if r.status != want {
				t.Fatalf("request %d: %d, want %d", i, r.status, want)
			}
			if want == 503 && flatCode(t, r) != "internal-error" {
				t.Errorf("body %s", r.body)
			}
		}
	})
	t.Run("empty answer", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: listPath, Empty: true, Count: 1}})
		defer h.sim.SetFaults(nil)
		r := h.call(tok, listPath, 0, "", list)
		if r.status != 200 || len(r.env.Data) != 0 || len(r.env.Fail) != 0 || r.env.Meta.Status != 200 || r.env.Meta.Pagination != nil {
			t.Errorf("got %d %s", r.status, r.body)
		}
		if r := h.call(tok, listPath, 0, "", list); len(r.env.Data) == 0 {
			t.Error("fault fired twice")
		}
	})
	t.Run("fail items", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/api/archive/", Status: 200, FailItems: true}})
		defer h.sim.SetFaults(nil)
		r := h.call(tok, listPath, 0, "", list)
		if r.status != 200 || len(r.env.Data) != 0 || itemCode(t, r) != codeNull || !bytes.Contains(r.env.Fail[0].Key, []byte(mb.Address)) {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("429 fault", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/api/", Status: 429, Count: 1, ResetMS: 7}})
		defer h.sim.SetFaults(nil)
		r := h.call(tok, domainPath, 0, "")
		if r.status != 429 || r.header.Get("X-RateLimit-Reset") != "7" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("got %d %v", r.status, r.header)
		}
	})
	t.Run("empty body 400", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/api/archive/get-message-detail", Status: 400, EmptyBody: true}})
		defer h.sim.SetFaults(nil)
		r := h.call(tok, "/api/archive/get-message-detail", 0, "", map[string]string{"id": mb.Messages[0].ID})
		if r.status != 400 || len(r.body) != 0 {
			t.Errorf("got %d %q", r.status, r.body)
		}
	})
	t.Run("latency only", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/api/", LatencyMS: 1}})
		defer h.sim.SetFaults(nil)
		if r := h.call(tok, domainPath, 0, ""); r.status != 200 {
			t.Errorf("got %d", r.status)
		}
	})
	t.Run("token endpoint fault", func(t *testing.T) {
		h.sim.SetFaults([]Fault{{PathPrefix: "/oauth/", Status: 502, Count: 1}})
		defer h.sim.SetFaults(nil)
		if r, _ := h.tokenFor("demo-client", "demo-secret"); r.status != 502 {
			t.Errorf("got %d", r.status)
		}
		h.token()
	})
	t.Run("probability is seeded", func(t *testing.T) {
		pattern := func() []int {
			h := newHarness(t, Options{Seed: 11})
			tok := h.token()
			h.sim.SetFaults([]Fault{{PathPrefix: "/api/", Status: 500, Probability: 0.3}})
			var out []int
			for range 60 {
				out = append(out, h.call(tok, domainPath, 0, "").status)
			}
			return out
		}
		a, b := pattern(), pattern()
		if !slices.Equal(a, b) {
			t.Fatal("fault pattern differs between runs with the same seed")
		}
		fired := 0
		for _, s := range a {
			if s == 500 {
				fired++
			}
		}
		if fired < 5 || fired > 35 {
			t.Errorf("fired %d of 60 at probability 0.3", fired)
		}
	})
	t.Run("control api", func(t *testing.T) {
		cases := []struct {
			name   string
			method string
			body   string
			status int
		}{
			{"set", http.MethodPut, `[{"path_prefix":"/api/domain/","status":500,"count":1}]`, 204},
			{"bad json", http.MethodPut, `[{"path_prefix":`, 400},
			{"unknown field", http.MethodPut, `[{"path":"/api/"}]`, 400},
			{"invalid fault", http.MethodPut, `[{"path_prefix":"/api/","status":200}]`, 400},
		}
		for _, tc := range cases {
			r := h.do(tc.method, "/_sim/faults", "", "application/json", []byte(tc.body))
			if r.status != tc.status {
				t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			}
			if tc.status == 400 && !bytes.Contains(r.body, []byte(`"error"`)) {
				t.Errorf("%s: body %s", tc.name, r.body)
			}
		}
		if r := h.call(tok, domainPath, 0, ""); r.status != 500 {
			t.Errorf("fault set by control api: %d", r.status)
		}
		h.do(http.MethodPut, "/_sim/faults", "", "application/json", []byte(`[{"path_prefix":"/api/","status":500}]`))
		h.do(http.MethodDelete, "/_sim/faults", "", "", nil)
		if r := h.call(tok, domainPath, 0, ""); r.status != 200 {
			t.Errorf("after DELETE: %d", r.status)
		}
	})
}

func TestStats(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tok := h.token()
	h.call(tok, domainPath, 0, "")
	h.call(tok, domainPath, 0, "")
	h.do(http.MethodGet, domainPath, tok, "", nil)
	h.do(http.MethodGet, "/_sim/truth", "", "", nil)
	st := h.sim.Stats()
	if st.Requests[domainPath][200] != 2 || st.Requests[domainPath][405] != 1 || st.Requests["/oauth/token"][200] != 1 || st.Total != 4 || st.TokensIssued != 1 {
		t.Errorf("stats %+v", st)
	}
	if r := h.do(http.MethodDelete, "/_sim/stats", "", "", nil); r.status != 204 {
		t.Fatal(r.status)
	}
	if st := h.sim.Stats(); st.Total != 0 || len(st.Requests) != 0 {
		t.Errorf("after reset %+v", st)
	}
}
