package simulator

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

func TestTokenEndpoint(t *testing.T) {
	h := newHarness(t, Options{Seed: 1, TokenTTL: 90 * time.Second, ExtraClients: map[string]string{"other": "pw"}})
	cases := []struct {
		name     string
		form     url.Values
		method   string
		status   int
		failCode string
	}{
		{"good", url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"}}, http.MethodPost, 200, ""},
		{"extra client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}, "client_secret": {"pw"}}, http.MethodPost, 200, ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-client"}, "client_secret": {"nope"}}, http.MethodPost, 401, "InvalidClientIdentifier"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"demo-secret"}}, http.MethodPost, 401, "InvalidClientIdentifier"},
		{"missing credentials", url.Values{"grant_type": {"client_credentials"}}, http.MethodPost, 401, "InvalidClientIdentifier"},
		{"bad grant", url.Values{"grant_type": {"password"}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"}}, http.MethodPost, 400, "unsupported_grant_type"},
		{"wrong method", nil, http.MethodGet, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, "/oauth/token", "", "application/x-www-form-urlencoded", []byte(tc.form.Encode()))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.header.Get("x-request-id") == "" {
				t.Error("no x-request-id")
			}
			if tc.failCode != "" {
				if got := flatCode(t, r); got != tc.failCode {
					t.Errorf("fail code %q, want %q", got, tc.failCode)
				}
				return
			}
			_, tok := h.tokenFor(tc.form.Get("client_id"), tc.form.Get("client_secret"))
			if tok.TokenType != "Bearer" || tok.ExpiresIn != 90 || tok.Scope != "" || len(tok.AccessToken) < 20 {
				t.Errorf("token %+v", tok)
			}
		})
	}

	t.Run("400 for bad credentials when configured", func(t *testing.T) {
		h := newHarness(t, Options{Seed: 1, TokenErrorStatus: 400})
		r, _ := h.tokenFor("demo-client", "wrong")
		if r.status != 400 || flatCode(t, r) != "InvalidClientIdentifier" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}

func TestBearerChecks(t *testing.T) {
	h := newHarness(t, Options{Seed: 1, TokenTTL: time.Minute})
	const path = "/api/domain/get-internal-domain"
	first, second := h.token(), h.token()
	if first == second {
		t.Fatal("two tokens are equal")
	}
	for _, tok := range []string{first, second} {
		if r := h.call(tok, path, 0, ""); r.status != 200 {
			t.Fatalf("live token: %d %s", r.status, r.body)
		}
	}

	cases := []struct {
		name   string
		header string
		code   string
	}{
		{"missing", "", "unauthorized"},
		{"garbled", "Bearer not-a-token", "token_verification_failed"},
		{"wrong scheme", "Basic " + first, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := result{status: resp.StatusCode, header: resp.Header, body: body}
			if r.status != 401 || flatCode(t, r) != tc.code {
				t.Fatalf("got %d %s, want 401 %s", r.status, body, tc.code)
			}
			if r.header.Get("Content-Type") != "application/json" || r.header.Get("x-request-id") == "" {
				t.Errorf("headers %v", r.header)
			}
		})
	}

	t.Run("expiry by clock", func(t *testing.T) {
		h.clock.Advance(59 * time.Second)
		if r := h.call(first, path, 0, ""); r.status != 200 {
			t.Fatalf("before expiry: %d", r.status)
		}
		h.clock.Advance(time.Second)
		r := h.call(first, path, 0, "")
		if r.status != 401 || flatCode(t, r) != "token_expired" {
			t.Fatalf("after expiry: %d %s", r.status, r.body)
		}
		fresh := h.token()
		if r := h.call(fresh, path, 0, ""); r.status != 200 {
			t.Fatalf("fresh token: %d", r.status)
		}
	})
	t.Run("ExpireTokens", func(t *testing.T) {
		tok := h.token()
		h.sim.ExpireTokens()
		if r := h.call(tok, path, 0, ""); r.status != 401 || flatCode(t, r) != "token_expired" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		tok = h.token()
		h.do(http.MethodPost, "/_sim/tokens/expire", "", "", nil)
		if r := h.call(tok, path, 0, ""); r.status != 401 || flatCode(t, r) != "token_expired" {
			t.Fatalf("control api: got %d %s", r.status, r.body)
		}
	})
}

