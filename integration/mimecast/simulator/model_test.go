package simulator

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

func TestDeterminism(t *testing.T) {
	opts := Options{Seed: 99, Domains: 3, Mailboxes: 5, Messages: 12}
	a, b := newHarness(t, opts), newHarness(t, opts)
	ta, tb := a.sim.Truth(), b.sim.Truth()
	if !reflect.DeepEqual(ta, tb) {
		t.Fatal("two simulators with the same options differ")
	}
	idsA, err := a.sim.AddMessages(firstMailbox(t, ta).Address, 3)
	if err != nil {
		t.Fatal(err)
	}
	idsB, err := b.sim.AddMessages(firstMailbox(t, tb).Address, 3)
	if err != nil || !slices.Equal(idsA, idsB) {
		t.Errorf("added ids differ (%v)", err)
	}
	if !reflect.DeepEqual(a.sim.Truth(), b.sim.Truth()) {
		t.Error("truth differs after the same mutations")
	}
	other := newHarness(t, Options{Seed: 100, Domains: 3, Mailboxes: 5, Messages: 12})
	if reflect.DeepEqual(ta.Mailboxes, other.sim.Truth().Mailboxes) {
		t.Error("another seed gives the same archive")
	}

	// Ids are unique across messages and attachments, URL-safe, and start with eN.
	seen := map[string]bool{}
	tokens := map[string]bool{}
	for _, mb := range ta.Mailboxes {
		for _, m := range mb.Messages {
			for _, id := range append([]string{m.ID}, attachmentIDs(m)...) {
				if seen[id] || !strings.HasPrefix(id, "eN") || len(id) < 60 || strings.ContainsAny(id, "+/=") {
					t.Errorf("id %q duplicate or malformed", id)
				}
				seen[id] = true
			}
			if tokens[m.BodyToken] {
				t.Errorf("body token %s repeats", m.BodyToken)
			}
			tokens[m.BodyToken] = true
		}
	}
}

func attachmentIDs(m TruthMessage) []string {
	var ids []string
	for _, a := range m.Attachments {
		ids = append(ids, a.ID)
	}
	return ids
}

func TestTruthShape(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tr := h.sim.Truth()
	counts := map[string]int{}
	for _, mb := range tr.Mailboxes {
		counts[mb.Type]++
		switch mb.Type {
		case TypeMailbox:
			inbox := 0
			for _, m := range mb.Messages {
				if m.View == api.ViewInbox {
					inbox++
				}
			}
			if len(mb.Messages) != 20 || inbox != 14 {
				t.Errorf("%s: %d messages, %d inbox", mb.Address, len(mb.Messages), inbox)
			}
		case TypeAlias:
			if !mb.Alias || mb.AliasOf == "" || len(mb.Messages) != 0 {
				t.Errorf("alias row %+v", mb)
			}
		case TypeDistributionList:
			if mb.AddressType != api.AddressTypeDistributionList || len(mb.Messages) != 0 {
				t.Errorf("dl row %+v", mb)
			}
		}
	}
	if counts[TypeMailbox] != 5 || counts[TypeDistributionList] != 3 || counts[TypeAlias] == 0 {
		t.Errorf("rows %v", counts)
	}
	local := 0
	for _, mb := range tr.Mailboxes {
		if mb.Type == TypeMailbox && mb.Local {
			local++
			if !strings.HasPrefix(mb.Domain, "local.") {
				t.Errorf("local mailbox domain %s", mb.Domain)
			}
		}
	}
	if local != 1 {
		t.Errorf("%d local mailboxes", local)
	}

	r := h.do(http.MethodGet, "/_sim/truth", "", "", nil)
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	mb := raw["mailboxes"].([]any)[0].(map[string]any)
	for _, k := range []string{"address", "domain", "local", "alias", "messages", "type"} {
		if _, ok := mb[k]; !ok {
			t.Errorf("truth json lacks %q", k)
		}
	}
	var viaHTTP Truth
	if err := json.Unmarshal(r.body, &viaHTTP); err != nil || !reflect.DeepEqual(viaHTTP, tr) {
		t.Errorf("GET /_sim/truth differs from Truth() (%v)", err)
	}
	one := h.do(http.MethodGet, "/_sim/truth?mailbox="+tr.Mailboxes[0].Address, "", "", nil)
	var single Truth
	if err := json.Unmarshal(one.body, &single); err != nil || len(single.Mailboxes) != 1 {
		t.Errorf("truth for one mailbox: %s", one.body)
	}
}