func TestMethodPathAndEnvelope(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tok := h.token()
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
	}{
		{"get on api", http.MethodGet, "/api/domain/get-internal-domain", "", 405, "method_not_allowed"},
		{"put on api", http.MethodPut, "/api/archive/get-message-list", "", 405, "method_not_allowed"},
		{"unknown api path", http.MethodPost, "/api/archive/nope", `{"data":[]}`, 404, "not_found"},
		{"unknown root path", http.MethodPost, "/nothing", "", 404, "not_found"},
		{"malformed body", http.MethodPost, "/api/domain/get-internal-domain", `{"data":`, 400, "err_request_malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, tok, "application/json", []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := flatCode(t, r); got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
			if r.header.Get("x-request-id") == "" || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", r.header)
			}
		})
	}

	t.Run("success envelope", func(t *testing.T) {
		r := h.do(http.MethodPost, "/api/domain/get-internal-domain", tok, "application/json", []byte(`{"data":[]}`))
		if r.status != 200 || r.env.Meta.Status != 200 || r.env.Fail == nil || len(r.env.Fail) != 0 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if string(r.body[:len(`{"meta":{"status":200}`)]) != `{"meta":{"status":200}` {
			t.Errorf("envelope starts %s", r.body[:40])
		}
		if r.header.Get("x-request-id") == h.do(http.MethodPost, "/api/domain/get-internal-domain", tok, "", nil).header.Get("x-request-id") {
			t.Error("request ids repeat")
		}
	})
}

func TestDomainsAndUsers(t *testing.T) {
	h := newHarness(t, Options{Seed: 7, Domains: 3, Mailboxes: 9})
	tok := h.token()
	tr := h.sim.Truth()

	r := h.call(tok, "/api/domain/get-internal-domain", 0, "")
	doms := decodeData[api.Domain](t, r)
	if len(doms) != 4 {
		t.Fatalf("domains %d, want 3 + local", len(doms))
	}
	locals := 0
	for _, d := range doms {
		if d.Local {
			locals++
		}
		if len(d.ID) < 60 || d.ID[:2] != "eN" {
			t.Errorf("domain id %q", d.ID)
		}
	}
	if locals != 1 {
		t.Errorf("local domains %d", locals)
	}

	r = h.call(tok, "/api/domain/get-internal-domain", 0, "", map[string]string{"domain": doms[1].Domain}, map[string]string{"domain": "nope.example"})
	if got := decodeData[api.Domain](t, r); len(got) != 1 || got[0].Domain != doms[1].Domain {
		t.Errorf("lookup: %s", r.body)
	}
	if len(r.env.Fail) != 1 || string(r.env.Fail[0].Key) != `{"domain":"nope.example"}` {
		t.Errorf("unknown domain should fail per item: %s", r.body)
	}

	t.Run("users pages", func(t *testing.T) {
		var all []api.User
		next := ""
		for page := 0; ; page++ {
			r := h.call(tok, "/api/user/get-internal-users", 4, next)
			pages := decodeData[api.UsersPage](t, r)
			if r.status != 200 || len(pages) != 1 {
				t.Fatalf("page %d: %d %s", page, r.status, r.body)
			}
			all = append(all, pages[0].Users...)
			if pages[0].UserCount != len(tr.Mailboxes) {
				t.Errorf("userCount %d, want %d", pages[0].UserCount, len(tr.Mailboxes))
			}
			next = r.env.Meta.Pagination.Next
			if next == "" {
				break
			}
		}
		if len(all) != len(tr.Mailboxes) {
			t.Fatalf("rows %d, want %d", len(all), len(tr.Mailboxes))
		}
		kinds := map[string]int{}
		for i, u := range all {
			if u.EmailAddress != tr.Mailboxes[i].Address {
				t.Errorf("row %d: %s, truth %s", i, u.EmailAddress, tr.Mailboxes[i].Address)
			}
			switch {
			case u.Alias:
				kinds["alias"]++
			case u.AddressType == api.AddressTypeDistributionList:
				kinds["dl"]++
			default:
				kinds["mailbox"]++
			}
		}
		if kinds["alias"] == 0 || kinds["dl"] != 4 || kinds["mailbox"] != 10 {
			t.Errorf("kinds %v", kinds)
		}
	})
	t.Run("users by domain", func(t *testing.T) {
		r := h.call(tok, "/api/user/get-internal-users", 100, "", map[string]string{"domain": doms[0].Domain})
		for _, u := range decodeData[api.UsersPage](t, r)[0].Users {
			if u.Domain != doms[0].Domain {
				t.Errorf("user %s outside %s", u.EmailAddress, doms[0].Domain)
			}
		}
	})
	t.Run("users too many items", func(t *testing.T) {
		r := h.call(tok, "/api/user/get-internal-users", 0, "", map[string]string{"domain": "a"}, map[string]string{"domain": "b"})
		if r.status != 200 || len(r.env.Data) != 0 || itemCode(t, r) != codeTooMany {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}