func TestMutations(t *testing.T) {
	h := newHarness(t, Options{Seed: 8})
	tok := h.token()
	tr := h.sim.Truth()
	mb := firstMailbox(t, tr)
	dom := mb.Domain

	t.Run("add messages", func(t *testing.T) {
		ids, err := h.sim.AddMessages(mb.Address, 3)
		if err != nil || len(ids) != 3 {
			t.Fatalf("add: %v %v", ids, err)
		}
		got, _ := h.listAll(tok, api.MessageListFilter{View: api.ViewInbox, Mailbox: mb.Address}, 100)
		if len(got) != 2 || !slices.Contains(ids, got[0]) {
			t.Errorf("listing after add: %v, ids %v", got, ids)
		}
		after := h.sim.Truth()
		row := findRow(after, mb.Address)
		if len(row.Messages) != len(mb.Messages)+3 || !slices.Contains(ids, row.Messages[0].ID) {
			t.Errorf("truth after add: %d messages", len(row.Messages))
		}
		received := row.Messages[0].Received
		if received != api.FormatTime(h.clock.Now()) {
			t.Errorf("added message received %s, clock %s", received, api.FormatTime(h.clock.Now()))
		}
		r := h.call(tok, detailPath, 0, "", map[string]string{"id": ids[2]})
		if len(r.env.Data) != 1 {
			t.Errorf("detail of added message: %s", r.body)
		}
	})
	t.Run("add via control api", func(t *testing.T) {
		r := h.do(http.MethodPost, "/_sim/messages", "", "application/json", []byte(`{"mailbox":"`+mb.Address+`","count":2}`))
		var out struct {
			IDs []string `json:"ids"`
		}
		if err := json.Unmarshal(r.body, &out); r.status != 200 || err != nil || len(out.IDs) != 2 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		r = h.do(http.MethodDelete, "/_sim/messages/"+out.IDs[0], "", "", nil)
		if r.status != 204 {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
		if r = h.do(http.MethodDelete, "/_sim/messages/"+out.IDs[0], "", "", nil); r.status != 404 {
			t.Errorf("second delete: %d", r.status)
		}
		if r := h.call(tok, detailPath, 0, "", map[string]string{"id": out.IDs[0]}); itemCode(t, r) != codeXDK {
			t.Errorf("detail of deleted message: %s", r.body)
		}
	})
	t.Run("mailboxes", func(t *testing.T) {
		addr := "new.person@" + dom
		if err := h.sim.AddMailbox(addr); err != nil {
			t.Fatal(err)
		}
		if err := h.sim.AddMailbox(addr); err == nil {
			t.Error("duplicate mailbox accepted")
		}
		if err := h.sim.AddMailbox("x@unknown.example"); err == nil {
			t.Error("mailbox in unknown domain accepted")
		}
		if row := findRow(h.sim.Truth(), addr); row.Type != TypeMailbox || len(row.Messages) != 0 {
			t.Errorf("new mailbox row %+v", row)
		}
		if !userListed(t, h, tok, addr) {
			t.Error("new mailbox not in get-internal-users")
		}
		if _, err := h.sim.AddMessages(addr, 1); err != nil {
			t.Error(err)
		}

		r := h.do(http.MethodDelete, "/_sim/mailboxes/"+mb.Address, "", "", nil)
		if r.status != 204 {
			t.Fatalf("delete mailbox: %d %s", r.status, r.body)
		}
		if findRow(h.sim.Truth(), mb.Address).Address != "" || userListed(t, h, tok, mb.Address) {
			t.Error("deleted mailbox still listed")
		}
		for _, row := range h.sim.Truth().Mailboxes {
			if row.AliasOf == mb.Address {
				t.Errorf("alias %s of deleted mailbox remains", row.Address)
			}
		}
		if r := h.call(tok, listPath, 0, "", wide(mb.Address, api.ViewInbox)); itemCode(t, r) != codeUnknownAddr {
			t.Errorf("listing of deleted mailbox: %s", r.body)
		}
		if r := h.call(tok, detailPath, 0, "", map[string]string{"id": mb.Messages[0].ID}); itemCode(t, r) != codeXDK {
			t.Errorf("detail in deleted mailbox: %s", r.body)
		}
		cases := []struct {
			name, method, path, body string
			status                   int
		}{
			{"add via api", http.MethodPost, "/_sim/mailboxes", `{"address":"api.person@` + dom + `"}`, 201},
			{"add again", http.MethodPost, "/_sim/mailboxes", `{"address":"api.person@` + dom + `"}`, 409},
			{"add bad json", http.MethodPost, "/_sim/mailboxes", `{"address":`, 400},
			{"add not an address", http.MethodPost, "/_sim/mailboxes", `{"address":"nobody"}`, 400},
			{"delete unknown", http.MethodDelete, "/_sim/mailboxes/ghost@" + dom, "", 404},
			{"messages to unknown", http.MethodPost, "/_sim/messages", `{"mailbox":"ghost@` + dom + `","count":1}`, 404},
			{"messages bad count", http.MethodPost, "/_sim/messages", `{"mailbox":"api.person@` + dom + `","count":0}`, 400},
			{"unknown control path", http.MethodGet, "/_sim/nothing", "", 404},
		}
		for _, tc := range cases {
			r := h.do(tc.method, tc.path, "", "application/json", []byte(tc.body))
			if r.status != tc.status {
				t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			}
			if tc.status >= 400 && !strings.Contains(string(r.body), `"error"`) {
				t.Errorf("%s: body %s", tc.name, r.body)
			}
		}
	})
}

func findRow(tr Truth, addr string) TruthMailbox {
	for _, mb := range tr.Mailboxes {
		if mb.Address == addr {
			return mb
		}
	}
	return TruthMailbox{}
}

func userListed(t *testing.T, h *harness, tok, addr string) bool {
	t.Helper()
	r := h.call(tok, "/api/user/get-internal-users", 500, "")
	for _, u := range decodeData[api.UsersPage](t, r)[0].Users {
		if u.EmailAddress == addr {
			return true
		}
	}
	return false
}

func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"bad header mode", Options{RateLimitHeaders: "sometimes"}},
		{"negative rate", Options{RateLimit: -1}},
		{"token status", Options{TokenErrorStatus: 500}},
		{"too big", Options{Mailboxes: 1_000_000, Messages: 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil {
				t.Error("accepted")
			}
		})
	}
}
